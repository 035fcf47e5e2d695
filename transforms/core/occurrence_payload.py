"""Decoding an occurrence payload (rule 1.2, 1.3): its fields, its event, and the limits of what is stored.

``occurrence_from_payload`` checks a payload (the JSON object, or the protobuf
message turned into one) field by field in the order of E1 and raises
``Rejected`` naming the first thing wrong; ``valid_occurrence`` is its fast path
for valid payloads and returns None whenever it is not sure. Both build the same
``Occurrence`` for a payload they both accept.

An event's release or environment name longer than Sentry's limit is removed and
the occurrence kept, as Relay does; every other limit of the event makes it invalid.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import orjson

from transforms.core import limits, payload_fields, reasons
from transforms.core.enums import LOG_LEVELS, GroupCategory
from transforms.core.extensions import load_extension
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import Event, EvidenceItem, Message, Occurrence
from transforms.core.payload_fields import (
    MAX_INT64,
    SHALLOW,
    UUID_EXPECTED,
    Checks,
    Rejected,
    check_fingerprint,
    check_project_id,
    fingerprint_hashes,
    invalid,
    invalid_event,
    invalid_uuid,
    missing_message,
    normalised_uuid,
    optional_string_field,
    parse_time,
    show,
    string_field,
    time_field,
)

MAX_CULPRIT_LENGTH = 200
# Messages this small cannot become a JSON document larger than Spanner stores; larger ones are measured.
MEASURE_JSON_ABOVE = limits.SPANNER_MAX_JSON_BYTES // limits.MAX_JSON_GROWTH
VALID_PRIORITIES = (25, 50, 75)
_FEEDBACK_FIELDS = ("contact_email", "message", "name", "source")  # engine.creation.FEEDBACK_FIELDS

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


def occurrence_from_payload(p: dict[str, Any], checks: Checks = SHALLOW) -> Occurrence:
    # missing_field
    get = p.get
    missing = [name for name in _OCCURRENCE_REQUIRED if get(name) is None]
    event = get("event")
    payload_event_id = get("event_id")
    if payload_event_id is None and (type(event) is not dict or event.get("event_id") is None):
        missing.append("event_id (neither event_id nor event.event_id is given)")
    if missing:
        raise Rejected(reasons.MISSING_FIELD, missing_message(p, missing))

    # invalid_field
    project_id = check_project_id(p["project_id"])
    occurrence_id = normalised_uuid(p["id"])
    if occurrence_id is None:
        raise invalid_uuid("id", p["id"], project_id)
    event_id = None
    if payload_event_id is not None:
        event_id = normalised_uuid(payload_event_id)
        if event_id is None:
            raise invalid_uuid("event_id", payload_event_id, project_id)
    fingerprint, hashes = check_fingerprint(p["fingerprint"], project_id)
    issue_title = string_field(p, "issue_title", project_id)
    subtitle = string_field(p, "subtitle", project_id)
    type_id = p["type"]
    if type(type_id) is not int:
        raise invalid("type", "must be an integer group type id", type_id, project_id)
    detection_time = time_field(p["detection_time"], "detection_time", reasons.INVALID_FIELD, project_id)
    evidence_display = _evidence_display(p["evidence_display"], project_id)
    level = get("level")
    if level is None:
        level = "info"
    elif type(level) is not str or level not in LOG_LEVELS:
        raise invalid("level", f"must be one of {', '.join(LOG_LEVELS)}", level, project_id)
    culprit = get("culprit")
    if culprit is None:
        culprit = ""
    elif type(culprit) is not str:
        raise invalid("culprit", "must be a string", culprit, project_id)
    else:
        culprit = _shortened_culprit(culprit)
    resource_id = optional_string_field(p, "resource_id", project_id)
    assignee = optional_string_field(p, "assignee", project_id)
    evidence_data = get("evidence_data")
    if evidence_data is not None:
        if type(evidence_data) is not dict:
            raise invalid("evidence_data", "must be an object", evidence_data, project_id)
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
        raise invalid("is_buffered_spans", "must be true or false", is_buffered_spans, project_id)
    if event is not None and type(event) is not dict:
        raise invalid("event", "must be an object", event, project_id)
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


# The fast path. ``occurrence_from_payload`` checks a payload field by field in Python, to name the first
# thing wrong; most payloads are valid, and ``valid_occurrence`` decides those with msgspec checking the
# fields' types in C (``msgspec.convert`` into ``_OccurrenceShape``), leaving only the checks types cannot
# express. It never rejects: whenever a check fails (or msgspec refuses the payload) it returns None and
# ``occurrence_from_payload`` decides, with its error. So it must accept only payloads
# ``occurrence_from_payload`` accepts, and build the same ``Occurrence`` (tests/decode/test_properties.py
# compares the two). What it saves is in docs/performance.md.


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


def valid_occurrence(p: dict[str, Any], checks: Checks = SHALLOW) -> Occurrence | None:
    """The ``Occurrence`` of a valid payload, or None: then ``occurrence_from_payload`` decides (see above)."""
    if checks.deep or checks.large:  # rare: the checks measure what the fields hold
        return None
    try:
        shape = msgspec.convert(p, _OccurrenceShape)
    except Exception:  # refused (ValidationError), or anything else: the checks decide, with their error
        return None
    project_id = shape.project_id
    occurrence_id = normalised_uuid(shape.id)
    if not 0 < project_id <= MAX_INT64 or occurrence_id is None:
        return None
    event_id = shape.event_id
    if event_id is not None:
        event_id = normalised_uuid(event_id)
        if event_id is None:
            return None
    fingerprint = shape.fingerprint
    if not fingerprint or "" in fingerprint or len(fingerprint) > limits.MAX_FINGERPRINT_PARTS:
        return None
    hashes = fingerprint_hashes(fingerprint)
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
        decoded_event = _valid_event(shape.event, project_id, event_id, shape.event_id)
        if decoded_event is None:
            return None
        if event_id is None:
            event_id = decoded_event.event_id
        elif decoded_event.event_id != event_id:
            return None
    if event_id is None:
        return None
    is_buffered_spans = shape.is_buffered_spans
    # Positional, in the order of Occurrence's fields: CPython passes a call with more than 15 keyword arguments
    # as a dict, which msgspec reads far more slowly (docs/performance.md).
    return Occurrence(
        occurrence_id,  # id
        project_id,
        event_id,
        tuple(fingerprint),
        hashes,
        shape.issue_title,
        shape.subtitle,
        type_id,  # type
        detection_time,
        shape.evidence_display,
        level,
        culprit,
        shape.resource_id,
        shape.evidence_data,
        priority,
        shape.assignee,
        False if is_buffered_spans is None else is_buffered_spans,
        decoded_event,  # event
    )


def _load_native() -> Any:
    """The C extension ``_payload``, configured, if it is built from the source beside it, else None."""
    native = load_extension("transforms.core", "_payload", "Occurrence payloads", _LOG)
    if native is not None:
        native.configure(
            Occurrence,
            Event,
            EvidenceItem,
            Message,
            GROUP_TYPES,
            LOG_LEVELS,
            payload_fields.hash_cache,
            fingerprint_hashes,
            parse_time,
            orjson.loads,
            msgspec.json.encode,  # a carried event's text (model.carried_event)
            limits.MAX_FINGERPRINT_PARTS,
            limits.MAX_RELEASE_BYTES,
            limits.MAX_ENVIRONMENT_BYTES,
            MAX_CULPRIT_LENGTH,
            payload_fields.MIN_EPOCH_SECONDS,
            payload_fields.MAX_EPOCH_SECONDS,
            limits.MAX_JSON_FIELD_DEPTH,
            MEASURE_JSON_ABOVE,
        )
    return native


_LOG = logging.getLogger(__name__)
# The C extension ``_payload`` (``_payload.c``, built by setup.py where a compiler exists) or None. Its
# ``valid_occurrence`` is the common case of ``valid_occurrence`` in C, its ``decode_json`` that of
# ``decode.decode`` for a JSON occurrence: the same result, or None (then the Python path decides).
_native = _load_native()
native_occurrence = None if _native is None else _native.valid_occurrence
native_decode_json = None if _native is None else _native.decode_json


def _valid_event(
    ev: _EventShape, project_id: int, payload_event_id: str | None, raw_event_id: str | None
) -> Event | None:
    """``payload_event_id`` is the payload's ``event_id`` normalised, ``raw_event_id`` as it was sent."""
    if ev.project_id != project_id or not ev.platform:
        return None
    event_id = ev.event_id
    if event_id is None or event_id == raw_event_id:  # most payloads send the same id twice: normalised once
        event_id = payload_event_id
    else:
        event_id = normalised_uuid(event_id)
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
    return Event(  # positional, in the order of Event's fields (see valid_occurrence)
        event_id,
        project_id,
        ev.platform,
        timestamp,
        received,
        () if tags is None else tuple(tags.items()) if isinstance(tags, dict) else tuple(tags),
        release,
        environment,
        ev.dist,
        ev.transaction,
        ev.server_name,
        ev.sdk,
        ev.user,
        ev.request,
        ev.contexts,
        ev.trace_id,
    )


