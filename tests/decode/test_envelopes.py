"""Archive lines (rule 8, E15) and dead-letter records (E11)."""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.decode.payloads import FIXTURES, PROTOBUF_CONTENT_TYPE, lookup, raw, status_change
from transforms.core import reasons
from transforms.core.decode import decode
from transforms.core.envelopes import (
    DEAD_LETTER_ATTRIBUTES,
    MAX_ATTRIBUTE_BYTES,
    dead_letter_to_line,
    dead_letter_to_pubsub,
    line_id,
    parse_archive_line,
)
from transforms.core.model import DeadLetter, Message, RawMessage, from_datetime

ARCHIVE = FIXTURES / "archive-envelopes.jsonl"


def parse(value: object, line_no: int = 1) -> RawMessage | DeadLetter:
    line = value if isinstance(value, bytes) else orjson.dumps(value)
    return parse_archive_line(line + b"\n", line_no, "archive.jsonl")


def micros(text: str) -> int:
    from datetime import datetime

    return from_datetime(datetime.fromisoformat(text))


# --- archive lines -----------------------------------------------------------------------------------------


def test_sample_archive_reads_as_three_messages_and_one_undecodable_dead_letter() -> None:
    lines = ARCHIVE.read_bytes().splitlines()
    parsed = [parse_archive_line(line, number, str(ARCHIVE)) for number, line in enumerate(lines, 1)]
    assert [item.message_id for item in parsed] == ["1001", "1002", "1003", "1004"]
    assert all(isinstance(item, RawMessage) for item in parsed)
    assert parsed[0].message_time == micros("2026-05-28T20:26:42+00:00")
    assert parsed[0].attributes == {"content_type": "application/json"}
    decoded = [decode(item) for item in parsed]
    assert [type(item).__name__ for item in decoded] == ["Message", "Message", "Message", "DeadLetter"]
    assert decoded[3].reason == reasons.UNDECODABLE
    assert decoded[3].data == b'"not a payload"'


def test_envelope_data_value_becomes_its_compact_json_bytes() -> None:
    payload = lookup()
    spaced = orjson.dumps(
        {"message_id": "7", "publish_time": "2026-05-28T20:30:01Z", "data": payload},
        option=orjson.OPT_INDENT_2,
    )
    parsed = parse_archive_line(spaced.replace(b"\n", b" "), 1, "a")
    assert parsed.data == orjson.dumps(payload)


def test_size_limit_applies_to_the_compact_encoding_of_envelope_data() -> None:
    payload = lookup()
    compact = orjson.dumps(payload)
    parsed = parse({"message_id": "7", "publish_time": "2026-05-28T20:30:01Z", "data": payload})
    assert isinstance(decode(parsed, max_bytes=len(compact)), Message)
    assert decode(parsed, max_bytes=len(compact) - 1).reason == reasons.OVERSIZED


def test_envelope_data_b64_carries_exact_bytes_such_as_protobuf() -> None:
    protobuf = raw(lookup(), PROTOBUF_CONTENT_TYPE)
    line = {
        "message_id": "9",
        "publish_time": "2026-05-28T20:30:01.250Z",
        "attributes": dict(protobuf.attributes),
        "data_b64": base64.b64encode(protobuf.data).decode(),
    }
    parsed = parse(line)
    assert parsed == RawMessage(
        "9", micros("2026-05-28T20:30:01.250+00:00"), protobuf.data, dict(protobuf.attributes)
    )
    assert isinstance(decode(parsed), Message)


def test_raw_occurrence_line_takes_its_id_and_detection_time() -> None:
    payload = lookup()
    parsed = parse(payload)
    assert parsed == RawMessage(payload["id"], micros("2026-05-28T20:30:00+00:00"), orjson.dumps(payload), {})


def test_raw_status_change_line_takes_its_timestamp_field() -> None:
    payload = status_change(timestamp=1_780_003_600.5)
    parsed = parse(payload)
    assert parsed.message_time == 1_780_003_600_500_000
    assert isinstance(decode(parsed), Message)  # decode ignores the extra field


def test_raw_payload_without_id_gets_a_stable_hash_of_the_line() -> None:
    payload = status_change(id=None, timestamp="2026-05-28T21:00:00Z")
    first, second = parse(payload), parse(payload)
    assert first.message_id == second.message_id == line_id(orjson.dumps(payload))
    assert len(first.message_id) == 32
    assert decode(first).payload.id == first.message_id


