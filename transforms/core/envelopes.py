"""Archive lines and dead-letter records (rule 8, E11, E15).

An archive is newline-delimited JSON. Each line is one of:

- an envelope ``{"message_id", "publish_time", "attributes", "data"}`` whose
  ``data`` is the payload as a JSON value (the message's bytes are then its
  compact JSON encoding, and the size limit applies to those bytes, E15), or
  with ``data_b64`` instead: the message's bytes in base64 (protobuf payloads,
  or bytes that must be kept exactly);
- a raw payload (no envelope): the message's bytes are the line's own (without
  the whitespace around it), so its size is measured as it was written, its
  time is the occurrence's ``detection_time`` or the status change's
  ``timestamp``, and its id is the payload's ``id`` (when it is at most
  ``limits.MAX_MESSAGE_ID_BYTES`` long), else a stable hash of the line.

An envelope may leave out ``message_id`` or ``publish_time``; they are then
taken from the payload as for a raw payload. A ``message_id`` longer than
``limits.MAX_MESSAGE_ID_BYTES`` (1024 bytes, what a dead letter's
``original_message_id`` attribute holds) makes the line unreadable. ``publish_time`` is RFC 3339 (any
ISO 8601 date-time, or epoch seconds, is accepted). Keys other than the
envelope's are ignored, so a dead-letter file (below) is itself an archive.

``archive_line`` writes a message as an envelope line (the archive tool uses it).

Dead letters are written in two forms:

- on Pub/Sub (``dead_letter_to_pubsub``): the original bytes, and the original
  attributes plus ``dead_letter_reason``, ``dead_letter_error``,
  ``dead_letter_stage``, ``original_message_id`` and ``original_publish_time``,
  within Pub/Sub's limits (``transforms.core.dead_letter_fit``: what gives way
  when the original cannot be kept whole is named in ``dead_letter_truncated``);
- in files (``dead_letter_to_line``): an archive envelope of the original
  message plus ``reason``, ``error`` and ``stage``.

Replaying a dead letter (publishing its bytes and attributes again, or reading
a dead-letter file as an archive) reprocesses the original message: decoding
reads no attribute but ``content_type``, so the five dead-letter attributes
change nothing. They always describe the most recent failure only: when a
replayed message fails again, the old ones are dropped and the new failure's
written (on Pub/Sub as attributes, in files as ``reason``/``error``/``stage``;
a dead-letter line never carries them in its ``attributes``).

A line that cannot be read becomes a dead letter of stage "read" whose bytes
are the line itself: ``undecodable`` when it is not JSON, not a JSON object,
or not a valid envelope; ``missing_field`` (or ``invalid_field``) when no
message time can be found. A line's time that cannot be read is 0 (the epoch).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import msgspec
import orjson

from transforms.core import limits, reasons
from transforms.core.dead_letter_fit import DEAD_LETTER_TRUNCATED, FittedMessage, fit_pubsub_message
from transforms.core.decode import CONTENT_TYPE_ATTRIBUTE, PAYLOAD_STATUS_CHANGE, parse_time
from transforms.core.limits import PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES
from transforms.core.model import DeadLetter, RawMessage, to_rfc3339

DEAD_LETTER_REASON = "dead_letter_reason"
DEAD_LETTER_ERROR = "dead_letter_error"
DEAD_LETTER_STAGE = "dead_letter_stage"
ORIGINAL_MESSAGE_ID = "original_message_id"
ORIGINAL_PUBLISH_TIME = "original_publish_time"
DEAD_LETTER_ATTRIBUTES = frozenset(
    {
        DEAD_LETTER_REASON,
        DEAD_LETTER_ERROR,
        DEAD_LETTER_STAGE,
        ORIGINAL_MESSAGE_ID,
        ORIGINAL_PUBLISH_TIME,
        DEAD_LETTER_TRUNCATED,  # only when something had to give way (transforms.core.dead_letter_fit)
    }
)
# Pub/Sub refuses attribute values longer than 1024 bytes.
MAX_ATTRIBUTE_BYTES = PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES


class _Unreadable(Exception):
    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


def parse_archive_line(line: bytes | str, line_no: int, source: str) -> RawMessage | DeadLetter:
    """One archive line as the message it holds, or a dead letter (stage "read"); never raises.

    ``line_no`` and ``source`` (e.g. the file's path) only name the line in
    error messages. Leading and trailing whitespace (the newline) is ignored;
    readers should skip blank lines, which are ``undecodable`` here. A ``str``
    line (as Beam's ``ReadFromText`` gives by default) is taken as UTF-8.
    """
    if isinstance(line, str):
        line = line.encode(
            "utf-8", errors="replace"
        )  # lone surrogates cannot be encoded: the line is then not JSON
    text = line.strip()
    try:
        return _parse(text)
    except _Unreadable as exc:
        error = f"{source}:{line_no}: {exc.error}"
        return DeadLetter(line_id(text), 0, text, {}, exc.reason, error, reasons.STAGE_READ)
    except Exception as exc:  # the guard: a bad line is a value, never an escaping exception
        error = f"{source}:{line_no}: unexpected error while reading the line: {type(exc).__name__}: {exc}"
        return DeadLetter(line_id(text), 0, text, {}, reasons.UNDECODABLE, error, reasons.STAGE_READ)


def line_id(line: bytes) -> str:
    """The stable id of a line whose message has none: a hash of the line's bytes."""
    return hashlib.sha256(line).hexdigest()[:32]


def _parse(text: bytes) -> RawMessage:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _Unreadable(reasons.UNDECODABLE, f"the line is not JSON: {exc}") from None
    if type(value) is not dict:
        raise _Unreadable(
            reasons.UNDECODABLE,
            "the line must be a JSON object (an envelope or a payload), got JSON " + _kind(value),
        )
    if "data" in value or "data_b64" in value:
        return _envelope(value, text)
    return RawMessage(_payload_id(value) or line_id(text), _payload_time(value), text, {})


def _envelope(envelope: dict[str, Any], text: bytes) -> RawMessage:
    payload: Any = None
    if "data" in envelope:
        if "data_b64" in envelope:
            raise _Unreadable(reasons.UNDECODABLE, "the envelope has both data and data_b64; give one")
        payload = envelope["data"]
        data = orjson.dumps(payload)
    else:
        encoded = envelope["data_b64"]
        if type(encoded) is not str:
            raise _Unreadable(
                reasons.UNDECODABLE, f"data_b64 must be a base64 string, got JSON {_kind(encoded)}"
            )
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Unreadable(reasons.UNDECODABLE, f"data_b64 is not valid base64: {exc}") from None

    attributes = envelope.get("attributes")
    if attributes is None:
        attributes = {}
    elif type(attributes) is not dict or not all(type(v) is str for v in attributes.values()):
        raise _Unreadable(
            reasons.UNDECODABLE,
            "attributes must be an object whose values are strings, got JSON " + _kind(attributes),
        )

    message_id = envelope.get("message_id")
    if message_id is not None:
        if type(message_id) is int:
            message_id = str(message_id)
        elif type(message_id) is not str or not message_id:
            raise _Unreadable(
                reasons.UNDECODABLE, f"message_id must be a non-empty string, got JSON {_kind(message_id)}"
            )
        size = limits.exceeds(message_id, limits.MAX_MESSAGE_ID_BYTES)
        if size is not None:
            raise _Unreadable(
                reasons.UNDECODABLE,
                f"message_id is {size} bytes, more than the limit of {limits.MAX_MESSAGE_ID_BYTES}",
            )

    publish_time = envelope.get("publish_time")
    if publish_time is not None:
        try:
            message_time = parse_time(publish_time)
        except ValueError as exc:
            raise _Unreadable(reasons.UNDECODABLE, f"publish_time {exc}: {publish_time!r}") from None
    if message_id is None or publish_time is None:
        if payload is None and "data_b64" in envelope:
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                payload = None
        if type(payload) is not dict:
            if publish_time is None:
                raise _Unreadable(
                    reasons.MISSING_FIELD,
                    "no message time: the envelope has no publish_time and its data is not a JSON payload "
                    "to take the time from",
                )
            payload = {}
        if message_id is None:
            message_id = _payload_id(payload) or line_id(text)
        if publish_time is None:
            message_time = _payload_time(payload)
    return RawMessage(message_id, message_time, data, attributes)


def _payload_id(payload: dict[str, Any]) -> str | None:
    value = payload.get("id")
    if type(value) is str and value:
        return None if limits.exceeds(value, limits.MAX_MESSAGE_ID_BYTES) else value
    if type(value) is int:
        return str(value)
    return None


def _payload_time(payload: dict[str, Any]) -> int:
    """The message time of a payload without an envelope: detection_time, or a status change's timestamp."""
    field = "timestamp" if payload.get("payload_type") == PAYLOAD_STATUS_CHANGE else "detection_time"
    value = payload.get(field)
    if value is None:
        raise _Unreadable(
            reasons.MISSING_FIELD,
            f"no message time: the line has no envelope publish_time and the payload has no {field}",
        )
    try:
        return parse_time(value)
    except ValueError as exc:
        raise _Unreadable(
            reasons.INVALID_FIELD, f"no message time: the payload's {field} {exc}, got {value!r}"
        ) from None


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------------------
# Dead letters


def with_message_time(dead_letter: DeadLetter, timestamp_attribute: str | None) -> DeadLetter:
    """The dead letter with its message time in ``timestamp_attribute`` (RFC 3339), when it was made past
    keying (stages ``apply`` and ``write``) and does not carry that attribute: such a message travelled
    without its attributes, so without it a republished dead letter would take its new publish time. A dead
    letter of an earlier stage keeps its original attributes as they came."""
    if (
        timestamp_attribute is None
        or dead_letter.stage not in _PAST_KEYING
        or timestamp_attribute in dead_letter.attributes
    ):
        return dead_letter
    attributes = {**dead_letter.attributes, timestamp_attribute: to_rfc3339(dead_letter.message_time)}
    return msgspec.structs.replace(dead_letter, attributes=attributes)


_PAST_KEYING = frozenset({reasons.STAGE_APPLY, reasons.STAGE_WRITE})


def dead_letter_to_pubsub(
    dead_letter: DeadLetter, *, first: tuple[str | None, ...] = ()
) -> tuple[bytes, dict[str, str]]:
    """The message to publish on a dead-letter topic: original bytes; original attributes plus the failure,
    within Pub/Sub's limits (``fit_dead_letter``)."""
    fitted = fit_dead_letter(dead_letter, first=first)
    return fitted.data, fitted.attributes


def fit_dead_letter(dead_letter: DeadLetter, *, first: tuple[str | None, ...] = ()) -> FittedMessage:
    """``dead_letter_to_pubsub``, with what gave way to Pub/Sub's limits (``transforms.core.dead_letter_fit``).
    ``content_type`` and the ``first`` attributes (the timestamp attribute) are the last originals to go."""
    failure = {
        DEAD_LETTER_REASON: dead_letter.reason,
        DEAD_LETTER_ERROR: dead_letter.error,
        DEAD_LETTER_STAGE: dead_letter.stage,
        ORIGINAL_MESSAGE_ID: dead_letter.message_id,
        ORIGINAL_PUBLISH_TIME: to_rfc3339(dead_letter.message_time),
    }
    return fit_pubsub_message(
        dead_letter.data,
        _original_attributes(dead_letter.attributes),
        failure,
        first=(CONTENT_TYPE_ATTRIBUTE, *first),
        error_key=DEAD_LETTER_ERROR,
    )


def archive_line(message: RawMessage) -> bytes:
    """One archive line (no trailing newline): the message's envelope, ``data`` as for a dead-letter line.

    ``parse_archive_line`` reads it back as the same message (id, time, bytes and attributes).
    """
    return orjson.dumps(
        _envelope_record(message.message_id, message.message_time, message.attributes, message.data)
    )


def dead_letter_to_line(dead_letter: DeadLetter) -> bytes:
    """One dead-letter file line (no trailing newline): an archive envelope plus reason, error and stage.

    ``data`` is written as a JSON value when the bytes are a compact JSON
    document that re-encodes to exactly the same bytes; otherwise as
    ``data_b64``. Reading the line back gives the same bytes, attributes, id
    and time.
    """
    record = _envelope_record(
        dead_letter.message_id,
        dead_letter.message_time,
        _original_attributes(dead_letter.attributes),
        dead_letter.data,
    )
    record["reason"] = dead_letter.reason
    record["error"] = dead_letter.error
    record["stage"] = dead_letter.stage
    return orjson.dumps(record)


def _envelope_record(
    message_id: str, message_time: int, attributes: dict[str, str], data: bytes
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "message_id": message_id,
        "publish_time": to_rfc3339(message_time),
        "attributes": attributes,
    }
    value = _as_json_value(data)
    if value is _NOT_JSON:
        record["data_b64"] = base64.b64encode(data).decode("ascii")
    else:
        record["data"] = value
    return record


_NOT_JSON = object()


def _as_json_value(data: bytes) -> Any:
    try:
        value = orjson.loads(data)
        if orjson.dumps(value) == data:
            return value
    except (orjson.JSONDecodeError, TypeError):
        pass
    return _NOT_JSON


def _original_attributes(attributes: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in attributes.items() if key not in DEAD_LETTER_ATTRIBUTES}
