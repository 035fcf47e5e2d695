"""JSON and protobuf carry the same content: decoding either gives the same message (rule 1.1)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.decode import strategies
from tests.decode.payloads import FIXTURES, MESSAGE_ID, MESSAGE_TIME, load, raw
from transforms.core.decode import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, decode
from transforms.core.encode import EncodeError, encode, encode_json, encode_protobuf, to_proto
from transforms.core.model import DeadLetter, Message

SAMPLES = sorted(path.name for path in FIXTURES.glob("*.json"))


def decode_both(payload: dict[str, Any]) -> tuple[Message | DeadLetter, Message | DeadLetter]:
    return decode(raw(payload, JSON_CONTENT_TYPE)), decode(raw(payload, PROTOBUF_CONTENT_TYPE))


def assert_same_message(from_json: Message | DeadLetter, from_protobuf: Message | DeadLetter) -> None:
    assert isinstance(from_json, Message), from_json
    assert isinstance(from_protobuf, Message), from_protobuf
    assert from_json.payload == from_protobuf.payload
    assert (from_json.message_id, from_json.message_time) == (
        from_protobuf.message_id,
        from_protobuf.message_time,
    )
    assert from_json.key == from_protobuf.key


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_sample_decodes_to_the_same_message_from_both_encodings(sample: str) -> None:
    assert_same_message(*decode_both(load(sample)))


@settings(max_examples=300, deadline=None)
@given(strategies.valid_payloads)
def test_generated_payloads_decode_to_the_same_message_from_both_encodings(payload: dict[str, Any]) -> None:
    assert_same_message(*decode_both(payload))


@settings(max_examples=300, deadline=None)
@given(strategies.mutated_payloads())
def test_broken_payloads_get_the_same_outcome_from_both_encodings(payload: dict[str, Any]) -> None:
    """Wherever protobuf can carry the payload, both encodings agree on the message or the reason.

    Except what protobuf cannot say: a repeated field cannot be absent (an
    absent fingerprint reads as an empty one, an absent evidence_display as []).
    """
    try:
        protobuf = encode_protobuf(payload)
    except EncodeError:
        return
    assert protobuf is not None
    from_json, from_protobuf = decode_both(payload)
    repeated_absent = [field for field in ("fingerprint", "evidence_display") if payload.get(field) is None]
    if isinstance(from_json, DeadLetter) and from_json.reason == "missing_field" and repeated_absent:
        return
    if isinstance(from_json, Message):
        assert_same_message(from_json, from_protobuf)
        return
    assert isinstance(from_protobuf, DeadLetter)
    assert from_json.reason == from_protobuf.reason, (from_json.error, from_protobuf.error)
    assert from_json.project_id == from_protobuf.project_id


def test_protobuf_struct_integers_come_back_as_integers() -> None:
    payload = load("occurrence-with-event.json")
    from_protobuf = decode(raw(payload, PROTOBUF_CONTENT_TYPE)).payload
    assert from_protobuf.evidence_data == {"p95_before": 120, "p95_after": 900}
    assert all(type(value) is int for value in from_protobuf.evidence_data.values())


def test_encode_json_is_compact_and_decodes_back() -> None:
    payload = load("status-change-delete.json")
    data = encode_json(payload)
    assert b" " not in data
    assert decode(raw(payload)).data == data


def test_encode_dispatches_on_content_type() -> None:
    payload = load("occurrence-lookup.json")
    assert encode(payload) == encode_json(payload)
    assert encode(payload, PROTOBUF_CONTENT_TYPE) == encode_protobuf(payload)
    with pytest.raises(EncodeError, match="unsupported content type 'text/plain'"):
        encode(payload, "text/plain")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"payload_type": "alert"}, "payload_type 'alert' has no protobuf form"),
        ({"project_id": "1"}, "project_id must be a 64-bit integer, got '1'"),
        ({"project_id": 1 << 64}, "project_id must be a 64-bit integer"),
        ({"fingerprint": "abc"}, "fingerprint must be a list of strings"),
        ({"detection_time": True}, "detection_time must be epoch seconds or an ISO 8601 string"),
        ({"evidence_data": {"x": float("nan")}}, "evidence_data.x holds the non-finite number nan"),
        ({"event": {"tags": [["a"]]}}, r"event.tags\[0\] must be a pair of strings"),
        ({"is_buffered_spans": 1}, "is_buffered_spans must be a bool"),
    ],
)
def test_payloads_protobuf_cannot_carry_raise_encode_error_naming_the_field(
    payload: dict, error: str
) -> None:
    with pytest.raises(EncodeError, match=error):
        to_proto(payload)


def test_null_fields_are_left_out_of_protobuf() -> None:
    proto = to_proto({"payload_type": "status_change", "new_substatus": None, "project_id": 1})
    assert not proto.status_change.HasField("new_substatus")
    assert proto.status_change.HasField("project_id")


@given(st.sampled_from(SAMPLES))
def test_raw_message_sets_the_content_type_attribute(sample: str) -> None:
    delivered = raw(load(sample), PROTOBUF_CONTENT_TYPE)
    assert delivered.attributes == {"content_type": PROTOBUF_CONTENT_TYPE}
    assert (delivered.message_id, delivered.message_time) == (MESSAGE_ID, MESSAGE_TIME)
