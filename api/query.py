"""The issue search language (rule 7): a query string becomes an ``IssueFilter``.

Sentry's structured search, as its issue index parses it (``sentry.api.event_search`` with the issue search
config: no boolean operators). Terms are separated by whitespace and all must hold (AND)::

    term   := ["!"] key ":" value           a filter; "!" negates it
            | word+ | '"' phrase '"'        free text: consecutive words are one phrase, as in Sentry
    key    := [A-Za-z0-9_.-]+ | "tags[" key "]"
    value  := bare | '"' quoted '"' | "[" item ("," item)* "]"    (a list matches any of its items)

A value with an unescaped ``*`` is a wildcard (``\\*`` is a literal asterisk), matched as Sentry does: anchored
and case-insensitive for a field (``release:14.*``), anywhere in the text for free text and ``message:``. A
field that cannot take a wildcard (``is``, ``status``, ``issue.priority``, ``first_release``...) answers a 400.

Every term, what it means here and the terms this index cannot answer (a 400 that says why) are listed in
docs/issue-index.md. Terms that need data outside the query (the organization's projects for ``project:`` and
``issue:``, the latest releases for ``release:latest``, the request's ``environment`` parameters for
``first_release``) take it from a ``QueryContext``. Every error raises ``QueryError`` naming the offending term
and its position (0-based character offset), so the HTTP service answers 400 with a message a user can act on;
``parse_query`` never raises anything else.

Extension: a new kind of term is a key in ``_HANDLERS`` whose handler adds to the builder: a restriction on
index-row columns (``ValueSet``, ``Interval``), a ``Related`` condition (a value the group has in a related
table, checked by lookups on the page's candidates), or a ``TextMatch``. Every other key (and ``tags[...]``,
``has:`` of one, free text and ``message:`` without wildcards) becomes a condition on the per-group tag
storage (``api.tag_search``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from api import request_limits
from transforms.core import durations
from transforms.core.engine.releases import parse_semver
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
# substatus for any status (rows written before substatuses existed, as Sentry still allows for ignored).
ALL_STATUS_PAIRS: frozenset[tuple[int, int | None]] = frozenset(
    {(GroupStatus.UNRESOLVED, int(s)) for s in UNRESOLVED_SUBSTATUSES}
    | {(GroupStatus.IGNORED, int(s)) for s in IGNORED_SUBSTATUSES}
    | {(status, None) for status in LISTED_STATUSES}
)
# Types that only appear when a query asks for them by category or type (feedback), whatever the query (Sentry
# since 2024: the search backend adds them to every search without an issue.category or issue.type filter).
HIDDEN_TYPES: frozenset[int] = frozenset(t.type_id for t in GROUP_TYPES.values() if not t.in_default_search)
# is:for_review: Sentry's inbox holds issues that became new, regressed or escalating and were not resolved,
# ignored or reviewed since; this index has no "mark reviewed" and no inbox, so it is the unresolved issues in
# those substatuses (see docs/issue-index.md).
FOR_REVIEW_PAIRS: frozenset[tuple[int, int | None]] = frozenset(
    (GroupStatus.UNRESOLVED, int(s))
    for s in (GroupSubStatus.NEW, GroupSubStatus.REGRESSED, GroupSubStatus.ESCALATING)
)
# The activity type of a regression (Activities.Type), whose data names the release it regressed in.
SET_REGRESSION = 6

_PRIORITY_BY_NAME = {"high": Priority.HIGH, "medium": Priority.MEDIUM, "low": Priority.LOW}
_CATEGORY_BY_NAME = {name: number for number, name in CATEGORY_NAMES.items()}
# Sentry's STATUS_QUERY_CHOICES (reprocessing is a status no group here has).
_STATUS_BY_NAME = {
    "resolved": GroupStatus.RESOLVED,
    "unresolved": GroupStatus.UNRESOLVED,
    "ignored": GroupStatus.IGNORED,
    "archived": GroupStatus.IGNORED,
    "muted": GroupStatus.IGNORED,
    "reprocessing": GroupStatus.REPROCESSING,
}
# Sentry's SUBSTATUS_UPDATE_CHOICES, and the status each substatus belongs to.
_SUBSTATUS_BY_NAME = {
    "archived_until_escalating": GroupSubStatus.UNTIL_ESCALATING,
    "archived_until_condition_met": GroupSubStatus.UNTIL_CONDITION_MET,
    "archived_forever": GroupSubStatus.FOREVER,
    "escalating": GroupSubStatus.ESCALATING,
    "ongoing": GroupSubStatus.ONGOING,
    "regressed": GroupSubStatus.REGRESSED,
    "new": GroupSubStatus.NEW,
}
_STATUS_OF_SUBSTATUS = {
    **{int(s): GroupStatus.UNRESOLVED for s in UNRESOLVED_SUBSTATUSES},
    **{int(s): GroupStatus.IGNORED for s in IGNORED_SUBSTATUSES},
}
_IS_VALUES = (
    *_STATUS_BY_NAME,
    *_SUBSTATUS_BY_NAME,
    "assigned",
    "unassigned",
    "for_review",
    "linked",
    "unlinked",
)

# Sentry's issue search key mappings (first-release, firstRelease, age...) and our own aliases.
_KEY_ALIASES = {
    "first-release": "first_release",
    "firstRelease": "first_release",
    "firstSeen": "first_seen",
    "age": "first_seen",
    "lastSeen": "last_seen",
    "timesSeen": "times_seen",
    "date": "timestamp",
    "event.timestamp": "timestamp",
    "issue.id": "issue.id",
}
# Keys every group has a value for: has: is true of all groups, !has: of none.
_ALWAYS_PRESENT = frozenset(
    {
        "status",
        "substatus",
        "issue.category",
        "issue.type",
        "level",
        "first_seen",
        "last_seen",
        "times_seen",
        "timestamp",
        "project",
        "issue",
        "issue.id",
        "title",
        "message",
    }
)
# Terms Sentry has that this index cannot answer, and why (each a 400 naming the term).
_NO_USERS = "this index has no users or teams (assignees are ids from the occurrences): use is:assigned or is:unassigned"
_EVENT_FIELD = (
    "it searches a field of the issue's events that the pipeline does not keep (no tag or stored column "
    "holds it)"
)
_UNANSWERABLE_KEYS = {
    "assigned": _NO_USERS,
    "assigned_or_suggested": _NO_USERS,
    "bookmarks": "this index has no users, so no bookmarks",
    "subscribed": "this index has no users, so no subscriptions",
    "release.stage": "release stages (adopted, low_adoption, replaced) come from release health data, which this index does not have",
    "error.handled": _EVENT_FIELD,
    "error.unhandled": _EVENT_FIELD,
    "error.type": _EVENT_FIELD,
    "error.value": _EVENT_FIELD,
    "error.mechanism": _EVENT_FIELD,
    "trace": _EVENT_FIELD,
    "platform": _EVENT_FIELD,
    "device.class": _EVENT_FIELD,
}
_UNANSWERABLE_IS = {
    "linked": "this index has no integrations, so issues are never linked to external issues",
    "unlinked": "this index has no integrations, so issues are never linked to external issues",
}

_KEY_RE = re.compile(r"(!?)(tags\[[^\]\s]*\]|[A-Za-z0-9_.\-]+):")
_AGGREGATE_RE = re.compile(r"!?([A-Za-z0-9_.\-]+)\(([^()\s]*)\):")
_OPERATOR_RE = re.compile(r"(>=|<=|!=|>|<|=)?(.*)", re.DOTALL)
_RELATIVE_RE = re.compile(r"([+-])(\d{1,9})([smhdw])")
_NUMBER_RE = re.compile(r"(\d+(?:\.\d+)?)([kmb]?)")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EVENT_ID_RE = re.compile(
    r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# A wildcard is an asterisk after an even number of backslashes (Sentry's WILDCARD_CHARS).
_WILDCARD_RE = re.compile(r"(?<!\\)(\\\\)*\*")
_SEMVER_QUERY_RE = re.compile(
    r"(?P<major>\d{1,18})(?:\.(?P<minor>\d{1,18}))?(?:\.(?P<patch>\d{1,18}))?(?:-(?P<pre>[0-9A-Za-z.\-]+))?"
    r"(?:\+[0-9A-Za-z.\-]+)?"
)
_UNIT_SECONDS = durations.STATS_PERIOD.units  # the units of a relative time, as of statsPeriod
_NUMBER_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
_SPECIFIC_DATETIME_SLACK = 5 * 60 * MICROS
# The largest count a filter may name (Spanner's INT64), and the earliest time (Spanner's TIMESTAMP range).
_MAX_INT = 2**63 - 1
MIN_TIME = from_datetime(datetime(1, 1, 1, tzinfo=UTC))
MAX_TIME = from_datetime(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
INVALID_SEMVER = (
    'Invalid format of semantic version. For searching non-semver releases, use "release:" instead.'
)
BOOLEAN_OPERATORS = 'Boolean statements containing "OR" or "AND" are not supported in this search'


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


# --------------------------------------------------------------------------------------------------------------
# Values and terms


def is_wildcard(value: str) -> bool:
    return bool(_WILDCARD_RE.search(value))


def unescape(value: str) -> str:
    """A value that is not a wildcard, with ``\\*`` read as a literal asterisk (Sentry's escape sequences)."""
    return value.replace("\\*", "*")


def wildcard_regex(value: str, *, anchored: bool) -> re.Pattern[str]:
    """Sentry's translate_wildcard: ``*`` is any text, a backslash escapes the next character; matched
    case-insensitively, against the whole value when ``anchored``, anywhere in it otherwise."""
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else re.escape(char))
        i += 1
    body = "".join(out)
    return re.compile(f"^{body}$" if anchored else body, re.IGNORECASE | re.DOTALL)


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

    @property
    def value(self) -> str:
        """The single value of a term that takes no list."""
        if self.is_list:
            raise self.error(f'a list is not allowed for "{clip(self.key or "", 30)}"')
        return self.values[0]


