"""Pruning of consecutive status changes: only the last of a run is applied (rule 5.2, E3, E13)."""

from __future__ import annotations

from tests.engine.builders import (
    DELETE,
    ERROR,
    IGNORED,
    NOISY,
    RESOLVED,
    SECOND,
    T0,
    UNRELEASED,
    UNRESOLVED,
    MemoryQuota,
    context,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics
from transforms.core.enums import ActivityType, GroupSubStatus
from transforms.core.intents import DeleteActivity, InsertActivity

FOREVER, ONGOING, ESCALATING = GroupSubStatus.FOREVER, GroupSubStatus.ONGOING, GroupSubStatus.ESCALATING


def test_of_consecutive_status_changes_only_the_last_is_applied():
    resolve = status_change(T0 + SECOND, RESOLVED)
    ignore = status_change(T0 + 2 * SECOND, IGNORED, FOREVER)
    result = run([occurrence(T0), resolve, ignore])
    assert (result.group.status, result.group.substatus) == (IGNORED, FOREVER)
    assert result.group.resolved_at is None
    assert [activity.type for activity in result.tables.activities.values()] == [ActivityType.SET_IGNORED]
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 1


def test_a_change_pruned_in_its_own_call_leaves_no_place_among_the_intents():
    resolve = status_change(T0 + SECOND, RESOLVED)
    ignore = status_change(T0 + 2 * SECOND, IGNORED, FOREVER)
    result = run([occurrence(T0), resolve, ignore])
    (write,) = result.writes
    assert None not in write.intents
    assert [type(intent).__name__ for intent in write.intents].count("InsertActivity") == 1


def test_a_run_split_over_two_calls_takes_back_the_activities_of_the_pruned_change():
    resolve = status_change(T0 + SECOND, RESOLVED)
    ignore = status_change(T0 + 2 * SECOND, IGNORED, FOREVER)
    first = occurrence(T0)
    split = run([first, resolve], [ignore])
    whole = run([first, resolve, ignore])
    assert split.tables.rows() == whole.tables.rows()
    assert split.state == whole.state
    (undo,) = [intent for intent in split.writes[1].intents if isinstance(intent, DeleteActivity)]
    (done,) = [intent for intent in split.writes[0].intents if isinstance(intent, InsertActivity)]
    assert undo.activity_id == done.activity_id
    # within one call the pruned change's activity is never written at all
    assert not any(isinstance(intent, DeleteActivity) for intent in whole.writes[0].intents)


def test_the_pruned_change_is_undone_from_the_snapshot_taken_before_the_run():
    # [escalating-from-ignored, ongoing]: only ongoing applies, to the group as it was before the run (IGNORED).
    result = run(
        [occurrence(T0, priority=25), status_change(T0 + SECOND, IGNORED, GroupSubStatus.UNTIL_ESCALATING)],
        [occurrence(T0 + 2 * SECOND, type=ERROR)],
        [status_change(T0 + 3 * SECOND, UNRESOLVED, ESCALATING)],
        [status_change(T0 + 4 * SECOND, UNRESOLVED, ONGOING)],
    )
    group = result.group
    assert (group.status, group.substatus, group.priority) == (UNRESOLVED, ONGOING, 25)
    kinds = sorted(activity.type for activity in result.tables.activities.values())
    assert kinds == [ActivityType.SET_UNRESOLVED, ActivityType.SET_IGNORED]


def test_a_no_effect_change_still_prunes_the_previous_one():
    # [ignore, escalating]: only escalating is applied, to an unresolved group: no effect.
    result = run(
        [
            occurrence(T0),
            status_change(T0 + SECOND, IGNORED, FOREVER),
            status_change(T0 + 2 * SECOND, UNRESOLVED, ESCALATING),
        ]
    )
    assert result.group.status == UNRESOLVED
    assert result.tables.activities == {}
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 1
    assert result.count(metrics.STATUS_CHANGE_NO_EFFECT) == 1


def test_an_attached_occurrence_breaks_the_run():
    result = run(
        [
            occurrence(T0),
            status_change(T0 + SECOND, IGNORED, FOREVER),
            occurrence(T0 + 2 * SECOND),
            status_change(T0 + 3 * SECOND, RESOLVED),
        ]
    )
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 0
    assert len(result.tables.activities) == 2


def test_occurrences_dropped_by_a_rule_break_the_run_too():
    breakers = {
        "category mismatch": (occurrence(T0 + 2 * SECOND, type=ERROR), context()),
        "feature gate": (occurrence(T0 + 2 * SECOND, type=UNRELEASED), context()),
    }
    for name, (breaker, ctx) in breakers.items():
        result = run(
            [
                occurrence(T0),
                status_change(T0 + SECOND, IGNORED, FOREVER),
                breaker,
                status_change(T0 + 3 * SECOND, RESOLVED),
            ],
            ctx=ctx,
        )
        assert result.count(metrics.DROPPED_STATUS_CHANGES) == 0, name
    # before the group exists: held changes separated by a noise-dropped or quota-refused occurrence
    for breaker, ctx in (
        (occurrence(T0 + 2 * SECOND, type=NOISY), context()),
        (occurrence(T0 + 2 * SECOND), context(quota=MemoryQuota(limit=0))),
    ):
        held = run(
            [status_change(T0 + SECOND, IGNORED, FOREVER), breaker, status_change(T0 + 3 * SECOND, RESOLVED)],
            ctx=ctx,
        )
        assert [change.run for change in held.state.held] == [1, 2]


def test_a_dead_letter_does_not_break_the_run():
    ctx = context(wait_for_events=False)
    result = run(
        [
            occurrence(T0),
            status_change(T0 + SECOND, IGNORED, FOREVER),
            occurrence(T0 + 2 * SECOND, lookup=True),
            status_change(T0 + 3 * SECOND, RESOLVED),
        ],
        ctx=ctx,
    )
    assert len(result.dead_letters) == 1
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 1
    assert result.group.status == RESOLVED


def test_duplicates_and_stale_changes_take_no_part_in_runs():
    ignore = status_change(T0 + 5 * SECOND, IGNORED, FOREVER)
    stale = status_change(T0 + 4 * SECOND, UNRESOLVED, GroupSubStatus.REGRESSED)
    result = run([occurrence(T0), ignore], [ignore, stale], [occurrence(T0 + 6 * SECOND)])
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 0
    assert result.count(metrics.STATUS_CHANGE_STALE) == 1
    assert result.count(metrics.DUPLICATES) == 1
    assert result.group.status == IGNORED


def test_a_delete_closes_the_run_and_is_never_reverted():
    result = run(
        [occurrence(T0), status_change(T0 + SECOND, DELETE), status_change(T0 + 2 * SECOND, RESOLVED)]
    )
    assert result.tables.groups == {}
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 0
    assert result.count(metrics.STATUS_CHANGE_PENDING) == 1  # the resolve now waits for a new group


def test_a_delete_at_the_end_of_a_run_prunes_the_changes_before_it():
    result = run(
        [occurrence(T0), status_change(T0 + SECOND, RESOLVED), status_change(T0 + 2 * SECOND, DELETE)]
    )
    assert result.tables.groups == {} and result.tables.activities == {}
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 1
    assert result.count(metrics.GROUPS_DELETED) == 1
