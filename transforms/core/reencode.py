"""A decoded payload written back as Sentry's JSON, for dead letters made after the original bytes were let go.

Past the project check a message travels without the bytes it was delivered with (``events.without_bytes``:
they are most of its size, and only a lookup can still become a dead letter by the rules). When something
unexpected sets such a message aside later (``internal_error`` at the stages ``apply`` and ``write``), its
dead letter carries ``payload_json(payload)`` instead: decoding it gives the same payload again (ids and UUIDs
as normalised, times to the microsecond, the culprit as shortened), so republishing the dead letter replays
the message. Nested JSON values (``evidence_data``, an event's ``sdk``...) are written with msgspec, which
writes what orjson refuses (more than 255 levels deep) up to Python's recursion limit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from transforms.core.decode import PAYLOAD_OCCURRENCE, PAYLOAD_STATUS_CHANGE
from transforms.core.model import Event, Occurrence, Payload, evidence_display, full_event, with_evidence

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ENCODER = msgspec.json.Encoder()


def payload_json(payload: Payload) -> bytes:
    """The payload as a JSON ingest message that decodes to the same payload (see the module docstring)."""
    return _ENCODER.encode(payload_dict(payload))


def payload_dict(payload: Payload) -> dict[str, Any]:
    if isinstance(payload, Occurrence):
        return _occurrence(payload)
    body: dict[str, Any] = {
        "payload_type": PAYLOAD_STATUS_CHANGE,
        "id": payload.id,
        "project_id": payload.project_id,
        "fingerprint": list(payload.fingerprint),
        "new_status": payload.new_status,
    }
    if payload.new_substatus is not None:
        body["new_substatus"] = payload.new_substatus
    if payload.resolution is not None:
        body["resolution"] = {"type": payload.resolution.type, "version": payload.resolution.version}
    return body


def _occurrence(occurrence: Occurrence) -> dict[str, Any]:
    occurrence = with_evidence(occurrence)  # evidence the shuffle kept as msgpack bytes
    body: dict[str, Any] = {
        "payload_type": PAYLOAD_OCCURRENCE,
        "id": occurrence.id,
        "project_id": occurrence.project_id,
        "event_id": occurrence.event_id,
        "fingerprint": list(occurrence.fingerprint),
        "issue_title": occurrence.issue_title,
        "subtitle": occurrence.subtitle,
        "type": occurrence.type,
        "detection_time": _time(occurrence.detection_time),
        "evidence_display": [
            {"name": item.name, "value": item.value, "important": item.important}
            for item in evidence_display(occurrence)
        ],
        "level": occurrence.level,
        "culprit": occurrence.culprit,
        "is_buffered_spans": occurrence.is_buffered_spans,
    }
    for name in ("resource_id", "evidence_data", "priority", "assignee"):
        value = getattr(occurrence, name)
        if value is not None:
            body[name] = value
    if occurrence.event is not None:
        body["event"] = _event(occurrence.event)
    return body


def _event(event: Event) -> dict[str, Any]:
    event = full_event(event)  # a carried event's trees are in its JSON text
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "project_id": event.project_id,
        "platform": event.platform,
        "timestamp": _time(event.timestamp),
        "tags": [list(pair) for pair in event.tags],
    }
    if event.received is not None:
        body["received"] = _time(event.received)
    for name in (
        "release",
        "environment",
        "dist",
        "transaction",
        "server_name",
        "sdk",
        "user",
        "request",
        "contexts",
        "trace_id",
    ):
        value = getattr(event, name)
        if value is not None:
            body[name] = value
    return body


def _time(micros: int) -> str:
    """ISO 8601 with microseconds and an offset (years zero-padded, as decoding reads them)."""
    return (_EPOCH + timedelta(microseconds=micros)).isoformat(timespec="microseconds")
