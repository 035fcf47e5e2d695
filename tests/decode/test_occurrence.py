"""Occurrence payloads (rule 1.2, E2, E14): what is accepted, how it is normalised, what is refused."""

from __future__ import annotations

import hashlib

import pytest

from tests.decode.payloads import DELETE, MESSAGE_ID, MESSAGE_TIME, dead_letter, lookup, message, with_event
from transforms.core import reasons
from transforms.core.model import EvidenceItem, Occurrence

UUID_HEX = "6a4f2c0e9d3b4f7f8e1a2b3c4d5e6f70"
UUID_DASHED_UPPER = "6A4F2C0E-9D3B-4F7F-8E1A-2B3C4D5E6F70"
EVENT_ID = "0c6d75ac396941e0bc4b33c2ff7f3657"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_sample_with_event_decodes_to_the_normalised_occurrence(encoding: str) -> None:
    decoded = message(with_event(), encoding)
    assert decoded.message_id == MESSAGE_ID
    assert decoded.message_time == MESSAGE_TIME
    occurrence = decoded.payload
    assert isinstance(occurrence, Occurrence)
    assert occurrence.id == UUID_HEX
    assert occurrence.project_id == 1
    assert occurrence.event_id == EVENT_ID
    assert occurrence.fingerprint == ("slow-endpoint:/api/0/foo",)
    assert occurrence.hashes == (md5("slow-endpoint:/api/0/foo"),)
    assert occurrence.primary_hash == md5("slow-endpoint:/api/0/foo")
    assert occurrence.issue_title == "Endpoint regression"
    assert occurrence.subtitle == "p95 went from 120ms to 900ms"
    assert occurrence.culprit == "GET /api/0/foo"
    assert occurrence.type == 1018
    assert occurrence.detection_time == 1_780_000_000_000_000
    assert occurrence.level == "warning"
    assert occurrence.priority == 75
    assert occurrence.evidence_data == {"p95_before": 120, "p95_after": 900}
    assert occurrence.evidence_display == (EvidenceItem("Regression", "120ms -> 900ms", True),)
    assert occurrence.resource_id is None
    assert occurrence.is_buffered_spans is False
    assert occurrence.event is not None and occurrence.event.release == "backend@1.4.0"


def test_lookup_sample_has_defaults_for_every_optional_field(encoding: str) -> None:
    occurrence = message(lookup(), encoding).payload
    assert isinstance(occurrence, Occurrence)
    assert occurrence.event is None
    assert occurrence.level == "info"
    assert occurrence.culprit == ""
    assert occurrence.priority is None
    assert occurrence.evidence_display == ()
    assert occurrence.evidence_data is None
    assert occurrence.assignee is None
    assert occurrence.detection_time == 1_780_000_200_000_000


def test_message_keeps_the_delivered_bytes_and_attributes(encoding: str) -> None:
    from tests.decode.payloads import raw
    from transforms.core.decode import decode

    delivered = raw(lookup(), encoding, attributes={"origin": "test"})
    decoded = decode(delivered)
    assert decoded.data == delivered.data
    assert decoded.attributes == delivered.attributes


@pytest.mark.parametrize("form", [UUID_HEX, UUID_HEX.upper(), UUID_DASHED_UPPER, UUID_DASHED_UPPER.lower()])
def test_uuids_in_any_case_with_or_without_dashes_become_32_lowercase_hex(encoding: str, form: str) -> None:
    occurrence = message(lookup(id=form, event_id=form), encoding).payload
    assert occurrence.id == UUID_HEX
    assert occurrence.event_id == UUID_HEX


