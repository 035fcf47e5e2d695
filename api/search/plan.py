"""A filter and a sort become a ``SearchPlan``: the index key ranges to read, each already in the page's
order (one per scope value, status and priority the filter allows), and the conditions left for each row.
A firstSeen/lastSeen/timesSeen bound on the sort column narrows each range; a cursor starts each range just
after the previous page's last key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from google.cloud.spanner_v1 import KeyRange
from google.cloud.spanner_v1 import param_types as spanner_types

from api.cursor import SortKey
from api.query import MAX_TIME, MIN_TIME, Interval, IssueFilter
from api.search.index_rows import GroupRow, priority_rank
from transforms.core.model import to_datetime

SORTS: tuple[str, ...] = ("date", "new", "freq", "priority")
DEFAULT_SORT = "date"
ORGANIZATION, PROJECT = "organization", "project"
SORT_COLUMN = {"date": "LastSeen", "priority": "LastSeen", "new": "FirstSeen", "freq": "TimesSeen"}
INDEXES: dict[tuple[str, str], str] = {
    (ORGANIZATION, "LastSeen"): "GroupsByOrganizationLastSeen",
    (ORGANIZATION, "FirstSeen"): "GroupsByOrganizationFirstSeen",
    (ORGANIZATION, "TimesSeen"): "GroupsByOrganizationTimesSeen",
    (PROJECT, "LastSeen"): "GroupsByProjectLastSeen",
    (PROJECT, "FirstSeen"): "GroupsByProjectFirstSeen",
    (PROJECT, "TimesSeen"): "GroupsByProjectTimesSeen",
}
SCOPE_COLUMN = {ORGANIZATION: "OrganizationId", PROJECT: "ProjectId"}

# Up to this many projects are read as one range each on a project index; more are filtered on an
# organization index (a long list of small ranges costs more round trips than it saves rows).
MAX_PROJECT_SCOPES = 4


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose groups: an organization, optionally narrowed to some of its projects (already checked to be its)."""

    organization_id: int
    project_ids: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class RangePlan:
    """One key range of one index: ``prefix`` = (scope id, status, priority), then bounds on (sort value, id).

    ``start``/``end`` are suffixes after the prefix, in index key order (descending values: ``start`` is the
    newest/largest end); None means the whole prefix.
    """

    index: str
    scope_column: str
    sort_column: str
    prefix: tuple[int, int, int | None]
    start: tuple | None = None
    start_open: bool = False
    end: tuple | None = None
    end_open: bool = False

    def key_range(self) -> KeyRange:
        start = [*self.prefix, *(_key_value(self.sort_column, v, i) for i, v in enumerate(self.start or ()))]
        end = [*self.prefix, *(_key_value(self.sort_column, v, i) for i, v in enumerate(self.end or ()))]
        bounds: dict[str, list] = {
            ("start_open" if self.start_open else "start_closed"): start,
            ("end_open" if self.end_open else "end_closed"): end,
        }
        return KeyRange(**bounds)

    def resume_after(self, sort_value: int, group_id: int) -> RangePlan:
        return replace(self, start=(sort_value, group_id), start_open=True)

    def to_sql(self, columns: Iterable[str], limit: int) -> tuple[str, dict, dict]:
        """The same range as GoogleSQL (for the documentation and query-plan checks; not used to serve)."""
        params: dict[str, Any] = {"scope": self.prefix[0], "status": self.prefix[1]}
        types: dict[str, Any] = {"scope": spanner_types.INT64, "status": spanner_types.INT64}
        where = [f"{self.scope_column} = @scope", "Status = @status"]
        if self.prefix[2] is None:
            where.append("Priority IS NULL")
        else:
            where.append("Priority = @priority")
            params["priority"], types["priority"] = self.prefix[2], spanner_types.INT64
        sort_type = spanner_types.INT64 if self.sort_column == "TimesSeen" else spanner_types.TIMESTAMP
        col = self.sort_column
        if self.start:
            params["start_value"] = _key_value(col, self.start[0], 0)
            types["start_value"] = sort_type
            if len(self.start) == 2:
                params["start_id"], types["start_id"] = self.start[1], spanner_types.INT64
                where.append(f"({col} < @start_value OR ({col} = @start_value AND GroupId < @start_id))")
            else:
                where.append(f"{col} {'<' if self.start_open else '<='} @start_value")
        if self.end:
            params["end_value"], types["end_value"] = _key_value(col, self.end[0], 0), sort_type
            where.append(f"{col} {'>' if self.end_open else '>='} @end_value")
        sql = (
            f"SELECT {', '.join(columns)} FROM `Groups`@{{FORCE_INDEX={self.index}}} "
            f"WHERE {' AND '.join(where)} ORDER BY {col} DESC, GroupId DESC LIMIT {limit}"
        )
        return sql, params, types


