"""No input makes decoding or archive reading raise: every failure is a value (rule 1.5)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.decode import payloads, strategies
from tests.decode.payloads import ENCODINGS
from transforms.core import reasons
from transforms.core.decode import CONTENT_TYPE_ATTRIBUTE, Rejected, decode
from transforms.core.encode import EncodeError, encode_protobuf
from transforms.core.envelopes import dead_letter_to_line, dead_letter_to_pubsub, parse_archive_line
from transforms.core.model import DeadLetter, Message, Occurrence, RawMessage
from transforms.core.occurrence_payload import occurrence_from_payload, valid_occurrence
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


def _slow_occurrence(payload: dict[str, Any]) -> Occurrence | None:
    try:
        return occurrence_from_payload(payload)
    except Rejected:
        return None


def _assert_same_decision(payload: dict[str, Any]) -> None:
    """The fast path (``valid_occurrence``) accepts what the field-by-field checks accept, and only that, and
    builds the same ``Occurrence``."""
    fast = valid_occurrence(payload)
    slow = _slow_occurrence(payload)
    if fast is not None:
        assert fast == slow, payload
    assert (fast is None) == (slow is None), (
        payload
    )  # and it takes every valid occurrence, not only the usual


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategies.occurrences() | strategies.mutated_payloads(exact_ints=False))
def test_the_fast_path_decides_as_the_checks_on_random_payloads(payload: dict[str, Any]) -> None:
    try:  # through JSON, as decoding sees payloads (a mutation may hold integers JSON cannot carry)
        payload = orjson.loads(orjson.dumps(payload))
    except TypeError:
        return
    if payload.get("payload_type") in (None, "occurrence"):
        _assert_same_decision(payload)


# Values at the edges of the checks (empty, zero, wrong JSON type, just too long, out of range).
EDGE_VALUES = [
    None, "", " ", "x", "0" * 32, "f" * 31, "info", "fatal", 0, -1, 1, 25, 26, 1.5, -0.0, 1e300,
    (1 << 63) - 1, 1 << 63, True, False, [], [""], ["a", ""], ["a"], [["a", "b"]], [["a", "b", "c"]],
    [["a", 1]], [{"name": "a", "value": "b", "important": True}], [{"name": "a", "value": "b"}], {},
    {"a": "b"}, {"a": 1}, "x" * 64, "x" * 65, "x" * 200, "x" * 201, "é" * 33, "2026-05-28T20:26:42Z", "2026-05-28T20:26:42+02:00",
    "1780000000", "not a time", 1_780_000_000, "00000000-0000-0000-0000-000000000000",
]  # fmt: skip
OCCURRENCE_FIELDS = [
    "id", "project_id", "fingerprint", "issue_title", "subtitle", "type", "detection_time", "evidence_display",
    "event_id", "event", "level", "culprit", "resource_id", "assignee", "evidence_data", "priority",
    "initial_issue_priority", "is_buffered_spans",
]  # fmt: skip
EVENT_FIELDS = [
    "event_id", "project_id", "platform", "timestamp", "received", "tags", "release", "environment", "dist",
    "transaction", "server_name", "trace_id", "sdk", "user", "request", "contexts",
]  # fmt: skip


def test_the_fast_path_decides_as_the_checks_for_every_field_at_its_edges() -> None:
    """Every field of an occurrence and of its event removed, or set to each edge value in turn."""
    for base in (payloads.with_event(), payloads.lookup()):
        for field in OCCURRENCE_FIELDS:
            _assert_same_decision({key: value for key, value in base.items() if key != field})
            for value in EDGE_VALUES:
                _assert_same_decision(orjson.loads(orjson.dumps({**base, field: value})))
    base = payloads.with_event()
    for field in EVENT_FIELDS:
        _assert_same_decision({**base, "event": {k: v for k, v in base["event"].items() if k != field}})
        for value in EDGE_VALUES:
            _assert_same_decision(
                orjson.loads(orjson.dumps({**base, "event": {**base["event"], field: value}}))
            )


def test_the_fast_path_takes_the_usual_occurrences_and_leaves_errors_to_the_checks() -> None:
    for payload in (payloads.with_event(), payloads.lookup()):
        assert valid_occurrence(payload) is not None
        assert valid_occurrence(payload) == occurrence_from_payload(payload)
    payload = payloads.with_event()
    for field, value in [("level", "loud"), ("fingerprint", []), ("project_id", 0), ("event_id", "x")]:
        broken = {**payload, field: value}
        assert valid_occurrence(broken) is None
        result = decode(RawMessage("1", 0, orjson.dumps(broken), {}))
        assert isinstance(result, DeadLetter) and result.reason == reasons.INVALID_FIELD
