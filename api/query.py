"""The issue search language (rule 7): a query string becomes an ``IssueFilter``.

Syntax, a subset of Sentry's structured search. Terms are separated by whitespace and all must hold (AND)::

    term   := ["!"] key ":" value        a filter; "!" negates it
            | word | '"' phrase '"'     free text, matched against title and message
    value  := bare | '"' quoted '"' | "[" item ("," item)* "]"    (a list matches any of its items)

Keys: ``is`` (unresolved, resolved, ignored/archived/muted, the substatus names ongoing, new, regressed,
escalating, archived_until_escalating, archived_until_condition_met, archived_forever, and assigned /
unassigned), ``issue.priority``, ``issue.category``, ``issue.type`` (slugs), ``level``, ``release``,
``first_release``, ``environment``, ``firstSeen`` / ``age``, ``lastSeen`` (``>``, ``>=``, ``<``, ``<=`` with an
ISO 8601 date or datetime, or a relative time: ``-24h`` means within the last 24 hours, ``+14d`` more than 14 days
ago; a bare date means that UTC day, a bare datetime five minutes either side, as Sentry does), and
``timesSeen`` (comparisons, or an exact number; ``k``/``m``/``b`` suffixes). Free-text words are joined with
single spaces into one phrase, matched case-insensitively as a substring, as Sentry does.

Every error raises ``QueryError`` naming the offending term and its position (0-based character offset), so
the HTTP service answers 400 with a message a user can act on. ``parse_query`` never raises anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from api import limits
from transforms.core.enums import (
    CATEGORY_NAMES,
    LOG_LEVELS,
    GroupStatus,
    GroupSubStatus,
    Priority,
)
from transforms.core.grouptypes import GROUP_TYPES, GROUP_TYPES_BY_SLUG
from transforms.core.model import MICROS, from_datetime

UNRESOLVED_SUBSTATUSES = (
    GroupSubStatus.ONGOING,
    GroupSubStatus.ESCALATING,
    GroupSubStatus.REGRESSED,
    GroupSubStatus.NEW,
)
IGNORED_SUBSTATUSES = (
    GroupSubStatus.UNTIL_ESCALATING,
    GroupSubStatus.UNTIL_CONDITION_MET,
    GroupSubStatus.FOREVER,
)

# What a missing ``query`` parameter means (Sentry's default issue stream).
DEFAULT_QUERY = "is:unresolved issue.priority:[high, medium]"

# Statuses the index lists. Deleted groups leave the Groups table (rule 6.4), so there is no
# pending-deletion status to hide, and nothing here sets merge or reprocessing statuses.
LISTED_STATUSES: tuple[int, ...] = (GroupStatus.UNRESOLVED, GroupStatus.RESOLVED, GroupStatus.IGNORED)
# Every priority a group can carry; None is a group without one (Sentry allows it). Index ranges are cut by these.
PRIORITY_VALUES: tuple[int | None, ...] = (Priority.HIGH, Priority.MEDIUM, Priority.LOW, None)
# The (status, substatus) pairs a listed group can have: the valid pairs (transforms.core.enums), plus no
# substatus for any status (rows written before substatuses existed, as Sentry still allows for ignored). A
# substatus term implies its status, as in Sentry (``is:ongoing`` is unresolved and ongoing).
ALL_STATUS_PAIRS: frozenset[tuple[int, int | None]] = frozenset(
    {(GroupStatus.UNRESOLVED, int(s)) for s in UNRESOLVED_SUBSTATUSES}
    | {(GroupStatus.IGNORED, int(s)) for s in IGNORED_SUBSTATUSES}
    | {(status, None) for status in LISTED_STATUSES}
)
# Types that only appear when a query asks for them by category or type (feedback).
HIDDEN_TYPES: frozenset[int] = frozenset(t.type_id for t in GROUP_TYPES.values() if not t.in_default_search)

_PRIORITY_BY_NAME = {"high": Priority.HIGH, "medium": Priority.MEDIUM, "low": Priority.LOW}
_CATEGORY_BY_NAME = {name: number for number, name in CATEGORY_NAMES.items()}
_STATUS_BY_NAME = {
    "unresolved": GroupStatus.UNRESOLVED,
    "resolved": GroupStatus.RESOLVED,
    "ignored": GroupStatus.IGNORED,
    "archived": GroupStatus.IGNORED,
    "muted": GroupStatus.IGNORED,
}
_SUBSTATUS_BY_NAME = {
    "ongoing": GroupSubStatus.ONGOING,
    "new": GroupSubStatus.NEW,
    "regressed": GroupSubStatus.REGRESSED,
    "escalating": GroupSubStatus.ESCALATING,
    "archived_until_escalating": GroupSubStatus.UNTIL_ESCALATING,
    "archived_until_condition_met": GroupSubStatus.UNTIL_CONDITION_MET,
    "archived_forever": GroupSubStatus.FOREVER,
}
_ASSIGNMENT_BY_NAME = {"assigned": True, "unassigned": False}

_KEY_ALIASES = {
    "is": "is",
    "issue.priority": "issue.priority",
    "issue.category": "issue.category",
    "issue.type": "issue.type",
    "level": "level",
    "release": "release",
    "first_release": "first_release",
    "firstRelease": "first_release",
    "environment": "environment",
    "firstSeen": "firstSeen",
    "first_seen": "firstSeen",
    "age": "firstSeen",
    "lastSeen": "lastSeen",
    "last_seen": "lastSeen",
    "timesSeen": "timesSeen",
    "times_seen": "timesSeen",
}
SUPPORTED_KEYS: tuple[str, ...] = (
    "is",
    "issue.priority",
    "issue.category",
    "issue.type",
    "level",
    "release",
    "first_release",
    "environment",
    "firstSeen",
    "lastSeen",
    "age",
    "timesSeen",
)

_KEY_RE = re.compile(r"(!?)([A-Za-z_][A-Za-z0-9_.]*):")
_OPERATOR_RE = re.compile(r"(>=|<=|>|<|=)?(.*)", re.DOTALL)
_RELATIVE_RE = re.compile(r"([+-])(\d{1,9})([smhdw])")
_NUMBER_RE = re.compile(r"(\d+(?:\.\d+)?)([kmb]?)")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_NUMBER_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
_SPECIFIC_DATETIME_SLACK = 5 * 60 * MICROS
# The largest count a filter may name (Spanner's INT64), and the earliest time (Spanner's TIMESTAMP range).
_MAX_INT = 2**63 - 1
MIN_TIME = from_datetime(datetime(1, 1, 1, tzinfo=UTC))
MAX_TIME = from_datetime(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))


class QueryError(ValueError):
    """A query the index cannot run; ``str()`` is the message for the user (an HTTP 400 ``detail``)."""

    def __init__(self, message: str, position: int | None = None, term: str | None = None) -> None:
        self.message = message
        self.position = position
        self.term = term
        if position is None:
            detail = message
        else:
            detail = f'{message} at position {position} ("{clip(term or "")}")'
        super().__init__(f"Invalid search query: {detail}")


def clip(text: str, width: int = 60) -> str:
    """``text`` shortened for an error message."""
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True, slots=True)
class Term:
    """One term as written: ``key`` is None for free text; ``values`` has one item unless ``is_list``."""

    key: str | None
    values: tuple[str, ...]
    negated: bool
    quoted: bool
    is_list: bool
    start: int
    text: str

    def error(self, message: str) -> QueryError:
        return QueryError(message, self.start, self.text)


@dataclass(frozen=True, slots=True)
class Interval:
    """Inclusive integer bounds (microseconds for times); None is unbounded."""

    lo: int | None = None
    hi: int | None = None

    def intersect(self, other: Interval) -> Interval:
        lo = self.lo if other.lo is None else other.lo if self.lo is None else max(self.lo, other.lo)
        hi = self.hi if other.hi is None else other.hi if self.hi is None else min(self.hi, other.hi)
        return Interval(lo, hi)

    @property
    def empty(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo > self.hi

    @property
    def unbounded(self) -> bool:
        return self.lo is None and self.hi is None

    def contains(self, value: int) -> bool:
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)


@dataclass(frozen=True, slots=True)
class ValueSet:
    """Allowed values of one column: in ``include`` (unless None) and not in ``exclude``."""

    include: frozenset | None = None
    exclude: frozenset = frozenset()

    def restrict(self, values: frozenset, negated: bool) -> ValueSet:
        if negated:
            return ValueSet(self.include, self.exclude | values)
        include = values if self.include is None else self.include & values
        return ValueSet(include, self.exclude)

    def allows(self, value: object) -> bool:
        return (self.include is None or value in self.include) and value not in self.exclude

    @property
    def empty(self) -> bool:
        return self.include is not None and not (self.include - self.exclude)

    @property
    def unrestricted(self) -> bool:
        return self.include is None and not self.exclude


@dataclass(frozen=True, slots=True)
class Membership:
    """The group has (or, negated, has none of) these related values: releases or environments."""

    values: frozenset[str]
    negated: bool = False

    def holds(self, present: set[str] | frozenset[str]) -> bool:
        hit = not self.values.isdisjoint(present)
        return not hit if self.negated else hit


@dataclass(frozen=True, slots=True)
class IssueFilter:
    """What a query asks for, in terms of the Groups columns and the group relations.

    ``status_pairs`` are the allowed (status, substatus) pairs and ``priorities`` the allowed priorities: both
    cut the index into ranges. The rest are tested on each candidate row: column sets and intervals from the
    index row itself, ``releases``/``environments`` by key lookups, ``text`` against title and message.
    """

    status_pairs: frozenset[tuple[int, int | None]] = ALL_STATUS_PAIRS
    priorities: frozenset[int | None] = frozenset(PRIORITY_VALUES)
    categories: ValueSet = ValueSet()
    types: ValueSet = ValueSet()
    levels: ValueSet = ValueSet()
    first_releases: ValueSet = ValueSet()
    releases: tuple[Membership, ...] = ()
    environments: tuple[Membership, ...] = ()
    first_seen: Interval = Interval()
    last_seen: Interval = Interval()
    times_seen: Interval = Interval()
    assigned: bool | None = None
    text: str | None = None
    # Set when two terms contradict each other in a way the sets above cannot express (assigned and unassigned).
    contradiction: bool = False

    @property
    def statuses(self) -> tuple[int, ...]:
        """The statuses to scan, in index order."""
        present = {status for status, _ in self.status_pairs}
        return tuple(status for status in LISTED_STATUSES if status in present)

    def substatus_filtered(self, status: int) -> bool:
        """Whether rows of ``status`` must still be tested on their (status, substatus) pair."""
        return any(pair[0] == status and pair not in self.status_pairs for pair in ALL_STATUS_PAIRS)

    @property
    def matches_nothing(self) -> bool:
        return (
            self.contradiction
            or not self.status_pairs
            or not self.priorities
            or self.categories.empty
            or self.types.empty
            or self.levels.empty
            or self.first_releases.empty
            or self.first_seen.empty
            or self.last_seen.empty
            or self.times_seen.empty
            or any(not m.negated and not m.values for m in (*self.releases, *self.environments))
        )

    def lookup_values(self) -> int:
        """How many distinct (table, value) keys each candidate row is looked up by."""
        releases = set().union(*(m.values for m in self.releases))
        environments = set().union(*(m.values for m in self.environments))
        return len(releases) + len(environments)

    def with_environments(self, environments: list[str] | tuple[str, ...]) -> IssueFilter:
        """Add the request's ``environment`` parameters (the group was seen in any of them)."""
        if not environments:
            return self
        membership = Membership(frozenset(environments))
        return replace(self, environments=(*self.environments, membership))

    def with_window(self, start: int | None, end: int | None) -> IssueFilter:
        """Restrict to groups seen in [start, end]: last seen at or after start, first seen at or before end."""
        flt = self
        if start is not None:
            flt = replace(flt, last_seen=flt.last_seen.intersect(Interval(start, None)))
        if end is not None:
            flt = replace(flt, first_seen=flt.first_seen.intersect(Interval(None, end)))
        return flt


