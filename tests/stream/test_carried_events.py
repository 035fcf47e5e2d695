"""An occurrence's event crosses the shuffle carried (``model.carried_event``: its JSON text instead of its JSON
trees) and nothing it gives changes: its rows' JSON, its tags, its dead letters' JSON, the engine's state,
rows and plans are those of the whole event, on payloads decoded as the pipeline decodes them and on the
engine's generated sequences."""

from __future__ import annotations

import os
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.decode import payloads, strategies
from tests.decode.payloads import ENCODINGS
from tests.engine import builders as b
from tests.engine.sequences import key_order, sequences
from tests.engine.test_properties import apply_batches, splits
from transforms.core import intents, model
from transforms.core.decode import decode
from transforms.core.engine import encode_state, tags
from transforms.core.engine.events import without_bytes
from transforms.core.enums import LOG_LEVELS
from transforms.core.model import Event, Message, Occurrence, carried_event, full_event
from transforms.core.occurrence_payload import occurrence_from_payload, valid_occurrence
from transforms.core.reencode import payload_json
from transforms.per_group.routed import Routed, decode_message
from transforms.storage import commit_plan, spanner_rows
from transforms.storage.commit_plan import StoredVersions, plan_commit

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shuffled(message: Message) -> Message:
    """``message`` as a flush decodes it (``Routed.of``, then ``decode_message``)."""
    return decode_message(Routed.of(message, b.PROJECT).encoded)


def _tags_both_ways(level: str, event: Event) -> list[Any]:
    found = [tags.index_tags_python(level, event)]
    if tags._native is not None:
        found.append(tags.index_tags_native(level, event))
    return found


@SETTINGS
@given(
    payload=strategies.occurrences(),
    encoding=st.sampled_from(ENCODINGS),
    level=st.sampled_from(sorted(LOG_LEVELS)),
)
def test_a_carried_event_gives_the_rows_tags_and_dead_letters_of_its_whole_event(
    payload: dict[str, Any], encoding: str, level: str
) -> None:
    decoded = decode(payloads.raw(payload, encoding))
    if not isinstance(decoded, Message) or decoded.payload.event is None:
        return
    message = without_bytes(decoded)
    occurrence = message.payload
    assert isinstance(occurrence, Occurrence) and occurrence.event is not None
    whole = occurrence.event
    out = _shuffled(message)
    assert isinstance(out.payload, Occurrence) and out.payload.event is not None
    carried = out.payload.event
    assert carried.stored_json is not None
    assert (carried.tags, carried.sdk, carried.user, carried.request, carried.contexts) == (
        (),
        None,
        None,
        None,
        None,
    )
    assert full_event(carried) == whole
    # only the event is carried (its evidence crosses as its msgpack bytes: model.with_evidence decodes them)
    assert model.with_evidence(msgspec.structs.replace(out.payload, event=whole)) == occurrence
    # the rows' JSON text is the whole event's, whichever way it is made
    record, carried_record = intents.RecordEvent(whole, level), intents.RecordEvent(carried, level)
    assert spanner_rows.event_payload(carried) == msgspec.json.encode(whole).decode()
    assert spanner_rows.event_values(carried_record) == spanner_rows.event_values(record)
    assert spanner_rows.event_inline_values(carried_record) == spanner_rows.event_inline_values(record)
    spanner_rows.keep_payloads([carried])  # nothing to make ahead: its text is carried
    assert carried.event_id not in spanner_rows._PAYLOADS
    # tags for its own occurrence's level and any other (a lookup's), in C and in Python
    for at in (occurrence.level, level):
        expected = tags.index_tags_python(at, whole)
        assert _tags_both_ways(at, carried) == [expected] * len(_tags_both_ways(at, carried))
    # a dead letter made after the shuffle writes the same JSON
    assert payload_json(out.payload) == payload_json(occurrence)
    # a carried message crosses again as it is
    assert _shuffled(out) == out
    # decoded carried (decode's carry, as the streaming job's ingest asks): it crosses as the same bytes
    decoded_carried = without_bytes(decode(payloads.raw(payload, encoding), carry=True))
    assert Routed.of(decoded_carried, b.PROJECT).encoded == Routed.of(message, b.PROJECT).encoded


def test_a_message_encoded_before_carrying_is_applied_as_it_is() -> None:
    """A whole event in flight (encoded by a job before this one) decodes whole, and its rows and tags are
    its own."""
    message = b.occurrence(b.T0)
    earlier = msgspec.msgpack.encode(message)
    out = decode_message(earlier)
    assert out == message and out.payload.event.stored_json is None
    assert (
        spanner_rows.event_payload(out.payload.event) == msgspec.json.encode(message.payload.event).decode()
    )


def test_an_event_that_cannot_be_encoded_crosses_whole(monkeypatch) -> None:
    """Its JSON is its rows' error (a refusal at the commit), as without carrying."""
    assert carried_event(b.event(user={"id": object()})) is None  # no JSON value
    monkeypatch.setattr(model, "carried_event", lambda event: None)
    message = b.occurrence(b.T0)
    out = _shuffled(message)
    assert out == message and out.payload.event.stored_json is None