@pytest.mark.parametrize(
    ("payload", "field"), [(lookup(detection_time=None), "detection_time"), (status_change(), "timestamp")]
)
def test_raw_payload_without_a_time_is_missing_field_at_stage_read(payload: dict, field: str) -> None:
    failed = parse(payload, line_no=12)
    assert isinstance(failed, DeadLetter)
    assert failed.reason == reasons.MISSING_FIELD
    assert failed.stage == reasons.STAGE_READ
    assert failed.error == (
        f"archive.jsonl:12: no message time: the line has no envelope publish_time and the payload has no {field}"
    )


def test_raw_payload_with_unreadable_time_is_invalid_field_at_stage_read() -> None:
    failed = parse(lookup(detection_time="soon"))
    assert failed.reason == reasons.INVALID_FIELD
    assert "detection_time" in failed.error


def test_envelope_without_publish_time_takes_the_payload_time() -> None:
    payload = lookup()
    parsed = parse({"message_id": "5", "data": payload})
    assert parsed.message_time == micros("2026-05-28T20:30:00+00:00")
    assert parsed.message_id == "5"


def test_envelope_without_message_id_takes_the_payload_id() -> None:
    parsed = parse({"publish_time": "2026-05-28T20:30:01Z", "data": lookup()})
    assert parsed.message_id == lookup()["id"]


def test_envelope_with_integer_message_id_is_read_as_text() -> None:
    assert parse({"message_id": 17, "publish_time": "2026-05-28T20:30:01Z", "data": {}}).message_id == "17"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"this is not json", "archive.jsonl:1: the line is not JSON: "),
        (b"", "archive.jsonl:1: the line is not JSON: "),
        (b"\xff\xfe", "archive.jsonl:1: the line is not JSON: "),
        (
            b"[1, 2]",
            "archive.jsonl:1: the line must be a JSON object (an envelope or a payload), got JSON array",
        ),
        (b'{"data": 1, "data_b64": "AA=="}', "archive.jsonl:1: the envelope has both data and data_b64"),
        (
            b'{"data_b64": "!!!", "publish_time": "2026-01-01T00:00:00Z"}',
            "archive.jsonl:1: data_b64 is not valid base64",
        ),
        (b'{"data_b64": 5}', "archive.jsonl:1: data_b64 must be a base64 string, got JSON number"),
        (
            b'{"data": {}, "attributes": {"a": 1}}',
            "archive.jsonl:1: attributes must be an object whose values",
        ),
        (b'{"data": {}, "attributes": ["a"]}', "archive.jsonl:1: attributes must be an object whose values"),
        (b'{"data": {}, "message_id": ""}', "archive.jsonl:1: message_id must be a non-empty string"),
        (
            b'{"data": {}, "publish_time": "noon"}',
            "archive.jsonl:1: publish_time is not an ISO 8601 date-time",
        ),
    ],
)
def test_unreadable_lines_are_undecodable_at_stage_read_with_the_line_as_data(
    line: bytes, error: str
) -> None:
    failed = parse_archive_line(line, 1, "archive.jsonl")
    assert isinstance(failed, DeadLetter)
    assert failed.reason == reasons.UNDECODABLE
    assert failed.stage == reasons.STAGE_READ
    assert failed.error.startswith(error)
    assert failed.data == line.strip()
    assert failed.message_id == line_id(line.strip())
    assert failed.message_time == 0


def test_envelope_with_neither_publish_time_nor_payload_time_is_missing_field() -> None:
    failed = parse({"message_id": "3", "data": "not a payload"})
    assert failed.reason == reasons.MISSING_FIELD
    assert "no publish_time" in failed.error


def test_whitespace_and_crlf_around_a_line_are_ignored() -> None:
    line = ARCHIVE.read_bytes().splitlines()[2]
    assert parse_archive_line(b"  " + line + b"\r\n", 3, "a") == parse_archive_line(line, 3, "a")


# --- dead letters ------------------------------------------------------------------------------------------


def sample_dead_letters() -> list[DeadLetter]:
    """Dead letters of every stage, with JSON, non-compact JSON, protobuf and non-UTF-8 bytes."""
    letters = []
    for item in (
        parse_archive_line(line, n, "a") for n, line in enumerate(ARCHIVE.read_bytes().splitlines(), 1)
    ):
        result = decode(item, max_bytes=400)
        if isinstance(result, DeadLetter):
            letters.append(result)
    letters.append(decode(raw(lookup(level="loud"), PROTOBUF_CONTENT_TYPE, attributes={"origin": "x"})))
    letters.append(decode(RawMessage("m-2", 5, b'{ "spaced": true }', {})))
    letters.append(decode(RawMessage("m-3", 1_780_000_000_123_456, b"\xff\x00binary", {"k": "v"})))
    letters.append(parse_archive_line(b"not json at all", 4, "b"))
    assert {letter.reason for letter in letters} >= {
        reasons.OVERSIZED,
        reasons.UNDECODABLE,
        reasons.INVALID_FIELD,
    }
    return letters


