"""No input makes decoding or archive reading raise: every failure is a value (rule 1.5)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.decode import strategies
from tests.decode.payloads import ENCODINGS
from transforms.core import reasons
from transforms.core.decode import CONTENT_TYPE_ATTRIBUTE, decode
from transforms.core.encode import EncodeError, encode_protobuf
from transforms.core.envelopes import dead_letter_to_line, dead_letter_to_pubsub, parse_archive_line
from transforms.core.model import DeadLetter, Message, RawMessage
from transforms.core.projects import check_project

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
content_types = st.sampled_from([*ENCODINGS, "", "text/plain", "application/json; charset=utf-8"])


def assert_decodes_to_a_value(delivered: RawMessage) -> Message | DeadLetter:
    result = decode(delivered)
    assert isinstance(result, Message | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.reason in reasons.PRECEDENCE
        assert result.error
        assert not result.error.startswith("unexpected error"), result.error  # the guard is a last resort
        assert result.data == delivered.data and result.attributes == delivered.attributes
        assert (result.project_id is not None) or not result.after_project_check
        # every dead letter can be written in both forms
        dead_letter_to_pubsub(result)
        dead_letter_to_line(result)
    assert isinstance(check_project(result, {}), Message | DeadLetter)
    return result


@SETTINGS
@given(st.binary(max_size=400), content_types)
def test_random_bytes_never_raise(data: bytes, content_type: str) -> None:
    assert_decodes_to_a_value(RawMessage("1", 0, data, {CONTENT_TYPE_ATTRIBUTE: content_type}))


@SETTINGS
@given(strategies.json_values(exact_ints=False))
def test_random_json_values_never_raise(value: Any) -> None:
    try:
        data = orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits
        data = str(value).encode()
    result = assert_decodes_to_a_value(RawMessage("1", 0, data, {}))
    if not isinstance(value, dict):
        assert result.reason == reasons.UNDECODABLE


@SETTINGS
@given(strategies.mutated_payloads(exact_ints=False))
def test_mutated_payloads_never_raise_in_either_encoding(payload: dict[str, Any]) -> None:
    try:
        data = orjson.dumps(payload)
    except TypeError:
        return
    assert_decodes_to_a_value(RawMessage("1", 0, data, {}))
    try:
        protobuf = encode_protobuf(payload)
    except EncodeError:
        return
    assert_decodes_to_a_value(RawMessage("1", 0, protobuf, {CONTENT_TYPE_ATTRIBUTE: ENCODINGS[1]}))


@st.composite
def mutated_protobuf(draw: st.DrawFn) -> bytes:
    """Valid protobuf bytes with some bytes flipped, inserted or removed."""
    while True:
        try:
            data = bytearray(encode_protobuf(draw(strategies.valid_payloads)))
            break
        except EncodeError:  # pragma: no cover - valid payloads are always encodable
            continue
    for _ in range(draw(st.integers(1, 5))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif data:
            del data[position]
    return bytes(data)


@SETTINGS
@given(mutated_protobuf())
def test_mutated_protobuf_bytes_never_raise(data: bytes) -> None:
    assert_decodes_to_a_value(RawMessage("1", 0, data, {CONTENT_TYPE_ATTRIBUTE: ENCODINGS[1]}))


@SETTINGS
@given(st.binary(max_size=300) | st.text(max_size=100))
def test_random_archive_lines_never_raise(line: bytes | str) -> None:
    result = parse_archive_line(line, 1, "random.jsonl")
    assert isinstance(result, RawMessage | DeadLetter)
    if isinstance(result, RawMessage):
        assert_decodes_to_a_value(result)


envelope_fields = st.fixed_dictionaries(
    {},
    optional={
        "message_id": strategies.json_values(),
        "publish_time": st.sampled_from(["2026-05-28T20:26:42Z", "bad", 1_780_000_000, None])
        | strategies.json_values(),
        "attributes": st.dictionaries(st.text(max_size=5), st.text(max_size=5)) | strategies.json_values(),
        "data": strategies.valid_payloads | strategies.mutated_payloads() | strategies.json_values(),
        "data_b64": st.binary(max_size=50).map(lambda b: base64.b64encode(b).decode())
        | strategies.json_values(),
    },
)


@SETTINGS
@given(envelope_fields | strategies.mutated_payloads() | strategies.valid_payloads)
def test_random_envelopes_and_raw_payload_lines_never_raise(value: dict[str, Any]) -> None:
    try:
        line = orjson.dumps(value)
    except TypeError:
        return
    result = parse_archive_line(line, 1, "random.jsonl")
    assert isinstance(result, RawMessage | DeadLetter)
    if isinstance(result, RawMessage):
        assert_decodes_to_a_value(result)
    else:
        assert result.stage == reasons.STAGE_READ
        replayed = parse_archive_line(dead_letter_to_line(result), 1, "dead.jsonl")
        assert isinstance(replayed, RawMessage) and replayed.data == result.data


@SETTINGS
@given(strategies.mutated_payloads(), st.sampled_from(ENCODINGS))
def test_every_dead_letter_line_reads_back_as_its_message(payload: dict[str, Any], content_type: str) -> None:
    try:
        data = orjson.dumps(payload) if content_type == ENCODINGS[0] else encode_protobuf(payload)
    except (TypeError, EncodeError):
        return
    result = decode(RawMessage("7", 1_780_000_000_000_001, data, {CONTENT_TYPE_ATTRIBUTE: content_type}))
    if isinstance(result, DeadLetter):
        replayed = parse_archive_line(dead_letter_to_line(result), 1, "dead.jsonl")
        assert replayed == RawMessage(result.message_id, result.message_time, result.data, result.attributes)


def test_unexpected_exception_is_caught_and_reported_as_undecodable() -> None:
    broken = RawMessage("1", 0, None, {})  # type: ignore[arg-type]  # not bytes: len() fails inside decode
    result = decode(broken)
    assert isinstance(result, DeadLetter)
    assert result.reason == reasons.UNDECODABLE
    assert result.error.startswith("unexpected error while decoding: TypeError: ")
