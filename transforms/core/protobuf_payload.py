"""A protobuf ``IngestMessage`` as the payload its JSON equivalent decodes to.

Both encodings share one validator: ``proto_to_payload`` turns the message into
the dict ``orjson`` would read from the same content in JSON, so the two produce
the same ``Message`` (or the same dead letter). A value JSON cannot carry (a
non-finite number in a Struct) becomes ``Unrepresentable``, which the field's
check rejects.
"""

from __future__ import annotations

import math
from typing import Any

from schemas import ingest_pb2
from transforms.core import reasons
from transforms.core.payload_fields import (
    PAYLOAD_OCCURRENCE,
    PAYLOAD_STATUS_CHANGE,
    Rejected,
    Unrepresentable,
)

_MAX_EXACT_FLOAT_INT = float(1 << 53)


def proto_to_payload(message: ingest_pb2.IngestMessage) -> dict[str, Any]:
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
    by_field = _BY_FIELD
    for field, value in message.ListFields():
        known = by_field.get(field)
        if known is None:  # the first time a field is seen: its descriptor's name is slower to read than this
            known = by_field[field] = (field.name, _CONVERTERS.get(field.name))
        name, converter = known
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
        if type(converted) is Unrepresentable:
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
            return Unrepresentable(f"an object holding the non-finite number {number}")
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
            if type(converted) is Unrepresentable:
                return converted
            items.append(converted)
        return items
    return None  # null_value, or no kind set


# A field's (name, converter), by its descriptor (one per field of the schema: bounded).
_BY_FIELD: dict[Any, tuple[str, Any]] = {}

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