# --------------------------------------------------------------------------------------------------------------
# What a query asks for


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
class Wildcard:
    """A value matches a wildcard pattern (compiled with ``wildcard_regex``)."""

    pattern: str
    anchored: bool = True

    def __call__(self, value: str) -> bool:
        return bool(wildcard_regex(self.pattern, anchored=self.anchored).search(value))


@dataclass(frozen=True, slots=True)
class SemverCondition:
    """``release.version``: a release that is semver (E14) compares with ``key`` by ``operator``, or starts
    with ``prefix`` (a wildcard such as ``1.2.*``); ``package`` narrows to releases of that package."""

    operator: str | None = None
    key: tuple | None = None
    prefix: tuple[int, ...] = ()
    package: str | None = None

    def __call__(self, version: str) -> bool:
        parsed = parse_semver(version)
        if parsed is None:
            return False
        package, key = parsed
        if self.package is not None and package != self.package:
            return False
        if self.key is None:
            return tuple(key[: len(self.prefix)]) == self.prefix
        return {
            "=": key == self.key,
            "!=": key != self.key,
            ">": key > self.key,
            ">=": key >= self.key,
            "<": key < self.key,
            "<=": key <= self.key,
        }[self.operator or "="]


@dataclass(frozen=True, slots=True)
class PackageCondition:
    """``release.package``: the release's package (the text before its last ``@``) is ``name``."""

    name: str

    def __call__(self, version: str) -> bool:
        package, at, _ = version.rpartition("@")
        return bool(at) and package == self.name


