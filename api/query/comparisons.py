"""Comparisons in terms (``>``, ``<=``, ``!=`` ...): relative and absolute times, counts, and the
``statsPeriod``/``start``/``end`` parameters of a request."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from api.query.conditions import Interval
from api.query.syntax import QueryError, Term, clip
from transforms.core import durations
from transforms.core.model import MICROS, from_datetime

_OPERATOR_RE = re.compile(r"(>=|<=|!=|>|<|=)?(.*)", re.DOTALL)
_RELATIVE_RE = re.compile(r"([+-])(\d{1,9})([smhdw])")
_NUMBER_RE = re.compile(r"(\d+(?:\.\d+)?)([kmb]?)")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

_UNIT_SECONDS = durations.STATS_PERIOD.units  # the units of a relative time, as of statsPeriod
_NUMBER_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
_SPECIFIC_DATETIME_SLACK = 5 * 60 * MICROS
# The largest count a filter may name (Spanner's INT64), and the earliest time (Spanner's TIMESTAMP range).
_MAX_INT = 2**63 - 1
MIN_TIME = from_datetime(datetime(1, 1, 1, tzinfo=UTC))
MAX_TIME = from_datetime(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))


def split_operator(term: Term) -> tuple[str | None, str]:
    raw = term.value
    if term.quoted:
        return None, raw
    match = _OPERATOR_RE.fullmatch(raw)
    assert match is not None  # the pattern matches any string
    operator, value = match.group(1), match.group(2)
    if operator == "=":
        operator = None
    if not value:
        raise term.error("missing value after the comparison operator")
    return operator, value


def _compare(operator: str, value: int) -> Interval:
    if operator == ">":
        return Interval(value + 1, None)
    if operator == ">=":
        return Interval(value, None)
    if operator == "<":
        return Interval(None, value - 1)
    return Interval(None, value)  # <=


NEGATED_OPERATOR = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "=": "!=", "!=": "="}


def date_interval(term: Term, now: int) -> Interval:
    if term.is_list:
        raise term.error("a list is not allowed here; use a comparison such as >, >=, < or <=")
    operator, value = split_operator(term)
    if operator == "!=":
        raise term.error("use a comparison such as < or > for times")
    relative = _RELATIVE_RE.fullmatch(value)
    if relative:
        sign, amount, unit = relative.groups()
        moment = max(now - int(amount) * _UNIT_SECONDS[unit] * MICROS, MIN_TIME)
        if operator is None:
            operator = ">=" if sign == "-" else "<="
        if term.negated:
            operator = NEGATED_OPERATOR[operator]
        return _compare(operator, moment)
    moment, is_date = _parse_datetime(term, value)
    if operator is not None:
        if term.negated:
            operator = NEGATED_OPERATOR[operator]
        return _compare(operator, moment)
    if term.negated:
        raise term.error("a date range cannot be negated; use a comparison such as < or >")
    if is_date:
        return Interval(moment, moment + 24 * 3600 * MICROS - 1)
    return Interval(moment - _SPECIFIC_DATETIME_SLACK, moment + _SPECIFIC_DATETIME_SLACK - 1)


def _parse_datetime(term: Term, value: str) -> tuple[int, bool]:
    """(the moment in micros, whether ``value`` was a date without a time); naive values are UTC."""
    try:
        if _DATE_RE.fullmatch(value):
            return from_datetime(datetime.fromisoformat(value).replace(tzinfo=UTC)), True
        if not _DATE_RE.match(value):
            raise ValueError(value)
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise term.error(
            f'invalid date "{clip(value)}" (use an ISO 8601 date or datetime, or a relative time such as -24h or -14d)'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return from_datetime(moment), False


def number_interval(term: Term) -> Interval:
    if term.is_list:
        raise term.error("a list is not allowed here; use a comparison such as >, >=, < or <=")
    operator, value = split_operator(term)
    match = _NUMBER_RE.fullmatch(value.lower())
    if not match:
        raise term.error(f'invalid number "{clip(value)}" (use e.g. 10, >100 or <=1k)')
    number = float(match.group(1)) * _NUMBER_SCALE[match.group(2)]
    if number > _MAX_INT or number != int(number):
        raise term.error(f'invalid number "{clip(value)}" (a whole count is expected)')
    count = int(number)
    if operator is None:
        if term.negated:
            raise term.error("an exact count cannot be negated; use a comparison such as < or >")
        return Interval(count, count)
    if operator == "!=":
        raise term.error("use a comparison such as < or > for counts")
    if term.negated:
        operator = NEGATED_OPERATOR[operator]
    return _compare(operator, count)


def parse_relative_period(value: str) -> int:
    """``statsPeriod`` such as ``24h`` or ``14d`` in microseconds; raises ``QueryError`` otherwise."""
    try:
        seconds = durations.parse(value, durations.STATS_PERIOD)
    except durations.DurationError:
        raise QueryError(f'invalid statsPeriod "{clip(value)}" (use e.g. 24h, 14d or 90d)') from None
    return int(seconds) * MICROS


def parse_timestamp(value: str, name: str) -> int:
    """An absolute ``start``/``end`` parameter (ISO 8601, UTC when no offset) in microseconds."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise QueryError(f'invalid {name} "{clip(value)}" (use an ISO 8601 datetime)') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return from_datetime(moment)