def _shortened_culprit(culprit: str) -> str:
    """A culprit longer than ``MAX_CULPRIT_LENGTH`` characters is cut to that length, ending in "..." (rule 1.2)."""
    if len(culprit) > MAX_CULPRIT_LENGTH:
        return culprit[: MAX_CULPRIT_LENGTH - 3] + "..."
    return culprit


def _evidence_display(value: Any, project_id: int) -> tuple[EvidenceItem, ...]:
    if type(value) is not list:
        raise invalid(
            "evidence_display", "must be a list of {name, value, important} objects", value, project_id
        )
    items = []
    for index, item in enumerate(value):
        field = f"evidence_display[{index}]"
        if type(item) is not dict:
            raise invalid(field, "must be an object with name, value and important", item, project_id)
        name = item.get("name")
        text = item.get("value")
        important = item.get("important")
        for key, part in (("name", name), ("value", text), ("important", important)):
            if part is None:
                raise Rejected(reasons.INVALID_FIELD, f"{field}.{key} is missing", project_id)
        if type(name) is not str:
            raise invalid(f"{field}.name", "must be a string", name, project_id)
        if type(text) is not str:
            raise invalid(f"{field}.value", "must be a string", text, project_id)
        if type(important) is not bool:
            raise invalid(f"{field}.important", "must be true or false", important, project_id)
        items.append(EvidenceItem(name, text, important))
    return tuple(items)