@pytest.mark.parametrize(
    "bad", ["6a4f2c0e9d3b4f7f8e1a2b3c4d5e6f7", "6a4f2c0e9d3b4f7f8e1a2b3c4d5e6f7g", "{" + UUID_HEX + "}", ""]
)
def test_malformed_uuid_is_invalid_field(encoding: str, bad: str) -> None:
    failed = dead_letter(lookup(id=bad), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error.startswith("id must be a UUID")
    assert failed.project_id == 1


def test_dashed_event_id_matches_the_same_hex_event_id_after_normalisation(encoding: str) -> None:
    dashed = "0C6D75AC-3969-41E0-BC4B-33C2FF7F3657"
    occurrence = message(with_event(event_id=dashed), encoding).payload
    assert occurrence.event_id == EVENT_ID
    assert occurrence.event.event_id == EVENT_ID


def test_only_event_event_id_given_the_occurrence_takes_its_normalised_value(encoding: str) -> None:
    dashed = "0C6D75AC-3969-41E0-BC4B-33C2FF7F3657"
    occurrence = message(with_event(event_id=DELETE, event={"event_id": dashed}), encoding).payload
    assert occurrence.event_id == EVENT_ID
    assert occurrence.event.event_id == EVENT_ID


def test_only_payload_event_id_given_the_event_takes_it(encoding: str) -> None:
    occurrence = message(with_event(event={"event_id": DELETE}), encoding).payload
    assert occurrence.event.event_id == EVENT_ID


def test_neither_event_id_nor_event_event_id_is_missing_field(encoding: str) -> None:
    failed = dead_letter(with_event(event_id=DELETE, event={"event_id": DELETE}), encoding)
    assert failed.reason == reasons.MISSING_FIELD
    assert "neither event_id nor event.event_id" in failed.error


def test_lookup_without_event_id_is_missing_field(encoding: str) -> None:
    assert dead_letter(lookup(event_id=DELETE), encoding).reason == reasons.MISSING_FIELD


@pytest.mark.parametrize(
    "field",
    [
        "id",
        "project_id",
        "fingerprint",
        "issue_title",
        "subtitle",
        "type",
        "detection_time",
        "evidence_display",
    ],
)
def test_each_required_field_absent_is_missing_field_naming_it(field: str) -> None:
    failed = dead_letter(lookup(**{field: DELETE}))
    assert failed.reason == reasons.MISSING_FIELD
    assert failed.error == f"missing required field: {field}"


@pytest.mark.parametrize("field", ["id", "project_id", "issue_title", "subtitle", "type", "detection_time"])
def test_required_field_absent_in_protobuf_is_missing_field(field: str) -> None:
    from tests.decode.payloads import PROTOBUF_CONTENT_TYPE

    assert dead_letter(lookup(**{field: DELETE}), PROTOBUF_CONTENT_TYPE).reason == reasons.MISSING_FIELD


def test_null_required_field_is_missing_and_says_null_means_absent() -> None:
    failed = dead_letter(lookup(issue_title=None, subtitle=None))
    assert failed.reason == reasons.MISSING_FIELD
    assert failed.error == (
        "missing required fields: issue_title (null means absent), subtitle (null means absent)"
    )


@pytest.mark.parametrize(
    ("detection_time", "micros"),
    [
        (1_780_000_000, 1_780_000_000_000_000),
        (1_780_000_000.25, 1_780_000_000_250_000),
        (1_780_000_000.123456, 1_780_000_000_123_456),
        ("2026-05-28T20:26:40", 1_780_000_000_000_000),
        ("2026-05-28T20:26:40Z", 1_780_000_000_000_000),
        ("2026-05-28T20:26:40+00:00", 1_780_000_000_000_000),
        ("2026-05-28T22:26:40+02:00", 1_780_000_000_000_000),
        ("2026-05-28T15:26:40.5-05:00", 1_780_000_000_500_000),
        ("2026-05-28 20:26:40.000001", 1_780_000_000_000_001),
        (0, 0),
    ],
)
def test_detection_time_as_epoch_or_iso_honours_offsets_and_defaults_to_utc(
    encoding: str, detection_time: object, micros: int
) -> None:
    assert message(lookup(detection_time=detection_time), encoding).payload.detection_time == micros


@pytest.mark.parametrize(
    "bad",
    ["yesterday", "1780000000", "2026-13-01T00:00:00", "", 1e300, -1e300, 300_000_000_000],
)
def test_unreadable_detection_time_is_invalid_field(encoding: str, bad: object) -> None:
    failed = dead_letter(lookup(detection_time=bad), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error.startswith("detection_time ")


def test_numeric_string_timestamp_is_refused_with_a_hint() -> None:
    failed = dead_letter(lookup(detection_time="1780000000"))
    assert "numeric string" in failed.error


def test_non_finite_protobuf_timestamp_is_invalid_field() -> None:
    from schemas import ingest_pb2
    from tests.decode.payloads import PROTOBUF_CONTENT_TYPE, raw
    from transforms.core.decode import decode
    from transforms.core.encode import to_proto

    proto = to_proto(lookup())
    proto.occurrence.detection_time.epoch_seconds = float("nan")
    delivered = raw(lookup(), PROTOBUF_CONTENT_TYPE)
    failed = decode(type(delivered)(delivered.message_id, 0, proto.SerializeToString(), delivered.attributes))
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error.startswith("detection_time must be a finite number")
    assert isinstance(proto, ingest_pb2.IngestMessage)


def test_culprit_longer_than_200_characters_is_cut_to_197_plus_dots(encoding: str) -> None:
    culprit = "é" * 250
    occurrence = message(lookup(culprit=culprit), encoding).payload
    assert occurrence.culprit == "é" * 197 + "..."
    assert len(occurrence.culprit) == 200


def test_culprit_of_exactly_200_characters_is_kept(encoding: str) -> None:
    assert message(lookup(culprit="x" * 200), encoding).payload.culprit == "x" * 200


def test_absent_or_null_culprit_is_empty_string(encoding: str) -> None:
    assert message(lookup(culprit=None), encoding).payload.culprit == ""
    assert message(lookup(culprit=DELETE), encoding).payload.culprit == ""


@pytest.mark.parametrize("level", ["sample", "debug", "info", "warning", "error", "fatal"])
def test_every_sentry_level_is_accepted(encoding: str, level: str) -> None:
    assert message(lookup(level=level), encoding).payload.level == level


def test_null_level_is_info(encoding: str) -> None:
    assert message(lookup(level=None), encoding).payload.level == "info"


@pytest.mark.parametrize("level", ["WARNING", "critical", ""])
def test_unknown_level_is_invalid_field(encoding: str, level: str) -> None:
    failed = dead_letter(lookup(level=level), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error.startswith("level must be one of sample, debug, info, warning, error, fatal")


def test_level_of_wrong_json_type_is_invalid_field() -> None:
    assert dead_letter(lookup(level=30)).reason == reasons.INVALID_FIELD


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"priority": 25, "initial_issue_priority": 75}, 25),
        ({"initial_issue_priority": 50}, 50),
        ({"priority": None, "initial_issue_priority": 75}, 75),
        ({"priority": 75}, 75),
        ({"priority": None, "initial_issue_priority": None}, None),
        ({}, None),
    ],
)
def test_priority_wins_over_initial_issue_priority_and_null_is_absent(
    encoding: str, fields: dict, expected: int | None
) -> None:
    assert message(lookup(**fields), encoding).payload.priority == expected