@pytest.mark.parametrize(
    "letter", sample_dead_letters(), ids=lambda letter: f"{letter.reason}-{letter.message_id}"
)
def test_dead_letter_line_reads_back_as_the_same_message(letter: DeadLetter) -> None:
    line = dead_letter_to_line(letter)
    assert b"\n" not in line
    replayed = parse_archive_line(line + b"\n", 1, "dead-letters.jsonl")
    assert replayed == RawMessage(letter.message_id, letter.message_time, letter.data, letter.attributes)
    record = orjson.loads(line)
    assert (record["reason"], record["error"], record["stage"]) == (letter.reason, letter.error, letter.stage)


def test_dead_letter_line_writes_compact_json_as_a_value_and_other_bytes_as_base64() -> None:
    as_value = orjson.loads(dead_letter_to_line(decode(raw(lookup(level="loud")))))
    assert as_value["data"]["level"] == "loud" and "data_b64" not in as_value
    spaced = orjson.loads(dead_letter_to_line(decode(RawMessage("m", 0, b'{ "a": 1 }', {}))))
    assert base64.b64decode(spaced["data_b64"]) == b'{ "a": 1 }' and "data" not in spaced


def test_dead_letter_line_is_an_archive_envelope_with_reason_error_and_stage() -> None:
    letter = decode(raw(lookup(level="loud"), message_id="77", message_time=1_780_000_000_500_000))
    record = orjson.loads(dead_letter_to_line(letter))
    assert set(record) == {"message_id", "publish_time", "attributes", "data", "reason", "error", "stage"}
    assert record["message_id"] == "77"
    assert record["publish_time"] == "2026-05-28T20:26:40.500000Z"


def test_dead_letter_on_pubsub_keeps_bytes_and_adds_the_five_attributes() -> None:
    letter = decode(raw(lookup(level="loud"), attributes={"origin": "x"}, message_time=1_780_000_000_000_000))
    data, attributes = dead_letter_to_pubsub(letter)
    assert data == letter.data
    assert attributes == {
        "content_type": "application/json",
        "origin": "x",
        "dead_letter_reason": "invalid_field",
        "dead_letter_error": letter.error,
        "dead_letter_stage": "decode",
        "original_message_id": letter.message_id,
        "original_publish_time": "2026-05-28T20:26:40Z",
    }


def test_replayed_dead_letter_decodes_like_the_original_and_ignores_dead_letter_attributes() -> None:
    original = raw(lookup(), message_id="1")
    first = decode(original, max_bytes=10)
    data, attributes = dead_letter_to_pubsub(first)
    replayed = decode(RawMessage("2", 99, data, attributes))
    assert isinstance(replayed, Message)
    assert replayed.payload == decode(original).payload


def test_dead_letter_attributes_describe_only_the_latest_failure() -> None:
    first = decode(raw(lookup(level="loud"), message_id="1"))
    data, attributes = dead_letter_to_pubsub(first)
    second = decode(RawMessage("2", 5_000_000, data, attributes), max_bytes=10)
    _, again = dead_letter_to_pubsub(second)
    assert again["dead_letter_reason"] == reasons.OVERSIZED
    assert again["original_message_id"] == "2"
    assert again["original_publish_time"] == "1970-01-01T00:00:05Z"
    record = orjson.loads(dead_letter_to_line(second))
    assert not DEAD_LETTER_ATTRIBUTES & set(record["attributes"])
    assert record["reason"] == reasons.OVERSIZED


def test_long_dead_letter_error_is_cut_to_fit_a_pubsub_attribute() -> None:
    letter = DeadLetter("1", 0, b"{}", {}, reasons.UNDECODABLE, "é" * 2000, reasons.STAGE_DECODE)
    _, attributes = dead_letter_to_pubsub(letter)
    assert len(attributes["dead_letter_error"].encode()) <= MAX_ATTRIBUTE_BYTES
    assert attributes["dead_letter_error"].endswith("...")
    assert orjson.loads(dead_letter_to_line(letter))["error"] == "é" * 2000


