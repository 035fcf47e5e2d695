"""``apply``: one key's state and a batch of its messages in, the new state and the writes out.

Contract:

* Pure and deterministic: no clock (``context.now`` is used only for lookup
  waits), no randomness, no I/O. ``apply`` never mutates its input state.
* Order (rule 2, E4): the batch is applied in (message time, message id)
  order, ids compared as strings. The state remembers the greatest order it
  took in; a message below it is late (counted) and follows the late rules,
  which converge to the in-order result wherever the rules allow.
* Generations (rule 6.4): a message belongs to the group generation of its
  key order. One older than the delete that ended its generation (late, or
  an occurrence that waited for its event) touches nothing of the next one:
  an occurrence is remembered, records its release (not its event: that
  would have gone with the group's occurrence rows) and is counted
  ``occurrences.dropped_group_deleted``; a status change is stale. In key
  order it would have gone with the deleted group, so this is the in-order
  result.
* Batch independence: for a key-ordered stream, any split into consecutive
  batches, any permutation within a batch and any redelivery of messages give
  the same final state (byte for byte) and the same rows. ``seq`` increases by
  one for every non-duplicate message taken in (applied, held, waiting, or
  dropped by a rule) and for every waiting lookup later settled; a message
  dead-lettered at once leaves no trace (E13), so it takes no ``seq``.
* Writes: one ``KeyWrite`` per call when anything was taken in, carrying the
  new ``seq``; its intents are in the order a writer must apply them (a group
  row before the rows that hang off it) and always end with ``SaveKeyState``.

Every rule lives in a module named for it: duplicates (``dedup``), noise gate
(``noise``), creation (``creation``), existing groups (``occurrences``), status
transitions (``status_changes``), pruning of status-change runs (``runs``),
status changes before their group (``held``), regressions (``regression``),
releases and versions (``releases``), environments (``environments``), events
and lookup waits (``events``), ids (``ids``), rows (``rows``), the stored state
(``state``). This module only sequences them.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

import msgspec

from transforms.core import metrics
from transforms.core.engine import held as held_rules
from transforms.core.engine.context import EngineContext
from transforms.core.engine.creation import create_group
from transforms.core.engine.dedup import DuplicateMemory
from transforms.core.engine.environments import record_environment, record_group_release
from transforms.core.engine.events import event_not_found, waiting_lookup
from transforms.core.engine.ids import activity_id, group_id, occurrence_memory_id, status_change_memory_id
from transforms.core.engine.noise import count_occurrence, passes_gate
from transforms.core.engine.occurrences import attach
from transforms.core.engine.regression import regress, should_regress
from transforms.core.engine.releases import record_release
from transforms.core.engine.rows import group_row, search_message
from transforms.core.engine.runs import restore, run_member
from transforms.core.engine.state import (
    STATE_VERSION,
    HeldChange,
    KeyState,
    MutableGroup,
    RunMember,
    WaitingLookup,
    encode_state,
    freeze_group,
    new_state,
    thaw_group,
)
from transforms.core.engine.status_changes import transition
from transforms.core.engine.tags import occurrence_tags, search_tags, text_terms
from transforms.core.enums import ActivityType, GroupStatus
from transforms.core.grouptypes import GROUP_TYPES, GroupType
from transforms.core.intents import (
    DeleteActivity,
    DeleteGroup,
    IndexOccurrence,
    InsertActivity,
    InsertOccurrence,
    Intent,
    KeyWrite,
    LinkHashes,
    Outputs,
    RecordEnvironment,
    RecordEvent,
    RecordGroupRelease,
    RecordRelease,
    SaveKeyState,
    UpsertGroup,
)
from transforms.core.model import DeadLetter, Event, Message, Occurrence, StatusChange, group_key

_DELETE = GroupStatus.PENDING_DELETION
_RESOLVED = GroupStatus.RESOLVED


# Key order (rule 2, E4): message time, then message id compared as a string.
_order = attrgetter("message_time", "message_id")


def apply(
    state: KeyState | None, messages: Sequence[Message], context: EngineContext
) -> tuple[KeyState, Outputs]:
    """Apply ``messages`` (all of one key, any order) to ``state`` (None for a new key).

    ``apply(state, [], context)`` only retries the key's waiting lookups.
    Raises ``ValueError`` if a message belongs to another key than ``state``, or
    ``context.project`` to another project.
    """
    if state is None:
        if not messages:
            raise ValueError("apply needs a state or at least one message to know its key")
        payload = messages[0].payload
        state = new_state(payload.project_id, payload.hashes[0])
    if context.project.project_id != state.project_id:
        raise ValueError(
            f"context is for project {context.project.project_id}, the key belongs to project {state.project_id}"
        )
    if len(messages) > 1:
        messages = sorted(messages, key=_order)
    return _Application(state, context).process(messages)


class _Application:
    """The mutable working copy of one key for one ``apply`` call."""

    __slots__ = (
        "activity_slots",
        "attached",
        "config",
        "context",
        "counters",
        "dead_letters",
        "features_allowed",
        "generation",
        "generation_start_id",
        "generation_start_time",
        "group",
        "group_slot",
        "held",
        "indexed",
        "intents",
        "last_id",
        "last_time",
        "member",
        "memory",
        "noise_count",
        "noise_last",
        "occurrence_messages",
        "primary_hash",
        "project_id",
        "recorded_events",
        "releases",
        "relink",
        "run",
        "run_open",
        "seq",
        "state",
        "waiting",
    )

    def __init__(self, state: KeyState, context: EngineContext) -> None:
        self.state = state
        self.context = context
        self.config = context.config
        self.project_id = state.project_id
        self.primary_hash = state.primary_hash
        self.seq = state.seq
        self.generation = state.generation
        self.generation_start_time = state.generation_start_time
        self.generation_start_id = state.generation_start_id
        self.last_time = state.last_time
        self.last_id = state.last_id
        self.group: MutableGroup | None = thaw_group(state.group) if state.group is not None else None
        self.noise_count = state.noise_count
        self.noise_last = state.noise_last
        self.run = state.run
        self.run_open = state.run_open
        self.member: RunMember | None = state.member
        self.held: list[HeldChange] = list(state.held)
        self.waiting: list[WaitingLookup] = list(state.waiting)
        self.memory = DuplicateMemory(state.seen_ids, state.seen_times)
        self.releases = dict(state.releases)
        self.intents: list[Intent | None] = []
        self.activity_slots: dict[str, int] = {}
        self.group_slot = -1
        self.recorded_events: dict[str, Event] = {}
        self.dead_letters: list[DeadLetter] = []
        self.counters: dict[str, int] = {}
        self.occurrence_messages = 0  # the two hottest counters, merged into ``counters`` at the end
        self.attached = 0
        self.relink = False
        self.features_allowed: dict[int, bool] = {}
        self.indexed: set[tuple] = set()  # search tags and texts given to IndexOccurrence in this call

    # ------------------------------------------------------------------ sequencing

    def process(self, messages: Sequence[Message]) -> tuple[KeyState, Outputs]:
        if self.waiting:
            self._retry_waiting(final=False)
        project_id = self.project_id
        primary_hash = self.primary_hash
        for message in messages:
            payload = message.payload
            if payload.project_id != project_id or payload.hashes[0] != primary_hash:
                raise ValueError(
                    f"message {message.message_id} belongs to key {message.key}, "
                    f"not {group_key(project_id, primary_hash)}"
                )
            if payload.__class__ is Occurrence:
                self._occurrence(message, payload)
            else:
                self._status_change(message, payload)
        if self.waiting and self.recorded_events:
            self._retry_waiting(final=True)
        return self._finish()

    def _count(self, name: str, amount: int = 1) -> None:
        counters = self.counters
        counters[name] = counters.get(name, 0) + amount

    def _take_in(self, message_time: int, message_id: str) -> None:
        """Book a non-duplicate message: ``seq``, late detection, expiry of held status changes."""
        self.seq += 1
        last_time = self.last_time
        if last_time is not None and (
            message_time < last_time or (message_time == last_time and message_id < self.last_id)
        ):
            self._count(metrics.LATE_MESSAGES)
        else:
            self.last_time = message_time
            self.last_id = message_id
        if self.held:
            expired = held_rules.expire(self.held, message_time, self.config.pending_status_window)
            if expired:
                self._count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND, expired)

    def _ended_generation(self, message_time: int, message_id: str) -> bool:
        """Whether the message comes before the delete that started the current generation (key order)."""
        start = self.generation_start_time
        return start is not None and (
            message_time < start or (message_time == start and message_id < self.generation_start_id)
        )

    # ------------------------------------------------------------------ occurrences

    def _occurrence(self, message: Message, occurrence: Occurrence) -> None:
        message_time = message.message_time
        memory_id = occurrence_memory_id(occurrence.id)
        stored = self.context.stored_occurrence_ids
        if (
            (stored and occurrence.id in stored)
            or self.memory.is_duplicate(memory_id, message_time, self.config.duplicate_retention)
            or (self.waiting and self._is_waiting(occurrence.id))
        ):
            self._count(metrics.DUPLICATES)
            return
        self.occurrence_messages += 1
        message_id = message.message_id
        group_type = GROUP_TYPES[occurrence.type]
        allowed = self.features_allowed.get(occurrence.type)
        if allowed is None:
            allowed = self._allowed(group_type)
        if not allowed:
            self._take_in(message_time, message_id)
            self._count(metrics.DROPPED_FEATURE_DISABLED)
            self.memory.remember(memory_id, message_time)
            if not self._ended_generation(message_time, message_id):
                self.run_open = False
                self.member = None
            return
        event = occurrence.event
        if event is None:
            event = self._find_event(occurrence.event_id)
            if event is None:
                self._lookup_missed(message, occurrence)
                return
            self._take_in(message_time, message_id)
        else:
            self._take_in(message_time, message_id)
            # An occurrence of an ended generation would (normally) have been attached to the deleted group,
            # its event on its occurrence row, gone with the group: it stores none.
            if not occurrence.is_buffered_spans and not self._ended_generation(message_time, message_id):
                self.intents.append(RecordEvent(event=event, level=occurrence.level))
                self.recorded_events[event.event_id] = event
        self._apply_occurrence(message_time, message_id, occurrence, group_type, event, memory_id)

    def _allowed(self, group_type: GroupType) -> bool:
        """The feature gate of rule 3.1 (unreleased types need the organization's feature)."""
        allowed = self.features_allowed.get(group_type.type_id)
        if allowed is None:
            allowed = self.features_allowed[group_type.type_id] = group_type.allow_ingest(
                self.context.project.features
            )
        return allowed

    def _find_event(self, event_id: str) -> Event | None:
        event = self.context.events.get(event_id)
        if event is None:
            event = self.recorded_events.get(event_id)
        return event

    def _is_waiting(self, occurrence_id: str) -> bool:
        return any(waiting.occurrence.id == occurrence_id for waiting in self.waiting)

    def _lookup_missed(self, message: Message, occurrence: Occurrence) -> None:
        if self.config.wait_for_events:
            self._take_in(message.message_time, message.message_id)
            self.waiting.append(
                waiting_lookup(message, occurrence, self.context.now, self.config.lookup_retry_window)
            )
            self._count(metrics.EVENT_LOOKUP_WAITING)
        else:
            self.dead_letters.append(
                event_not_found(
                    message.message_id,
                    message.message_time,
                    occurrence,
                    message.data,
                    message.attributes,
                    waited=False,
                )
            )

    def _retry_waiting(self, final: bool) -> None:
        """Apply waiting lookups whose event is now known; dead-letter those past their deadline.

        At the start of a call (``final`` False) every waiting lookup is
        retried against the prefetched events; at its end only against the
        events stored during the call, and nothing is given up.
        """
        now = self.context.now
        give_up = not self.config.wait_for_events
        still_waiting: list[WaitingLookup] = []
        for waiting in sorted(self.waiting, key=_order):
            occurrence = waiting.occurrence
            event = self._find_event(occurrence.event_id)
            if event is not None:
                self._take_in(waiting.message_time, waiting.message_id)
                self._apply_occurrence(
                    waiting.message_time,
                    waiting.message_id,
                    occurrence,
                    GROUP_TYPES[occurrence.type],
                    event,
                    occurrence_memory_id(occurrence.id),
                )
            elif not final and (give_up or now >= waiting.deadline):
                self.seq += 1
                self.dead_letters.append(
                    event_not_found(
                        waiting.message_id,
                        waiting.message_time,
                        occurrence,
                        waiting.data,
                        waiting.attributes,
                        waited=True,
                    )
                )
            else:
                still_waiting.append(waiting)
        self.waiting = still_waiting

    def _apply_occurrence(
        self,
        message_time: int,
        message_id: str,
        occurrence: Occurrence,
        group_type: GroupType,
        event: Event,
        memory_id: bytes,
    ) -> None:
        """Everything after the event is known: releases, then creation or attachment (3.4, 3.5).

        An occurrence of an ended generation stops after its release: its group was deleted after it.
        """
        self.memory.remember(memory_id, message_time)
        release = event.release
        if release is not None:
            self._record_release(release, message_time)
        if self._ended_generation(message_time, message_id):
            self._count(metrics.DROPPED_GROUP_DELETED)
            return
        self.run_open = False
        self.member = None
        group = self.group
        if group is None:
            self._try_create(message_time, message_id, occurrence, group_type, event)
        elif group.type != occurrence.type and GROUP_TYPES[group.type].category != group_type.category:
            self._count(metrics.CATEGORY_MISMATCH)
        else:
            self._attach(group, message_time, message_id, occurrence, group_type, event)

    def _try_create(
        self, message_time: int, message_id: str, occurrence: Occurrence, group_type: GroupType, event: Event
    ) -> None:
        noise_config = group_type.noise_config
        if noise_config is not None:
            self.noise_count, self.noise_last = count_occurrence(
                self.noise_count, self.noise_last, message_time, noise_config
            )
            if not passes_gate(self.noise_count, noise_config):
                self._count(metrics.DROPPED_NOISE)
                return
        quota = self.context.quota
        if quota is not None and not quota.try_acquire(
            self.project_id, group_type, message_time, f"{self.primary_hash}:{self.generation}"
        ):
            self._count(metrics.DROPPED_RATE_LIMITING)
            return
        group = create_group(
            group_id(self.project_id, self.primary_hash, self.generation),
            occurrence,
            event,
            group_type,
            message_time,
            message_id,
        )
        self.group = group
        self.noise_count = 0
        self.noise_last = 0
        self.relink = True
        self._touch()
        self.intents.append(LinkHashes(self.project_id, group.group_id, (self.primary_hash,)))
        self._insert_occurrence(group, message_time, message_id, occurrence, event)
        self._count(metrics.GROUP_CREATED)
        if self.held:
            self._apply_held(message_time)

    def _attach(
        self,
        group: MutableGroup,
        message_time: int,
        message_id: str,
        occurrence: Occurrence,
        group_type: GroupType,
        event: Event,
    ) -> None:
        attach(group, occurrence, event, group_type, message_time, message_id)
        if self.group_slot < 0:
            self._touch()
        self._insert_occurrence(group, message_time, message_id, occurrence, event)
        if group.status == _RESOLVED and should_regress(group, message_time, event.release, self._first_seen):
            data = regress(group, message_time, event.event_id, event.release)
            self._activity(
                group.group_id, occurrence.id, ActivityType.SET_REGRESSION, message_time, message_id, data
            )
            self._count(metrics.REGRESSIONS)

    def _insert_occurrence(
        self, group: MutableGroup, message_time: int, message_id: str, occurrence: Occurrence, event: Event
    ) -> None:
        self.intents.append(
            InsertOccurrence(
                group.group_id,
                message_id,
                message_time,
                event.timestamp,
                occurrence,
                event.release,
                event.environment,
            )
        )
        self._index(group.group_id, occurrence, event)
        environment = event.environment or ""  # environments.environment_name, inlined on the hot path
        if record_environment(group.environments, environment, message_time, message_id):
            self.intents.append(RecordEnvironment(group.group_id, environment, event.release, message_time))
        release = event.release
        if release and record_group_release(group.releases, release, message_time):
            self.intents.append(RecordGroupRelease(group.group_id, release))
        self.attached += 1

    def _index(self, group_id: int, occurrence: Occurrence, event: Event) -> None:
        """The occurrence's tags, counted; its search tags and words, unless this call already gave them
        for the group (they only record that the group has them: ``tags``)."""
        given = self.indexed
        found = []
        for tag in search_tags(event):
            mark = (group_id, tag)
            if mark not in given:
                given.add(mark)
                found.append(tag)
        text = (group_id, occurrence.issue_title, occurrence.subtitle, occurrence.culprit)
        terms: tuple[str, ...] = ()
        if text not in given:
            given.add(text)
            terms = text_terms(
                search_message(occurrence.issue_title, occurrence.subtitle, occurrence.culprit)
            )
        self.intents.append(
            IndexOccurrence(
                group_id,
                self.context.project.organization_id,
                self.project_id,
                occurrence.id,
                event.timestamp,
                occurrence_tags(occurrence.level, event),
                tuple(found),
                terms,
            )
        )

    # ------------------------------------------------------------------ status changes

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

    # ------------------------------------------------------------------ releases, activities, rows

    def _record_release(self, version: str, message_time: int) -> None:
        if record_release(self.releases, version, message_time):
            self.intents.append(RecordRelease(self.project_id, version, message_time))

    def _first_seen(self, version: str) -> int | None:
        """A version's first-seen time: the minimum of the key's knowledge, the project's, the resolution's."""
        first_seen = self.releases.get(version)
        book = self.context.releases
        if book is not None:
            stored = book.first_seen(self.project_id, version)
            if stored is not None and (first_seen is None or stored < first_seen):
                first_seen = stored
        group = self.group
        if group is not None and group.resolution_version == version:
            recorded = group.resolution_first_seen
            if recorded is not None and (first_seen is None or recorded < first_seen):
                first_seen = recorded
        return first_seen

    def _activity(
        self,
        group: int,
        payload_id: str,
        activity_type: int,
        message_time: int,
        message_id: str,
        data: dict | None,
    ) -> str:
        identifier = activity_id(group, payload_id, activity_type)
        self.activity_slots[identifier] = len(self.intents)
        self.intents.append(
            InsertActivity(
                group, self.project_id, identifier, int(activity_type), message_id, message_time, data
            )
        )
        return identifier

    def _touch(self) -> None:
        """Reserve the place of the group's row before the first row that hangs off it in this call."""
        if self.group_slot < 0:
            self.group_slot = len(self.intents)
            self.intents.append(None)

    def _fill_group_slot(self, group: MutableGroup) -> None:
        if self.group_slot >= 0:
            self.intents[self.group_slot] = UpsertGroup(
                group_row(group, self.context.project, self.primary_hash, self.generation)
            )
            self.group_slot = -1

    def _finish(self) -> tuple[KeyState, Outputs]:
        if self.occurrence_messages:
            self._count(metrics.OCCURRENCE_MESSAGES, self.occurrence_messages)
        if self.attached:
            self._count(metrics.OCCURRENCES_ATTACHED, self.attached)
        state = self.state
        if self.seq == state.seq:
            return state, Outputs(write=None, dead_letters=self.dead_letters, counters=self.counters)
        group = self.group
        if group is not None:
            self._fill_group_slot(group)
        seen_ids, seen_times = self.memory.freeze()
        new = KeyState(
            version=STATE_VERSION,
            project_id=self.project_id,
            primary_hash=self.primary_hash,
            seq=self.seq,
            generation=self.generation,
            last_time=self.last_time,
            last_id=self.last_id,
            group=freeze_group(group) if group is not None else None,
            noise_count=self.noise_count,
            noise_last=self.noise_last,
            run=self.run,
            run_open=self.run_open,
            member=self.member,
            held=tuple(self.held),
            waiting=tuple(self.waiting),
            seen_ids=seen_ids,
            seen_times=seen_times,
            releases=self.releases,
            generation_start_time=self.generation_start_time,
            generation_start_id=self.generation_start_id,
        )
        intents = [intent for intent in self.intents if intent is not None]
        intents.append(
            SaveKeyState(
                project_id=self.project_id,
                primary_hash=self.primary_hash,
                generation=self.generation,
                group_id=group.group_id if group is not None else None,
                state=encode_state(new),
                relink=self.relink,
            )
        )
        write = KeyWrite(
            key=group_key(self.project_id, self.primary_hash),
            seq=self.seq,
            intents=tuple(intents),
            base_seq=self.state.seq,
        )
        return new, Outputs(write=write, dead_letters=self.dead_letters, counters=self.counters)
