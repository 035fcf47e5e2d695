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
turned into the dict its JSON equivalent would decode to
(``transforms.core.protobuf_payload``), so the two produce the same ``Message``
for the same content.

This module is the envelope (size, content type, payload type) and the one entry
point; the checks live by concern: ``payload_fields`` (shared field checks and
``Rejected``), ``occurrence_payload``, ``status_change_payload`` and
``protobuf_payload``. The names importers use are re-exported here.

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

from typing import Any

import orjson
from google.protobuf.message import DecodeError

from schemas import ingest_pb2
from transforms.core import limits, metrics, reasons
from transforms.core.model import (
    DeadLetter,
    Event,
    Message,
    Occurrence,
    RawMessage,
    StatusChange,
    carried_message,
)
from transforms.core.occurrence_payload import (
    MAX_CULPRIT_LENGTH,
    MEASURE_JSON_ABOVE,
    VALID_PRIORITIES,
    native_decode_json,
    native_occurrence,
    occurrence_from_payload,
    valid_occurrence,
)
from transforms.core.payload_fields import (
    PAYLOAD_OCCURRENCE,
    PAYLOAD_STATUS_CHANGE,
    SHALLOW,
    Checks,
    Rejected,
    check_micros,
    parse_time,
    show,
)
from transforms.core.protobuf_payload import proto_to_payload
from transforms.core.status_change_payload import status_change_from_payload

__all__ = [
    "CONTENT_TYPES",
    "CONTENT_TYPE_ATTRIBUTE",
    "DEFAULT_MAX_BYTES",
    "JSON_CONTENT_TYPE",
    "MAX_CULPRIT_LENGTH",
    "PAYLOAD_OCCURRENCE",
    "PAYLOAD_STATUS_CHANGE",
    "PROTOBUF_CONTENT_TYPE",
    "VALID_PRIORITIES",
    "Rejected",
    "check_max_bytes",
    "check_micros",
    "content_type_of",
    "decode",
    "parse_time",
]

DEFAULT_MAX_BYTES = 1 << 20  # 1 MiB (rule 1.5)

CONTENT_TYPE_ATTRIBUTE = "content_type"
JSON_CONTENT_TYPE = "application/json"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
CONTENT_TYPES = (JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE)

# Every byte but the opening brackets (see _decode).
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"{[")


def decode(
    raw: RawMessage,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    removed: list[str] | None = None,
    carry: bool = False,
) -> Message | DeadLetter:
    """Decode and validate one message; never raises.

    ``carry``: an occurrence's event comes carried (``model.carried_message``, as it crosses the shuffle), made
    here where it is decoded (in C, without building the whole message twice); else whole.

    A dead letter's ``project_id`` is set whenever the payload's project id was
    valid; for reasons ranked after ``unknown_project`` it is always set.
    ``removed`` (when given) gets the counter name (``transforms.core.metrics``)
    of each value decoding removed from the message it accepted: an event's
    release or environment longer than Sentry's limit.
    """
    try:
        parsed = None
        if (
            native_decode_json is not None
        ):  # the C path: a valid JSON occurrence's Message, or its parsed payload
            parsed = native_decode_json(raw, max_bytes, carry)
            if parsed.__class__ is Message:
                decoded: Message = parsed
                return decoded
        message = _decode(raw, max_bytes, removed, parsed)
        return carried_message(message) if carry else message
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


def _decode(
    raw: RawMessage, max_bytes: int, removed: list[str] | None, parsed: dict[str, Any] | None
) -> Message:
    if parsed is None:
        payload, checks = _envelope(raw, max_bytes)
    else:  # parsed by the C path, which found it JSON, within max_bytes, not large and not deep
        payload, checks = parsed, SHALLOW
    payload_type = payload.get("payload_type")
    if payload_type is None or payload_type == PAYLOAD_OCCURRENCE:
        # C (where built) for the common case, else or when it is not sure the Python fast path, then the checks
        occurrence = (
            (native_occurrence is not None and checks is SHALLOW and native_occurrence(payload))
            or valid_occurrence(payload, checks)
            or occurrence_from_payload(payload, checks)
        )
        if removed is not None and occurrence.event is not None:
            _report_removed(payload["event"], occurrence.event, removed)
        decoded: Occurrence | StatusChange = occurrence
    elif payload_type == PAYLOAD_STATUS_CHANGE:
        decoded = status_change_from_payload(payload, raw.message_id)
    else:
        raise Rejected(
            reasons.INVALID_PAYLOAD_TYPE,
            f"payload_type must be 'occurrence' (the default) or 'status_change', got {show(payload_type)}",
        )
    return Message(raw.message_id, raw.message_time, decoded, raw.data, raw.attributes)


def _envelope(raw: RawMessage, max_bytes: int) -> tuple[dict[str, Any], Checks]:
    """The payload of the message's encoding, and what its size and shape make worth checking."""
    data = raw.data
    if len(data) > max_bytes:
        raise Rejected(reasons.OVERSIZED, f"message is {len(data)} bytes, more than the limit of {max_bytes}")
    content_type = raw.attributes.get(CONTENT_TYPE_ATTRIBUTE)
    if content_type != JSON_CONTENT_TYPE:  # the usual value needs no parsing (nor does none at all)
        content_type = content_type_of(raw.attributes)
    large = len(data) > MEASURE_JSON_ABOVE
    if content_type == JSON_CONTENT_TYPE:
        payload = _parse_json(data)
        # No value can be nested deeper than the payload has brackets (counted in C, strings included, in one
        # pass: the bytes left once every other byte is deleted): far cheaper than walking the JSON fields in
        # Python (docs/performance.md).
        deep = len(data.translate(None, _NOT_BRACKETS)) > limits.MAX_JSON_FIELD_DEPTH
        checks = Checks(deep, large) if deep or large else SHALLOW
    elif content_type == PROTOBUF_CONTENT_TYPE:
        payload = _parse_protobuf(data)
        # protobuf's parser refuses messages nested more than 100 deep, which is fewer than 50 JSON levels of a
        # Struct (tests/decode/test_limits.py pins it), so no value of a protobuf payload is too deep.
        checks = Checks(False, True) if large else SHALLOW
    else:
        raise Rejected(
            reasons.UNDECODABLE,
            f"unsupported content_type {raw.attributes.get(CONTENT_TYPE_ATTRIBUTE)!r}: "
            f"expected {JSON_CONTENT_TYPE!r} (the default) or {PROTOBUF_CONTENT_TYPE!r}",
        )
    return payload, checks


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


def _parse_json(data: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Rejected(reasons.UNDECODABLE, f"data is not valid JSON: {exc}") from None
    if type(payload) is not dict:
        raise Rejected(reasons.UNDECODABLE, f"the payload must be a JSON object, got {show(payload)}")
    return payload


def _parse_protobuf(data: bytes) -> dict[str, Any]:
    try:
        message = ingest_pb2.IngestMessage.FromString(data)
    except DecodeError as exc:
        raise Rejected(reasons.UNDECODABLE, f"data is not a valid protobuf IngestMessage: {exc}") from None
    return proto_to_payload(message)
