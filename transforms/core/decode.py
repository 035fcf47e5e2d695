"""Decoding and validating ingest messages (rule 1.1–1.5, E1, E2, E14, E15).

``decode`` turns one delivered message into a ``Message`` or a ``DeadLetter``.
It never raises: every way a payload can be wrong is a dead letter with a
reason code and a message naming the field and what was wrong, and an
unexpected exception is caught and reported as ``undecodable``.

Checks run in the order of E1 and the first failing check names the dead
letter: ``oversized`` → ``undecodable`` → ``invalid_payload_type`` →
``missing_field`` → ``invalid_field`` → ``unknown_group_type`` →
(``unknown_project``: needs the project registry, see ``projects.check_project``)
→ ``project_mismatch`` → ``invalid_event`` → ``event_id_mismatch`` →
``invalid_status_change``. A message failing a check ranked after
``unknown_project`` comes back as a dead letter with ``project_id`` set, so the
project check can still overrule it.

Both encodings share one validator: a protobuf ``IngestMessage`` is first
turned into the dict its JSON equivalent would decode to (``_proto_to_payload``),
so the two produce the same ``Message`` for the same content.

Attributes other than ``content_type`` are ignored (in particular the
``dead_letter_*`` attributes of a replayed dead letter, see ``envelopes``).

Limits (``transforms.core.limits``, docs/limits.md) are checked here, once, so
that nothing decoding accepts can break a later step (the shuffle and state
encoders, the row builders, Spanner): JSON values nested deeper than Spanner
stores, more fingerprint parts than we hash, a resolution version longer than a
release name, times outside what a Spanner TIMESTAMP holds, and (for large
messages) JSON documents larger than Spanner stores are dead letters naming
the field and the limit. An event's release or environment name longer than
Sentry's limit is removed and the occurrence kept, as Relay does; ``decode``
reports it in ``removed`` so the shell can count it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from hashlib import md5
from typing import Any

import msgspec
import orjson
from google.protobuf.message import DecodeError

from schemas import ingest_pb2
from transforms.core import limits, metrics, reasons
from transforms.core.enums import (
    LOG_LEVELS,
    STATUS_NAMES,
    SUBSTATUS_NAMES,
    VALID_STATUS_CHANGES,
    GroupCategory,
    GroupStatus,
    ResolutionType,
)
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import (
    MICROS,
    DeadLetter,
    Event,
    EvidenceItem,
    Message,
    Occurrence,
    RawMessage,
    Resolution,
    StatusChange,
)

DEFAULT_MAX_BYTES = 1 << 20  # 1 MiB (rule 1.5)

CONTENT_TYPE_ATTRIBUTE = "content_type"
JSON_CONTENT_TYPE = "application/json"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
CONTENT_TYPES = (JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE)

PAYLOAD_OCCURRENCE = "occurrence"
PAYLOAD_STATUS_CHANGE = "status_change"

MAX_CULPRIT_LENGTH = 200
VALID_PRIORITIES = (25, 50, 75)
_MAX_INT64 = (1 << 63) - 1
# The range datetime and a Spanner TIMESTAMP can represent (years 1 to 9999, UTC), in epoch seconds.
_MIN_EPOCH_SECONDS = -62_135_596_800
_MAX_EPOCH_SECONDS = 253_402_300_799
_MIN_MICROS = _MIN_EPOCH_SECONDS * MICROS
_MAX_MICROS = (_MAX_EPOCH_SECONDS + 1) * MICROS - 1
# Messages this small cannot become a JSON document larger than Spanner stores; larger ones are measured.
_MEASURE_JSON_ABOVE = limits.SPANNER_MAX_JSON_BYTES // limits.MAX_JSON_GROWTH
_FEEDBACK_FIELDS = ("contact_email", "message", "name", "source")  # engine.creation.FEEDBACK_FIELDS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_OCCURRENCE_REQUIRED = (
    "id",
    "project_id",
    "fingerprint",
    "issue_title",
    "subtitle",
    "type",
    "detection_time",
    "evidence_display",
)
_STATUS_CHANGE_REQUIRED = ("project_id", "fingerprint", "new_status")

_is_hex32 = re.compile(r"[0-9a-fA-F]{32}").fullmatch
_is_dashed_uuid = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
).fullmatch


class Rejected(Exception):
    """A payload fails a check: ``reason`` is a code of ``transforms.core.reasons``."""

    def __init__(self, reason: str, error: str, project_id: int | None = None) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error
        self.project_id = project_id


def decode(
    raw: RawMessage, *, max_bytes: int = DEFAULT_MAX_BYTES, removed: list[str] | None = None
) -> Message | DeadLetter:
    """Decode and validate one message; never raises.

    A dead letter's ``project_id`` is set whenever the payload's project id was
    valid; for reasons ranked after ``unknown_project`` it is always set.
    ``removed`` (when given) gets the counter name (``transforms.core.metrics``)
    of each value decoding removed from the message it accepted: an event's
    release or environment longer than Sentry's limit.
    """
    try:
        return _decode(raw, max_bytes, removed)
    except Rejected as rejected:
        return _dead_letter(raw, rejected.reason, rejected.error, rejected.project_id)
    except Exception as exc:  # the guard: a decoding error is a value, never an escaping exception
        return _dead_letter(
            raw, reasons.UNDECODABLE, f"unexpected error while decoding: {type(exc).__name__}: {exc}"
        )


def check_max_bytes(max_bytes: int) -> None:
    """Raise ``ValueError`` when ``max_bytes`` is not a size limit the pipeline can carry (docs/limits.md)."""
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if max_bytes > limits.MAX_PAYLOAD_BYTES_CEILING:
        raise ValueError(
            f"{max_bytes} bytes is more than the pipeline can carry: at most {limits.MAX_PAYLOAD_BYTES_CEILING} "
            "(2.5 MiB), since every string of a message must fit one Spanner STRING(MAX) value "
            f"({limits.SPANNER_MAX_STRING_CHARS} characters)"
        )


def content_type_of(attributes: dict[str, str]) -> str:
    """The message's media type, lower-cased and without parameters (``; charset=...``)."""
    value = attributes.get(CONTENT_TYPE_ATTRIBUTE)
    if not value:
        return JSON_CONTENT_TYPE
    return value.split(";", 1)[0].strip().lower()


