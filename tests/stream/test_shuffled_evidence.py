"""An occurrence's evidence crosses the shuffle as its msgpack bytes (``model.EvidenceDisplay``: decoded only
where it is read) and nothing it gives changes: the Occurrences row (Python and C planners), a feedback group's
metadata and a dead letter's JSON are those of the occurrence as decoded from its message."""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.decode import payloads, strategies
from tests.decode.payloads import ENCODINGS
from tests.engine import builders as b
from tests.test_commit_plan_native import _both, needs_native
from transforms.core import intents, model
from transforms.core.decode import decode
from transforms.core.engine import creation
from transforms.core.engine.events import waiting_lookup, without_bytes
from transforms.core.engine.state import decode_state, encode_state, new_state
from transforms.core.grouptypes import get_group_type
from transforms.core.model import EvidenceItem, Message, Occurrence
from transforms.core.reencode import payload_json
from transforms.per_group.routed import Routed, decode_message
from transforms.storage import spanner_rows
from transforms.storage.commit_plan import StoredVersions
from transforms.storage.spanner_writer import is_refusal

SETTINGS = settings(
    max_examples=int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FEEDBACK = get_group_type(b.FEEDBACK)


def _shuffled(occurrence: Occurrence) -> Occurrence:
    """``occurrence`` as a flush decodes it (``Routed.of``, then ``decode_message``)."""
    payload = decode_message(Routed.of(Message("m", 1, occurrence), b.PROJECT).encoded).payload
    assert isinstance(payload, Occurrence)
    return payload


def _insert(occurrence: Occurrence) -> intents.InsertOccurrence:
    return intents.InsertOccurrence(3, "m", 1, 2, occurrence, "r", "prod")


def _planned(occurrence: Occurrence) -> tuple[Any, Any]:
    """The plan of a write inserting ``occurrence``, in C and in Python (``_both``)."""
    write = intents.KeyWrite("1:h", 2, (_insert(occurrence),))
    return _both([write], StoredVersions({(1, "h"): 1}, {3: 1}), set())


def _assert_gives_what_its_decoded_occurrence_gives(occurrence: Occurrence) -> None:
    shuffled = _shuffled(occurrence)
    # (its event crosses carried: tests/stream/test_carried_events.py)
    assert msgspec.structs.replace(model.with_evidence(shuffled), event=occurrence.event) == occurrence
    assert model.evidence_display(shuffled) == occurrence.evidence_display
    assert model.evidence_data(shuffled) == occurrence.evidence_data
    assert spanner_rows.occurrence_values(_insert(shuffled)) == spanner_rows.occurrence_values(
        _insert(occurrence)
    )
    if spanner_rows.planning is not None:
        in_c, in_python = _planned(shuffled)
        assert in_c == in_python == _planned(occurrence)[1]
        row = (spanner_rows.OCCURRENCE_COLUMNS, spanner_rows.occurrence_values(_insert(occurrence)))
        assert in_python[0] == [("Occurrences", [((3, occurrence.id), row)])]
    assert creation.feedback_metadata(shuffled, FEEDBACK) == creation.feedback_metadata(occurrence, FEEDBACK)
    assert payload_json(shuffled) == payload_json(occurrence)
    # held in a key state and stored again, it is stored as the same bytes
    encode = msgspec.msgpack.encode
    assert encode(msgspec.structs.replace(shuffled, event=occurrence.event)) == encode(occurrence)


@SETTINGS
@given(payload=strategies.occurrences(), encoding=st.sampled_from(ENCODINGS))
def test_a_shuffled_occurrence_gives_the_rows_metadata_and_dead_letters_of_its_decoded_one(
    payload: dict[str, Any], encoding: str
) -> None:
    decoded = decode(payloads.raw(payload, encoding))
    if not isinstance(decoded, Message) or not isinstance(decoded.payload, Occurrence):
        return
    _assert_gives_what_its_decoded_occurrence_gives(without_bytes(decoded).payload)


@pytest.mark.parametrize(
    "evidence",
    [
        {},
        {
            "message": "m",
            "contact_email": "a@b.c",
            "name": None,
            "source": "s",
            "other": [1, 2.5, {"x": True}],
        },
        {"nested": {"list": [1, -(1 << 63), (1 << 64) - 1, 1e308, -0.0, "é\u2028"]}},
    ],
)
def test_feedback_evidence_read_from_its_bytes(evidence: dict[str, Any]) -> None:
    occurrence = b.occurrence(b.T0, type=b.FEEDBACK, evidence_data=evidence).payload
    items = (EvidenceItem("a", "1", True), EvidenceItem("", "\x00", False))
    occurrence = msgspec.structs.replace(occurrence, evidence_display=items)
    assert isinstance(_shuffled(occurrence).evidence_data, msgspec.Raw)
    _assert_gives_what_its_decoded_occurrence_gives(occurrence)


def test_absent_evidence_stays_its_default() -> None:
    occurrence = _shuffled(b.occurrence(b.T0).payload)
    assert occurrence.evidence_display == () and occurrence.evidence_data is None


def test_evidence_of_a_key_state_stored_before_is_read_as_it_was() -> None:
    """Bytes written when the fields were decoded with the occurrence decode to the same evidence."""
    occurrence = b.occurrence(b.T0, evidence_data={"k": [1, {"v": None}]}).payload
    stored = msgspec.msgpack.encode(
        msgspec.structs.replace(occurrence, evidence_display=(EvidenceItem("a", "b", True),))
    )
    read = msgspec.msgpack.decode(stored, type=Occurrence)
    assert model.evidence_data(read) == {"k": [1, {"v": None}]}
    assert model.evidence_display(read) == (EvidenceItem("a", "b", True),)


def test_a_key_state_holding_an_occurrence_stores_its_evidence_as_before() -> None:
    """A waiting lookup's occurrence read from a key state keeps its evidence as bytes, reads as it was
    written, and the state is stored again as the same bytes (a state written before reads the same)."""
    message = b.occurrence(b.T0, evidence_data={"k": [1, {"v": None}], "e": "\u00e9"})
    occurrence = msgspec.structs.replace(message.payload, evidence_display=(EvidenceItem("a", "b", True),))
    message = msgspec.structs.replace(message, payload=occurrence)
    lookup = waiting_lookup(message, occurrence, b.T0, 10)
    state = msgspec.structs.replace(new_state(1, occurrence.primary_hash), waiting=(lookup,))
    stored = encode_state(state)
    read = decode_state(stored)
    held = read.waiting[0].occurrence
    assert isinstance(held.evidence_display, msgspec.Raw) and isinstance(held.evidence_data, msgspec.Raw)
    assert model.with_evidence(held) == occurrence
    assert encode_state(read) == stored
    assert payload_json(held) == payload_json(occurrence)


@needs_native
def test_evidence_bytes_that_do_not_decode_raise_as_in_python() -> None:
    broken = msgspec.structs.replace(b.occurrence(b.T0).payload, evidence_data=msgspec.Raw(b"\xc1"))
    raw = broken.evidence_data
    before = sys.getrefcount(raw)
    in_c, in_python = _planned(broken)
    assert in_c == in_python == msgspec.DecodeError
    gc.collect()  # the Python planner's traceback holds its frames in a cycle
    after = sys.getrefcount(raw)
    assert after == before  # the C let go of the bytes it failed to decode
    # raised while a chunk is planned, it is a refusal: the write is isolated and its message dead-lettered
    assert is_refusal(msgspec.DecodeError("bytes"))


@needs_native
def test_planning_in_c_lets_go_of_the_evidence_bytes_it_decodes() -> None:
    """The bytes stay with the occurrence (no block is allocated for a reference kept on them, so the leak
    check of tests/test_commit_plan_native.py cannot see one): their counts are those before planning."""
    occurrence = b.occurrence(b.T0, type=b.FEEDBACK, evidence_data={"k": [1, {"v": None}]}).payload
    shuffled = _shuffled(
        msgspec.structs.replace(occurrence, evidence_display=(EvidenceItem("a", "b", True),))
    )
    display, data = shuffled.evidence_display, shuffled.evidence_data
    assert isinstance(display, msgspec.Raw) and isinstance(data, msgspec.Raw)
    before = sys.getrefcount(display), sys.getrefcount(data)
    for _ in range(3):
        in_c, in_python = _planned(shuffled)
        assert in_c == in_python
    gc.collect()
    after = sys.getrefcount(display), sys.getrefcount(data)
    assert after == before
