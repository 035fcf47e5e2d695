"""Messages at and past each limit, through decoding and everything after it (``downstream``), no server.

Each limit is tested on both sides: at the limit the message is applied and every row it becomes is one real
Spanner accepts; past it, decoding turns it into a dead letter that names the field and the limit (or, for a
release or environment name, drops the name and keeps the occurrence, as Sentry's Relay does).
"""

from __future__ import annotations

import pytest

from tests.decode.payloads import raw, status_change, with_event
from tests.hostile.downstream import after_decoding
from transforms.core import limits, reasons
from transforms.core.decode import decode
from transforms.core.encode import encode_json
from transforms.core.model import DeadLetter, Message, RawMessage


def nested_json(depth: int) -> bytes:
    """A JSON object nested ``depth`` levels (written as text: orjson cannot write more than 254)."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def with_json_value(payload: dict, placeholder: str, depth: int) -> RawMessage:
    """The payload's bytes with the JSON string ``placeholder`` replaced by an object nested ``depth`` deep."""
    data = encode_json(payload).replace(f'"{placeholder}"'.encode(), nested_json(depth))
    return RawMessage("1001", 1_780_000_002_000_000, data, {"content_type": "application/json"})


def decoded_and_after(delivered: RawMessage) -> Message | DeadLetter:
    decoded = decode(delivered)
    assert after_decoding(decoded) == []
    return decoded


@pytest.mark.parametrize("depth", [256, 300, 1023])
def test_evidence_data_nested_past_what_spanner_and_our_encoders_take_is_a_dead_letter(depth: int) -> None:
    decoded = decoded_and_after(with_json_value(with_event(evidence_data="DEEP"), "DEEP", depth))
    assert isinstance(decoded, DeadLetter)
    assert decoded.reason == reasons.INVALID_FIELD
    assert "evidence_data" in decoded.error and str(limits.MAX_JSON_FIELD_DEPTH) in decoded.error


@pytest.mark.parametrize("depth", [limits.MAX_JSON_FIELD_DEPTH, limits.MAX_JSON_FIELD_DEPTH + 1])
def test_evidence_data_at_the_depth_limit_is_stored_within_spanners_json_nesting(depth: int) -> None:
    decoded = decoded_and_after(with_json_value(with_event(evidence_data="DEEP", type=6001), "DEEP", depth))
    assert isinstance(decoded, Message) == (depth <= limits.MAX_JSON_FIELD_DEPTH)


@pytest.mark.parametrize("field", ["environment", "release"])
def test_a_name_longer_than_a_spanner_key_holds_is_removed_before_it_becomes_a_key(field: str) -> None:
    """GroupEnvironments, Releases and GroupReleases have the name in their primary key (8 KiB at most)."""
    decoded = decoded_and_after(raw(with_event(event={field: "x" * 100_000})))
    assert isinstance(decoded, Message)
    assert getattr(decoded.payload.event, field) is None


def test_a_resolution_version_longer_than_a_release_name_is_a_dead_letter() -> None:
    payload = status_change(resolution={"type": "in_release", "version": "v" * 100_000})
    decoded = decoded_and_after(raw(payload))
    assert isinstance(decoded, DeadLetter) and decoded.reason == reasons.INVALID_FIELD


def test_so_many_fingerprint_parts_that_their_hashes_outgrow_a_cell_is_a_dead_letter() -> None:
    """400,000 parts fit a message of 2.5 MiB; their 32-byte hashes would not fit Occurrences.Hashes."""
    delivered = raw(with_event(fingerprint=[str(index % 10) for index in range(400_000)]))
    decoded = decode(delivered, max_bytes=limits.MAX_PAYLOAD_BYTES_CEILING)
    assert after_decoding(decoded) == []
    assert isinstance(decoded, DeadLetter) and decoded.reason == reasons.INVALID_FIELD


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59.999999-01:00",  # past year 9999 in UTC: no datetime, no Spanner TIMESTAMP
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    ],
)
def test_a_time_outside_what_spanner_holds_is_a_dead_letter(value: str) -> None:
    decoded = decoded_and_after(raw(with_event(event={"timestamp": value})))
    assert isinstance(decoded, DeadLetter) and decoded.reason == reasons.INVALID_EVENT


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "0500-06-01T12:00:00Z", -50_000_000_000])
def test_a_time_before_year_1000_is_written_as_an_rfc3339_timestamp(value) -> None:
    decoded = decoded_and_after(raw(with_event(detection_time=value, event={"timestamp": value})))
    assert isinstance(decoded, Message)