class _Checks:
    """What a message's size and shape make worth checking beyond its fields' types (see ``_decode``)."""

    __slots__ = ("deep", "large")

    def __init__(self, deep: bool, large: bool) -> None:
        self.deep = deep  # a JSON value may be nested past MAX_JSON_FIELD_DEPTH: measure them
        self.large = large  # a stored JSON document may be larger than Spanner's: measure them


_SHALLOW = _Checks(False, False)  # a small JSON payload with fewer brackets than the depth limit


def _decode(raw: RawMessage, max_bytes: int, removed: list[str] | None) -> Message:
    data = raw.data
    if len(data) > max_bytes:
        raise Rejected(reasons.OVERSIZED, f"message is {len(data)} bytes, more than the limit of {max_bytes}")
    content_type = content_type_of(raw.attributes)
    large = len(data) > _MEASURE_JSON_ABOVE
    if content_type == JSON_CONTENT_TYPE:
        payload = _parse_json(data)
        # No value can be nested deeper than the payload has brackets (counted in C, strings included). Two
        # passes over bench.decode's 1.2 KB occurrence cost 3.4 µs by timeit against 7.9 µs for parsing it (2
        # cores at a load average of 9); walking its JSON fields in Python cost as much, and more for larger.
        deep = data.count(b"{") + data.count(b"[") > limits.MAX_JSON_FIELD_DEPTH
        checks = _Checks(deep, large) if deep or large else _SHALLOW
    elif content_type == PROTOBUF_CONTENT_TYPE:
        payload = _parse_protobuf(data)
        # protobuf's parser refuses messages nested more than 100 deep, which is fewer than 50 JSON levels of a
        # Struct (tests/decode/test_limits.py pins it), so no value of a protobuf payload is too deep.
        checks = _Checks(False, True) if large else _SHALLOW
    else:
        raise Rejected(
            reasons.UNDECODABLE,
            f"unsupported content_type {raw.attributes.get(CONTENT_TYPE_ATTRIBUTE)!r}: "
            f"expected {JSON_CONTENT_TYPE!r} (the default) or {PROTOBUF_CONTENT_TYPE!r}",
        )
    payload_type = payload.get("payload_type")
    if payload_type is None or payload_type == PAYLOAD_OCCURRENCE:
        occurrence = _valid_occurrence(payload, checks) or _occurrence(payload, checks)
        if removed is not None and occurrence.event is not None:
            _report_removed(payload["event"], occurrence.event, removed)
        decoded: Occurrence | StatusChange = occurrence
    elif payload_type == PAYLOAD_STATUS_CHANGE:
        decoded = _status_change(payload, raw.message_id)
    else:
        raise Rejected(
            reasons.INVALID_PAYLOAD_TYPE,
            f"payload_type must be 'occurrence' (the default) or 'status_change', got {_show(payload_type)}",
        )
    return Message(raw.message_id, raw.message_time, decoded, raw.data, raw.attributes)


def _report_removed(source: dict[str, Any], event: Event, removed: list[str]) -> None:
    """A string the payload's event had and the decoded event has not was removed (too long)."""
    if event.release is None and type(source.get("release")) is str:
        removed.append(metrics.EVENT_RELEASE_REMOVED)
    if event.environment is None and type(source.get("environment")) is str:
        removed.append(metrics.EVENT_ENVIRONMENT_REMOVED)


def _dead_letter(raw: RawMessage, reason: str, error: str, project_id: int | None = None) -> DeadLetter:
    return DeadLetter(
        message_id=raw.message_id,
        message_time=raw.message_time,
        data=raw.data,
        attributes=raw.attributes,
        reason=reason,
        error=error,
        stage=reasons.STAGE_DECODE,
        project_id=project_id,
    )


# ---------------------------------------------------------------------------------------------------------
# Encodings


