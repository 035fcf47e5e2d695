"""How a filter and a sort become index ranges (pure: no Spanner)."""

from __future__ import annotations

from api.query import parse_query
from api.search import RangePlan, Scope, plan_search, priority_rank
from api.search.plan import MAX_PROJECT_SCOPES
from transforms.core.enums import GroupStatus, Priority
from transforms.core.model import MICROS, to_datetime

NOW = 1_767_225_600 * MICROS


def plan(query, sort="date", projects=None, org_projects=(11, 12, 13, 14, 15, 16)):
    scope = Scope(1, None if projects is None else frozenset(projects))
    return plan_search(scope, parse_query(query, now=NOW), sort, org_projects)


def test_default_query_is_two_organization_ranges_on_the_last_seen_index():
    p = plan(None)
    assert [(r.index, r.prefix) for r in p.ranges] == [
        ("GroupsByOrganizationLastSeen", (1, GroupStatus.UNRESOLVED, Priority.HIGH)),
        ("GroupsByOrganizationLastSeen", (1, GroupStatus.UNRESOLVED, Priority.MEDIUM)),
    ]
    assert p.project_filter is None


def test_each_sort_uses_its_index():
    assert plan("is:resolved", "new").ranges[0].index == "GroupsByOrganizationFirstSeen"
    assert plan("is:resolved", "freq").ranges[0].index == "GroupsByOrganizationTimesSeen"
    assert plan("is:resolved", "priority").ranges[0].index == "GroupsByOrganizationLastSeen"


def test_empty_query_reads_every_status_and_priority_including_none():
    p = plan("")
    assert len(p.ranges) == 3 * 4
    assert {r.prefix[2] for r in p.ranges} == {75, 50, 25, None}


def test_a_few_projects_get_project_ranges_many_get_a_residual_filter():
    p = plan("is:unresolved issue.priority:high", projects=[12, 11])
    assert [r.prefix[0] for r in p.ranges] == [11, 12]
    assert p.ranges[0].index == "GroupsByProjectLastSeen"
    many = list(range(11, 11 + MAX_PROJECT_SCOPES + 1))
    p = plan("is:unresolved issue.priority:high", projects=many, org_projects=[*many, 99])
    assert [r.prefix[0] for r in p.ranges] == [1]
    assert p.project_filter == frozenset(many)


def test_naming_every_project_of_the_organization_is_the_organization():
    p = plan("is:unresolved issue.priority:high", projects=[11, 12], org_projects=[11, 12])
    assert p.ranges[0].index == "GroupsByOrganizationLastSeen"
    assert p.project_filter is None


def test_a_bound_on_the_sort_column_narrows_the_range():
    day = 86_400 * MICROS
    p = plan("is:unresolved issue.priority:high lastSeen:-1d lastSeen:<2026-01-01")
    (r,) = p.ranges
    assert r.start == (NOW - 1,) and r.end == (NOW - day,)
    key_range = r.key_range()
    assert list(key_range.start_closed) == [1, 0, 75, to_datetime(NOW - 1)]
    assert list(key_range.end_closed) == [1, 0, 75, to_datetime(NOW - day)]
    # a bound on another column stays a row filter
    assert plan("is:unresolved issue.priority:high firstSeen:-1d").ranges[0].start is None


def test_contradictions_read_nothing():
    assert plan("is:resolved is:unresolved").ranges == ()
    assert plan("timesSeen:>5 timesSeen:<2").ranges == ()
    assert plan("is:unresolved", projects=[]).ranges == ()


def test_cursor_starts_every_range_after_the_key():
    p = plan("is:unresolved").after((NOW, 77))
    for r in p.ranges:
        assert r.start == (NOW, 77) and r.start_open


def test_cursor_past_a_range_end_drops_the_range():
    p = plan("is:unresolved issue.priority:high lastSeen:>=2026-01-01").after((NOW - 1, 5))
    assert p.ranges == ()


def test_cursor_before_a_range_start_keeps_the_range_bound():
    p = plan("is:unresolved issue.priority:high lastSeen:<2026-01-01").after((NOW + 10, 5))
    assert p.ranges[0].start == (NOW - 1,) and not p.ranges[0].start_open


def test_priority_sort_cursor_skips_higher_priorities_and_keeps_lower_ones_whole():
    p = plan("is:unresolved", "priority").after((priority_rank(Priority.MEDIUM), NOW, 3))
    by_priority = {r.prefix[2]: r for r in p.ranges}
    assert Priority.HIGH not in by_priority
    assert by_priority[Priority.MEDIUM].start == (NOW, 3)
    assert by_priority[Priority.LOW].start is None
    assert by_priority[None].start is None


def test_range_sql_matches_the_range():
    r = RangePlan(
        "GroupsByProjectTimesSeen", "ProjectId", "TimesSeen", (11, 0, None), (10, 5), True, (2,), False
    )
    sql, params, _ = r.to_sql(["GroupId"], 101)
    assert "FROM `Groups`@{FORCE_INDEX=GroupsByProjectTimesSeen}" in sql
    assert "Priority IS NULL" in sql
    assert "(TimesSeen < @start_value OR (TimesSeen = @start_value AND GroupId < @start_id))" in sql
    assert "TimesSeen >= @end_value" in sql
    assert sql.endswith("ORDER BY TimesSeen DESC, GroupId DESC LIMIT 101")
    assert params == {"scope": 11, "status": 0, "start_value": 10, "start_id": 5, "end_value": 2}