@dataclass(slots=True)
class _Builder:
    now: int
    pairs: frozenset[tuple[int, int | None]] = ALL_STATUS_PAIRS
    priorities: frozenset[int | None] = frozenset(PRIORITY_VALUES)
    categories: ValueSet = field(default_factory=ValueSet)
    types: ValueSet = field(default_factory=ValueSet)
    levels: ValueSet = field(default_factory=ValueSet)
    first_releases: ValueSet = field(default_factory=ValueSet)
    releases: list[Membership] = field(default_factory=list)
    environments: list[Membership] = field(default_factory=list)
    first_seen: Interval = field(default_factory=Interval)
    last_seen: Interval = field(default_factory=Interval)
    times_seen: Interval = field(default_factory=Interval)
    assigned: bool | None = None
    contradiction: bool = False
    words: list[str] = field(default_factory=list)
    names_type: bool = False


def parse_query(query: str | None, *, now: datetime | int | None = None) -> IssueFilter:
    """The filter for ``query``: None means ``DEFAULT_QUERY``; an empty (or blank) string means no filter at
    all, hidden types included (E10). ``now`` anchors relative times (default: the wall clock)."""
    if query is None:
        query = DEFAULT_QUERY
    if not query.strip():
        return IssueFilter()
    if now is None:
        now_micros = from_datetime(datetime.now(UTC))
    elif isinstance(now, datetime):
        now_micros = from_datetime(now)
    else:
        now_micros = now
    builder = _Builder(now=now_micros)
    for term in tokenize(query):
        _apply(builder, term)
    types = builder.types
    if not builder.names_type and HIDDEN_TYPES:
        types = types.restrict(HIDDEN_TYPES, negated=True)
    return IssueFilter(
        status_pairs=builder.pairs,
        priorities=builder.priorities,
        categories=builder.categories,
        types=types,
        levels=builder.levels,
        first_releases=builder.first_releases,
        releases=tuple(builder.releases),
        environments=tuple(builder.environments),
        first_seen=builder.first_seen,
        last_seen=builder.last_seen,
        times_seen=builder.times_seen,
        assigned=builder.assigned,
        text=" ".join(builder.words) if builder.words else None,
        contradiction=builder.contradiction,
    )


