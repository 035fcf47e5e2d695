"""Status changes in key order among occurrences, and the stale rule (rule 5.2, E3)."""

from __future__ import annotations

from tests.engine.builders import (
    ERROR,
    IGNORED,
    RESOLVED,
    SECOND,
    T0,
    UNRESOLVED,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics
from transforms.core.enums import GroupStatus, GroupSubStatus


def test_status_changes_are_applied_in_key_order_among_occurrences_not_moved_after_them():
    # Sentry moves the resolve after both occurrences (ends RESOLVED); in key order the second one regresses.
    messages = [occurrence(T0), status_change(T0 + SECOND, RESOLVED), occurrence(T0 + 2 * SECOND)]
    result = run(list(reversed(messages)))
    assert (result.group.status, result.group.substatus) == (UNRESOLVED, GroupSubStatus.REGRESSED)


def test_a_status_change_older_than_the_last_one_applied_is_stale():
    result = run(
        [occurrence(T0), status_change(T0 + 10 * SECOND, IGNORED, GroupSubStatus.FOREVER)],
        [occurrence(T0 + 11 * SECOND, type=ERROR)],
        [status_change(T0 + 5 * SECOND, RESOLVED)],
    )
    assert result.count(metrics.STATUS_CHANGE_STALE) == 1
    assert result.group.status == IGNORED
    assert result.count(metrics.LATE_MESSAGES) == 1


def test_a_late_status_change_as_recent_as_the_last_one_is_not_stale():
    result = run(
        [occurrence(T0), status_change(T0 + 10 * SECOND, IGNORED, GroupSubStatus.FOREVER, message_id="m-b")],
        [occurrence(T0 + 11 * SECOND, type=ERROR)],
        [status_change(T0 + 10 * SECOND, RESOLVED, message_id="m-a")],
    )
    assert result.count(metrics.STATUS_CHANGE_STALE) == 0
    assert result.group.status == RESOLVED


def test_a_no_effect_change_still_sets_the_stale_reference():
    result = run(
        [occurrence(T0), status_change(T0 + 10 * SECOND, UNRESOLVED, GroupSubStatus.ESCALATING)],
        [occurrence(T0 + 11 * SECOND, type=ERROR)],
        [status_change(T0 + 5 * SECOND, RESOLVED)],
    )
    assert result.count(metrics.STATUS_CHANGE_NO_EFFECT) == 1
    assert result.count(metrics.STATUS_CHANGE_STALE) == 1
    assert result.group.status == UNRESOLVED


def test_a_delete_resets_the_stale_reference_with_the_rest_of_the_key_state():
    result = run(
        [occurrence(T0), status_change(T0 + 10 * SECOND, GroupStatus.PENDING_DELETION)],
        [occurrence(T0 + 11 * SECOND)],
        [status_change(T0 + 12 * SECOND, RESOLVED)],
    )
    assert result.count(metrics.STATUS_CHANGE_STALE) == 0
    assert result.group.status == RESOLVED
