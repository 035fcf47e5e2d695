"""The pages' time range: a preset (24 h, 7 d, 14 d, 30 d) or a custom start and end, as the issue index's
``statsPeriod`` / ``start`` + ``end`` and as the chart's buckets.

The issue page charts ranges of up to seven days per hour and longer ones per day; the stream's sparklines,
a few pixels a bar, go per day beyond two days. Buckets are UTC-aligned and cover the range (the first may
begin before it, the last ends after now). A custom range is given in UTC, as the browser's
``datetime-local`` inputs send it (``2026-01-01T09:30``) or in full ISO 8601, and may span at most a year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from api.issue_details import DAY, HOUR, Buckets
from transforms.core.model import MICROS, from_datetime, to_datetime

PRESETS: dict[str, int] = {"24h": DAY, "7d": 7 * DAY, "14d": 14 * DAY, "30d": 30 * DAY}
PRESET_LABELS = {"24h": "Last 24 hours", "7d": "Last 7 days", "14d": "Last 14 days", "30d": "Last 30 days"}
DEFAULT_PERIOD = "14d"
CUSTOM = "custom"
CHART_HOURLY_UP_TO = 7 * DAY
SPARKLINE_HOURLY_UP_TO = 2 * DAY
MAX_CUSTOM = 366 * DAY


class RangeError(ValueError):
    """A custom range the pages cannot use; ``str()`` is shown next to the range picker."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    period: str  # a PRESETS key or CUSTOM
    start: int
    end: int
    custom_start: str = ""  # as typed, for the form
    custom_end: str = ""

    @property
    def buckets(self) -> Buckets:
        """The issue page chart's buckets."""
        size = HOUR if self.end - self.start <= CHART_HOURLY_UP_TO else DAY
        return Buckets.covering(self.start, self.end, size)

    @property
    def sparkline_buckets(self) -> Buckets:
        size = HOUR if self.end - self.start <= SPARKLINE_HOURLY_UP_TO else DAY
        return Buckets.covering(self.start, self.end, size)

    @property
    def label(self) -> str:
        if self.period in PRESET_LABELS:
            return PRESET_LABELS[self.period]
        return f"{_short(self.start)} – {_short(self.end)} UTC"

    def list_params(self) -> dict[str, str]:
        """The issue index's window parameters for this range."""
        if self.period == CUSTOM:
            return {"start": _iso(self.start), "end": _iso(self.end)}
        return {"statsPeriod": self.period}

    def query_params(self) -> dict[str, str]:
        """What the page URL carries for this range."""
        if self.period == CUSTOM:
            return {"period": CUSTOM, "start": self.custom_start, "end": self.custom_end}
        return {"period": self.period}


def parse_range(period: str | None, start: str | None, end: str | None, now: int) -> TimeRange:
    """The range a page asks for; an unknown preset means the default. Raises ``RangeError`` for a custom
    range that is incomplete, unreadable, reversed or longer than a year."""
    if period == CUSTOM or (not period and (start or end)):
        if not start or not end:
            raise RangeError("A custom range needs both a start and an end.")
        begin, finish = _parse_time(start, "start"), _parse_time(end, "end")
        if begin >= finish:
            raise RangeError("The start of the range must be before its end.")
        if finish - begin > MAX_CUSTOM:
            raise RangeError("A custom range may span at most a year.")
        return TimeRange(CUSTOM, begin, finish, start, end)
    preset = period if period in PRESETS else DEFAULT_PERIOD
    return TimeRange(preset, now - PRESETS[preset], now)


def _parse_time(value: str, name: str) -> int:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RangeError(f'The {name} "{value}" is not a date and time (YYYY-MM-DDTHH:MM, UTC).') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return from_datetime(moment)


def _iso(micros: int) -> str:
    return to_datetime(micros).strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def _short(micros: int) -> str:
    moment = to_datetime(micros)
    return f"{moment:%b} {moment.day} {moment:%H:%M}"


def relative(micros: int, now: int) -> str:
    """``5 min ago``, ``3 hr ago``, ``2 days ago`` (``in 5 min`` for the future), as Sentry words it."""
    seconds = (now - micros) // MICROS
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 86_400:
        text = f"{seconds // 3600} hr"
    elif seconds < 30 * 86_400:
        days = seconds // 86_400
        text = f"{days} day{'s' if days != 1 else ''}"
    elif seconds < 365 * 86_400:
        text = f"{seconds // (30 * 86_400)} mo"
    else:
        years = seconds // (365 * 86_400)
        text = f"{years} yr"
    return f"in {text}" if future else f"{text} ago"


def absolute(micros: int) -> str:
    """``2026-01-01 09:30:05 UTC``."""
    return to_datetime(micros).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(micros: int) -> str:
    """For ``<time datetime=...>``."""
    return to_datetime(micros).isoformat().replace("+00:00", "Z")