# --------------------------------------------------------------------------------------------------------------
# Tokens


def tokenize(query: str) -> list[Term]:
    """Split ``query`` into terms (syntax only; keys and values are checked by ``parse_query``)."""
    if len(query) > limits.MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(query)} characters long (at most {limits.MAX_QUERY_CHARS})")
    terms: list[Term] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        start = i
        match = _KEY_RE.match(query, i)
        if match:
            negated, key = match.group(1) == "!", match.group(2)
            i = match.end()
            if i >= n or query[i].isspace():
                raise QueryError(f'missing value after "{key}:"', start, query[start:i])
            quoted = is_list = False
            if query[i] == '"':
                value, i = _read_quoted(query, i, start)
                values: tuple[str, ...] = (value,)
                quoted = True
            elif query[i] == "[":
                values, i = _read_list(query, i, start)
                is_list = True
            else:
                j = i
                while j < n and not query[j].isspace():
                    j += 1
                values, i = (query[i:j],), j
            if i < n and not query[i].isspace():
                j = i
                while j < n and not query[j].isspace():
                    j += 1
                raise QueryError("unexpected characters after a quoted value or list", start, query[start:j])
            for value in values:
                if len(value.encode("utf-8", "surrogatepass")) > limits.MAX_VALUE_BYTES:
                    raise QueryError(
                        f"a value is longer than {limits.MAX_VALUE_BYTES} bytes", start, query[start:i]
                    )
            terms.append(Term(key, values, negated, quoted, is_list, start, query[start:i]))
        elif query[i] == '"':
            value, i = _read_quoted(query, i, start)
            if i < n and not query[i].isspace():
                raise QueryError("unexpected characters after a quoted phrase", start, query[start : i + 1])
            terms.append(Term(None, (value,), False, True, False, start, query[start:i]))
        else:
            j = i
            while j < n and not query[j].isspace():
                j += 1
            word = query[i:j]
            if word in ("OR", "AND"):
                raise QueryError("boolean operators (OR, AND) are not supported in issue search", start, word)
            terms.append(Term(None, (word,), False, False, False, start, word))
            i = j
    return terms