@pytest.mark.parametrize(
    "fields",
    [{"priority": 30}, {"initial_issue_priority": 0}, {"priority": 50, "initial_issue_priority": 100}],
)
def test_priority_other_than_25_50_75_is_invalid_field(encoding: str, fields: dict) -> None:
    failed = dead_letter(lookup(**fields), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert "must be 25 (low), 50 (medium) or 75 (high)" in failed.error


@pytest.mark.parametrize("value", ["50", 50.0, True])
def test_priority_of_wrong_json_type_is_invalid_field(value: object) -> None:
    assert dead_letter(lookup(priority=value)).reason == reasons.INVALID_FIELD


def test_every_fingerprint_part_is_hashed_separately(encoding: str) -> None:
    parts = ["a", "b", "a", "ünïcode"]
    occurrence = message(lookup(fingerprint=parts), encoding).payload
    assert occurrence.fingerprint == tuple(parts)
    assert occurrence.hashes == tuple(md5(part) for part in parts)


def test_prehashed_fingerprint_is_hashed_again_like_sentry(encoding: str) -> None:
    # Sentry's own test: raw "1" is stored as md5(md5("1")) when the producer pre-hashes it.
    occurrence = message(lookup(fingerprint=[md5("1")]), encoding).payload
    assert occurrence.primary_hash == "28c8edde3d61a0411511d3b1866f0636"


def test_empty_fingerprint_is_invalid_field(encoding: str) -> None:
    failed = dead_letter(lookup(fingerprint=[]), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == "fingerprint must be a non-empty list of non-empty strings, got []"


def test_empty_fingerprint_part_is_invalid_field_naming_its_index(encoding: str) -> None:
    failed = dead_letter(lookup(fingerprint=["a", "b", ""]), encoding)
    assert failed.error == "fingerprint[2] must be a non-empty string, got ''"


@pytest.mark.parametrize(
    ("fingerprint", "error"),
    [
        (["a", "b", 17], "fingerprint[2] must be a non-empty string, got 17"),
        (["a", None], "fingerprint[1] must be a non-empty string, got null"),
        ("abc", "fingerprint must be a non-empty list of non-empty strings, got 'abc'"),
        ({"a": 1}, "fingerprint must be a non-empty list of non-empty strings, got an object with 1 key(s)"),
    ],
)
def test_fingerprint_of_wrong_json_type_is_invalid_field(fingerprint: object, error: str) -> None:
    failed = dead_letter(lookup(fingerprint=fingerprint))
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == error


def test_evidence_display_items_are_kept_in_order(encoding: str) -> None:
    items = [
        {"name": "A", "value": "1", "important": False},
        {"name": "B", "value": "2", "important": True},
    ]
    occurrence = message(lookup(evidence_display=items), encoding).payload
    assert occurrence.evidence_display == (EvidenceItem("A", "1", False), EvidenceItem("B", "2", True))


@pytest.mark.parametrize("key", ["name", "value", "important"])
def test_evidence_display_item_missing_a_key_is_invalid_field(encoding: str, key: str) -> None:
    item = {"name": "A", "value": "1", "important": True}
    del item[key]
    failed = dead_letter(lookup(evidence_display=[item]), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == f"evidence_display[0].{key} is missing"


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ({"name": 1, "value": "1", "important": True}, "evidence_display[0].name must be a string, got 1"),
        ({"name": "A", "value": 2, "important": True}, "evidence_display[0].value must be a string, got 2"),
        (
            {"name": "A", "value": "1", "important": 1},
            "evidence_display[0].important must be true or false, got 1",
        ),
        ("A", "evidence_display[0] must be an object with name, value and important, got 'A'"),
    ],
)
def test_evidence_display_item_of_wrong_type_is_invalid_field(item: object, error: str) -> None:
    failed = dead_letter(lookup(evidence_display=[item]))
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == error


def test_evidence_display_not_a_list_is_invalid_field() -> None:
    assert dead_letter(lookup(evidence_display={"name": "A"})).reason == reasons.INVALID_FIELD


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("project_id", "1"),
        ("project_id", 1.0),
        ("project_id", True),
        ("project_id", 0),
        ("project_id", -4),
        ("project_id", 1 << 63),
        ("type", "1018"),
        ("type", 1018.0),
        ("issue_title", 5),
        ("subtitle", ["x"]),
        ("culprit", 1),
        ("resource_id", 1),
        ("assignee", 7),
        ("evidence_data", [1, 2]),
        ("evidence_data", "x"),
        ("is_buffered_spans", "true"),
        ("is_buffered_spans", 1),
        ("event", "not an event"),
        ("event", []),
        ("id", 12345),
        ("event_id", 12345),
    ],
)
def test_wrong_json_types_are_invalid_field_naming_the_field(field: str, value: object) -> None:
    failed = dead_letter(lookup(**{field: value}))
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error.startswith(f"{field} ")


