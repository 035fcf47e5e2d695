"""The limits decoding enforces (docs/limits.md), each on both sides: at the limit accepted, past it refused.

Lengths are UTF-8 bytes, so each is also tested with multi-byte characters. What happens to each message
after decoding, with the real encoders and row builders, is tested in ``tests/hostile``.
"""

from __future__ import annotations

import pytest

from tests.decode.payloads import (
    dead_letter,
    decoded,
    message,
    name_of,
    nested_dict,
    status_change,
    with_event,
)
from transforms.core import limits, metrics, reasons
from transforms.core.decode import check_max_bytes, decode, parse_time
from transforms.core.encode import encode_json
from transforms.core.model import Message, RawMessage, to_rfc3339

# --- JSON nesting ------------------------------------------------------------------------------------------


def test_nesting_depth_counts_objects_and_arrays() -> None:
    assert limits.nesting_depth(1, 10) == 0
    assert limits.nesting_depth({}, 10) == 1
    assert limits.nesting_depth({"a": [1, {"b": []}]}, 10) == 4
    assert limits.nesting_depth(nested_dict(5000), 79) == 80  # stops past the limit, without recursing


def test_evidence_data_at_the_depth_limit_is_kept_and_one_level_deeper_is_invalid(encoding: str) -> None:
    if encoding != "application/json":
        pytest.skip("protobuf's parser refuses this nesting itself (see the next test)")
    depth = limits.MAX_JSON_FIELD_DEPTH
    assert message(with_event(evidence_data=nested_dict(depth))).payload.evidence_data == nested_dict(depth)
    failed = dead_letter(with_event(evidence_data=nested_dict(depth + 1)))
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error.startswith(f"evidence_data is nested more than {depth} levels deep")
    assert failed.project_id == 1


@pytest.mark.parametrize("field", ["sdk", "user", "request", "contexts"])
def test_event_objects_at_the_depth_limit_are_kept_and_deeper_ones_make_the_event_invalid(field: str) -> None:
    depth = limits.MAX_JSON_FIELD_DEPTH
    assert getattr(
        message(with_event(event={field: nested_dict(depth)})).payload.event, field
    ) == nested_dict(depth)
    failed = dead_letter(with_event(event={field: nested_dict(depth + 1)}))
    assert failed.reason == reasons.INVALID_EVENT
    assert failed.error.startswith(f"event.{field} is nested more than {depth} levels deep")


def test_protobuf_parser_refuses_nesting_below_our_depth_limit() -> None:
    """Decoding does not measure protobuf payloads' nesting (``_decode``): protobuf's own limit is lower."""
    depth = limits.MAX_JSON_FIELD_DEPTH // 2
    failed = dead_letter(with_event(evidence_data=nested_dict(depth)), "application/x-protobuf")
    assert failed.reason == reasons.UNDECODABLE


def test_a_deep_value_in_a_field_we_ignore_is_no_reason_to_refuse() -> None:
    assert isinstance(decoded(with_event(unknown_field=[nested_dict(200)])), Message)


# --- release and environment names (Sentry's limits: the name is removed, the occurrence kept) -------------


@pytest.mark.parametrize("char", ["a", "é", "😀"])
@pytest.mark.parametrize(
    ("field", "limit", "counter"),
    [
        ("release", limits.MAX_RELEASE_BYTES, metrics.EVENT_RELEASE_REMOVED),
        ("environment", limits.MAX_ENVIRONMENT_BYTES, metrics.EVENT_ENVIRONMENT_REMOVED),
    ],
)
def test_event_names_at_sentrys_limit_are_kept_and_longer_ones_removed(
    encoding: str, char: str, field: str, limit: int, counter: str
) -> None:
    at_limit = name_of(limit, char)
    removed: list[str] = []
    kept = decoded(with_event(event={field: at_limit}), encoding, removed=removed)
    assert getattr(kept.payload.event, field) == at_limit and removed == []
    past = name_of(limit + 1, char)
    longer = decoded(with_event(event={field: past}), encoding, removed=removed)
    assert isinstance(longer, Message)
    assert getattr(longer.payload.event, field) is None
    assert removed == [counter]


def test_both_names_removed_are_both_reported() -> None:
    removed: list[str] = []
    long_names = {"release": "r" * 201, "environment": "e" * 65}
    decoded(with_event(event=long_names), removed=removed)
    assert removed == [metrics.EVENT_RELEASE_REMOVED, metrics.EVENT_ENVIRONMENT_REMOVED]


# --- resolution version -------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["a", "é"])
def test_resolution_version_at_the_release_limit_is_kept_and_longer_is_invalid(
    encoding: str, char: str
) -> None:
    version = name_of(limits.MAX_RELEASE_BYTES, char)
    change = message(status_change(resolution={"type": "in_release", "version": version}), encoding)
    assert change.payload.resolution.version == version
    longer = name_of(limits.MAX_RELEASE_BYTES + 1, char)
    failed = dead_letter(status_change(resolution={"type": "in_release", "version": longer}), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == (
        f"resolution.version is {limits.MAX_RELEASE_BYTES + 1} bytes, more than the limit of "
        f"{limits.MAX_RELEASE_BYTES} (Sentry's limit of a release name)"
    )


# --- fingerprint parts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [with_event, status_change])
def test_fingerprint_parts_at_the_limit_are_kept_and_more_are_invalid(encoding: str, build) -> None:
    parts = [f"p{index}" for index in range(limits.MAX_FINGERPRINT_PARTS)]
    assert len(message(build(fingerprint=parts), encoding).payload.hashes) == limits.MAX_FINGERPRINT_PARTS
    failed = dead_letter(build(fingerprint=[*parts, "one more"]), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == (
        f"fingerprint has {limits.MAX_FINGERPRINT_PARTS + 1} parts, more than the limit of "
        f"{limits.MAX_FINGERPRINT_PARTS}"
    )


# --- times -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("0999-12-31T23:59:59.5Z", "0999-12-31T23:59:59.500000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T23:00:00-00:59", "9999-12-31T23:59:00Z"),
    ],
)
def test_times_within_what_a_spanner_timestamp_holds_are_kept_in_rfc3339(value: str, expected: str) -> None:
    assert to_rfc3339(parse_time(value)) == expected