def _key_value(sort_column: str, value: Any, position: int) -> Any:
    """A suffix value as Spanner wants it in a key: the sort column's timestamp as a datetime."""
    if position == 0 and sort_column != "TimesSeen" and isinstance(value, int):
        return to_datetime(min(max(value, MIN_TIME), MAX_TIME))
    return value


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """Ranges to read and the conditions left for each row (see the module docstring)."""

    sort: str
    scope: Scope
    filter: IssueFilter
    ranges: tuple[RangePlan, ...]
    project_filter: frozenset[int] | None
    # Statuses whose rows must still be tested on their (status, substatus) pair.
    pair_checked: frozenset[int] = frozenset()
    # issue: / issue.id: terms: the groups are read by key instead of through ranges (O(ids)).
    group_ids: tuple[int, ...] | None = None

    @property
    def needs_lookups(self) -> bool:
        return self.filter.needs_lookups

    def count_columns(self) -> tuple[str, ...]:
        """The index columns counting must read: the key, and the columns of conditions the ranges leave."""
        flt = self.filter
        sort_column = SORT_COLUMN[self.sort]
        columns = [
            "GroupId",
            self.ranges[0].scope_column if self.ranges else "OrganizationId",
            "Status",
            "Priority",
        ]
        columns.append(sort_column)
        wanted = {
            "ProjectId": self.project_filter is not None,
            "Substatus": bool(self.pair_checked),
            "Category": not flt.categories.unrestricted,
            "Type": not flt.types.unrestricted,
            "Level": not flt.levels.unrestricted,
            "FirstRelease": not flt.first_releases.unrestricted,
            "FirstSeen": not flt.first_seen.unbounded,
            "LastSeen": not flt.last_seen.unbounded,
            "TimesSeen": not flt.times_seen.unbounded,
            "Assignee": flt.assigned is not None,
        }
        wanted["FirstRelease"] = wanted["FirstRelease"] or flt.has_first_release is not None
        wanted["ProjectId"] = wanted["ProjectId"] or bool(flt.group_projects)
        columns += [column for column, needed in wanted.items() if needed and column not in columns]
        return tuple(columns)

    def after(self, key: SortKey | None) -> SearchPlan:
        """The plan for the rows after ``key`` in sort order (a cursor): every range starts after it."""
        if key is None:
            return self
        ranges = []
        for rng in self.ranges:
            if self.sort == "priority":
                rank = priority_rank(rng.prefix[2])
                if rank > key[0]:
                    continue  # this priority comes entirely before the cursor
                if rank < key[0]:
                    ranges.append(rng)
                    continue
                value, group_id = key[1], key[2]
            else:
                value, group_id = key
            resumed = _resume(rng, value, group_id)
            if resumed is not None:
                ranges.append(resumed)
        return replace(self, ranges=tuple(ranges))

    def accepts(self, row: GroupRow) -> bool:
        """The conditions an index row can answer by itself (the ranges already hold status and priority)."""
        flt = self.filter
        if row.organization_id != self.scope.organization_id:
            return False
        if self.project_filter is not None and row.project_id not in self.project_filter:
            return False
        if self.group_ids is not None:
            # read by key: nothing of the ranges' conditions holds yet
            if (row.status, row.substatus) not in flt.status_pairs or not flt.allows_group(
                row.group_id, row.project_id
            ):
                return False
        elif row.status in self.pair_checked and (row.status, row.substatus) not in flt.status_pairs:
            return False
        if row.priority not in flt.priorities:
            return False
        if flt.has_first_release is not None and (row.first_release is not None) != flt.has_first_release:
            return False
        return (
            flt.group_ids.allows(row.group_id)
            and flt.categories.allows(row.category)
            and flt.types.allows(row.type)
            and flt.levels.allows(row.level)
            and flt.first_releases.allows(row.first_release)
            and flt.first_seen.contains(row.first_seen)
            and flt.last_seen.contains(row.last_seen)
            and flt.times_seen.contains(row.times_seen)
            and (flt.assigned is None or (row.assignee is not None) == flt.assigned)
        )