@dataclass(frozen=True, slots=True)
class BuildCondition:
    """``release.build``: the build metadata of a semver release (after ``+``): compared as a number with
    ``operator``, equal to ``code``, or starting with ``prefix``."""

    operator: str | None = None
    number: int | None = None
    code: str | None = None
    prefix: str | None = None

    def __call__(self, version: str) -> bool:
        if parse_semver(version) is None:
            return False
        rest = version.rpartition("@")[2]
        _, plus, build = rest.partition("+")
        if not plus:
            return False
        if self.number is not None:
            if not (build.isascii() and build.isdigit()):
                return False
            value = int(build)
            return {
                "=": value == self.number,
                ">": value > self.number,
                ">=": value >= self.number,
                "<": value < self.number,
                "<=": value <= self.number,
            }[self.operator or "="]
        if self.prefix is not None:
            return build.startswith(self.prefix)
        return build == self.code


ValueMatcher = Callable[[str], bool]

# Where a Related condition's values live (api.search reads them for the page's candidates).
RELEASES, ENVIRONMENTS, ENVIRONMENT_FIRST_RELEASES, REGRESSIONS = (
    "release",
    "environment",
    "environment_first_release",
    "regression",
)


@dataclass(frozen=True, slots=True)
class Related:
    """The group has (``negated``: has none) a related value that matches: one of ``values``, or one that
    ``matcher`` accepts, or any at all when both are None (``has:``). ``source`` says which values: the
    releases it was seen in (GroupReleases), its environments (GroupEnvironments), the first release of each
    of ``environments`` (GroupEnvironments.FirstRelease), or the releases it regressed in (regression
    activities)."""

    source: str
    values: frozenset[str] | None = None
    matcher: ValueMatcher | None = None
    negated: bool = False
    environments: frozenset[str] | None = None

    def matches(self, value: str) -> bool:
        if self.values is not None:
            return value in self.values
        if self.matcher is not None:
            return self.matcher(value)
        return True

    def holds(self, present: Iterable[Any]) -> bool:
        """Whether the condition holds for a group's related items: values, or (environment, first release)
        pairs for ``ENVIRONMENT_FIRST_RELEASES``."""
        if self.source == ENVIRONMENT_FIRST_RELEASES:
            assert self.environments is not None
            hit = any(
                environment in self.environments and release is not None and self.matches(release)
                for environment, release in present
            )
        else:
            hit = any(self.matches(value) for value in present)
        return not hit if self.negated else hit

    @property
    def point_values(self) -> frozenset[str] | None:
        """The exact values to look up by key, when the condition is only a set of values."""
        return self.values if self.matcher is None and self.source in (RELEASES, ENVIRONMENTS) else None


@dataclass(frozen=True, slots=True)
class TextMatch:
    """Free text and ``message:`` (in ``fields`` title and message: contains, case-insensitive, or a wildcard
    found anywhere), or ``title:`` (``exact``: equal, or an anchored case-insensitive wildcard). ``values`` are
    (text, is a wildcard) pairs, any of which may match (a list)."""

    values: tuple[tuple[str, bool], ...]
    fields: tuple[str, ...] = ("title", "message")
    exact: bool = False
    negated: bool = False

    def holds(self, texts: Mapping[str, str]) -> bool:
        hit = any(self._matches(value, wildcard, texts) for value, wildcard in self.values)
        return not hit if self.negated else hit

    def _matches(self, value: str, wildcard: bool, texts: Mapping[str, str]) -> bool:
        if wildcard:
            pattern = wildcard_regex(value, anchored=self.exact)
            return any(pattern.search(texts[name]) for name in self.fields)
        if self.exact:
            return any(texts[name] == value for name in self.fields)
        needle = value.lower()
        return any(needle in texts[name].lower() for name in self.fields)


