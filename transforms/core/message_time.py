"""A message's time from its timestamp attribute (``--timestamp_attribute``), read by us rather than by Beam.

Beam's Pub/Sub readers parse the attribute before the pipeline sees the message, and a value they cannot parse
fails the whole pull: locally the pull was redelivered again and again and none of its messages was applied.
Here the value is parsed where the message enters the pipeline, the same way in streaming (every runner) and
in the backfill, and a value that cannot be read makes the message a dead letter (``invalid_field``, stage
``read``) with its bytes and attributes, while its neighbours go on.

What is accepted is what Beam's readers accepted: epoch milliseconds (an integer, as Python's ``int`` reads
it), or an ISO 8601 date-time such as RFC 3339 (as ``dateutil``'s ``isoparse`` reads it, which Beam uses),
fractions of a microsecond dropped (Beam floors them). Two differences, both on values Beam gave a meaning we
do not want: a date-time without an offset is UTC (Beam took the local time zone of the machine), and the time
must fall within the years 1 to 9999 (what Spanner and the rest of the pipeline hold; Beam took any).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from transforms.core import reasons
from transforms.core.model import MICROS, DeadLetter, RawMessage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_MICROS = -62_135_596_800 * MICROS  # 0001-01-01T00:00:00Z
MAX_MICROS = 253_402_300_800 * MICROS - 1  # 9999-12-31T23:59:59.999999Z
_MAX_FRACTION_DIGITS = 9  # Beam refuses a fraction of a second finer than nanoseconds


def parse_timestamp_attribute(value: str) -> int:
    """The time in a timestamp attribute, in microseconds since the epoch; raises ``ValueError`` saying what is
    wrong (the message completes "timestamp attribute NAME ...")."""
    try:
        millis = int(value)
    except ValueError:
        micros = _parse_date_time(value)
    else:
        if not MIN_MICROS <= millis * 1000 <= MAX_MICROS:
            raise ValueError("is out of range for a timestamp (years 1 to 9999)")
        return millis * 1000
    if not MIN_MICROS <= micros <= MAX_MICROS:
        raise ValueError("is out of range for a timestamp (years 1 to 9999)")
    return micros


# The RFC 3339 date-times producers send: read by ``datetime.fromisoformat`` (in C, far cheaper: see
# docs/performance.md), which gives them the same time as ``isoparse``; any other form goes through
# ``isoparse``, as in Beam.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")
_FRACTIONS = re.compile(r"(?<=\d)[.,](\d+)")


def _parse_date_time(value: str) -> int:
    moment = None
    if _RFC3339.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:  # e.g. 24:00:00, which isoparse reads as the next midnight
            moment = None
    if moment is None:
        moment = _isoparse(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        delta = moment - _EPOCH
    except OverflowError:  # an offset that takes it outside the years 1 to 9999
        raise ValueError("is out of range for a timestamp (years 1 to 9999)") from None
    return (delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds


def _isoparse(value: str) -> datetime:
    from dateutil.parser import isoparse

    try:
        moment = isoparse(value)
    except (ValueError, OverflowError):
        raise ValueError("is neither epoch milliseconds nor an RFC 3339 time") from None
    if max((len(digits) for digits in _FRACTIONS.findall(value)), default=0) > _MAX_FRACTION_DIGITS:
        raise ValueError("has a fraction of a second finer than nanoseconds")
    return moment


def timestamp_attribute_dead_letter(
    message_id: str, message_time: int, data: bytes, attributes: dict[str, str], attribute: str, error: str
) -> DeadLetter:
    """The dead letter of a message whose timestamp attribute cannot be read: its bytes and attributes as they
    came, its publish (or archived) time, ``invalid_field`` at stage ``read``."""
    return DeadLetter(
        message_id,
        message_time,
        data,
        attributes,
        reasons.INVALID_FIELD,
        f"timestamp attribute {attribute} {error}, got {_show(attributes[attribute])}",
        reasons.STAGE_READ,
    )


def with_attribute_time(message: RawMessage, attribute: str) -> RawMessage | DeadLetter:
    """``message`` with its time from ``attribute`` when it carries it (else as it is), or its dead letter."""
    value = message.attributes.get(attribute)
    if value is None:
        return message
    try:
        micros = parse_timestamp_attribute(value)
    except ValueError as error:
        return timestamp_attribute_dead_letter(
            message.message_id, message.message_time, message.data, message.attributes, attribute, str(error)
        )
    return RawMessage(message.message_id, micros, message.data, message.attributes)


_SHOW_LIMIT = 80


def _show(value: str) -> str:
    shown = repr(value)
    return shown if len(shown) <= _SHOW_LIMIT else shown[: _SHOW_LIMIT - 3] + "..."
