"""Status changes that arrive before their group (rule 5.2) [ours: Sentry drops them, ref f F1]."""

from __future__ import annotations

from tests.engine.builders import (
    DELETE,
    HOUR,
    IGNORED,
    MINUTE,
    NOISY,
    RESOLVED,
    SECOND,
    T0,
    UNRESOLVED,
    context,
    event_of,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics
from transforms.core.enums import GroupSubStatus


def test_a_status_change_for_a_key_without_group_is_held_and_counted():
    result = run([status_change(T0, RESOLVED)])
    assert result.count(metrics.STATUS_CHANGE_PENDING) == 1
    assert len(result.state.held) == 1
    assert result.tables.groups == {}


def test_a_held_change_is_applied_right_after_a_late_creator_older_than_it():
    creator = occurrence(T0)
    result = run([status_change(T0 + SECOND, RESOLVED)], [creator])
    assert result.group.status == RESOLVED
    assert result.group.resolved_at == T0 + SECOND
    assert result.state.held == ()
    assert result.count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND) == 0


def test_a_held_change_with_the_creators_message_time_is_applied():
    result = run(
        [
            status_change(T0, IGNORED, GroupSubStatus.FOREVER, message_id="m-a"),
            occurrence(T0, message_id="m-b"),
        ]
    )
    assert result.group.status == IGNORED


def test_a_held_change_older_than_the_creator_is_dropped_when_the_group_is_created():
    result = run([status_change(T0, RESOLVED)], [occurrence(T0 + SECOND)])
    assert result.group.status == UNRESOLVED
    assert result.count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND) == 1
    assert result.state.held == ()


def test_a_held_change_expires_after_the_pending_window_of_message_time():
    held = status_change(T0, RESOLVED)
    within = run([held], [occurrence(T0 + HOUR, type=NOISY)])
    assert len(within.state.held) == 1
    expired = run([held], [occurrence(T0 + HOUR + 1, type=NOISY)])
    assert expired.state.held == ()
    assert expired.count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND) == 1


def test_held_changes_expire_one_by_one_as_the_messages_of_one_call_pass_their_window():
    changes = [status_change(T0, RESOLVED), status_change(T0 + MINUTE, IGNORED, GroupSubStatus.FOREVER)]
    first = occurrence(T0 + HOUR + 1, type=NOISY)
    second = occurrence(T0 + HOUR + MINUTE + 1, type=NOISY)
    one_left = run([*changes, first])
    assert [held.message_time for held in one_left.state.held] == [T0 + MINUTE]
    assert one_left.count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND) == 1
    none_left = run([*changes, first, second])
    assert none_left.state.held == ()
    assert none_left.count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND) == 2
    later = run([changes[0]], [changes[1], first, second])  # a change held in the call that expires it
    assert later.state.held == ()
    assert later.count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND) == 2


def test_held_changes_of_one_run_are_pruned_when_applied():
    result = run(
        [
            status_change(T0 + SECOND, RESOLVED),
            status_change(T0 + 2 * SECOND, IGNORED, GroupSubStatus.FOREVER),
        ],
        [occurrence(T0)],
    )
    assert result.group.status == IGNORED
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 1
    assert len(result.tables.activities) == 1


def test_held_changes_of_different_runs_are_all_applied():
    result = run(
        [
            status_change(T0 + SECOND, IGNORED, GroupSubStatus.FOREVER),
            occurrence(T0 + 2 * SECOND, type=NOISY),  # dropped by the gate, but breaks the run
            status_change(T0 + 3 * SECOND, RESOLVED),
        ],
        [occurrence(T0)],
    )
    assert result.group.status == RESOLVED
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 0
    assert len(result.tables.activities) == 2


def test_a_held_delete_deletes_the_new_group_and_the_later_changes_wait_for_the_next_one():
    result = run(
        [
            status_change(T0 + SECOND, DELETE),
            occurrence(T0 + 2 * SECOND, type=NOISY),
            status_change(T0 + 3 * SECOND, RESOLVED),
        ],
        [occurrence(T0)],
    )
    assert result.tables.groups == {}
    assert result.count(metrics.GROUPS_DELETED) == 1
    assert [held.change.new_status for held in result.state.held] == [RESOLVED]
    assert result.state.generation == 1


def test_a_status_change_that_waits_for_its_creators_event_is_applied_after_it():
    creator = occurrence(T0, lookup=True)
    result = run([creator, status_change(T0 + SECOND, RESOLVED)])
    assert result.tables.groups == {}
    result.apply([], context(events=[event_of(creator)], now=T0 + MINUTE))
    assert result.group.status == RESOLVED


def test_a_redelivered_held_change_is_a_duplicate():
    change = status_change(T0, RESOLVED)
    result = run([change], [change])
    assert result.count(metrics.DUPLICATES) == 1 and len(result.state.held) == 1
