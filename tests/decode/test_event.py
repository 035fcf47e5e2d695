"""The event sub-payload (rule 1.3): kept fields, project match, validation, event id match."""

from __future__ import annotations

import pytest

from tests.decode.payloads import DELETE, dead_letter, message, with_event
from transforms.core import reasons
from transforms.core.model import Event

EVENT_ID = "0c6d75ac396941e0bc4b33c2ff7f3657"


def test_sample_event_keeps_its_fields_normalised(encoding: str) -> None:
    event = message(with_event(), encoding).payload.event
    assert event == Event(
        event_id=EVENT_ID,
        project_id=1,
        platform="python",
        timestamp=1_780_000_000_000_000,
        received=1_780_000_001_000_000,
        tags=(("server", "web-1"),),
        release="backend@1.4.0",
        environment="production",
    )


def test_every_kept_field_is_kept_and_others_are_dropped(encoding: str) -> None:
    extra = {
        "dist": "42",
        "transaction": "/api/0/foo",
        "server_name": "web-1",
        "trace_id": "a" * 32,
        "sdk": {"name": "sentry.python", "version": "2.3.1"},
        "user": {"id": "7", "email": "a@example.com"},
        "request": {"url": "https://example.com/api/0/foo", "method": "GET"},
        "contexts": {"trace": {"trace_id": "a" * 32, "span_id": "b" * 16}},
        "breadcrumbs": {"values": []},
        "extra": {"x": 1},
        "level": "fatal",
        "message": "dropped",
    }
    decoded = message(with_event(event=extra), encoding).payload
    event = decoded.event
    assert event.dist == "42"
    assert event.transaction == "/api/0/foo"
    assert event.server_name == "web-1"
    assert event.trace_id == "a" * 32
    assert event.sdk == extra["sdk"]
    assert event.user == extra["user"]
    assert event.request == extra["request"]
    assert event.contexts == extra["contexts"]
    assert not hasattr(event, "breadcrumbs") and not hasattr(event, "level")
    assert decoded.level == "warning"  # the event's level is the occurrence's


def test_tags_as_list_of_pairs_equal_tags_as_object(encoding: str) -> None:
    as_object = message(with_event(event={"tags": {"a": "1", "b": "2"}}), encoding).payload.event
    as_pairs = message(with_event(event={"tags": [["a", "1"], ["b", "2"]]}), encoding).payload.event
    assert as_object.tags == as_pairs.tags == (("a", "1"), ("b", "2"))


def test_absent_null_and_empty_tags_are_no_tags(encoding: str) -> None:
    for tags in (DELETE, None, {}, []):
        assert message(with_event(event={"tags": tags}), encoding).payload.event.tags == ()


def test_received_is_optional(encoding: str) -> None:
    assert message(with_event(event={"received": DELETE}), encoding).payload.event.received is None


@pytest.mark.parametrize(
    ("timestamp", "micros"),
    [(1_780_000_000.5, 1_780_000_000_500_000), ("2026-05-28T22:26:40+02:00", 1_780_000_000_000_000)],
)
def test_event_timestamp_as_epoch_or_iso(encoding: str, timestamp: object, micros: int) -> None:
    assert message(with_event(event={"timestamp": timestamp}), encoding).payload.event.timestamp == micros


@pytest.mark.parametrize("field", ["release", "environment"])
def test_null_release_or_environment_is_absent(encoding: str, field: str) -> None:
    assert getattr(message(with_event(event={field: None}), encoding).payload.event, field) is None


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"platform": DELETE}, "event.platform is missing"),
        ({"platform": ""}, "event.platform must be a non-empty string, got ''"),
        ({"timestamp": DELETE}, "event.timestamp is missing"),
        ({"timestamp": "noon"}, "event.timestamp is not an ISO 8601 date-time or epoch seconds, got 'noon'"),
        ({"received": "later"}, "event.received is not an ISO 8601 date-time or epoch seconds, got 'later'"),
        ({"release": ""}, "event.release must be a non-empty string or null, got ''"),
        ({"environment": ""}, "event.environment must be a non-empty string or null, got ''"),
        (
            {"event_id": "not-a-uuid"},
            "event.event_id must be a UUID (32 hex digits, with or without dashes), got 'not-a-uuid'",
        ),
    ],
)
def test_invalid_event_in_either_encoding_names_the_field(encoding: str, event: dict, error: str) -> None:
    failed = dead_letter(with_event(event=event), encoding)
    assert failed.reason == reasons.INVALID_EVENT
    assert failed.error == error
    assert failed.project_id == 1
    assert failed.after_project_check


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"platform": 0}, "event.platform must be a non-empty string, got 0"),
        ({"tags": "tagged"}, "event.tags must be an object or a list of [key, value] pairs, got 'tagged'"),
        ({"tags": {"a": 1}}, "event.tags['a'] must be a string, got 1"),
        (
            {"tags": [["a", "1", "2"]]},
            "event.tags[0] must be a [key, value] pair of strings, got a list of 3 item(s)",
        ),
        (
            {"tags": [["a", None]]},
            "event.tags[0] must be a [key, value] pair of strings, got a list of 2 item(s)",
        ),
        (
            {"timestamp": True},
            "event.timestamp must be epoch seconds (a number) or an ISO 8601 date-time string, got true",
        ),
        ({"release": 14}, "event.release must be a non-empty string or null, got 14"),
        ({"dist": 3}, "event.dist must be a string, got 3"),
        ({"transaction": []}, "event.transaction must be a string, got []"),
        ({"server_name": {}}, "event.server_name must be a string, got an empty object"),
        ({"trace_id": 1}, "event.trace_id must be a string, got 1"),
        ({"sdk": "python"}, "event.sdk must be an object, got 'python'"),
        ({"user": [1]}, "event.user must be an object, got a list of 1 item(s)"),
        ({"request": 1}, "event.request must be an object, got 1"),
        ({"contexts": "x"}, "event.contexts must be an object, got 'x'"),
    ],
)
def test_event_fields_of_wrong_json_type_are_invalid_event(event: dict, error: str) -> None:
    failed = dead_letter(with_event(event=event))
    assert failed.reason == reasons.INVALID_EVENT
    assert failed.error == error


@pytest.mark.parametrize("event_project", [2, DELETE])
def test_event_project_other_or_missing_is_project_mismatch(encoding: str, event_project: object) -> None:
    failed = dead_letter(with_event(event={"project_id": event_project}), encoding)
    assert failed.reason == reasons.PROJECT_MISMATCH
    assert failed.project_id == 1
    assert "project_id (1)" in failed.error


@pytest.mark.parametrize("event_project", ["1", 1.0, True, None])
def test_event_project_of_other_json_type_is_project_mismatch(event_project: object) -> None:
    assert dead_letter(with_event(event={"project_id": event_project})).reason == reasons.PROJECT_MISMATCH


def test_different_event_ids_are_event_id_mismatch(encoding: str) -> None:
    other = "1" * 32
    failed = dead_letter(with_event(event={"event_id": other}), encoding)
    assert failed.reason == reasons.EVENT_ID_MISMATCH
    assert failed.error == (
        f"event_id {EVENT_ID} does not match event.event_id {other} (compared after normalisation)"
    )
    assert failed.after_project_check


def test_buffered_spans_event_is_decoded_like_any_event(encoding: str) -> None:
    decoded = message(with_event(is_buffered_spans=True), encoding).payload
    assert decoded.is_buffered_spans is True
    assert decoded.event is not None
