"""Encoding payloads: a payload dict (Sentry's JSON shape) → JSON bytes or protobuf bytes.

The reverse of ``decode`` for the generator, tests and benchmarks: decoding
what ``encode_protobuf`` writes gives the same ``Message`` as decoding what
``encode_json`` writes for the same dict, for every payload protobuf can
represent. What it cannot (wrong JSON types, an unknown ``payload_type``,
integers out of the 64-bit range) raises ``EncodeError`` naming the field.
``null`` is written as an absent field, which is what it means (E2). Fields
the schema does not have are dropped, as decoding drops them from JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import struct_pb2

from schemas import ingest_pb2
from transforms.core.decode import (
    CONTENT_TYPE_ATTRIBUTE,
    JSON_CONTENT_TYPE,
    PAYLOAD_OCCURRENCE,
    PAYLOAD_STATUS_CHANGE,
    PROTOBUF_CONTENT_TYPE,
)
from transforms.core.model import RawMessage

_MIN_INT64 = -(1 << 63)
_MAX_INT64 = (1 << 63) - 1


class EncodeError(ValueError):
    """The payload cannot be written in the requested encoding."""


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON (what ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` writes)."""
    try:
        return orjson.dumps(payload)
    except TypeError as exc:
        raise EncodeError(f"payload is not JSON-serialisable: {exc}") from None


def encode_protobuf(payload: Mapping[str, Any]) -> bytes:
    """One serialised ``IngestMessage`` with the payload's content."""
    return to_proto(payload).SerializeToString()


def encode(payload: Mapping[str, Any], content_type: str = JSON_CONTENT_TYPE) -> bytes:
    if content_type == JSON_CONTENT_TYPE:
        return encode_json(payload)
    if content_type == PROTOBUF_CONTENT_TYPE:
        return encode_protobuf(payload)
    raise EncodeError(f"unsupported content type {content_type!r}")


def raw_message(
    payload: Mapping[str, Any],
    *,
    message_id: str,
    message_time: int,
    content_type: str = JSON_CONTENT_TYPE,
    attributes: Mapping[str, str] | None = None,
) -> RawMessage:
    """A delivered message carrying ``payload`` in ``content_type``, with that content type attribute."""
    merged = {CONTENT_TYPE_ATTRIBUTE: content_type, **(attributes or {})}
    return RawMessage(message_id, message_time, encode(payload, content_type), merged)


def to_proto(payload: Mapping[str, Any]) -> ingest_pb2.IngestMessage:
    message = ingest_pb2.IngestMessage()
    payload_type = payload.get("payload_type")
    if payload_type is None or payload_type == PAYLOAD_OCCURRENCE:
        _fill_occurrence(message.occurrence, payload)
    elif payload_type == PAYLOAD_STATUS_CHANGE:
        _fill_status_change(message.status_change, payload)
    else:
        raise EncodeError(f"payload_type {payload_type!r} has no protobuf form")
    return message


def _fill_occurrence(target: ingest_pb2.Occurrence, p: Mapping[str, Any]) -> None:
    target.SetInParent()  # an occurrence with no field set is still an occurrence
    _strings(
        target,
        p,
        ("id", "event_id", "issue_title", "subtitle", "resource_id", "level", "culprit", "assignee"),
    )
    _ints(target, p, ("project_id", "type", "initial_issue_priority", "priority"))
    _string_list(target.fingerprint, p, "fingerprint")
    _time(target, p, "detection_time")
    _struct(target, p, "evidence_data")
    if p.get("is_buffered_spans") is not None:
        value = p["is_buffered_spans"]
        if type(value) is not bool:
            raise EncodeError(f"is_buffered_spans must be a bool, got {value!r}")
        target.is_buffered_spans = value
    items = p.get("evidence_display")
    if items is not None:
        if not isinstance(items, list):
            raise EncodeError(f"evidence_display must be a list, got {items!r}")
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise EncodeError(f"evidence_display[{index}] must be an object, got {item!r}")
            entry = target.evidence_display.add()
            _strings(entry, item, ("name", "value"), prefix=f"evidence_display[{index}].")
            important = item.get("important")
            if important is not None:
                if type(important) is not bool:
                    raise EncodeError(
                        f"evidence_display[{index}].important must be a bool, got {important!r}"
                    )
                entry.important = important
    event = p.get("event")
    if event is not None:
        if not isinstance(event, Mapping):
            raise EncodeError(f"event must be an object, got {event!r}")
        _fill_event(target.event, event)


