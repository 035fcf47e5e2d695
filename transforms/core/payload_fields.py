"""The field checks both payload types share, and how decoding reports a failed one.

A check either returns the field's decoded value or raises ``Rejected`` with a
reason code of ``transforms.core.reasons`` and a message naming the field, what
it must be, and (through ``show``) what it was. ``parse_time`` and
``check_micros`` are the one reading of a timestamp the pipeline has: decoding,
envelopes and the archive readers all use them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from hashlib import md5
from typing import Any

from transforms.core import limits, reasons
from transforms.core.model import MICROS

PAYLOAD_OCCURRENCE = "occurrence"
PAYLOAD_STATUS_CHANGE = "status_change"

MAX_INT64 = (1 << 63) - 1
# The range datetime and a Spanner TIMESTAMP can represent (years 1 to 9999, UTC), in epoch seconds.
MIN_EPOCH_SECONDS = -62_135_596_800
MAX_EPOCH_SECONDS = 253_402_300_799
_MIN_MICROS = MIN_EPOCH_SECONDS * MICROS
_MAX_MICROS = (MAX_EPOCH_SECONDS + 1) * MICROS - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

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


class Checks:
    """What a message's size and shape make worth checking beyond its fields' types (see ``transforms.core.decode``)."""

    __slots__ = ("deep", "large")

    def __init__(self, deep: bool, large: bool) -> None:
        self.deep = deep  # a JSON value may be nested past MAX_JSON_FIELD_DEPTH: measure them
        self.large = large  # a stored JSON document may be larger than Spanner's: measure them


SHALLOW = Checks(False, False)  # a small JSON payload with fewer brackets than the depth limit


def check_project_id(value: Any) -> int:
    if type(value) is not int or not 0 < value <= MAX_INT64:
        raise invalid("project_id", "must be a positive 64-bit integer", value, None)
    return value


# Fingerprint parts repeat (every occurrence of a group sends the same ones): recent digests are remembered
# (what that saves: docs/performance.md, bench.decode). Bounded in entries and in the length of what it keeps
# (about 11 MB if every part were 512 ASCII characters; a dict of str is not tracked by the collector). It is
# emptied when full, so it must hold the parts a worker sees again within a while, or it is emptied over and
# over. Dict reads and writes are atomic, so threads sharing it can at worst compute a digest twice.
hash_cache: dict[str, str] = {}
_HASH_CACHE_SIZE = 16_384
_HASH_CACHE_MAX_PART = 512


def check_fingerprint(value: Any, project_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Check the fingerprint and hash each part (lowercase hex MD5 of its UTF-8 bytes, ref a.5)."""
    if type(value) is not list:
        raise invalid("fingerprint", "must be a non-empty list of non-empty strings", value, project_id)
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
            raise invalid(f"fingerprint[{index}]", "must be a non-empty string", part, project_id)
    return tuple(value), fingerprint_hashes(value)


def fingerprint_hashes(parts: list[str]) -> tuple[str, ...]:
    hashes = []
    cache = hash_cache
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


UUID_EXPECTED = "must be a UUID (32 hex digits, with or without dashes)"


def normalised_uuid(value: Any) -> str | None:
    """32 lowercase hex characters, or None when ``value`` is not a hex or dashed UUID string."""
    if type(value) is not str:
        return None
    if len(value) == 32:
        return value.lower() if _is_hex32(value) else None
    if len(value) == 36 and _is_dashed_uuid(value):
        return value.replace("-", "").lower()
    return None


def invalid_uuid(field: str, value: Any, project_id: int) -> Rejected:
    return invalid(field, UUID_EXPECTED, value, project_id)


def string_field(p: dict[str, Any], field: str, project_id: int) -> str:
    value = p[field]
    if type(value) is not str:
        raise invalid(field, "must be a string", value, project_id)
    return value


def optional_string_field(p: dict[str, Any], field: str, project_id: int) -> str | None:
    value = p.get(field)
    if value is not None and type(value) is not str:
        raise invalid(field, "must be a string or null", value, project_id)
    return value


def parse_time(value: Any) -> int:
    """A timestamp as microseconds since the epoch; raises ``ValueError`` saying what is wrong.

    Numbers are epoch seconds (int or float); strings are ISO 8601 date-times,
    with or without a UTC offset (offsets are honoured; none means UTC). The time
    must lie within years 1 to 9999 in UTC, what a Spanner TIMESTAMP holds.
    """
    kind = type(value)
    if kind is int:
        if not MIN_EPOCH_SECONDS <= value <= MAX_EPOCH_SECONDS:
            raise ValueError("is out of range for a timestamp (years 1 to 9999)")
        micros: int = value * MICROS
        return micros
    if kind is float:
        if not math.isfinite(value) or not MIN_EPOCH_SECONDS <= value <= MAX_EPOCH_SECONDS:
            raise ValueError("must be a finite number of seconds within years 1 to 9999")
        rounded: int = round(value * MICROS)
        return rounded
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


def time_field(value: Any, field: str, reason: str, project_id: int) -> int:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise Rejected(reason, f"{field} {exc}, got {show(value)}", project_id) from None


def invalid(field: str, expected: str, value: Any, project_id: int | None) -> Rejected:
    return Rejected(reasons.INVALID_FIELD, f"{field} {expected}, got {show(value)}", project_id)


def invalid_event(field: str, expected: str, value: Any, project_id: int) -> Rejected:
    return Rejected(reasons.INVALID_EVENT, f"{field} {expected}, got {show(value)}", project_id)


def missing_message(p: dict[str, Any], missing: list[str]) -> str:
    names = [f"{name} (null means absent)" if name in p else name for name in missing]
    noun = "field" if len(names) == 1 else "fields"
    return f"missing required {noun}: {', '.join(names)}"


_SHOW_LIMIT = 80


def show(value: Any) -> str:
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
    if kind is Unrepresentable:
        description: str = value.description
        return description
    return f"a {kind.__name__}"


class Unrepresentable:
    """Stands for a protobuf value JSON cannot carry (a non-finite number), so the field's check rejects it."""

    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description