def _priority(p: dict[str, Any], field: str, project_id: int) -> int | None:
    value = p.get(field)
    if value is None:
        return None
    if type(value) is not int or value not in VALID_PRIORITIES:
        raise invalid(field, "must be 25 (low), 50 (medium) or 75 (high)", value, project_id)
    return value


def _event(ev: dict[str, Any], project_id: int, payload_event_id: str | None, checks: Checks) -> Event:
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
            error = f"event.project_id {show(event_project)} does not match project_id ({project_id})"
        raise Rejected(reasons.PROJECT_MISMATCH, error, project_id)

    raw_event_id = get("event_id")
    if raw_event_id is None:
        event_id = payload_event_id
    else:
        event_id = normalised_uuid(raw_event_id)
        if event_id is None:
            raise invalid_event("event.event_id", UUID_EXPECTED, raw_event_id, project_id)
    assert event_id is not None  # the missing_field check guarantees one of the two ids
    platform = get("platform")
    if platform is None:
        raise Rejected(reasons.INVALID_EVENT, "event.platform is missing", project_id)
    if type(platform) is not str or not platform:
        raise invalid_event("event.platform", "must be a non-empty string", platform, project_id)
    timestamp = get("timestamp")
    if timestamp is None:
        raise Rejected(reasons.INVALID_EVENT, "event.timestamp is missing", project_id)
    timestamp = time_field(timestamp, "event.timestamp", reasons.INVALID_EVENT, project_id)
    received = get("received")
    if received is not None:
        received = time_field(received, "event.received", reasons.INVALID_EVENT, project_id)
    tags = _tags(get("tags"), project_id)
    release = get("release")
    if release is not None:
        if type(release) is not str or not release:
            raise invalid_event("event.release", "must be a non-empty string or null", release, project_id)
        if limits.exceeds(release, limits.MAX_RELEASE_BYTES):
            release = None
    environment = get("environment")
    if environment is not None:
        if type(environment) is not str or not environment:
            raise invalid_event(
                "event.environment", "must be a non-empty string or null", environment, project_id
            )
        if limits.exceeds(environment, limits.MAX_ENVIRONMENT_BYTES):
            environment = None
    strings = []
    for field in ("dist", "transaction", "server_name", "trace_id"):
        value = get(field)
        if value is not None and type(value) is not str:
            raise invalid_event(f"event.{field}", "must be a string", value, project_id)
        strings.append(value)
    objects = []
    for field in ("sdk", "user", "request", "contexts"):
        value = get(field)
        if value is not None:
            if type(value) is not dict:
                raise invalid_event(f"event.{field}", "must be an object", value, project_id)
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
                raise invalid_event(f"event.tags[{show(key)}]", "must be a string", text, project_id)
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
                raise invalid_event(
                    f"event.tags[{index}]", "must be a [key, value] pair of strings", pair, project_id
                )
            pairs.append((pair[0], pair[1]))
        return tuple(pairs)
    raise invalid_event("event.tags", "must be an object or a list of [key, value] pairs", value, project_id)
