"""One occurrence on a key without a group that does not create one: ``apply`` without a working copy.

Most calls of a stream are of this kind: a key's single message, an occurrence whose event it carries, held
back by the noise gate or refused by the creation quota (or its type's feature), so the call only books the
message (``seq``, key order, the duplicate memory, held status changes' expiry), records its event and
release, and counts. ``occurrence`` gives exactly what ``engine._Application`` gives for such a call (the same
state, write, counters and events: tests/engine/test_groupless.py compares them on generated calls), in one
function instead of the working copy's dozen calls. Anything else it declines (None) before any effect, and
the general path applies the call: a duplicate, a key with a group, waiting lookups or a delete behind it, an
event to look up, a backfill's stored occurrences. When the quota grants the creation, the general path
applies the call with that answer given (``_Granted``): the quota is asked once, as there.

The rules stay where they live (``noise``, ``held``, ``releases``, ``dedup``, ``application._take_in``): this
path calls them, or follows ``application`` and ``occurrence_path`` line for line where it inlines them.
"""

from __future__ import annotations

import msgspec

from transforms.core import metrics
from transforms.core.engine import dedup
from transforms.core.engine import held as held_rules
from transforms.core.engine.application import is_late
from transforms.core.engine.context import EngineContext, QuotaGate
from transforms.core.engine.dedup import memory_id as native_memory_id
from transforms.core.engine.ids import creation_id, occurrence_memory_id
from transforms.core.engine.noise import count_occurrence, passes_gate
from transforms.core.engine.releases import record_release
from transforms.core.engine.state import STATE_VERSION, KeyState, encode_state
from transforms.core.grouptypes import GROUP_TYPES, GroupType
from transforms.core.intents import Intent, KeyWrite, Outputs, RecordEvent, RecordRelease, SaveKeyState
from transforms.core.model import Event, Message, Occurrence, group_key

_OCCURRENCE_MESSAGES = metrics.OCCURRENCE_MESSAGES
_LATE_MESSAGES = metrics.LATE_MESSAGES
_NOT_FOUND = metrics.STATUS_CHANGE_GROUP_NOT_FOUND
_FEATURE_DISABLED = metrics.DROPPED_FEATURE_DISABLED
_DROPPED_NOISE = metrics.DROPPED_NOISE
_DROPPED_RATE_LIMITING = metrics.DROPPED_RATE_LIMITING


class _Granted:
    """The quota of a call whose creation this path asked for and was granted: that creation is granted
    again without asking (the quota's answer is not asked twice), any other is asked."""

    __slots__ = ("creation_id", "quota")

    def __init__(self, quota: QuotaGate, creation_id: str) -> None:
        self.quota = quota
        self.creation_id = creation_id

    def try_acquire(
        self, project_id: int, group_type: GroupType, message_time: int, creation_id: str
    ) -> bool:
        if creation_id == self.creation_id:
            return True
        return self.quota.try_acquire(project_id, group_type, message_time, creation_id)


def occurrence(
    state: KeyState, message: Message, context: EngineContext
) -> tuple[KeyState, Outputs] | EngineContext | None:
    """``apply(state, [message], context)`` when this path applies it; None when it declines (nothing was
    done); a context for the general path when the message creates the group (its quota's grant given)."""
    occurrence = message.payload
    if (
        occurrence.__class__ is not Occurrence
        or state.group is not None
        or state.waiting
        or state.generation_start_time is not None
        or context.stored_occurrence_ids
    ):
        return None
    assert isinstance(occurrence, Occurrence)  # for mypy: the class was compared above
    event = occurrence.event
    if event is None or occurrence.project_id != state.project_id:
        return None
    primary_hash = state.primary_hash
    if occurrence.hashes[0] != primary_hash:
        return None
    occurrence_id = occurrence.id
    memory_id = native_memory_id(b"occurrence:", occurrence_id) or occurrence_memory_id(occurrence_id)
    message_time = message.message_time
    config = context.config
    remembered = dedup.remember_one(
        state.seen_ids, state.seen_times, memory_id, message_time, config.duplicate_retention
    )
    if remembered is None:  # a duplicate
        return None
    group_type = GROUP_TYPES[occurrence.type]
    allowed = group_type.allow_ingest(context.project.features)  # rule 3.1, as occurrence_path._allowed
    counters: dict[str, int] = {}
    # application._take_in
    message_id = message.message_id
    last_time = state.last_time
    last_id = state.last_id
    if is_late(message_time, message_id, last_time, last_id):
        counters[_LATE_MESSAGES] = 1
    else:
        last_time = message_time
        last_id = message_id
    held = state.held
    if held:
        kept = list(held)
        expired = held_rules.expire(kept, message_time, config.pending_status_window)
        if expired:
            counters[_NOT_FOUND] = expired
            held = tuple(kept)
    intents: list[Intent] = []
    events: dict[str, Event] = {}
    releases = state.releases
    noise_count = state.noise_count
    noise_last = state.noise_last
    project_id = state.project_id
    generation = state.generation
    if not allowed:
        counters[_FEATURE_DISABLED] = 1
    else:
        if not occurrence.is_buffered_spans:
            intents.append(RecordEvent(event, occurrence.level))
            events[event.event_id] = event
        release = event.release
        if release is not None:
            recorded = releases.get(release)
            if recorded is None or recorded > message_time:
                releases = dict(releases)  # the stored state's is never changed in place
                if record_release(releases, release, message_time):
                    intents.append(RecordRelease(project_id, release, message_time))
        # occurrence_path._try_create, up to the creation
        noise_config = group_type.noise_config
        refused = False
        if noise_config is not None:
            noise_count, noise_last = count_occurrence(noise_count, noise_last, message_time, noise_config)
            if not passes_gate(noise_count, noise_config):
                counters[_DROPPED_NOISE] = 1
                refused = True
        if not refused:
            quota = context.quota
            if quota is None:
                return context  # the group is created: no quota to ask
            creation = creation_id(primary_hash, generation)
            if quota.try_acquire(project_id, group_type, message_time, creation):
                return msgspec.structs.replace(context, quota=_Granted(quota, creation))
            counters[_DROPPED_RATE_LIMITING] = 1
    counters[_OCCURRENCE_MESSAGES] = 1
    seen_ids, seen_times = remembered
    seq = state.seq + 1
    # Positional, in the order of KeyState's fields, as application._finish builds it.
    new = KeyState(
        STATE_VERSION,  # version
        project_id,
        primary_hash,
        seq,
        generation,
        last_time,
        last_id,
        None,  # group
        noise_count,
        noise_last,
        state.run,
        False,  # run_open
        None,  # member
        held,
        (),  # waiting
        seen_ids,
        seen_times,
        releases,
        None,  # generation_start_time
        state.generation_start_id,
    )
    # positional: project, hash, generation, group, state, relink
    intents.append(SaveKeyState(project_id, primary_hash, generation, None, encode_state(new), False))
    write = KeyWrite(group_key(project_id, primary_hash), seq, tuple(intents), state.seq)
    # positional: write, dead letters, counters, events, group updates
    return new, Outputs(write, [], counters, events, 0)
