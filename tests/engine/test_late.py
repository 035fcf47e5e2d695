"""Late messages: applied under rules that converge to the in-order result (rule 2; decision 8)."""

from __future__ import annotations

from tests.engine.builders import ERROR, NO_NOISE, NO_NOISE_OTHER, SECOND, T0, occurrence, run, status_change
from transforms.core import metrics
from transforms.core.enums import GroupStatus, GroupSubStatus, Priority


def test_a_message_older_than_one_already_applied_is_counted_late():
    result = run([occurrence(T0 + SECOND)], [occurrence(T0)])
    assert result.count(metrics.LATE_MESSAGES) == 1


def test_a_late_occurrence_older_than_the_creator_takes_over_the_creation_fields():
    creator = occurrence(
        T0 + 10 * SECOND,
        type=NO_NOISE,
        release="2.0",
        priority=Priority.HIGH,
        platform="go",
        assignee="user:2",
    )
    older = occurrence(
        T0, type=NO_NOISE_OTHER, release="1.0", priority=Priority.LOW, platform="python", assignee="team:1"
    )
    late = run([creator], [older]).group
    in_order = run([older, creator]).group
    assert late == in_order
    assert (late.type, late.first_release, late.priority, late.platform, late.assignee, late.active_at) == (
        NO_NOISE_OTHER,
        "1.0",
        Priority.LOW,
        "python",
        "team:1",
        T0,
    )
    assert late.data["metadata"]["initial_priority"] == Priority.LOW


def test_active_at_is_not_taken_over_once_a_regression_moved_it():
    result = run(
        [occurrence(T0 + 10 * SECOND)],
        [status_change(T0 + 11 * SECOND, GroupStatus.RESOLVED)],
        [occurrence(T0 + 12 * SECOND)],
        [occurrence(T0, type=NO_NOISE)],
    )
    assert result.group.substatus == GroupSubStatus.REGRESSED
    assert result.group.active_at == T0 + 12 * SECOND


def test_a_priority_changed_by_escalation_is_not_taken_over():
    result = run(
        [
            occurrence(T0 + 10 * SECOND, priority=Priority.LOW),
            status_change(T0 + 11 * SECOND, GroupStatus.IGNORED, GroupSubStatus.UNTIL_ESCALATING),
        ],
        [occurrence(T0 + 12 * SECOND, type=ERROR)],
        [status_change(T0 + 13 * SECOND, GroupStatus.UNRESOLVED, GroupSubStatus.ESCALATING)],
        [occurrence(T0, priority=Priority.HIGH)],
    )
    assert result.group.priority == Priority.MEDIUM
    assert result.group.data["metadata"]["initial_priority"] == Priority.HIGH


def test_late_occurrences_count_and_widen_seen_times_without_touching_latest_fields():
    result = run(
        [occurrence(T0 + 10 * SECOND, title="newest", event_time=T0 + 10 * SECOND)],
        [occurrence(T0 + 5 * SECOND, title="older", event_time=T0 - 100 * SECOND)],
    )
    group = result.group
    assert group.times_seen == 2 and group.first_seen == T0 - 100 * SECOND and group.title == "newest"
