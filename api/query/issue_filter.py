"""What a whole query asks for (``IssueFilter``), the statuses, priorities and types it ranges over, and
what some terms need to know besides the query (``QueryContext``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from api.query.conditions import ENVIRONMENTS, RELEASES, Interval, Related, TextMatch, ValueSet
from transforms.core.enums import GroupStatus, GroupSubStatus, Priority
from transforms.core.grouptypes import GROUP_TYPES

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
