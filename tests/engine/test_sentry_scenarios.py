"""Scenarios from Sentry's own behaviour (its occurrence and status-change consumers) that hold, or are fixed, in ours."""

from __future__ import annotations

from tests.engine.builders import (
    DELETE,
    HOUR,
    NOISY,
    PROJECT,
    RESOLVED,
    SECOND,
    T0,
    UNRESOLVED,
    MemoryQuota,
    context,
    md5_hex,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics
from transforms.core.engine.ids import group_id
from transforms.core.enums import ActivityType, GroupSubStatus


def test_noise_gate_the_third_occurrence_creates_the_n_plus_one_issue():
    result = run(*[[occurrence(T0 + index * SECOND, type=NOISY)] for index in range(5)])
    assert result.count(metrics.DROPPED_NOISE) == 2
    assert result.group.times_seen == 3  # the 3rd creates, the 4th and 5th attach


def test_quota_refusal_then_retry_creates_on_a_later_occurrence():
    quota = MemoryQuota(limit=1)
    ctx = context(quota=quota)
    run([occurrence(T0, fingerprint=("other",))], ctx=ctx)  # another fingerprint takes this hour's quota
    result = run([occurrence(T0 + SECOND)], [occurrence(T0 + 2 * SECOND)], ctx=ctx)
    assert result.count(metrics.DROPPED_RATE_LIMITING) == 2 and result.tables.groups == {}
    result.apply([occurrence(T0 + HOUR + SECOND)], ctx)
    assert result.group.times_seen == 1


def test_occurrence_resolve_occurrence_regresses_within_one_batch():
    # Sentry's pruning moves the resolve after both occurrences and ends RESOLVED (ref f F2).
    result = run([occurrence(T0), status_change(T0 + SECOND, RESOLVED), occurrence(T0 + 2 * SECOND)])
    assert (result.group.status, result.group.substatus) == (UNRESOLVED, GroupSubStatus.REGRESSED)
    kinds = sorted(activity.type for activity in result.tables.activities.values())
    assert kinds == [ActivityType.SET_RESOLVED, ActivityType.SET_REGRESSION]


def test_release_aware_resolution_semver_in_next_release():
    result = run(
        [occurrence(T0, release="backend@1.4.0")],
        [status_change(T0 + SECOND, RESOLVED, resolution=("in_next_release", "backend@1.4.0"))],
        [occurrence(T0 + 2 * SECOND, release="backend@1.4.0")],
    )
    assert result.group.status == RESOLVED
    result.apply([occurrence(T0 + 3 * SECOND, release="backend@1.5.0")])
    assert result.group.substatus == GroupSubStatus.REGRESSED


def test_release_aware_resolution_non_semver_in_release():
    result = run(
        [occurrence(T0, release="build-a")],
        [occurrence(T0 + SECOND, release="build-b")],
        [status_change(T0 + 2 * SECOND, RESOLVED, resolution=("in_release", "build-b"))],
        [occurrence(T0 + 3 * SECOND, release="build-a")],
    )
    assert result.group.status == RESOLVED  # build-a is older than the fix
    result.apply([occurrence(T0 + 4 * SECOND, release="build-b")])
    assert result.group.substatus == GroupSubStatus.REGRESSED  # the fix release itself still fails


def test_delete_then_recreate_after_the_noise_gate_with_a_new_id():
    primary = md5_hex("slow-endpoint:/api/0/checkout")
    noisy = [occurrence(T0 + index * SECOND, type=NOISY) for index in range(3)]
    result = run(noisy, [status_change(T0 + 10 * SECOND, DELETE)])
    again = [occurrence(T0 + (20 + index) * SECOND, type=NOISY) for index in range(3)]
    result.apply(again)
    assert result.group.group_id == group_id(PROJECT.project_id, primary, 1)
    assert result.count(metrics.DROPPED_NOISE) == 4


def test_status_change_before_its_group_is_not_lost():
    # Sentry drops it (ref f F1, issue #68094): the crons issue stays open.
    result = run([status_change(T0 + SECOND, RESOLVED)], [occurrence(T0)])
    assert result.group.status == RESOLVED


def test_stale_status_change_is_not_applied():
    result = run(
        [occurrence(T0), status_change(T0 + 10 * SECOND, RESOLVED)],
        [occurrence(T0 + 5 * SECOND)],  # late, before the resolve: no regression
        [status_change(T0 + 8 * SECOND, UNRESOLVED, GroupSubStatus.ONGOING)],
    )
    assert result.group.status == RESOLVED
    assert result.count(metrics.STATUS_CHANGE_STALE) == 1


def test_status_changes_of_any_type_reach_any_group_of_the_key():
    # Status changes carry no type (ref f F16): an error group can be resolved like any other.
    result = run([occurrence(T0, type=1)], [status_change(T0 + SECOND, RESOLVED)])
    assert result.group.status == RESOLVED