def _read_quoted(query: str, i: int, term_start: int) -> tuple[str, int]:
    """The string quoted at ``query[i] == '"'`` (backslash escapes the next character) and the index after it."""
    chars: list[str] = []
    j = i + 1
    while j < len(query):
        char = query[j]
        if char == "\\" and j + 1 < len(query):
            chars.append(query[j + 1])
            j += 2
            continue
        if char == '"':
            return "".join(chars), j + 1
        chars.append(char)
        j += 1
    raise QueryError("unterminated quoted string", term_start, query[term_start:])


def _read_list(query: str, i: int, term_start: int) -> tuple[tuple[str, ...], int]:
    """The items of the list opened at ``query[i] == '['`` and the index after its ``]``."""
    items: list[str] = []
    j = i + 1
    n = len(query)
    while True:
        while j < n and query[j].isspace():
            j += 1
        if j >= n:
            raise QueryError("unterminated list (missing ']')", term_start, query[term_start:])
        if query[j] == '"':
            item, j = _read_quoted(query, j, term_start)
        else:
            k = j
            while k < n and query[k] not in ",]":
                k += 1
            item, j = query[j:k].strip(), k
        while j < n and query[j].isspace():
            j += 1
        if j >= n:
            raise QueryError("unterminated list (missing ']')", term_start, query[term_start:])
        if not item:
            raise QueryError("empty value in list", term_start, query[term_start : j + 1])
        items.append(item)
        if len(items) > limits.MAX_LIST_VALUES:
            raise QueryError(
                f"a list holds at most {limits.MAX_LIST_VALUES} values", term_start, query[term_start:j]
            )
        if query[j] == "]":
            return tuple(items), j + 1
        if query[j] != ",":
            raise QueryError("expected ',' or ']' in list", term_start, query[term_start : j + 1])
        j += 1


