"""The transition table of rule 5.1 (and E3), row by row."""

from __future__ import annotations

import pytest

from tests.engine.builders import (
    DELETE,
    ERROR,
    IGNORED,
    RESOLVED,
    SECOND,
    T0,
    UNRESOLVED,
    Run,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics
from transforms.core.engine.state import MutableGroup
from transforms.core.engine.status_changes import InvalidTransition, transition
from transforms.core.enums import ActivityType, GroupSubStatus, Priority
from transforms.core.intents import DeleteGroup

ESCALATING, ONGOING, REGRESSED, NEW = (
    GroupSubStatus.ESCALATING,
    GroupSubStatus.ONGOING,
    GroupSubStatus.REGRESSED,
    GroupSubStatus.NEW,
)
UNTIL_ESCALATING, UNTIL_CONDITION_MET, FOREVER = (
    GroupSubStatus.UNTIL_ESCALATING,
    GroupSubStatus.UNTIL_CONDITION_MET,
    GroupSubStatus.FOREVER,
)


class Scenario:
    """A group brought into a given state by status changes, each followed by an occurrence that closes its run."""

    def __init__(self, *changes: tuple, priority: int = Priority.MEDIUM) -> None:
        self.time = T0
        self.result: Run = run([occurrence(T0, priority=priority)])
        for change in changes:
            self.change(*change)

    def change(
        self, status: int, substatus: int | None = None, resolution: tuple[str, str] | None = None
    ) -> Run:
        self.time += SECOND
        self.last = status_change(self.time, status, substatus, resolution=resolution)
        self.result.apply([self.last])
        self.time += SECOND
        self.result.apply([occurrence(self.time, type=ERROR)])  # another category: closes the run only
        return self.result

    def activities(self) -> list[tuple[int, dict | None]]:
        """The activities caused by the last status change."""
        return sorted(
            (activity.type, activity.data)
            for activity in self.result.tables.activities.values()
            if activity.message_id == self.last.message_id
        )

    @property
    def group(self):
        return self.result.group


def test_same_status_as_current_has_no_effect_and_no_activity():
    scenario = Scenario((IGNORED, FOREVER))
    scenario.change(IGNORED, FOREVER)
    assert scenario.activities() == []
    assert scenario.result.count(metrics.STATUS_CHANGE_NO_EFFECT) == 1


def test_resolve_sets_resolved_with_the_message_time():
    scenario = Scenario()
    scenario.change(RESOLVED)
    assert (scenario.group.status, scenario.group.substatus) == (RESOLVED, None)
    assert scenario.group.resolved_at == scenario.last.message_time
    assert scenario.group.resolution_type is None
    assert scenario.activities() == [(ActivityType.SET_RESOLVED, None)]


def test_resolve_with_a_resolution_records_a_release_resolution():
    scenario = Scenario()
    scenario.change(RESOLVED, resolution=("in_release", "2.0.0"))
    group = scenario.group
    assert (group.resolution_type, group.resolution_version) == ("in_release", "2.0.0")
    assert scenario.activities() == [
        (ActivityType.SET_RESOLVED_IN_RELEASE, {"version": "2.0.0", "type": "in_release"})
    ]


def test_resolve_with_another_resolution_on_a_resolved_group_records_it_and_keeps_resolved_at():
    scenario = Scenario((RESOLVED, None, ("in_release", "2.0.0")))
    resolved_at = scenario.group.resolved_at
    scenario.change(RESOLVED, resolution=("in_next_release", "2.1.0"))
    group = scenario.group
    assert (group.resolution_type, group.resolution_version) == ("in_next_release", "2.1.0")
    assert group.resolved_at == resolved_at
    assert [kind for kind, _ in scenario.activities()] == [ActivityType.SET_RESOLVED_IN_RELEASE]


def test_plain_resolve_on_a_resolved_group_is_same_as_current_and_keeps_the_resolution():
    scenario = Scenario((RESOLVED, None, ("in_release", "2.0.0")))
    scenario.change(RESOLVED)
    assert scenario.group.resolution_version == "2.0.0"
    assert scenario.activities() == []


@pytest.mark.parametrize("substatus", [UNTIL_ESCALATING, UNTIL_CONDITION_MET, FOREVER])
def test_ignore_sets_ignored_with_its_substatus(substatus):
    scenario = Scenario()
    scenario.change(IGNORED, substatus)
    assert (scenario.group.status, scenario.group.substatus) == (IGNORED, substatus)
    assert scenario.activities() == [(ActivityType.SET_IGNORED, None)]


@pytest.mark.parametrize(
    ("before", "after"),
    [(Priority.LOW, Priority.MEDIUM), (Priority.MEDIUM, Priority.HIGH), (Priority.HIGH, Priority.HIGH)],
)
def test_escalating_from_ignored_unresolves_and_raises_the_priority(before, after):
    scenario = Scenario((IGNORED, UNTIL_ESCALATING), priority=before)
    scenario.change(UNRESOLVED, ESCALATING)
    assert (scenario.group.status, scenario.group.substatus) == (UNRESOLVED, ESCALATING)
    assert scenario.group.priority == after
    expected = [(ActivityType.SET_ESCALATING, None)]
    if after != before:
        expected.append(
            (
                ActivityType.SET_PRIORITY,
                {"priority": "medium" if after == 50 else "high", "reason": "escalating"},
            )
        )
    assert scenario.activities() == sorted(expected)


@pytest.mark.parametrize("setup", [(), ((RESOLVED,),), ((UNRESOLVED, REGRESSED),)])
def test_escalating_on_a_group_that_is_not_ignored_has_no_effect_and_is_counted(setup):
    scenario = Scenario(*setup)
    before = scenario.group
    scenario.change(UNRESOLVED, ESCALATING)
    assert scenario.group == before
    assert scenario.activities() == []
    assert scenario.result.count(metrics.STATUS_CHANGE_NO_EFFECT) == 1


@pytest.mark.parametrize(
    "setup",
    [(), ((RESOLVED,),), ((IGNORED, FOREVER),), ((IGNORED, UNTIL_ESCALATING), (UNRESOLVED, ESCALATING))],
)
def test_regressed_applies_from_any_state(setup):
    scenario = Scenario(*setup)
    scenario.change(UNRESOLVED, REGRESSED)
    assert (scenario.group.status, scenario.group.substatus) == (UNRESOLVED, REGRESSED)
    assert scenario.activities() == [(ActivityType.SET_REGRESSION, None)]


def test_ongoing_from_escalating_resets_the_priority_to_the_initial_one():
    scenario = Scenario((IGNORED, UNTIL_ESCALATING), (UNRESOLVED, ESCALATING), priority=Priority.LOW)
    assert scenario.group.priority == Priority.MEDIUM
    scenario.change(UNRESOLVED, ONGOING)
    assert (scenario.group.status, scenario.group.substatus) == (UNRESOLVED, ONGOING)
    assert scenario.group.priority == Priority.LOW
    assert scenario.activities() == [
        (ActivityType.AUTO_SET_ONGOING, None),
        (ActivityType.SET_PRIORITY, {"priority": "low", "reason": "ongoing"}),
    ]


@pytest.mark.parametrize("setup", [(), ((RESOLVED,),), ((IGNORED, FOREVER),), ((UNRESOLVED, REGRESSED),)])
def test_ongoing_from_anything_but_escalating_is_a_plain_unresolve(setup):
    scenario = Scenario(*setup, priority=Priority.HIGH)
    scenario.change(UNRESOLVED, ONGOING)
    assert (scenario.group.status, scenario.group.substatus) == (UNRESOLVED, ONGOING)
    assert scenario.group.priority == Priority.HIGH
    assert scenario.activities() == [(ActivityType.SET_UNRESOLVED, None)]


def test_pending_deletion_deletes_the_group():
    scenario = Scenario()
    group_id = scenario.group.group_id
    scenario.change(DELETE)
    assert group_id not in scenario.result.tables.groups
    delete_write = scenario.result.writes[-2]
    assert any(
        isinstance(intent, DeleteGroup) and intent.group_id == group_id for intent in delete_write.intents
    )
    assert scenario.result.count(metrics.GROUPS_DELETED) == 1


@pytest.mark.parametrize("leave", [(IGNORED, FOREVER), (UNRESOLVED, ONGOING), (UNRESOLVED, REGRESSED)])
def test_leaving_resolved_clears_resolved_at_and_the_resolution(leave):
    scenario = Scenario((RESOLVED, None, ("in_release", "2.0.0")))
    scenario.change(*leave)
    group = scenario.group
    assert (group.resolved_at, group.resolution_type, group.resolution_version) == (None, None, None)


@pytest.mark.parametrize(
    "pair",
    [(UNRESOLVED, NEW), (UNRESOLVED, None), (IGNORED, None), (RESOLVED, FOREVER), (DELETE, None), (5, None)],
)
def test_pairs_outside_the_table_are_refused_by_the_transition_itself(pair):
    group = MutableGroup(
        *[None] * 0,
        group_id=1, fingerprint="f", type=1018, status=0, substatus=7, priority=50, initial_priority=50, level=20,
        title="", subtitle="", culprit="", platform=None, first_seen=0, last_seen=0, active_at=0,
        active_at_from_creation=True, resolved_at=None, resolution_type=None, resolution_version=None,
        resolution_first_seen=None, times_seen=1, first_release=None, assignee=None, last_received=0, feedback=None,
        latest_time=0, latest_id="", creator_time=0, creator_id="", last_status_change_time=None, environments={},
        releases={},
    )  # fmt: skip
    change = status_change(T0, *pair).payload
    with pytest.raises(InvalidTransition):
        transition(group, change, T0, None)
