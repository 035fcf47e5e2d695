"""The last line of defence: an exception nobody expected while handling one message sets that message aside.

Every step that handles messages one by one (ingest, decoding, the project check, keying, the engine, the
rows of a key's write) catches what its code did not expect for a message, and that message becomes a dead
letter ``internal_error`` naming the stage and the error, while the rest of its bundle goes on: a bug or an
unknown limit costs one message, never the pipeline. The caller counts it (``dead_letters.internal_error``);
here it is logged, with its traceback the first ``TRACEBACKS`` times a stage fails with one kind of exception
in a process (the same bug for every message of a flood would otherwise bury the log), then in one line.

Errors that are not the message's (Spanner or Redis unavailable, a commit aborted) are not caught here: they
fail the bundle, which Beam retries.

A dead letter made after the project check carries the message re-encoded as JSON when its original bytes
(and attributes) were let go (``transforms.core.reencode``), with ``content_type`` ``application/json``, so
republishing it replays the message; on Pub/Sub it also carries its message time in the timestamp attribute
(``transforms.core.envelopes.with_message_time``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from transforms.core import reasons
from transforms.core.decode import CONTENT_TYPE_ATTRIBUTE, JSON_CONTENT_TYPE
from transforms.core.model import DeadLetter, Message
from transforms.core.reencode import payload_json

_LOG = logging.getLogger(__name__)

TRACEBACKS = 10  # per (stage, exception class) and process
MAX_ERROR_CHARS = 500  # the error travels in a Pub/Sub attribute (values up to 1,024 bytes)

_lock = threading.Lock()
_logged: dict[tuple[str, str], int] = {}


def describe(stage: str, error: BaseException) -> str:
    """The dead letter's error: what failed where, short enough for an attribute."""
    text = f"unexpected {type(error).__name__} at stage {stage}: {error}"
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 3] + "..."
    return text


def log(stage: str, message_id: str, error: BaseException) -> None:
    kind = (stage, type(error).__name__)
    with _lock:
        seen = _logged.get(kind, 0)
        _logged[kind] = seen + 1
    if seen < TRACEBACKS:
        _LOG.error(
            "internal error at stage %s for message %s (dead-lettered internal_error): %s",
            stage,
            message_id,
            error,
            exc_info=error,
        )
    else:
        _LOG.error(
            "internal error at stage %s for message %s (dead-lettered internal_error): %s: %s "
            "(traceback logged before)",
            stage,
            message_id,
            type(error).__name__,
            error,
        )


def dead_letter(
    message_id: str,
    message_time: int,
    data: bytes,
    attributes: dict[str, str],
    stage: str,
    error: BaseException,
    project_id: int | None = None,
) -> DeadLetter:
    """Log the error and make the message's dead letter (see the module docstring)."""
    log(stage, message_id, error)
    return DeadLetter(
        message_id,
        message_time,
        data,
        attributes,
        reasons.INTERNAL_ERROR,
        describe(stage, error),
        stage,
        project_id,
    )


def for_message(message: Message, stage: str, error: BaseException) -> DeadLetter:
    """The dead letter of a decoded message: its bytes as delivered, or re-encoded when they were let go."""
    data, attributes = message.data, dict(message.attributes)
    if not data:
        try:
            data = payload_json(message.payload)
        except Exception:  # nothing better to give: the error says what happened, the id which message
            data = b""
        else:
            attributes[CONTENT_TYPE_ATTRIBUTE] = JSON_CONTENT_TYPE
    return dead_letter(
        message.message_id,
        message.message_time,
        data,
        attributes,
        stage,
        error,
        message.payload.project_id,
    )


def for_delivered(message: Any, message_time: int, stage: str, error: BaseException) -> DeadLetter:
    """The dead letter of a message as delivered (a Pub/Sub message or a ``RawMessage``), read defensively:
    whatever failed may have been its fields."""
    try:
        data = bytes(getattr(message, "data", None) or b"")
    except Exception:
        data = b""
    try:
        attributes = {str(k): str(v) for k, v in dict(getattr(message, "attributes", None) or {}).items()}
    except Exception:
        attributes = {}
    try:
        message_id = str(getattr(message, "message_id", None) or "")
    except Exception:
        message_id = ""
    return dead_letter(message_id, message_time, data, attributes, stage, error)
