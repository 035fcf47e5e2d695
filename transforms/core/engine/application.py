"""The working copy of one key during one ``apply`` call, and what the two message paths share.

``KeyApplication`` holds the key's state, thawed for change, and what the call produces (intents, dead
letters, counters). The occurrence path (``occurrence_path``) and the status-change path
(``status_change_path``) extend it; ``engine`` sequences them. What both use lives here: booking a message
(``seq``, late messages, expiry of held status changes: rule 2), generations (6.4), release first-seen times
(E8), activities, the place of the group's row among the intents, and the final state and write.
"""

from __future__ import annotations

from operator import attrgetter
from typing import cast

from transforms.core import metrics
from transforms.core.engine import held as held_rules
from transforms.core.engine.context import EngineContext
from transforms.core.engine.dedup import DuplicateMemory
from transforms.core.engine.ids import activity_id
from transforms.core.engine.releases import record_release
from transforms.core.engine.rows import group_row
from transforms.core.engine.state import (
    STATE_VERSION,
    HeldChange,
    KeyState,
    MutableGroup,
    RunMember,
    WaitingLookup,
    encode_state,
    freeze_group,
    thaw_group,
)
from transforms.core.intents import (
    InsertActivity,
    Intent,
    KeyWrite,
    Outputs,
    RecordRelease,
    SaveKeyState,
    UpsertGroup,
)
from transforms.core.model import DeadLetter, Event, group_key

_OCCURRENCE_MESSAGES = metrics.OCCURRENCE_MESSAGES
_OCCURRENCES_ATTACHED = metrics.OCCURRENCES_ATTACHED

# Key order (rule 2, E4): message time, then message id compared as a string.
key_order = attrgetter("message_time", "message_id")


def is_late(message_time: int, message_id: str, last_time: int | None, last_id: str) -> bool:
    """Whether a message comes before the latest the key has taken in, in key order (counted late; it does not
    move the key's latest)."""
    return last_time is not None and (
        message_time < last_time or (message_time == last_time and message_id < last_id)
    )