@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59.999999-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:59:59+01:00"]
)
def test_times_whose_offset_takes_them_out_of_years_1_to_9999_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_time(value)
    failed = dead_letter(with_event(detection_time=value))
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error.startswith("detection_time is out of range for a timestamp (years 1 to 9999 in UTC)")
    assert dead_letter(with_event(event={"timestamp": value})).reason == reasons.INVALID_EVENT


# --- large messages: the JSON documents they become ----------------------------------------------------------


def numbers_in_evidence(count: int) -> RawMessage:
    """An occurrence whose evidence_data holds ``count`` numbers written ``1e15`` (19 bytes once stored)."""
    numbers = b"[" + b",".join([b"1e15"] * count) + b"]"
    data = encode_json(with_event(evidence_data={"numbers": "N"})).replace(b'"N"', numbers)
    return RawMessage("1", 0, data, {"content_type": "application/json"})


def test_a_message_at_the_size_ceiling_cannot_outgrow_spanners_json_limit() -> None:
    delivered = numbers_in_evidence((limits.MAX_PAYLOAD_BYTES_CEILING - 1000) // 5)
    assert len(delivered.data) <= limits.MAX_PAYLOAD_BYTES_CEILING
    accepted = decode(delivered, max_bytes=limits.MAX_PAYLOAD_BYTES_CEILING)
    assert isinstance(accepted, Message)
    assert 9_900_000 < len(encode_json(accepted.payload.evidence_data)) <= limits.SPANNER_MAX_JSON_BYTES


CONTROL = "\x01" * 1_700_000  # 1 byte a character in protobuf, 6 in JSON: 10.2 MB once stored


def test_evidence_data_that_would_be_stored_larger_than_spanners_json_limit_is_invalid() -> None:
    failed = dead_letter(
        with_event(evidence_data={"text": CONTROL}),
        "application/x-protobuf",
        max_bytes=limits.MAX_PAYLOAD_BYTES_CEILING,
    )
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == (
        "evidence_data would be stored as 10200011 bytes of JSON, more than the limit of "
        f"{limits.SPANNER_MAX_JSON_BYTES} (Spanner's JSON documents)"
    )
    kept = {"text": CONTROL[:1_600_000]}
    assert isinstance(
        decoded(
            with_event(evidence_data=kept),
            "application/x-protobuf",
            max_bytes=limits.MAX_PAYLOAD_BYTES_CEILING,
        ),
        Message,
    )


def test_a_title_written_twice_in_groups_data_is_measured() -> None:
    """Groups.Data holds the title twice."""
    failed = dead_letter(
        with_event(issue_title=CONTROL[:900_000]),
        "application/x-protobuf",
        max_bytes=limits.MAX_PAYLOAD_BYTES_CEILING,
    )
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error.startswith("issue_title, subtitle and culprit would be stored as 108")


def test_an_event_that_would_be_stored_larger_than_spanners_json_limit_is_invalid() -> None:
    event = {"contexts": {"text": CONTROL}}
    failed = dead_letter(
        with_event(event=event), "application/x-protobuf", max_bytes=limits.MAX_PAYLOAD_BYTES_CEILING
    )
    assert failed.reason == reasons.INVALID_EVENT
    assert failed.error.startswith("the event is 102")


# --- the size limit itself -----------------------------------------------------------------------------------


def test_max_bytes_up_to_what_a_string_cell_holds_is_accepted_and_more_refused() -> None:
    check_max_bytes(limits.MAX_PAYLOAD_BYTES_CEILING)
    with pytest.raises(
        ValueError, match=r"2621441 bytes is more than the pipeline can carry: at most 2621440"
    ):
        check_max_bytes(limits.MAX_PAYLOAD_BYTES_CEILING + 1)
    with pytest.raises(ValueError, match="must be positive"):
        check_max_bytes(0)


@pytest.mark.parametrize("char", ["a", "é", "😀"])
def test_size_limit_counts_the_bytes_as_published_non_ascii_as_utf8(char: str) -> None:
    limit = 1 << 20
    payload = with_event(issue_title="")
    room = limit - len(encode_json(payload))
    exact = encode_json(with_event(issue_title=name_of(room, char)))
    assert len(exact) == limit
    assert isinstance(decode(RawMessage("1", 0, exact, {}), max_bytes=limit), Message)
    over = encode_json(with_event(issue_title=name_of(room + 1, char)))
    assert decode(RawMessage("1", 0, over, {}), max_bytes=limit).reason == reasons.OVERSIZED


def test_size_limit_counts_whitespace() -> None:
    limit = 1 << 20
    compact = encode_json(with_event())
    padded = compact[:-1] + b" " * (limit - len(compact)) + b"}"
    assert isinstance(decode(RawMessage("1", 0, padded, {}), max_bytes=limit), Message)
    failed = decode(RawMessage("1", 0, padded + b" ", {}), max_bytes=limit)
    assert failed.reason == reasons.OVERSIZED
    assert failed.error == f"message is {limit + 1} bytes, more than the limit of {limit}"