@dataclass(frozen=True, slots=True)
class IssueFilter:
    """What a query asks for, in terms of the Groups columns and the group relations.

    ``status_pairs`` are the allowed (status, substatus) pairs and ``priorities`` the allowed priorities: both
    cut the index into ranges. The sets and intervals are tested on each candidate index row; ``related`` and
    ``texts`` by lookups of the page's candidates. ``project_ids`` narrows the request's projects;
    ``group_ids`` (``issue:``) makes the search a read of those groups by key.
    """

    status_pairs: frozenset[tuple[int, int | None]] = ALL_STATUS_PAIRS
    priorities: frozenset[int | None] = frozenset(PRIORITY_VALUES)
    categories: ValueSet = ValueSet()
    types: ValueSet = ValueSet(exclude=HIDDEN_TYPES)
    levels: ValueSet = ValueSet()
    first_releases: ValueSet = ValueSet()
    has_first_release: bool | None = None
    project_ids: ValueSet = ValueSet()
    group_ids: ValueSet = ValueSet()
    # Short ids name a project as well as a group: group id -> the project it must belong to.
    group_projects: tuple[tuple[int, int], ...] = ()
    first_seen: Interval = Interval()
    last_seen: Interval = Interval()
    times_seen: Interval = Interval()
    assigned: bool | None = None
    related: tuple[Related, ...] = ()
    texts: tuple[TextMatch, ...] = ()
    # Tag and word conditions (api.tag_search.TagCondition / WordCondition), checked from the tag storage.
    tags: tuple[Any, ...] = ()
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
    def needs_lookups(self) -> bool:
        return bool(self.related or self.texts or self.tags)

    @property
    def releases(self) -> tuple[Related, ...]:
        return tuple(r for r in self.related if r.source == RELEASES)

    @property
    def environments(self) -> tuple[Related, ...]:
        return tuple(r for r in self.related if r.source == ENVIRONMENTS)

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
            or self.project_ids.empty
            or self.group_ids.empty
            or self.first_seen.empty
            or self.last_seen.empty
            or self.times_seen.empty
            or any(not r.negated and r.values is not None and not r.values for r in self.related)
        )

    def lookup_values(self) -> int:
        """How many distinct (source, value) keys each candidate row may be looked up by."""
        keys = {(r.source, value) for r in self.related for value in (r.values or ())}
        keys |= {(ENVIRONMENTS, env) for r in self.related for env in (r.environments or ())}
        return len(keys)

    def allows_group(self, group_id: int, project_id: int) -> bool:
        """The conditions on the group's own id (``issue:``, ``issue.id:``)."""
        if not self.group_ids.allows(group_id):
            return False
        wanted = dict(self.group_projects).get(group_id)
        return wanted is None or wanted == project_id

    def with_environments(self, environments: list[str] | tuple[str, ...]) -> IssueFilter:
        """Add the request's ``environment`` parameters (the group was seen in any of them)."""
        if not environments:
            return self
        membership = Related(ENVIRONMENTS, frozenset(environments))
        return replace(self, related=(*self.related, membership))

    def with_window(self, start: int | None, end: int | None) -> IssueFilter:
        """Restrict to groups seen in [start, end]: last seen at or after start, first seen at or before end."""
        flt = self
        if start is not None:
            flt = replace(flt, last_seen=flt.last_seen.intersect(Interval(start, None)))
        if end is not None:
            flt = replace(flt, first_seen=flt.first_seen.intersect(Interval(None, end)))
        return flt


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What some terms need to know besides the query: ``projects`` (the organization's project slugs ->
    ids, for ``project:`` and ``issue:``), ``latest_releases`` (called at most once, when a term names
    ``latest``: the latest release of each project searched), and ``environments`` (the request's
    ``environment`` parameters: ``first_release`` then means the first release in those environments)."""

    projects: Mapping[str, int] = field(default_factory=dict)
    latest_releases: Callable[[], frozenset[str]] = frozenset
    environments: tuple[str, ...] = ()


@dataclass(slots=True)
class _StatusTerm:
    """A status or substatus term; ``values`` in the order the term named them (Sentry takes the first)."""

    substatus: bool
    values: tuple[int, ...]
    negated: bool


@dataclass(slots=True)
class _Builder:
    now: int
    context: QueryContext
    status_terms: list[_StatusTerm] = field(default_factory=list)
    for_review: list[bool] = field(default_factory=list)
    priorities: frozenset[int | None] = frozenset(PRIORITY_VALUES)
    categories: ValueSet = field(default_factory=ValueSet)
    types: ValueSet = field(default_factory=ValueSet)
    levels: ValueSet = field(default_factory=ValueSet)
    first_releases: ValueSet = field(default_factory=ValueSet)
    has_first_release: bool | None = None
    project_ids: ValueSet = field(default_factory=ValueSet)
    group_ids: ValueSet = field(default_factory=ValueSet)
    group_projects: dict[int, int] = field(default_factory=dict)
    first_seen: Interval = field(default_factory=Interval)
    last_seen: Interval = field(default_factory=Interval)
    times_seen: Interval = field(default_factory=Interval)
    assigned: bool | None = None
    related: list[Related] = field(default_factory=list)
    texts: list[TextMatch] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)
    contradiction: bool = False
    names_type: bool = False
    latest: frozenset[str] | None = None

    def latest_releases(self) -> frozenset[str]:
        if self.latest is None:
            # Sentry: no release at all gives no results (its parse_release returns [""]).
            self.latest = self.context.latest_releases() or frozenset({""})
        return self.latest

    def restrict_assigned(self, value: bool) -> None:
        if self.assigned is not None and self.assigned != value:
            self.contradiction = True
        self.assigned = value


def parse_query(
    query: str | None, *, now: datetime | int | None = None, context: QueryContext | None = None
) -> IssueFilter:
    """The filter for ``query``: None means ``DEFAULT_QUERY``; an empty (or blank) string means no filter
    (every status and priority; hidden types stay hidden, as in Sentry). ``now`` anchors relative times
    (default: the wall clock)."""
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
    builder = _Builder(now=now_micros, context=context or QueryContext())
    for term in tokenize(query):
        _apply(builder, term)
    types = builder.types
    if not builder.names_type and HIDDEN_TYPES:
        types = types.restrict(HIDDEN_TYPES, negated=True)
    return IssueFilter(
        status_pairs=_status_pairs(builder),
        priorities=builder.priorities,
        categories=builder.categories,
        types=types,
        levels=builder.levels,
        first_releases=builder.first_releases,
        has_first_release=builder.has_first_release,
        project_ids=builder.project_ids,
        group_ids=builder.group_ids,
        group_projects=tuple(sorted(builder.group_projects.items())),
        first_seen=builder.first_seen,
        last_seen=builder.last_seen,
        times_seen=builder.times_seen,
        assigned=builder.assigned,
        related=tuple(builder.related),
        texts=tuple(builder.texts),
        tags=tuple(builder.tags),
        contradiction=builder.contradiction,
    )


def _status_pairs(builder: _Builder) -> frozenset[tuple[int, int | None]]:
    """The allowed (status, substatus) pairs, as Sentry's issue search derives them.

    Every status and substatus term restricts the pairs (a pair without a substatus is kept by a negated
    substatus term, as Django's exclude keeps NULLs). Without any status term, the first substatus term adds
    its status (Sentry's expand_substatus_query_values): ``is:ongoing`` is unresolved and ongoing, and
    ``!is:ongoing`` excludes every unresolved issue, also when another negated substatus follows.
    """
    pairs = set(ALL_STATUS_PAIRS)
    for term in builder.status_terms:
        position = 1 if term.substatus else 0
        if term.negated:
            pairs = {p for p in pairs if p[position] is None or p[position] not in term.values}
        else:
            pairs = {p for p in pairs if p[position] in term.values}
    if not any(not t.substatus for t in builder.status_terms):
        positive = next((t for t in builder.status_terms if t.substatus and not t.negated), None)
        negative = next((t for t in builder.status_terms if t.substatus and t.negated), None)
        if positive is not None:
            status = _STATUS_OF_SUBSTATUS[positive.values[0]]
            pairs = {p for p in pairs if p[0] == status}
        elif negative is not None:
            status = _STATUS_OF_SUBSTATUS[negative.values[0]]
            pairs = {p for p in pairs if p[0] != status}
    for wanted in builder.for_review:
        pairs = pairs & FOR_REVIEW_PAIRS if wanted else pairs - FOR_REVIEW_PAIRS
    return frozenset(pairs)


def normalize_event_id(query: str) -> str | None:
    """The event id a whole query is (32 hex digits, or a UUID with dashes), in lower-case hex; else None.
    Sentry looks such a query up as an event before searching."""
    text = query.strip()
    if _EVENT_ID_RE.fullmatch(text):
        return text.replace("-", "").lower()
    return None


# --------------------------------------------------------------------------------------------------------------
# Tokens


def tokenize(query: str) -> list[Term]:
    """Split ``query`` into terms (syntax only; keys and values are checked by ``parse_query``). Consecutive
    free-text words are one term (one phrase), as in Sentry."""
    if len(query) > request_limits.MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is {len(query)} characters long (at most {request_limits.MAX_QUERY_CHARS})"
        )
    terms: list[Term] = []
    words: list[tuple[int, int]] = []  # (start, end) of the free-text words of the current phrase

    def flush() -> None:
        if words:
            start, end = words[0][0], words[-1][1]
            text = query[start:end]
            terms.append(Term(None, (text,), False, False, False, start, text))
            words.clear()

    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        start = i
        aggregate = _AGGREGATE_RE.match(query, i)
        if aggregate:
            raise QueryError(
                f"Aggregate filters ({clip(aggregate.group(1), 30)}({clip(aggregate.group(2), 20)})) are not "
                "supported in issue searches",
                start,
                query[start : aggregate.end()],
            )
        match = _KEY_RE.match(query, i)
        if match:
            flush()
            negated, key = match.group(1) == "!", match.group(2)
            i = match.end()
            if i >= n or query[i].isspace():
                raise QueryError(f'missing value after "{clip(key, 40)}:"', start, query[start:i])
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
                if len(value.encode("utf-8", "surrogatepass")) > request_limits.MAX_VALUE_BYTES:
                    raise QueryError(
                        f"a value is longer than {request_limits.MAX_VALUE_BYTES} bytes",
                        start,
                        query[start:i],
                    )
            terms.append(Term(key, values, negated, quoted, is_list, start, query[start:i]))
        elif query[i] == '"':
            flush()
            value, i = _read_quoted(query, i, start)
            if i < n and not query[i].isspace():
                raise QueryError("unexpected characters after a quoted phrase", start, query[start : i + 1])
            terms.append(Term(None, (value,), False, True, False, start, query[start:i]))
        else:
            j = i
            while j < n and not query[j].isspace():
                j += 1
            word = query[i:j]
            if word.upper() in ("OR", "AND"):
                raise QueryError(BOOLEAN_OPERATORS, start, word)
            words.append((i, j))
            i = j
    flush()
    return terms


def _read_quoted(query: str, i: int, term_start: int) -> tuple[str, int]:
    """The string quoted at ``query[i] == '"'`` and the index after it. ``\\"`` is a quote; other backslashes
    stay (``\\*`` is then a literal asterisk, as in Sentry)."""
    chars: list[str] = []
    j = i + 1
    while j < len(query):
        char = query[j]
        if char == "\\" and j + 1 < len(query) and query[j + 1] == '"':
            chars.append('"')
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
            raise QueryError("Lists should not have empty values", term_start, query[term_start : j + 1])
        items.append(item)
        if len(items) > request_limits.MAX_LIST_VALUES:
            raise QueryError(
                f"a list holds at most {request_limits.MAX_LIST_VALUES} values",
                term_start,
                query[term_start:j],
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
        _free_text(builder, term)
        return
    key = _KEY_ALIASES.get(term.key, term.key)
    handler = _HANDLERS.get(key)
    if handler is None:
        _unanswerable(term, key)
        # Sentry reads any other key as an event tag (api.tag_search; imported here: it builds on this module)
        from api.tag_search import tag_condition

        builder.tags.append(tag_condition(term, key))
        return
    handler(builder, term)


def _unanswerable(term: Term, key: str) -> None:
    """A 400 for a key of Sentry's that this index has no data for, saying why."""
    assert term.key is not None
    if key in _UNANSWERABLE_KEYS:
        raise term.error(f'"{clip(term.key, 40)}" cannot be searched here: {_UNANSWERABLE_KEYS[key]}')


def _no_wildcard(term: Term) -> None:
    for value in term.values:
        if is_wildcard(value):
            raise term.error(f'"{clip(term.key or "", 40)}" does not take wildcards')


def _lookup(term: Term, table: dict, what: str) -> list:
    """The table entries named by the term's values (case-insensitive); an unknown name is an error."""
    _no_wildcard(term)
    found = []
    for raw in term.values:
        name = unescape(raw).lower()
        if name not in table:
            choices = ", ".join(sorted(table))
            raise term.error(f"Invalid {what} value of '{clip(raw, 40)}' (expected one of: {choices})")
        found.append(table[name])
    return found


def _text_values(term: Term) -> tuple[tuple[str, bool], ...]:
    """The term's values as (text, is a wildcard): quoted values are literal, bare ones may be wildcards."""
    out = []
    for raw in term.values:
        wildcard = not term.quoted and is_wildcard(raw)
        out.append((raw if wildcard or term.quoted else unescape(raw), wildcard))
    return tuple(out)


def _free_text(builder: _Builder, term: Term) -> None:
    _words_or_text(builder, term, TextMatch(_text_values(term)))


def _words_or_text(builder: _Builder, term: Term, text: TextMatch) -> None:
    """Free text and ``message:`` through the word index (every word, the last as a prefix, in any
    occurrence); a wildcard, a list or text without words is matched on the group's title and message."""
    from api.tag_search import word_condition

    words = None
    if not term.is_list and not any(wildcard for _, wildcard in text.values):
        words = word_condition(text.values[0][0], term.negated)
    if words is None:
        builder.texts.append(text)
    else:
        builder.tags.append(words)


def _apply_is(builder: _Builder, term: Term) -> None:
    if term.is_list:
        raise term.error('"in" syntax invalid for "is" search')
    raw = term.value
    name = raw.lower() if not is_wildcard(raw) else raw
    if name in _UNANSWERABLE_IS:
        raise term.error(f'"is:{name}" cannot be searched here: {_UNANSWERABLE_IS[name]}')
    if name in _STATUS_BY_NAME:
        builder.status_terms.append(_StatusTerm(False, (int(_STATUS_BY_NAME[name]),), term.negated))
    elif name in _SUBSTATUS_BY_NAME:
        builder.status_terms.append(_StatusTerm(True, (int(_SUBSTATUS_BY_NAME[name]),), term.negated))
    elif name in ("assigned", "unassigned"):
        builder.restrict_assigned((name == "assigned") != term.negated)
    elif name == "for_review":
        builder.for_review.append(not term.negated)
    else:
        raise term.error(f'Invalid value for "is" search, valid values are {sorted(_IS_VALUES)}')


def _apply_status(builder: _Builder, term: Term) -> None:
    values = tuple(dict.fromkeys(int(s) for s in _lookup(term, _STATUS_BY_NAME, "status")))
    builder.status_terms.append(_StatusTerm(False, values, term.negated))


def _apply_substatus(builder: _Builder, term: Term) -> None:
    values = tuple(dict.fromkeys(int(s) for s in _lookup(term, _SUBSTATUS_BY_NAME, "substatus")))
    builder.status_terms.append(_StatusTerm(True, values, term.negated))


def _apply_priority(builder: _Builder, term: Term) -> None:
    values = frozenset(_lookup(term, _PRIORITY_BY_NAME, "priority"))
    allowed = frozenset(PRIORITY_VALUES) - values if term.negated else values
    builder.priorities = builder.priorities & allowed


def _apply_category(builder: _Builder, term: Term) -> None:
    values = frozenset(_lookup(term, _CATEGORY_BY_NAME, "category"))
    builder.categories = builder.categories.restrict(values, term.negated)
    builder.names_type = True


def _apply_type(builder: _Builder, term: Term) -> None:
    slugs = {group_type.slug for group_type in _lookup(term, GROUP_TYPES_BY_SLUG, "type")}
    ids = frozenset(type_id for type_id, group_type in GROUP_TYPES.items() if group_type.slug in slugs)
    builder.types = builder.types.restrict(ids, term.negated)
    builder.names_type = True


def _apply_level(builder: _Builder, term: Term) -> None:
    levels: set[int] = set()
    for raw in term.values:
        if is_wildcard(raw):
            pattern = Wildcard(raw)
            levels |= {number for name, number in LOG_LEVELS.items() if pattern(name)}
            continue
        name = unescape(raw).lower()
        if name not in LOG_LEVELS:
            raise term.error(
                f"Invalid level value of '{clip(raw, 40)}' (expected one of: {', '.join(LOG_LEVELS)})"
            )
        levels.add(LOG_LEVELS[name])
    builder.levels = builder.levels.restrict(frozenset(levels), term.negated)


def _release_values(builder: _Builder, term: Term) -> frozenset[str]:
    """Literal release names; ``latest`` is each searched project's latest release (Sentry's parse_release)."""
    _no_wildcard(term)
    values: set[str] = set()
    for raw in term.values:
        if raw == "latest" and not term.quoted:
            values |= builder.latest_releases()
        else:
            values.add(unescape(raw) if not term.quoted else raw)
    return frozenset(values)


def _apply_release(builder: _Builder, term: Term) -> None:
    wildcards = [raw for raw in term.values if not term.quoted and is_wildcard(raw)]
    if wildcards:
        if term.is_list:
            raise term.error("a list cannot hold wildcards here; use one release:pattern term")
        builder.related.append(Related(RELEASES, matcher=Wildcard(wildcards[0]), negated=term.negated))
        return
    builder.related.append(Related(RELEASES, _release_values(builder, term), negated=term.negated))


def _apply_first_release(builder: _Builder, term: Term) -> None:
    values = _release_values(builder, term)
    environments = builder.context.environments
    if environments:
        # Sentry: with environments selected, the group's first release in one of them (GroupEnvironment)
        builder.related.append(
            Related(
                ENVIRONMENT_FIRST_RELEASES, values, negated=term.negated, environments=frozenset(environments)
            )
        )
    else:
        builder.first_releases = builder.first_releases.restrict(values, term.negated)


def _apply_regressed_in_release(builder: _Builder, term: Term) -> None:
    builder.related.append(Related(REGRESSIONS, _release_values(builder, term), negated=term.negated))


def _apply_environment(builder: _Builder, term: Term) -> None:
    wildcards = [raw for raw in term.values if not term.quoted and is_wildcard(raw)]
    if wildcards:
        if term.is_list:
            raise term.error("a list cannot hold wildcards here; use one environment:pattern term")
        builder.related.append(Related(ENVIRONMENTS, matcher=Wildcard(wildcards[0]), negated=term.negated))
        return
    values = frozenset(raw if term.quoted else unescape(raw) for raw in term.values)
    builder.related.append(Related(ENVIRONMENTS, values, negated=term.negated))


def _apply_has(builder: _Builder, term: Term) -> None:
    if term.is_list or term.value.startswith("["):
        raise term.error('Invalid format for "has" search: was expecting a field or tag instead')
    raw = term.value
    key = _KEY_ALIASES.get(raw, raw)
    if key == "release":
        builder.related.append(Related(RELEASES, negated=term.negated))
    elif key == "environment":
        builder.related.append(Related(ENVIRONMENTS, negated=term.negated))
    elif key == "first_release":
        wanted = not term.negated
        if builder.has_first_release is not None and builder.has_first_release != wanted:
            builder.contradiction = True
        builder.has_first_release = wanted
    elif key == "issue.priority":
        allowed = frozenset({None}) if term.negated else frozenset(PRIORITY_VALUES) - {None}
        builder.priorities = builder.priorities & allowed
    elif key in ("assigned", "assigned_to", "assignee"):
        builder.restrict_assigned(not term.negated)
    elif key in _ALWAYS_PRESENT:
        if term.negated:
            builder.contradiction = True
    else:
        _unanswerable(replace(term, key=raw), key)
        from api.tag_search import has_condition

        builder.tags.append(has_condition(term, raw))


def _apply_project(builder: _Builder, term: Term) -> None:
    _no_wildcard(term)
    ids, unknown = set(), []
    for raw in term.values:
        project = builder.context.projects.get(unescape(raw).lower())
        if (
            project is None
            and raw.isascii()
            and raw.isdigit()
            and int(raw) in builder.context.projects.values()
        ):
            project = int(raw)
        if project is None:
            unknown.append(raw)
        else:
            ids.add(project)
    if unknown:
        raise term.error(
            f"Invalid query. Project(s) {clip(', '.join(unknown), 60)} do not exist or are not actively selected."
        )
    builder.project_ids = builder.project_ids.restrict(frozenset(ids), term.negated)


def _apply_issue(builder: _Builder, term: Term) -> None:
    _no_wildcard(term)
    ids = set()
    for raw in term.values:
        parsed = parse_short_id(raw)
        project = builder.context.projects.get(parsed[0].lower()) if parsed else None
        if parsed is None or project is None:
            raise term.error(f"Invalid value '{clip(raw, 40)}' for 'issue:' filter")
        ids.add(parsed[1])
        if not term.negated:
            builder.group_projects[parsed[1]] = project
    builder.group_ids = builder.group_ids.restrict(frozenset(ids), term.negated)


def _apply_issue_id(builder: _Builder, term: Term) -> None:
    ids = set()
    for raw in term.values:
        if not (
            raw.isascii()
            and raw.isdigit()
            and len(raw) <= 19
            and 1 <= int(raw) <= request_limits.MAX_ISSUE_ID
        ):
            raise term.error(
                f"Invalid value '{clip(raw, 40)}' for 'issue.id:' filter (an issue id is expected)"
            )
        ids.add(int(raw))
    builder.group_ids = builder.group_ids.restrict(frozenset(ids), term.negated)


def _apply_title(builder: _Builder, term: Term) -> None:
    builder.texts.append(TextMatch(_text_values(term), ("title",), exact=True, negated=term.negated))


def _apply_message(builder: _Builder, term: Term) -> None:
    _words_or_text(builder, term, TextMatch(_text_values(term), negated=term.negated))


def _apply_times(builder: _Builder, term: Term) -> None:
    key = _KEY_ALIASES.get(term.key or "", term.key)
    interval = _date_interval(term, builder.now)
    if key == "first_seen":
        builder.first_seen = builder.first_seen.intersect(interval)
    else:
        builder.last_seen = builder.last_seen.intersect(interval)


def _apply_timestamp(builder: _Builder, term: Term) -> None:
    """``timestamp:``/``date:``: the group has an event in the interval. Its first and last seen times say it
    exactly for a bound on one side (an event after t: last seen after t); for a range, the group's seen
    interval overlaps it."""
    interval = _date_interval(term, builder.now)
    if interval.lo is not None:
        builder.last_seen = builder.last_seen.intersect(Interval(interval.lo, None))
    if interval.hi is not None:
        builder.first_seen = builder.first_seen.intersect(Interval(None, interval.hi))


def _apply_times_seen(builder: _Builder, term: Term) -> None:
    builder.times_seen = builder.times_seen.intersect(_number_interval(term))


def _apply_release_version(builder: _Builder, term: Term) -> None:
    if term.is_list:
        raise term.error("Invalid operation 'IN' for semantic version filter.")
    operator, value = _split_operator(term)
    package = None
    version = value
    if "@" in value:
        package, _, version = value.rpartition("@")
    if is_wildcard(version) or version.endswith((".X", ".x")) or version in ("X", "x"):
        prefix: list[int] = []
        for part in version.split(".", 3):
            if part in ("*", "X", "x"):
                break
            if not (part.isascii() and part.isdigit()):
                raise term.error(INVALID_SEMVER)
            prefix.append(int(part))
        condition = SemverCondition(prefix=tuple(prefix), package=package or None)
    else:
        match = _SEMVER_QUERY_RE.fullmatch(version)
        if match is None:
            raise term.error(INVALID_SEMVER)
        text = f"{int(match['major'])}.{int(match['minor'] or 0)}.{int(match['patch'] or 0)}"
        if match["pre"]:
            text += f"-{match['pre']}"
        parsed = parse_semver(text)
        if parsed is None:
            raise term.error(INVALID_SEMVER)
        condition = SemverCondition(operator or "=", parsed[1], package=package or None)
    negated = term.negated
    if condition.key is not None and negated:
        # !release.version:>1.0 is release.version:<=1.0 (Sentry's handle_operator_negation)
        condition = replace(condition, operator=_NEGATED_OPERATOR.get(condition.operator or "=", "!="))
        negated = False
    builder.related.append(Related(RELEASES, matcher=condition, negated=negated))


def _apply_release_package(builder: _Builder, term: Term) -> None:
    _no_wildcard(term)
    if term.is_list:
        raise term.error("Invalid operation 'IN' for semantic version filter.")
    builder.related.append(
        Related(RELEASES, matcher=PackageCondition(unescape(term.value)), negated=term.negated)
    )


def _apply_release_build(builder: _Builder, term: Term) -> None:
    if term.is_list:
        raise term.error("Invalid operation 'IN' for semantic version filter.")
    operator, value = _split_operator(term)
    if value.isascii() and value.isdigit() and len(value) <= 18:
        condition = BuildCondition(operator or "=", int(value))
    elif operator not in (None, "="):
        raise term.error("a comparison needs a numeric build (e.g. release.build:>100)")
    elif value.endswith("*") and not is_wildcard(value[:-1]):
        condition = BuildCondition(prefix=unescape(value[:-1]))
    elif is_wildcard(value):
        raise term.error('"release.build" takes a wildcard only at the end (e.g. release.build:abc*)')
    else:
        condition = BuildCondition(code=unescape(value))
    builder.related.append(Related(RELEASES, matcher=condition, negated=term.negated))


_HANDLERS: dict[str, Callable[[_Builder, Term], None]] = {
    "is": _apply_is,
    "status": _apply_status,
    "substatus": _apply_substatus,
    "issue.priority": _apply_priority,
    "issue.category": _apply_category,
    "issue.type": _apply_type,
    "level": _apply_level,
    "release": _apply_release,
    "first_release": _apply_first_release,
    "regressed_in_release": _apply_regressed_in_release,
    "release.version": _apply_release_version,
    "release.package": _apply_release_package,
    "release.build": _apply_release_build,
    "environment": _apply_environment,
    "has": _apply_has,
    "project": _apply_project,
    "issue": _apply_issue,
    "issue.id": _apply_issue_id,
    "title": _apply_title,
    "message": _apply_message,
    "first_seen": _apply_times,
    "last_seen": _apply_times,
    "timestamp": _apply_timestamp,
    "times_seen": _apply_times_seen,
}
# The keys and aliases a user can type, for error messages.
SUPPORTED_KEYS: tuple[str, ...] = tuple(sorted({*_HANDLERS, *_KEY_ALIASES}))


def parse_short_id(text: str) -> tuple[str, int] | None:
    """(project slug upper-cased, group id) of a short id (``BACKEND-1A2B``), or None when ``text`` is not one
    (a code outside the id range of groups, 1 to 2^63 - 1, is not one either)."""
    slug, dash, code = text.strip().rpartition("-")
    if not dash or not slug or not code or len(code) > 13 or not (code.isascii() and code.isalnum()):
        return None
    group_id = int(code, 36)
    if not 1 <= group_id <= request_limits.MAX_ISSUE_ID:
        return None
    return slug.upper(), group_id


def _split_operator(term: Term) -> tuple[str | None, str]:
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


_NEGATED_OPERATOR = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "=": "!=", "!=": "="}


def _date_interval(term: Term, now: int) -> Interval:
    if term.is_list:
        raise term.error("a list is not allowed here; use a comparison such as >, >=, < or <=")
    operator, value = _split_operator(term)
    if operator == "!=":
        raise term.error("use a comparison such as < or > for times")
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
    if term.is_list:
        raise term.error("a list is not allowed here; use a comparison such as >, >=, < or <=")
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
    if operator == "!=":
        raise term.error("use a comparison such as < or > for counts")
    if term.negated:
        operator = _NEGATED_OPERATOR[operator]
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