# --------------------------------------------------------------------------------------------------------------
# Terms to filters


def _apply(builder: _Builder, term: Term) -> None:
    if term.key is None:
        builder.words.append(term.values[0])
        return
    key = _KEY_ALIASES.get(term.key)
    if key is None:
        raise term.error(
            f'unsupported search key "{clip(term.key)}" (supported: {", ".join(SUPPORTED_KEYS)}; '
            "quote text that contains a colon)"
        )
    if key == "is":
        _apply_is(builder, term)
    elif key == "issue.priority":
        values = frozenset(_lookup(term, _PRIORITY_BY_NAME, "priority"))
        allowed = frozenset(PRIORITY_VALUES) - values if term.negated else values
        builder.priorities = builder.priorities & allowed
    elif key == "issue.category":
        builder.categories = builder.categories.restrict(
            frozenset(_lookup(term, _CATEGORY_BY_NAME, "issue category")), term.negated
        )
        builder.names_type = True
    elif key == "issue.type":
        slugs = {group_type.slug for group_type in _lookup(term, GROUP_TYPES_BY_SLUG, "issue type")}
        ids = frozenset(type_id for type_id, group_type in GROUP_TYPES.items() if group_type.slug in slugs)
        builder.types = builder.types.restrict(ids, term.negated)
        builder.names_type = True
    elif key == "level":
        builder.levels = builder.levels.restrict(frozenset(_lookup(term, LOG_LEVELS, "level")), term.negated)
    elif key == "first_release":
        builder.first_releases = builder.first_releases.restrict(frozenset(term.values), term.negated)
    elif key == "release":
        builder.releases.append(Membership(frozenset(term.values), term.negated))
    elif key == "environment":
        builder.environments.append(Membership(frozenset(term.values), term.negated))
    elif key in ("firstSeen", "lastSeen"):
        interval = _date_interval(term, builder.now)
        if key == "firstSeen":
            builder.first_seen = builder.first_seen.intersect(interval)
        else:
            builder.last_seen = builder.last_seen.intersect(interval)
    else:  # timesSeen
        builder.times_seen = builder.times_seen.intersect(_number_interval(term))