def test_optional_fields_are_kept(encoding: str) -> None:
    occurrence = message(
        lookup(
            resource_id="res-1",
            assignee="team:4",
            is_buffered_spans=True,
            evidence_data={"nested": {"list": [1, 2.5, "x", None, True]}},
        ),
        encoding,
    ).payload
    assert occurrence.resource_id == "res-1"
    assert occurrence.assignee == "team:4"
    assert occurrence.is_buffered_spans is True
    assert occurrence.evidence_data == {"nested": {"list": [1, 2.5, "x", None, True]}}


def test_unknown_top_level_fields_are_ignored(encoding: str) -> None:
    plain = message(lookup(), encoding).payload
    assert message(lookup(transaction_duration=12, extra={"a": 1}), encoding).payload == plain


def test_unregistered_group_type_is_unknown_group_type(encoding: str) -> None:
    failed = dead_letter(lookup(type=999_999), encoding)
    assert failed.reason == reasons.UNKNOWN_GROUP_TYPE
    assert failed.error == "type 999999 is not a registered group type id"
    assert failed.project_id == 1


def test_payload_type_absent_or_null_means_occurrence(encoding: str) -> None:
    assert isinstance(message(lookup(payload_type=DELETE), encoding).payload, Occurrence)
    assert isinstance(message(lookup(payload_type=None)).payload, Occurrence)