def _parse_json(data: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Rejected(reasons.UNDECODABLE, f"data is not valid JSON: {exc}") from None
    if type(payload) is not dict:
        raise Rejected(reasons.UNDECODABLE, f"the payload must be a JSON object, got {_show(payload)}")
    return payload


def _parse_protobuf(data: bytes) -> dict[str, Any]:
    try:
        message = ingest_pb2.IngestMessage.FromString(data)
    except DecodeError as exc:
        raise Rejected(reasons.UNDECODABLE, f"data is not a valid protobuf IngestMessage: {exc}") from None
    return _proto_to_payload(message)


# ---------------------------------------------------------------------------------------------------------
# Occurrences (rule 1.2, 1.3)


def _occurrence(p: dict[str, Any], checks: _Checks = _SHALLOW) -> Occurrence:
    # missing_field
    get = p.get
    missing = [name for name in _OCCURRENCE_REQUIRED if get(name) is None]
    event = get("event")
    payload_event_id = get("event_id")
    if payload_event_id is None and (type(event) is not dict or event.get("event_id") is None):
        missing.append("event_id (neither event_id nor event.event_id is given)")
    if missing:
        raise Rejected(reasons.MISSING_FIELD, _missing_message(p, missing))

    # invalid_field
    project_id = _project_id(p["project_id"])
    occurrence_id = _uuid(p["id"])
    if occurrence_id is None:
        raise _invalid_uuid("id", p["id"], project_id)
    event_id = None
    if payload_event_id is not None:
        event_id = _uuid(payload_event_id)
        if event_id is None:
            raise _invalid_uuid("event_id", payload_event_id, project_id)
    fingerprint, hashes = _fingerprint(p["fingerprint"], project_id)
    issue_title = _string(p, "issue_title", project_id)
    subtitle = _string(p, "subtitle", project_id)
    type_id = p["type"]
    if type(type_id) is not int:
        raise _invalid("type", "must be an integer group type id", type_id, project_id)
    detection_time = _time(p["detection_time"], "detection_time", reasons.INVALID_FIELD, project_id)
    evidence_display = _evidence_display(p["evidence_display"], project_id)
    level = get("level")
    if level is None:
        level = "info"
    elif type(level) is not str or level not in LOG_LEVELS:
        raise _invalid("level", f"must be one of {', '.join(LOG_LEVELS)}", level, project_id)
    culprit = get("culprit")
    if culprit is None:
        culprit = ""
    elif type(culprit) is not str:
        raise _invalid("culprit", "must be a string", culprit, project_id)
    else:
        culprit = _shortened_culprit(culprit)
    resource_id = _optional_string(p, "resource_id", project_id)
    assignee = _optional_string(p, "assignee", project_id)
    evidence_data = get("evidence_data")
    if evidence_data is not None:
        if type(evidence_data) is not dict:
            raise _invalid("evidence_data", "must be an object", evidence_data, project_id)
        if checks.deep:
            _check_depth("evidence_data", evidence_data, reasons.INVALID_FIELD, project_id)
    priority = _priority(p, "priority", project_id)
    initial_priority = _priority(p, "initial_issue_priority", project_id)
    if priority is None:
        priority = initial_priority
    is_buffered_spans = get("is_buffered_spans")
    if is_buffered_spans is None:
        is_buffered_spans = False
    elif type(is_buffered_spans) is not bool:
        raise _invalid("is_buffered_spans", "must be true or false", is_buffered_spans, project_id)
    if event is not None and type(event) is not dict:
        raise _invalid("event", "must be an object", event, project_id)
    if checks.large:
        _check_stored_sizes(
            type_id, issue_title, subtitle, culprit, evidence_data, evidence_display, project_id
        )

    # unknown_group_type
    if type_id not in GROUP_TYPES:
        raise Rejected(
            reasons.UNKNOWN_GROUP_TYPE, f"type {type_id} is not a registered group type id", project_id
        )

    # project_mismatch, invalid_event, event_id_mismatch: ranked after unknown_project
    decoded_event = None
    if event is not None:
        decoded_event = _event(event, project_id, event_id, checks)
        if event_id is None:
            event_id = decoded_event.event_id
        elif decoded_event.event_id != event_id:
            raise Rejected(
                reasons.EVENT_ID_MISMATCH,
                f"event_id {event_id} does not match event.event_id {decoded_event.event_id} "
                "(compared after normalisation)",
                project_id,
            )
    assert event_id is not None  # the missing_field check guarantees one of the two ids

    return Occurrence(
        id=occurrence_id,
        project_id=project_id,
        event_id=event_id,
        fingerprint=fingerprint,
        hashes=hashes,
        issue_title=issue_title,
        subtitle=subtitle,
        type=type_id,
        detection_time=detection_time,
        evidence_display=evidence_display,
        level=level,
        culprit=culprit,
        resource_id=resource_id,
        evidence_data=evidence_data,
        priority=priority,
        assignee=assignee,
        is_buffered_spans=is_buffered_spans,
        event=decoded_event,
    )


# The fast path. ``_occurrence`` checks a payload field by field in Python, to name the first thing wrong;
# most payloads are valid, and ``_valid_occurrence`` decides those with msgspec checking the fields' types in
# C (``msgspec.convert`` into ``_OccurrenceShape``), leaving only the checks types cannot express. It never
# rejects: whenever a check fails (or msgspec refuses the payload) it returns None and ``_occurrence`` decides,
# with its error. So it must accept only payloads ``_occurrence`` accepts, and build the same ``Occurrence``
# (tests/decode/test_properties.py compares the two). It checks an occurrence with its event in two thirds of
# the time (6.8 against 10.0 µs, once parsed).


class _EventShape(msgspec.Struct, gc=False):
    project_id: int
    platform: str
    timestamp: int | float | str
    event_id: str | None = None
    received: int | float | str | None = None
    tags: dict[str, str] | list[tuple[str, str]] | None = None
    release: str | None = None
    environment: str | None = None
    dist: str | None = None
    transaction: str | None = None
    server_name: str | None = None
    trace_id: str | None = None
    sdk: dict[str, Any] | None = None
    user: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    contexts: dict[str, Any] | None = None


class _OccurrenceShape(msgspec.Struct, gc=False):
    id: str
    project_id: int
    fingerprint: list[str]
    issue_title: str
    subtitle: str
    type: int
    detection_time: int | float | str
    evidence_display: tuple[EvidenceItem, ...]
    event_id: str | None = None
    event: _EventShape | None = None
    level: str | None = None
    culprit: str | None = None
    resource_id: str | None = None
    assignee: str | None = None
    evidence_data: dict[str, Any] | None = None
    priority: int | None = None
    initial_issue_priority: int | None = None
    is_buffered_spans: bool | None = None


def _valid_occurrence(p: dict[str, Any], checks: _Checks = _SHALLOW) -> Occurrence | None:
    """The ``Occurrence`` of a valid payload, or None: then ``_occurrence`` decides (see above)."""
    if checks.deep or checks.large:  # rare: the checks measure what the fields hold
        return None
    try:
        shape = msgspec.convert(p, _OccurrenceShape)
    except Exception:  # refused (ValidationError), or anything else: the checks decide, with their error
        return None
    project_id = shape.project_id
    occurrence_id = _uuid(shape.id)
    if not 0 < project_id <= _MAX_INT64 or occurrence_id is None:
        return None
    event_id = shape.event_id
    if event_id is not None:
        event_id = _uuid(event_id)
        if event_id is None:
            return None
    fingerprint = shape.fingerprint
    if not fingerprint or "" in fingerprint or len(fingerprint) > limits.MAX_FINGERPRINT_PARTS:
        return None
    hashes = _hashes(fingerprint)
    type_id = shape.type
    level = shape.level
    if level is None:
        level = "info"
    elif level not in LOG_LEVELS:
        return None
    culprit = shape.culprit
    culprit = "" if culprit is None else _shortened_culprit(culprit)
    priority = shape.priority
    initial_priority = shape.initial_issue_priority
    if (priority is not None and priority not in VALID_PRIORITIES) or (
        initial_priority is not None and initial_priority not in VALID_PRIORITIES
    ):
        return None
    if priority is None:
        priority = initial_priority
    if type_id not in GROUP_TYPES:
        return None
    try:
        detection_time = parse_time(shape.detection_time)
    except ValueError:
        return None
    decoded_event = None
    if shape.event is not None:
        decoded_event = _valid_event(shape.event, project_id, event_id)
        if decoded_event is None:
            return None
        if event_id is None:
            event_id = decoded_event.event_id
        elif decoded_event.event_id != event_id:
            return None
    if event_id is None:
        return None
    is_buffered_spans = shape.is_buffered_spans
    return Occurrence(
        id=occurrence_id,
        project_id=project_id,
        event_id=event_id,
        fingerprint=tuple(fingerprint),
        hashes=hashes,
        issue_title=shape.issue_title,
        subtitle=shape.subtitle,
        type=type_id,
        detection_time=detection_time,
        evidence_display=shape.evidence_display,
        level=level,
        culprit=culprit,
        resource_id=shape.resource_id,
        evidence_data=shape.evidence_data,
        priority=priority,
        assignee=shape.assignee,
        is_buffered_spans=False if is_buffered_spans is None else is_buffered_spans,
        event=decoded_event,
    )


def _valid_event(ev: _EventShape, project_id: int, payload_event_id: str | None) -> Event | None:
    if ev.project_id != project_id or not ev.platform:
        return None
    event_id = payload_event_id if ev.event_id is None else _uuid(ev.event_id)
    if event_id is None:
        return None
    release, environment = ev.release, ev.environment
    if release == "" or environment == "":
        return None
    if release is not None and limits.exceeds(release, limits.MAX_RELEASE_BYTES):
        release = None
    if environment is not None and limits.exceeds(environment, limits.MAX_ENVIRONMENT_BYTES):
        environment = None
    try:
        timestamp = parse_time(ev.timestamp)
        received = None if ev.received is None else parse_time(ev.received)
    except ValueError:
        return None
    tags = ev.tags
    return Event(
        event_id=event_id,
        project_id=project_id,
        platform=ev.platform,
        timestamp=timestamp,
        received=received,
        tags=() if tags is None else tuple(tags.items()) if tags.__class__ is dict else tuple(tags),
        release=release,
        environment=environment,
        dist=ev.dist,
        transaction=ev.transaction,
        server_name=ev.server_name,
        trace_id=ev.trace_id,
        sdk=ev.sdk,
        user=ev.user,
        request=ev.request,
        contexts=ev.contexts,
    )


def _shortened_culprit(culprit: str) -> str:
    """A culprit longer than ``MAX_CULPRIT_LENGTH`` characters is cut to that length, ending in "..." (rule 1.2)."""
    if len(culprit) > MAX_CULPRIT_LENGTH:
        return culprit[: MAX_CULPRIT_LENGTH - 3] + "..."
    return culprit


def _evidence_display(value: Any, project_id: int) -> tuple[EvidenceItem, ...]:
    if type(value) is not list:
        raise _invalid(
            "evidence_display", "must be a list of {name, value, important} objects", value, project_id
        )
    items = []
    for index, item in enumerate(value):
        field = f"evidence_display[{index}]"
        if type(item) is not dict:
            raise _invalid(field, "must be an object with name, value and important", item, project_id)
        name = item.get("name")
        text = item.get("value")
        important = item.get("important")
        for key, part in (("name", name), ("value", text), ("important", important)):
            if part is None:
                raise Rejected(reasons.INVALID_FIELD, f"{field}.{key} is missing", project_id)
        if type(name) is not str:
            raise _invalid(f"{field}.name", "must be a string", name, project_id)
        if type(text) is not str:
            raise _invalid(f"{field}.value", "must be a string", text, project_id)
        if type(important) is not bool:
            raise _invalid(f"{field}.important", "must be true or false", important, project_id)
        items.append(EvidenceItem(name, text, important))
    return tuple(items)


def _priority(p: dict[str, Any], field: str, project_id: int) -> int | None:
    value = p.get(field)
    if value is None:
        return None
    if type(value) is not int or value not in VALID_PRIORITIES:
        raise _invalid(field, "must be 25 (low), 50 (medium) or 75 (high)", value, project_id)
    return value


def _event(ev: dict[str, Any], project_id: int, payload_event_id: str | None, checks: _Checks) -> Event:
    """Validate the event sub-payload: ``project_mismatch``, then ``invalid_event``.

    A release or environment name longer than Sentry's limit is removed (Relay removes an invalid one and
    keeps the event); every other limit of the event makes it invalid.
    """
    get = ev.get
    event_project = get("project_id")
    if type(event_project) is not int or event_project != project_id:
        if event_project is None:
            error = f"event.project_id is missing; it must equal project_id ({project_id})"
        else:
            error = f"event.project_id {_show(event_project)} does not match project_id ({project_id})"
        raise Rejected(reasons.PROJECT_MISMATCH, error, project_id)

    raw_event_id = get("event_id")
    if raw_event_id is None:
        event_id = payload_event_id
    else:
        event_id = _uuid(raw_event_id)
        if event_id is None:
            raise _invalid_event("event.event_id", _UUID_EXPECTED, raw_event_id, project_id)
    assert event_id is not None  # the missing_field check guarantees one of the two ids
    platform = get("platform")
    if platform is None:
        raise Rejected(reasons.INVALID_EVENT, "event.platform is missing", project_id)
    if type(platform) is not str or not platform:
        raise _invalid_event("event.platform", "must be a non-empty string", platform, project_id)
    timestamp = get("timestamp")
    if timestamp is None:
        raise Rejected(reasons.INVALID_EVENT, "event.timestamp is missing", project_id)
    timestamp = _time(timestamp, "event.timestamp", reasons.INVALID_EVENT, project_id)
    received = get("received")
    if received is not None:
        received = _time(received, "event.received", reasons.INVALID_EVENT, project_id)
    tags = _tags(get("tags"), project_id)
    release = get("release")
    if release is not None:
        if type(release) is not str or not release:
            raise _invalid_event("event.release", "must be a non-empty string or null", release, project_id)
        if limits.exceeds(release, limits.MAX_RELEASE_BYTES):
            release = None
    environment = get("environment")
    if environment is not None:
        if type(environment) is not str or not environment:
            raise _invalid_event(
                "event.environment", "must be a non-empty string or null", environment, project_id
            )
        if limits.exceeds(environment, limits.MAX_ENVIRONMENT_BYTES):
            environment = None
    strings = []
    for field in ("dist", "transaction", "server_name", "trace_id"):
        value = get(field)
        if value is not None and type(value) is not str:
            raise _invalid_event(f"event.{field}", "must be a string", value, project_id)
        strings.append(value)
    objects = []
    for field in ("sdk", "user", "request", "contexts"):
        value = get(field)
        if value is not None:
            if type(value) is not dict:
                raise _invalid_event(f"event.{field}", "must be an object", value, project_id)
            if checks.deep:
                _check_depth(f"event.{field}", value, reasons.INVALID_EVENT, project_id)
        objects.append(value)
    decoded = Event(
        event_id=event_id,
        project_id=project_id,
        platform=platform,
        timestamp=timestamp,
        received=received,
        tags=tags,
        release=release,
        environment=environment,
        dist=strings[0],
        transaction=strings[1],
        server_name=strings[2],
        trace_id=strings[3],
        sdk=objects[0],
        user=objects[1],
        request=objects[2],
        contexts=objects[3],
    )
    if checks.large:
        size = len(msgspec.json.encode(decoded))
        if size > limits.SPANNER_MAX_JSON_BYTES:
            raise Rejected(
                reasons.INVALID_EVENT,
                f"the event is {size} bytes of JSON once stored, more than the limit of "
                f"{limits.SPANNER_MAX_JSON_BYTES} (Spanner's JSON documents)",
                project_id,
            )
    return decoded


def _check_depth(field: str, value: Any, reason: str, project_id: int) -> None:
    if limits.nesting_depth(value, limits.MAX_JSON_FIELD_DEPTH) > limits.MAX_JSON_FIELD_DEPTH:
        raise Rejected(
            reason,
            f"{field} is nested more than {limits.MAX_JSON_FIELD_DEPTH} levels deep, the limit (it is stored "
            f"one level down in a Spanner JSON document, which holds at most {limits.SPANNER_MAX_JSON_DEPTH})",
            project_id,
        )


def _check_stored_sizes(
    type_id: Any,
    title: str,
    subtitle: str,
    culprit: str,
    evidence_data: dict[str, Any] | None,
    evidence_display: tuple[EvidenceItem, ...],
    project_id: int,
) -> None:
    """A large message's JSON documents (Occurrences.EvidenceData and EvidenceDisplay, Groups.Data) must fit
    what Spanner stores; the event's is measured with the event (``_event``)."""
    dumps = orjson.dumps
    stored = {
        "evidence_data": len(dumps(evidence_data)),
        "evidence_display": len(dumps([msgspec.structs.asdict(item) for item in evidence_display])),
    }
    # Groups.Data holds the title twice, the subtitle, the culprit and, for feedback, evidence fields
    # (transforms.core.engine.rows.group_data); its other fields take less than 200 bytes.
    group_data = 2 * len(dumps(title)) + len(dumps(subtitle)) + len(dumps(culprit)) + 200
    group_type = GROUP_TYPES.get(type_id) if type(type_id) is int else None
    if group_type is not None and group_type.category == GroupCategory.FEEDBACK and evidence_data:
        group_data += len(dumps({name: evidence_data.get(name) for name in _FEEDBACK_FIELDS}))
    stored["issue_title, subtitle and culprit"] = group_data
    for field, size in stored.items():
        if size > limits.SPANNER_MAX_JSON_BYTES:
            raise Rejected(
                reasons.INVALID_FIELD,
                f"{field} would be stored as {size} bytes of JSON, more than the limit of "
                f"{limits.SPANNER_MAX_JSON_BYTES} (Spanner's JSON documents)",
                project_id,
            )


def _tags(value: Any, project_id: int) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if type(value) is dict:
        for key, text in value.items():
            if type(text) is not str:
                raise _invalid_event(f"event.tags[{_show(key)}]", "must be a string", text, project_id)
        return tuple(value.items())
    if type(value) is list:
        pairs = []
        for index, pair in enumerate(value):
            if (
                type(pair) is not list
                or len(pair) != 2
                or type(pair[0]) is not str
                or type(pair[1]) is not str
            ):
                raise _invalid_event(
                    f"event.tags[{index}]", "must be a [key, value] pair of strings", pair, project_id
                )
            pairs.append((pair[0], pair[1]))
        return tuple(pairs)
    raise _invalid_event("event.tags", "must be an object or a list of [key, value] pairs", value, project_id)


# ---------------------------------------------------------------------------------------------------------
# Status changes (rule 1.4, 5.1)


def _status_change(p: dict[str, Any], message_id: str) -> StatusChange:
    missing = [name for name in _STATUS_CHANGE_REQUIRED if p.get(name) is None]
    if missing:
        raise Rejected(reasons.MISSING_FIELD, _missing_message(p, missing))

    project_id = _project_id(p["project_id"])
    fingerprint, hashes = _fingerprint(p["fingerprint"], project_id)
    new_status = p["new_status"]
    if type(new_status) is not int:
        raise _invalid("new_status", "must be an integer group status", new_status, project_id)
    new_substatus = p.get("new_substatus")
    if new_substatus is not None and type(new_substatus) is not int:
        raise _invalid(
            "new_substatus", "must be an integer group substatus or null", new_substatus, project_id
        )
    change_id = p.get("id")
    if change_id is None:
        change_id = message_id
    elif type(change_id) is not str or not change_id:
        raise _invalid("id", "must be a non-empty string", change_id, project_id)
    else:
        change_id = _uuid(change_id) or change_id
    resolution = p.get("resolution")
    if resolution is not None:
        resolution = _resolution(resolution, project_id)

    # invalid_status_change: ranked after unknown_project
    if (new_status, new_substatus) not in VALID_STATUS_CHANGES:
        raise Rejected(
            reasons.INVALID_STATUS_CHANGE,
            f"new_status {_named(new_status, STATUS_NAMES)} with new_substatus "
            f"{_named(new_substatus, SUBSTATUS_NAMES)} is not a valid status change",
            project_id,
        )
    if resolution is not None and new_status != GroupStatus.RESOLVED:
        raise Rejected(
            reasons.INVALID_STATUS_CHANGE,
            f"a resolution is only valid with new_status {int(GroupStatus.RESOLVED)} (resolved), "
            f"got new_status {new_status}",
            project_id,
        )
    return StatusChange(
        id=change_id,
        project_id=project_id,
        fingerprint=fingerprint,
        hashes=hashes,
        new_status=new_status,
        new_substatus=new_substatus,
        resolution=resolution,
    )


def _named(value: int | None, names: dict[int, str]) -> str:
    if value is None:
        return "null"
    name = names.get(value)
    return f"{value} ({name})" if name else f"{value} (unknown)"


def _resolution(value: Any, project_id: int) -> Resolution:
    if type(value) is not dict:
        raise _invalid("resolution", "must be an object with type and version", value, project_id)
    kind = value.get("type")
    version = value.get("version")
    if kind is None or version is None:
        absent = "resolution.type" if kind is None else "resolution.version"
        raise Rejected(reasons.INVALID_FIELD, f"{absent} is missing", project_id)
    if type(kind) is not str or kind not in ResolutionType.ALL:
        raise _invalid("resolution.type", f"must be one of {', '.join(ResolutionType.ALL)}", kind, project_id)
    if type(version) is not str or not version:
        raise _invalid("resolution.version", "must be a non-empty string", version, project_id)
    size = limits.exceeds(version, limits.MAX_RELEASE_BYTES)
    if size is not None:
        raise Rejected(
            reasons.INVALID_FIELD,
            f"resolution.version is {size} bytes, more than the limit of {limits.MAX_RELEASE_BYTES} "
            "(Sentry's limit of a release name)",
            project_id,
        )
    return Resolution(kind, version)


# ---------------------------------------------------------------------------------------------------------
# Field checks shared by both payload types


def _project_id(value: Any) -> int:
    if type(value) is not int or not 0 < value <= _MAX_INT64:
        raise _invalid("project_id", "must be a positive 64-bit integer", value, None)
    return value


# Fingerprint parts repeat (every occurrence of a group sends the same ones): remembering recent digests
# saved about 10% of decoding time in bench/decode.py. Bounded in entries and in the length of what it keeps;
# dict reads and writes are atomic, so threads sharing it can at worst compute a digest twice.
_hash_cache: dict[str, str] = {}
_HASH_CACHE_SIZE = 4096
_HASH_CACHE_MAX_PART = 512


def _fingerprint(value: Any, project_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Check the fingerprint and hash each part (lowercase hex MD5 of its UTF-8 bytes, ref a.5)."""
    if type(value) is not list:
        raise _invalid("fingerprint", "must be a non-empty list of non-empty strings", value, project_id)
    if not value:
        raise Rejected(
            reasons.INVALID_FIELD,
            "fingerprint must be a non-empty list of non-empty strings, got []",
            project_id,
        )
    if len(value) > limits.MAX_FINGERPRINT_PARTS:
        raise Rejected(
            reasons.INVALID_FIELD,
            f"fingerprint has {len(value)} parts, more than the limit of {limits.MAX_FINGERPRINT_PARTS}",
            project_id,
        )
    for index, part in enumerate(value):
        if type(part) is not str or not part:
            raise _invalid(f"fingerprint[{index}]", "must be a non-empty string", part, project_id)
    return tuple(value), _hashes(value)


def _hashes(parts: list[str]) -> tuple[str, ...]:
    hashes = []
    cache = _hash_cache
    for part in parts:
        digest = cache.get(part)
        if digest is None:
            digest = md5(part.encode(), usedforsecurity=False).hexdigest()
            if len(part) <= _HASH_CACHE_MAX_PART:
                if len(cache) >= _HASH_CACHE_SIZE:
                    cache.clear()
                cache[part] = digest
        hashes.append(digest)
    return tuple(hashes)


_UUID_EXPECTED = "must be a UUID (32 hex digits, with or without dashes)"


def _uuid(value: Any) -> str | None:
    """32 lowercase hex characters, or None when ``value`` is not a hex or dashed UUID string."""
    if type(value) is not str:
        return None
    if len(value) == 32:
        return value.lower() if _is_hex32(value) else None
    if len(value) == 36 and _is_dashed_uuid(value):
        return value.replace("-", "").lower()
    return None


def _invalid_uuid(field: str, value: Any, project_id: int) -> Rejected:
    return _invalid(field, _UUID_EXPECTED, value, project_id)


def _string(p: dict[str, Any], field: str, project_id: int) -> str:
    value = p[field]
    if type(value) is not str:
        raise _invalid(field, "must be a string", value, project_id)
    return value


def _optional_string(p: dict[str, Any], field: str, project_id: int) -> str | None:
    value = p.get(field)
    if value is not None and type(value) is not str:
        raise _invalid(field, "must be a string or null", value, project_id)
    return value


def parse_time(value: Any) -> int:
    """A timestamp as microseconds since the epoch; raises ``ValueError`` saying what is wrong.

    Numbers are epoch seconds (int or float); strings are ISO 8601 date-times,
    with or without a UTC offset (offsets are honoured; none means UTC). The time
    must lie within years 1 to 9999 in UTC, what a Spanner TIMESTAMP holds.
    """
    kind = type(value)
    if kind is int:
        if not _MIN_EPOCH_SECONDS <= value <= _MAX_EPOCH_SECONDS:
            raise ValueError("is out of range for a timestamp (years 1 to 9999)")
        return value * MICROS
    if kind is float:
        if not math.isfinite(value) or not _MIN_EPOCH_SECONDS <= value <= _MAX_EPOCH_SECONDS:
            raise ValueError("must be a finite number of seconds within years 1 to 9999")
        return round(value * MICROS)
    if kind is str:
        if value.isdigit():
            raise ValueError("is a numeric string; send epoch seconds as a number, or an ISO 8601 date-time")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("is not an ISO 8601 date-time or epoch seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return check_micros((delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds)
    raise ValueError("must be epoch seconds (a number) or an ISO 8601 date-time string")


def check_micros(micros: int) -> int:
    """``micros`` (since the epoch) when a Spanner TIMESTAMP holds it (years 1 to 9999 UTC); else ``ValueError``."""
    if not _MIN_MICROS <= micros <= _MAX_MICROS:
        raise ValueError("is out of range for a timestamp (years 1 to 9999 in UTC)")
    return micros


def _time(value: Any, field: str, reason: str, project_id: int) -> int:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise Rejected(reason, f"{field} {exc}, got {_show(value)}", project_id) from None


def _invalid(field: str, expected: str, value: Any, project_id: int | None) -> Rejected:
    return Rejected(reasons.INVALID_FIELD, f"{field} {expected}, got {_show(value)}", project_id)


def _invalid_event(field: str, expected: str, value: Any, project_id: int) -> Rejected:
    return Rejected(reasons.INVALID_EVENT, f"{field} {expected}, got {_show(value)}", project_id)


def _missing_message(p: dict[str, Any], missing: list[str]) -> str:
    names = [f"{name} (null means absent)" if name in p else name for name in missing]
    noun = "field" if len(names) == 1 else "fields"
    return f"missing required {noun}: {', '.join(names)}"


_SHOW_LIMIT = 80


def _show(value: Any) -> str:
    """A short, JSON-like rendering of a value for error messages."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is str:
        text = repr(value)
        return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 4] + "...'"
    if kind is int or kind is float:
        return repr(value)
    if kind is dict:
        return f"an object with {len(value)} key(s)" if value else "an empty object"
    if kind is list:
        return f"a list of {len(value)} item(s)" if value else "[]"
    if kind is _Unrepresentable:
        return value.description
    return f"a {kind.__name__}"


# ---------------------------------------------------------------------------------------------------------
# Protobuf → the equivalent JSON payload


class _Unrepresentable:
    """Stands for a protobuf value JSON cannot carry (a non-finite number), so the field's check rejects it."""

    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description


_MAX_EXACT_FLOAT_INT = float(1 << 53)


def _proto_to_payload(message: ingest_pb2.IngestMessage) -> dict[str, Any]:
    kind = message.WhichOneof("payload")
    if kind == "occurrence":
        payload = _fields_to_dict(message.occurrence)
        payload["payload_type"] = PAYLOAD_OCCURRENCE
        return payload
    if kind == "status_change":
        payload = _fields_to_dict(message.status_change)
        payload["payload_type"] = PAYLOAD_STATUS_CHANGE
        return payload
    raise Rejected(
        reasons.INVALID_PAYLOAD_TYPE, "the IngestMessage has no payload (set occurrence or status_change)"
    )


def _fields_to_dict(message: Any) -> dict[str, Any]:
    """The set fields of an Occurrence, Event, StatusChange, Resolution or EvidenceItem as JSON values.

    Repeated fields are always present (protobuf cannot tell empty from absent);
    an empty ``tags`` is left out, which JSON treats the same as no tags.
    """
    descriptor = message.DESCRIPTOR
    if descriptor is _OCCURRENCE_DESCRIPTOR:
        result: dict[str, Any] = {"fingerprint": [], "evidence_display": []}
    elif descriptor is _STATUS_CHANGE_DESCRIPTOR:
        result = {"fingerprint": []}
    else:
        result = {}
    converters = _CONVERTERS
    for field, value in message.ListFields():
        name = field.name
        converter = converters.get(name)
        result[name] = value if converter is None else converter(value)
    return result


_OCCURRENCE_DESCRIPTOR = ingest_pb2.Occurrence.DESCRIPTOR
_STATUS_CHANGE_DESCRIPTOR = ingest_pb2.StatusChange.DESCRIPTOR


def _time_to_json(value: ingest_pb2.Time) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def _struct_to_json(value: Any) -> Any:
    fields = {}
    entries = value.fields
    for key in entries:
        converted = _value_to_json(entries[key])
        if type(converted) is _Unrepresentable:
            return converted
        fields[key] = converted
    return fields


def _value_to_json(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            return _Unrepresentable(f"an object holding the non-finite number {number}")
        # Struct carries every number as a double; JSON producers write integral values as integers.
        if number.is_integer() and -_MAX_EXACT_FLOAT_INT <= number <= _MAX_EXACT_FLOAT_INT:
            return int(number)
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _struct_to_json(value.struct_value)
    if kind == "list_value":
        items = []
        for item in value.list_value.values:
            converted = _value_to_json(item)
            if type(converted) is _Unrepresentable:
                return converted
            items.append(converted)
        return items
    return None  # null_value, or no kind set


_CONVERTERS: dict[str, Any] = {
    "detection_time": _time_to_json,
    "timestamp": _time_to_json,
    "received": _time_to_json,
    "evidence_data": _struct_to_json,
    "sdk": _struct_to_json,
    "user": _struct_to_json,
    "request": _struct_to_json,
    "contexts": _struct_to_json,
    "event": _fields_to_dict,
    "resolution": _fields_to_dict,
    "fingerprint": list,
    "evidence_display": lambda items: [_fields_to_dict(item) for item in items],
    "tags": lambda tags: [[tag.key, tag.value] for tag in tags],
}
