"""The status-change path of ``apply``: transitions of the key's group, and what comes before its group.

Duplicates (rule 2), stale status changes (5.2), transitions and their activities (5.1), pruning of a run of
status changes (5.2: a later change of the run reverts the earlier one), deletion and the next generation
(6.4), and status changes held until their group is created (5.2; the occurrence path calls
``_apply_held`` when it creates one).
"""

from __future__ import annotations

import msgspec

from transforms.core import metrics
from transforms.core.engine import held as held_rules
from transforms.core.engine.application import KeyApplication
from transforms.core.engine.ids import status_change_memory_id
from transforms.core.engine.runs import restore, run_member
from transforms.core.engine.state import HeldChange, MutableGroup, RunMember
from transforms.core.engine.status_changes import transition
from transforms.core.enums import GroupStatus
from transforms.core.intents import DeleteActivity, DeleteGroup
from transforms.core.model import Message, StatusChange

_DELETE = GroupStatus.PENDING_DELETION


class StatusChangePath(KeyApplication):
    """The status-change messages of one ``apply`` call."""

    __slots__ = ()

    def _status_change(self, message: Message, change: StatusChange) -> None:
        message_time = message.message_time
        memory_id = status_change_memory_id(change.id)
        if self.memory.is_duplicate(memory_id, message_time, self.config.duplicate_retention):
            self._count(metrics.DUPLICATES)
            return
        self._count(metrics.STATUS_CHANGE_MESSAGES)
        message_id = message.message_id
        self._take_in(message_time, message_id)
        self.memory.remember(memory_id, message_time)
        if change.resolution is not None:
            self._record_release(change.resolution.version, message_time)
        if self._ended_generation(message_time, message_id):  # the delete after it was applied: stale
            self._count(metrics.STATUS_CHANGE_STALE)
            return
        group = self.group
        if group is None:
            self.held.append(HeldChange(message_id, message_time, self._run_for_change(), change))
            earliest = self.held_earliest
            if earliest is not None and message_time < earliest:
                self.held_earliest = message_time
            self._count(metrics.STATUS_CHANGE_PENDING)
            return
        if group.last_status_change_time is not None and message_time < group.last_status_change_time:
            self._count(metrics.STATUS_CHANGE_STALE)
            return
        self._apply_change(change, message_time, message_id, self._run_for_change())

    def _run_for_change(self) -> int:
        """The run a status change taken in now belongs to (a new one after anything else was taken in)."""
        if not self.run_open:
            self.run += 1
            self.run_open = True
        return self.run

    def _apply_change(self, change: StatusChange, message_time: int, message_id: str, run: int) -> None:
        group = self.group
        assert group is not None
        member = self.member
        if member is not None and member.run == run and member.group_id == group.group_id:
            self._revert(group, member)
        if group.last_status_change_time is None or message_time > group.last_status_change_time:
            group.last_status_change_time = message_time
        if change.new_status == _DELETE:
            self._delete(group, message_time, message_id)
            return
        if self.group_slot < 0:
            self._touch()
        snapshot = run_member(run, group, change.id)
        resolution_first_seen = None
        if change.resolution is not None:
            resolution_first_seen = self._first_seen(change.resolution.version)
            if resolution_first_seen is None or resolution_first_seen > message_time:
                resolution_first_seen = message_time
        activities = transition(group, change, message_time, resolution_first_seen)
        if not activities:
            self._count(metrics.STATUS_CHANGE_NO_EFFECT)
            self.member = snapshot
            return
        activity_ids = tuple(
            self._activity(group.group_id, change.id, activity_type, message_time, message_id, data)
            for activity_type, data in activities
        )
        self.member = msgspec.structs.replace(snapshot, activity_ids=activity_ids)

    def _revert(self, group: MutableGroup, member: RunMember) -> None:
        """Undo the previous status change of the run (5.2): restore its snapshot, take back its activities."""
        restore(group, member)
        if self.group_slot < 0:
            self._touch()
        for activity in member.activity_ids:
            slot = self.activity_slots.pop(activity, None)
            if slot is not None:
                self.intents[slot] = None
                self.holes = True
            else:
                self.intents.append(DeleteActivity(group.group_id, activity))
        self.member = None
        self._count(metrics.DROPPED_STATUS_CHANGES)

    def _delete(self, group: MutableGroup, message_time: int, message_id: str) -> None:
        """PENDING_DELETION (6.4): remove the group, clear the key state but its memory, next generation,
        which starts at the delete's key order."""
        self._fill_group_slot(group)
        self.intents.append(DeleteGroup(group.group_id, self.project_id, (self.primary_hash,)))
        self.group = None
        self.generation += 1
        self.generation_start_time = message_time
        self.generation_start_id = message_id
        self.noise_count = 0
        self.noise_last = 0
        self.member = None
        self.run_open = False
        self.relink = True
        self._count(metrics.GROUPS_DELETED)

    def _apply_held(self, creator_time: int) -> None:
        applicable, dropped = held_rules.split_for_creator(self.held, creator_time)
        self.held = []
        if dropped:
            self._count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND, dropped)
        for index, held in enumerate(applicable):
            group = self.group
            if group is None:  # an earlier held change deleted the new group: the rest wait for the next one
                self.held.extend(applicable[index:])
                return
            if (
                group.last_status_change_time is not None
                and held.message_time < group.last_status_change_time
            ):
                self._count(metrics.STATUS_CHANGE_STALE)
                continue
            self._apply_change(held.change, held.message_time, held.message_id, held.run)