def test_text_lines_read_like_their_utf8_bytes() -> None:
    for line in ARCHIVE.read_bytes().splitlines():
        assert parse_archive_line(line.decode(), 1, "a") == parse_archive_line(line, 1, "a")


def test_text_line_with_a_lone_surrogate_reads_with_a_replacement_and_never_raises() -> None:
    parsed = parse_archive_line('{"message_id": "1", "publish_time": 0, "data": "\ud800"}', 1, "a")
    assert parsed == RawMessage("1", 0, b'"?"', {})
    assert decode(parsed).reason == reasons.UNDECODABLE


# --- the size limit on archived messages (E15): the bytes as published or archived ------------------------

LIMIT = 1 << 20
ENVELOPE = {"message_id": "7", "publish_time": "2026-05-28T20:30:01Z"}


def payload_of_size(size: int, *, spaced: bool = False, char: str = "a") -> bytes:
    """A valid occurrence of exactly ``size`` bytes: compact JSON, or (``spaced``) as Python's json writes it."""
    import json

    from tests.decode.payloads import with_event

    def encode(title: str) -> bytes:
        payload = with_event(issue_title=title)
        return json.dumps(payload).encode() if spaced else orjson.dumps(payload)

    room = size - len(encode(""))
    width = len(char.encode())
    data = encode(char * (room // width) + "a" * (room % width))
    assert len(data) == size
    return data


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1])
def test_a_raw_line_is_measured_as_written_whitespace_included(size: int) -> None:
    line = payload_of_size(size, spaced=True)
    parsed = parse(line)
    assert parsed.data == line
    result = decode(parsed, max_bytes=LIMIT)
    assert isinstance(result, Message) if size == LIMIT else result.reason == reasons.OVERSIZED


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1])
def test_data_b64_is_measured_on_its_bytes_whitespace_included(size: int) -> None:
    data = payload_of_size(size, spaced=True)
    parsed = parse({**ENVELOPE, "data_b64": base64.b64encode(data).decode()})
    assert parsed.data == data
    result = decode(parsed, max_bytes=LIMIT)
    assert isinstance(result, Message) if size == LIMIT else result.reason == reasons.OVERSIZED


@pytest.mark.parametrize("char", ["a", "é", "😀"])
@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1])
def test_a_data_value_is_measured_on_its_compact_utf8_encoding_not_on_how_the_line_writes_it(
    size: int, char: str
) -> None:
    """Written with spaces and with non-ASCII escaped as \\uXXXX (Python's json), the message is still the
    compact UTF-8 encoding: what the limit measures."""
    import json

    compact = payload_of_size(size, char=char)
    line = json.dumps({**ENVELOPE, "data": orjson.loads(compact)}).encode()
    parsed = parse(line)
    assert parsed.data == compact
    result = decode(parsed, max_bytes=LIMIT)
    assert isinstance(result, Message) if size == LIMIT else result.reason == reasons.OVERSIZED


def test_an_archive_message_id_longer_than_a_dead_letter_attribute_holds_makes_the_line_unreadable() -> None:
    data_b64 = base64.b64encode(orjson.dumps(lookup())).decode()
    kept = parse({**ENVELOPE, "message_id": "m" * 1024, "data_b64": data_b64})
    assert isinstance(kept, RawMessage) and kept.message_id == "m" * 1024
    line = orjson.dumps({**ENVELOPE, "message_id": "é" * 513, "data_b64": data_b64})
    failed = parse(line)
    assert isinstance(failed, DeadLetter) and failed.reason == reasons.UNDECODABLE
    assert failed.error == "archive.jsonl:1: message_id is 1026 bytes, more than the limit of 1024"
    assert failed.message_id == line_id(line)


def test_a_raw_payload_id_too_long_for_a_message_id_leaves_the_line_its_hash() -> None:
    line = orjson.dumps({**status_change(), "id": "i" * 1025, "timestamp": "2026-05-28T20:30:01Z"})
    parsed = parse(line)
    assert isinstance(parsed, RawMessage) and parsed.message_id == line_id(line)


@pytest.mark.parametrize("publish_time", ["9999-12-31T23:59:59-01:00", -62_135_596_801])
def test_an_envelope_time_outside_what_a_spanner_timestamp_holds_makes_the_line_unreadable(
    publish_time,
) -> None:
    failed = parse({**ENVELOPE, "publish_time": publish_time, "data": lookup()})
    assert isinstance(failed, DeadLetter) and failed.reason == reasons.UNDECODABLE
    assert "out of range" in failed.error