def _fill_event(target: ingest_pb2.Event, ev: Mapping[str, Any]) -> None:
    target.SetInParent()
    _strings(
        target,
        ev,
        ("event_id", "platform", "release", "environment", "dist", "transaction", "server_name", "trace_id"),
        prefix="event.",
    )
    _ints(target, ev, ("project_id",), prefix="event.")
    _time(target, ev, "timestamp", prefix="event.")
    _time(target, ev, "received", prefix="event.")
    for field in ("sdk", "user", "request", "contexts"):
        _struct(target, ev, field, prefix="event.")
    tags = ev.get("tags")
    if tags is None:
        return
    pairs: list[object]  # checked pair by pair below
    if isinstance(tags, Mapping):
        pairs = list(tags.items())
    elif isinstance(tags, list):
        pairs = tags
    else:
        raise EncodeError(f"event.tags must be an object or a list of pairs, got {tags!r}")
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, list | tuple) and len(pair) == 2) or not all(type(x) is str for x in pair):
            raise EncodeError(f"event.tags[{index}] must be a pair of strings, got {pair!r}")
        tag = target.tags.add()
        tag.key, tag.value = pair


def _fill_status_change(target: ingest_pb2.StatusChange, p: Mapping[str, Any]) -> None:
    target.SetInParent()
    _strings(target, p, ("id",))
    _ints(target, p, ("project_id", "new_status", "new_substatus"))
    _string_list(target.fingerprint, p, "fingerprint")
    resolution = p.get("resolution")
    if resolution is not None:
        if not isinstance(resolution, Mapping):
            raise EncodeError(f"resolution must be an object, got {resolution!r}")
        target.resolution.SetInParent()
        _strings(target.resolution, resolution, ("type", "version"), prefix="resolution.")


def _strings(target: Any, p: Mapping[str, Any], fields: tuple[str, ...], prefix: str = "") -> None:
    for field in fields:
        value = p.get(field)
        if value is None:
            continue
        if type(value) is not str:
            raise EncodeError(f"{prefix}{field} must be a string, got {value!r}")
        setattr(target, field, value)


def _ints(target: Any, p: Mapping[str, Any], fields: tuple[str, ...], prefix: str = "") -> None:
    for field in fields:
        value = p.get(field)
        if value is None:
            continue
        # IntEnum members (GroupStatus...) are integers too, as they are for orjson.
        if not isinstance(value, int) or isinstance(value, bool) or not _MIN_INT64 <= value <= _MAX_INT64:
            raise EncodeError(f"{prefix}{field} must be a 64-bit integer, got {value!r}")
        setattr(target, field, int(value))


def _string_list(target: Any, p: Mapping[str, Any], field: str) -> None:
    value = p.get(field)
    if value is None:
        return
    if not isinstance(value, list) or not all(type(part) is str for part in value):
        raise EncodeError(f"{field} must be a list of strings, got {value!r}")
    target.extend(value)


def _time(target: Any, p: Mapping[str, Any], field: str, prefix: str = "") -> None:
    value = p.get(field)
    if value is None:
        return
    slot = getattr(target, field)
    kind = type(value)
    if kind is int and _MIN_INT64 <= value <= _MAX_INT64:
        slot.epoch_seconds_int = value
    elif kind is float:
        slot.epoch_seconds = value
    elif kind is str:
        slot.iso8601 = value
    else:
        raise EncodeError(f"{prefix}{field} must be epoch seconds or an ISO 8601 string, got {value!r}")


def _struct(target: Any, p: Mapping[str, Any], field: str, prefix: str = "") -> None:
    value = p.get(field)
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise EncodeError(f"{prefix}{field} must be an object, got {value!r}")
    _check_json_value(value, f"{prefix}{field}")
    struct: struct_pb2.Struct = getattr(target, field)
    struct.SetInParent()
    struct.update(value)


def _check_json_value(value: Any, path: str) -> None:
    """Struct takes only JSON values, with finite numbers."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int:
        return
    if kind is float:
        if not math.isfinite(value):
            raise EncodeError(f"{path} holds the non-finite number {value!r}")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str:
                raise EncodeError(f"{path} has the non-string key {key!r}")
            _check_json_value(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_value(item, f"{path}[{index}]")
        return
    raise EncodeError(f"{path} holds {value!r}, which is not a JSON value")