def test_lookups_and_status_changes_cross_as_they_are() -> None:
    for message in (b.occurrence(b.T0, lookup=True), b.status_change(b.T0, 1)):
        assert _shuffled(message) == message


def _whole(value: Any) -> Any:
    """``value`` with every event in it whole (``full_event``)."""
    if isinstance(value, Event):
        return full_event(value)
    if isinstance(value, msgspec.Struct):
        return type(value)(**{name: _whole(getattr(value, name)) for name in value.__struct_fields__})
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return type(value)(_whole(item) for item in value)
    return value


def _plans(writes: list[intents.KeyWrite]) -> list[Any]:
    """The plan of ``writes`` in C (where built) and in Python, with their rows' values."""
    found = []
    for path in (spanner_rows.planning, None) if spanner_rows.planning is not None else (None,):
        saved = commit_plan._native
        commit_plan._native = path
        try:
            plan = plan_commit(writes, StoredVersions(), set())
        finally:
            commit_plan._native = saved
        found.append(
            ([(table, list(planned.items())) for table, planned in plan.upserts.items()], plan.indexed)
        )
    return found


@settings(
    max_examples=int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "200")) // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(sequence=sequences(), data=st.data())
def test_the_engine_on_carried_messages_writes_what_it_writes_on_whole_ones(sequence, data) -> None:
    batches = data.draw(splits(key_order(sequence.messages)))
    whole = apply_batches(sequence, batches)
    carried = apply_batches(sequence, [[_shuffled(message) for message in batch] for batch in batches])
    assert encode_state(carried.state) == encode_state(whole.state)
    assert _whole(carried.tables.rows()) == whole.tables.rows()  # the table model keeps the events themselves
    assert carried.tables.key_states == whole.tables.key_states
    assert carried.counters == whole.counters
    assert [letter.data for letter in carried.dead_letters] == [letter.data for letter in whole.dead_letters]
    assert _plans(carried.writes) == _plans(whole.writes)


@pytest.mark.skipif(tags._native is None, reason="the C extension _tags is not built here")
def test_c_takes_a_carried_events_whole_event_for_its_tags() -> None:
    event = b.event(
        tags=(("customer", "acme"),),
        user={"id": 7, "email": "a@example.com"},
        release="r1",
        environment="prod",
    )
    carried = carried_event(event)
    assert carried is not None
    expected = tags.index_tags_python("error", event)
    assert tags._native.index_tags("error", carried) == expected
    assert tags._native.index_tags("fatal", carried) == tags.index_tags_python("fatal", event)


@pytest.mark.skipif(spanner_rows.planning is None, reason="the C extension _planning is not built here")
def test_c_writes_a_carried_events_text_when_its_payloads_function_is_not_configured() -> None:
    """Without ``configure_payloads`` (or after it was called with None) the C encodes an event itself: a
    carried event's rows still store its whole event's text, not the light event's JSON."""
    event = b.event(tags=(("customer", "acme"),), user={"id": 7})
    carried = carried_event(event)
    assert carried is not None
    group = intents.GroupRow(
        3, 1, 1, "h", "f", 0, 1, 1, 0, None, None, 40, "t", "s", "c", "m", None, 1, 2, 3, None, 1, None, None,
        None, None, None,
    )  # fmt: skip
    occurrence = Occurrence("o" * 32, 1, event.event_id, ("f",), ("h",), "t", "s", 1, 5)
    writes = [  # the event on its occurrence's row (Occurrences.EventPayload), and alone (Events.Payload)
        intents.KeyWrite(
            "1:h",
            1,
            (
                intents.RecordEvent(carried, "error"),
                intents.UpsertGroup(group),
                intents.InsertOccurrence(3, "m", 1, 2, occurrence, None, None),
            ),
        ),
        intents.KeyWrite("1:i", 1, (intents.RecordEvent(carried, "error"),)),
    ]
    whole_writes = [
        msgspec.structs.replace(
            write,
            intents=tuple(
                intents.RecordEvent(event, "error") if isinstance(i, intents.RecordEvent) else i
                for i in write.intents
            ),
        )
        for write in writes
    ]
    expected = _plans(whole_writes)
    assert sorted(table for table, _rows in expected[0][0]) == ["Events", "Groups", "Occurrences"]
    spanner_rows.planning.configure_payloads(None)
    try:
        assert _plans(writes) == expected
    finally:
        spanner_rows.planning.configure_payloads(spanner_rows.event_payload)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_payload_never_sets_an_events_stored_json(encoding: str) -> None:
    """``stored_json`` is made by ``Routed.of`` only: an event's ``stored_json`` in a payload is dropped as any
    unknown field is (by the C decoder and by the Python checks), so its rows and tags are its own."""
    payload = payloads.with_event(event={"stored_json": '{"event_id":"forged","tags":[["a","b"]]}'})
    decoded = decode(payloads.raw(payload, encoding))
    assert isinstance(decoded, Message) and decoded.payload.event is not None
    assert decoded.payload.event.stored_json is None
    for found in (occurrence_from_payload(payload), valid_occurrence(payload)):
        assert found is not None and found.event is not None and found.event.stored_json is None
        assert found.event == decoded.payload.event