def _lookup(term: Term, table: dict, what: str) -> list:
    """The table entries named by the term's values (case-insensitive); an unknown name is an error."""
    found = []
    for raw in term.values:
        name = raw.lower()
        if name not in table:
            choices = ", ".join(sorted(table))
            raise term.error(f'unknown {what} "{clip(raw)}" (expected one of: {choices})')
        found.append(table[name])
    return found


def _apply_is(builder: _Builder, term: Term) -> None:
    pairs: set[tuple[int, int | None]] = set()
    assignment: set[bool] = set()
    for raw in term.values:
        name = raw.lower()
        if name in _STATUS_BY_NAME:
            status = _STATUS_BY_NAME[name]
            pairs.update(p for p in ALL_STATUS_PAIRS if p[0] == status)
        elif name in _SUBSTATUS_BY_NAME:
            substatus = _SUBSTATUS_BY_NAME[name]
            pairs.update(p for p in ALL_STATUS_PAIRS if p[1] == substatus)
        elif name in _ASSIGNMENT_BY_NAME:
            assignment.add(_ASSIGNMENT_BY_NAME[name])
        else:
            choices = ", ".join([*_STATUS_BY_NAME, *_SUBSTATUS_BY_NAME, *_ASSIGNMENT_BY_NAME])
            raise term.error(f'unsupported value "{clip(raw)}" for "is" (expected one of: {choices})')
    if pairs and assignment:
        raise term.error("a list cannot mix statuses with assigned/unassigned")
    if pairs:
        allowed = ALL_STATUS_PAIRS - pairs if term.negated else frozenset(pairs)
        builder.pairs = builder.pairs & allowed
        return
    wanted = {True, False} - assignment if term.negated else assignment
    if len(wanted) == 2:
        return  # assigned or unassigned: no restriction
    if not wanted:
        builder.contradiction = True
        return
    value = next(iter(wanted))
    if builder.assigned is not None and builder.assigned != value:
        builder.contradiction = True
    else:
        builder.assigned = value


def _split_operator(term: Term) -> tuple[str | None, str]:
    if term.is_list:
        raise term.error("a list is not allowed here; use a comparison such as >, >=, < or <=")
    raw = term.values[0]
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


_NEGATED_OPERATOR = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def _date_interval(term: Term, now: int) -> Interval:
    operator, value = _split_operator(term)
    relative = _RELATIVE_RE.fullmatch(value)
    if relative:
        sign, amount, unit = relative.groups()
        moment = max(now - int(amount) * _UNIT_SECONDS[unit] * MICROS, MIN_TIME)
        if operator is None:
            operator = ">=" if sign == "-" else "<="
        if term.negated:
            operator = _NEGATED_OPERATOR[operator]
        return _compare(operator, moment)
    moment, is_date = _parse_datetime(term, value)
    if operator is not None:
        if term.negated:
            operator = _NEGATED_OPERATOR[operator]
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


def _number_interval(term: Term) -> Interval:
    operator, value = _split_operator(term)
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
    if term.negated:
        operator = _NEGATED_OPERATOR[operator]
    return _compare(operator, count)


def parse_relative_period(value: str) -> int:
    """``statsPeriod`` such as ``24h`` or ``14d`` in microseconds; raises ``QueryError`` otherwise."""
    match = re.fullmatch(r"(\d{1,9})([smhdw])", value.strip())
    if not match:
        raise QueryError(f'invalid statsPeriod "{clip(value)}" (use e.g. 24h, 14d or 90d)')
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] * MICROS


def parse_timestamp(value: str, name: str) -> int:
    """An absolute ``start``/``end`` parameter (ISO 8601, UTC when no offset) in microseconds."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise QueryError(f'invalid {name} "{clip(value)}" (use an ISO 8601 datetime)') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return from_datetime(moment)