def _resume(rng: RangePlan, value: int, group_id: int) -> RangePlan | None:
    """``rng`` restricted to keys after (value, group_id); None when nothing of it is left."""
    if rng.end is not None:
        end_value = rng.end[0]
        if value < end_value or (value == end_value and rng.end_open):
            return None
    if rng.start is not None and value > rng.start[0]:
        return rng  # the range's own upper bound is already past the cursor
    return rng.resume_after(value, group_id)


def plan_search(scope: Scope, flt: IssueFilter, sort: str, org_project_ids: Iterable[int] = ()) -> SearchPlan:
    """The ranges serving ``flt`` sorted by ``sort`` within ``scope``.

    ``org_project_ids`` are all the organization's projects: a project list covering all of them is the
    organization. No range at all means the filter matches nothing.
    """
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    sort_column = SORT_COLUMN[sort]
    projects = scope.project_ids
    org_projects = frozenset(org_project_ids)
    if not flt.project_ids.unrestricted:  # project: terms narrow the request's projects
        narrowed = projects if projects is not None else org_projects
        if flt.project_ids.include is not None:
            narrowed = narrowed & flt.project_ids.include
        projects = frozenset(narrowed - flt.project_ids.exclude)
    if projects is not None and org_projects and org_projects <= projects:
        projects = None
    pair_checked = frozenset(status for status in flt.statuses if flt.substatus_filtered(status))
    if flt.group_ids.include is not None:
        group_ids = tuple(sorted(flt.group_ids.include - flt.group_ids.exclude))
        if flt.matches_nothing or (projects is not None and not projects):
            group_ids = ()
        return SearchPlan(sort, scope, flt, (), projects, pair_checked, group_ids)
    project_filter = None
    if projects is not None and len(projects) <= MAX_PROJECT_SCOPES:
        kind, scope_values = PROJECT, sorted(projects)
    else:
        kind, scope_values = ORGANIZATION, [scope.organization_id]
        project_filter = projects
    if flt.matches_nothing or (projects is not None and not projects):
        return SearchPlan(sort, scope, flt, (), project_filter, pair_checked)
    bound = {"LastSeen": flt.last_seen, "FirstSeen": flt.first_seen, "TimesSeen": flt.times_seen}[sort_column]
    start, end = _bounds(bound)
    # Priority order (HIGH first, None last) is the index's, so ranges listed this way concatenate in
    # priority-sort order; the merge does not depend on it.
    priorities = sorted(flt.priorities, key=priority_rank, reverse=True)
    ranges = tuple(
        RangePlan(
            INDEXES[(kind, sort_column)],
            SCOPE_COLUMN[kind],
            sort_column,
            (scope_value, status, priority),
            start=start,
            end=end,
        )
        for scope_value in scope_values
        for status in flt.statuses
        for priority in priorities
    )
    return SearchPlan(sort, scope, flt, ranges, project_filter, pair_checked)


def _bounds(interval: Interval) -> tuple[tuple | None, tuple | None]:
    """(start, end) suffixes for an inclusive interval on a DESC column: start at the largest value."""
    start = None if interval.hi is None else (interval.hi,)
    end = None if interval.lo is None else (interval.lo,)
    return start, end


def prefix_order(prefix: tuple[int, int, int | None]) -> tuple[int, int, int]:
    """A range prefix's place in index key order: scope and status ascending, priority descending (NULL last)."""
    return (prefix[0], prefix[1], -priority_rank(prefix[2]))