class KeyApplication:
    """The mutable working copy of one key for one ``apply`` call (one instance per call, never shared)."""

    __slots__ = (
        "activity_slots",
        "attached",
        "config",
        "context",
        "counters",
        "dead_letters",
        "features_allowed",
        "first_indexed",
        "generation",
        "generation_start_id",
        "generation_start_time",
        "group",
        "group_slot",
        "group_updates",
        "held",
        "held_earliest",
        "holes",
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
        self.held: list[HeldChange] = list(state.held) if state.held else []
        # At most the earliest message time in ``held`` (None: not known yet): _take_in looks for expired
        # changes only once the horizon passes it. Appending to ``held`` must keep it a lower bound.
        self.held_earliest: int | None = None
        self.waiting: list[WaitingLookup] = list(state.waiting) if state.waiting else []
        self.memory = DuplicateMemory(state.seen_ids, state.seen_times)
        self.releases = state.releases  # copied before its first change: _record_release
        self.intents: list[Intent | None] = []
        self.activity_slots: dict[str, int] = {}
        self.group_slot = -1
        self.group_updates = 0  # UpsertGroups made (Outputs.group_updates)
        self.holes = False  # an intent was taken back (None in ``intents``): _revert
        self.recorded_events: dict[str, Event] = {}
        self.dead_letters: list[DeadLetter] = []
        self.counters: dict[str, int] = {}
        self.occurrence_messages = 0  # the two hottest counters, merged into ``counters`` at the end
        self.attached = 0
        self.relink = False
        self.features_allowed: dict[int, bool] = {}
        # Search tags and texts given to IndexOccurrence in this call: (group id, tag) and (group id, *texts);
        # until a second occurrence is indexed, only what the first gave: (group id, search tags, texts).
        self.indexed: set[tuple[object, ...]] | None = None
        self.first_indexed: tuple[int, tuple[tuple[str, str], ...], tuple[object, ...]] | None = None

    def _apply_held(self, creator_time: int) -> None:
        """Apply the status changes held for a group that was just created (the status-change path)."""
        raise NotImplementedError

    def _count(self, name: str, amount: int = 1) -> None:
        counters = self.counters
        counters[name] = counters.get(name, 0) + amount

    def _take_in(self, message_time: int, message_id: str) -> None:
        """Book a non-duplicate message: ``seq``, late detection, expiry of held status changes."""
        self.seq += 1
        if is_late(message_time, message_id, self.last_time, self.last_id):
            self._count(metrics.LATE_MESSAGES)
        else:
            self.last_time = message_time
            self.last_id = message_id
        if self.held:
            window = self.config.pending_status_window
            earliest = self.held_earliest
            if earliest is None or earliest < message_time - window:
                expired = held_rules.expire(self.held, message_time, window)
                if expired:
                    self._count(metrics.STATUS_CHANGE_GROUP_NOT_FOUND, expired)
                self.held_earliest = held_rules.earliest(self.held)

    def _ended_generation(self, message_time: int, message_id: str) -> bool:
        """Whether the message comes before the delete that started the current generation (key order)."""
        start = self.generation_start_time
        return start is not None and (
            message_time < start or (message_time == start and message_id < self.generation_start_id)
        )

    def _record_release(self, version: str, message_time: int) -> None:
        releases = self.releases
        if releases is self.state.releases:  # the stored state's: never changed in place
            releases = self.releases = dict(releases)
        if record_release(releases, version, message_time):
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
        data: dict[str, object] | None,
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
            self.group_updates += 1

    def _finish(self) -> tuple[KeyState, Outputs]:
        counters = self.counters
        if self.occurrence_messages:
            counters[_OCCURRENCE_MESSAGES] = counters.get(_OCCURRENCE_MESSAGES, 0) + self.occurrence_messages
        if self.attached:
            counters[_OCCURRENCES_ATTACHED] = counters.get(_OCCURRENCES_ATTACHED, 0) + self.attached
        state = self.state
        seq = self.seq
        if seq == state.seq:
            return state, Outputs(None, self.dead_letters, counters)
        project_id = self.project_id
        primary_hash = self.primary_hash
        generation = self.generation
        group = self.group
        if group is None:
            frozen = group_id = None
        else:
            if self.group_slot >= 0:
                self._fill_group_slot(group)
            frozen = freeze_group(group)
            group_id = group.group_id
        seen_ids, seen_times = self.memory.freeze()
        held = self.held
        waiting = self.waiting
        # Positional, in the order of KeyState's fields: CPython passes a call with more than 15 keyword
        # arguments as a dict, which msgspec reads far more slowly (docs/performance.md).
        new = KeyState(
            STATE_VERSION,  # version
            project_id,
            primary_hash,
            seq,
            generation,
            self.last_time,
            self.last_id,
            frozen,  # group
            self.noise_count,
            self.noise_last,
            self.run,
            self.run_open,
            self.member,
            tuple(held) if held else (),
            tuple(waiting) if waiting else (),
            seen_ids,
            seen_times,
            self.releases,
            self.generation_start_time,
            self.generation_start_id,
        )
        # Without holes every reserved place was filled (_fill_group_slot above, or _delete's): no None left.
        intents = cast("list[Intent]", self.intents)
        if self.holes:
            intents = [intent for intent in self.intents if intent is not None]
        # positional, as KeyState above: project, hash, generation, group, state, relink
        intents.append(
            SaveKeyState(project_id, primary_hash, generation, group_id, encode_state(new), self.relink)
        )
        write = KeyWrite(group_key(project_id, primary_hash), seq, tuple(intents), state.seq)
        # positional: write, dead letters, counters, events (those of its RecordEvents), group updates
        return new, Outputs(write, self.dead_letters, counters, self.recorded_events, self.group_updates)
