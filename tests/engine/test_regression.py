"""Regressions (rule 5.3, ref c.7) and release-aware resolutions (E8, E14)."""

from __future__ import annotations

import pytest

from tests.engine.builders import (
    ERROR,
    IGNORED,
    RESOLVED,
    SECOND,
    T0,
    UNRESOLVED,
    Releases,
    context,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics
from transforms.core.enums import ActivityType, GroupSubStatus

REGRESSED = GroupSubStatus.REGRESSED


def resolved(resolution: tuple[str, str] | None = None, *, releases: tuple[str, ...] = (), ctx=None):
    """A group whose occurrences named ``releases`` (one second apart), then resolved at T0 + 100 s."""
    batches = [
        [occurrence(T0 + index * SECOND, release=release)]
        for index, release in enumerate(releases or (None,))
    ]
    result = run(*batches, ctx=ctx)
    result.apply([status_change(T0 + 100 * SECOND, RESOLVED, resolution=resolution)], ctx)
    return result


def regression_activities(result):
    return [
        activity
        for activity in result.tables.activities.values()
        if activity.type == ActivityType.SET_REGRESSION
    ]


def test_occurrence_after_a_resolve_regresses_the_group():
    result = resolved()
    later = occurrence(T0 + 101 * SECOND, release="backend@2.0.0")
    result.apply([later])
    group = result.group
    assert (group.status, group.substatus) == (UNRESOLVED, REGRESSED)
    assert group.active_at == T0 + 101 * SECOND
    assert group.resolved_at is None
    (activity,) = regression_activities(result)
    assert activity.data == {"event_id": later.payload.event_id, "version": "backend@2.0.0"}
    assert activity.activity_time == T0 + 101 * SECOND
    assert result.count(metrics.REGRESSIONS) == 1


def test_a_late_occurrence_from_before_the_resolve_does_not_regress():
    result = resolved()
    result.apply([occurrence(T0 + 50 * SECOND)])
    assert result.group.status == RESOLVED
    assert result.group.times_seen == 2


def test_an_occurrence_at_the_resolve_time_does_not_regress():
    result = resolved()
    result.apply([occurrence(T0 + 100 * SECOND)])
    assert result.group.status == RESOLVED


def test_an_occurrence_one_second_after_activation_still_regresses():
    # Sentry's 5-second active_at guard would drop this regression; ours only looks at resolved_at.
    result = run([occurrence(T0)], [status_change(T0 + SECOND, RESOLVED)], [occurrence(T0 + 2 * SECOND)])
    assert result.group.substatus == REGRESSED


def test_an_ignored_group_never_regresses_from_occurrences():
    result = run(
        [occurrence(T0)],
        [status_change(T0 + SECOND, IGNORED, GroupSubStatus.FOREVER)],
        [occurrence(T0 + 2 * SECOND)],
    )
    assert result.group.status == IGNORED
    assert result.count(metrics.REGRESSIONS) == 0


@pytest.mark.parametrize(
    ("resolution_type", "event_release", "regresses"),
    [
        ("in_release", "backend@1.9.9", False),
        ("in_release", "backend@2.0.0", True),  # the fix release itself still failing
        ("in_release", "backend@2.0.0-rc.1", False),  # pre-releases order below their release
        ("in_release", "backend@2.0.1", True),
        ("in_next_release", "backend@2.0.0", False),
        ("in_next_release", "backend@2.0.0+build.7", False),  # build metadata does not order
        ("in_next_release", "backend@2.0.1", True),
        ("in_next_release", "backend@10.0.0", True),  # numeric, not lexical
    ],
)
def test_semver_resolutions_cover_older_releases(resolution_type, event_release, regresses):
    result = resolved((resolution_type, "backend@2.0.0"))
    result.apply([occurrence(T0 + 200 * SECOND, release=event_release)])
    assert (result.group.status == UNRESOLVED) is regresses


@pytest.mark.parametrize(
    ("resolution_type", "event_release", "regresses"),
    [
        ("in_release", "older", False),
        ("in_release", "fix", True),
        ("in_release", "newer", True),
        ("in_next_release", "older", False),
        ("in_next_release", "fix", False),
        ("in_next_release", "newer", True),
        ("in_next_release", "brand-new", True),  # first named by this very occurrence (E8)
    ],
)
def test_non_semver_resolutions_order_releases_by_first_seen_time(resolution_type, event_release, regresses):
    result = resolved((resolution_type, "fix"), releases=("older", "fix", "newer"))
    result.apply([occurrence(T0 + 200 * SECOND, release=event_release)])
    assert (result.group.status == UNRESOLVED) is regresses


def test_release_order_takes_the_earliest_of_the_key_and_the_project():
    # The key first saw "fix" before "older", but the project saw "older" long before.
    book = Releases({"older": T0 - 1000 * SECOND})
    ctx = context(releases=book)
    result = resolved(("in_release", "fix"), releases=("fix", "older"), ctx=ctx)
    result.apply([occurrence(T0 + 200 * SECOND, release="older")], ctx)
    assert result.group.status == RESOLVED


def test_a_resolution_version_never_seen_takes_the_status_change_time_as_first_seen():
    result = resolved(("in_next_release", "unseen"), releases=("old",))
    assert result.tables.releases[(1, "unseen")] == T0 + 100 * SECOND
    result.apply([occurrence(T0 + 200 * SECOND, release="old")])
    assert result.group.status == RESOLVED  # "old" was first seen before the resolve named "unseen"


def test_different_package_prefixes_compare_by_first_seen_time():
    result = resolved(("in_release", "web@1.0.0"), releases=("api@5.0.0", "web@1.0.0"))
    result.apply([occurrence(T0 + 200 * SECOND, release="api@5.0.0")])
    assert result.group.status == RESOLVED  # api@5.0.0 was first seen before web@1.0.0


def test_an_event_without_release_is_covered_by_any_resolution():
    result = resolved(("in_release", "backend@2.0.0"))
    result.apply([occurrence(T0 + 200 * SECOND)])
    assert result.group.status == RESOLVED


def test_a_regression_consumes_the_resolution_and_says_so_in_its_activity():
    result = resolved(("in_release", "backend@2.0.0"))
    later = occurrence(T0 + 200 * SECOND, release="backend@2.0.0")
    result.apply([later])
    assert (result.group.resolution_type, result.group.resolution_version) == (None, None)
    (activity,) = regression_activities(result)
    assert activity.data == {
        "event_id": later.payload.event_id,
        "version": "backend@2.0.0",
        "resolved_in_version": "backend@2.0.0",
        "follows_semver": True,
    }


def test_a_category_mismatched_occurrence_does_not_regress():
    result = resolved()
    result.apply([occurrence(T0 + 200 * SECOND, type=ERROR)])
    assert result.group.status == RESOLVED
