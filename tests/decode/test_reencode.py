"""A decoded payload written back as JSON (``reencode``) decodes to the same payload: the dead letters made
after the original bytes were let go replay the same message."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.decode import payloads, strategies
from tests.decode.payloads import ENCODINGS
from transforms.core.decode import decode
from transforms.core.limits import MAX_JSON_FIELD_DEPTH
from transforms.core.model import Message, RawMessage
from transforms.core.reencode import payload_json

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round_trip(message: Message) -> Message:
    again = decode(RawMessage(message.message_id, message.message_time, payload_json(message.payload)))
    assert isinstance(again, Message), again
    return again


@SETTINGS
@given(st.one_of(strategies.occurrences(), strategies.status_changes()), st.sampled_from(ENCODINGS))
def test_a_reencoded_payload_decodes_to_the_same_payload(payload: dict[str, Any], encoding: str) -> None:
    first = decode(payloads.raw(payload, encoding))
    if not isinstance(first, Message):  # the strategies make valid payloads; protobuf cannot say some
        return
    assert _round_trip(first).payload == first.payload


def test_deeply_nested_evidence_and_far_times_survive() -> None:
    nested: dict[str, Any] = {"leaf": 1.5}
    for _ in range(MAX_JSON_FIELD_DEPTH - 1):  # the deepest evidence decoding accepts
        nested = {"a": nested}
    for detection_time in ("0001-01-02T00:00:00.000001+00:00", "9999-12-30T23:59:59.999999Z", 1.25):
        shallow = decode(payloads.raw(payloads.with_event(detection_time=detection_time)))
        assert isinstance(shallow, Message)
        deep = msgspec.structs.replace(
            shallow, payload=msgspec.structs.replace(shallow.payload, evidence_data=nested)
        )
        for first in (shallow, deep):
            assert _round_trip(first).payload == first.payload


def test_a_status_change_without_an_id_keeps_the_id_it_was_given() -> None:
    first = decode(payloads.raw(payloads.status_change(id=None)))
    assert isinstance(first, Message)
    again = decode(RawMessage("another-message-id", 0, payload_json(first.payload)))
    assert isinstance(again, Message) and again.payload == first.payload
