"""A key's flush: its buffered messages the watermark has passed, applied in one engine call, and what follows
an engine call (deferred saves, WaitingKeys, the timers it arms).

**Saves.** While a key has no group (and did not just lose one), its state lives only in its KeyStates row,
and a flush does not write that row: it changes with nearly every flush (noise counts, duplicate memory)
while nothing reads it but a pipeline that hydrates the key. The row is written, with the key's latest state,
``state_save_delay`` after the first flush that left it behind (the ``save_state`` event-time timer, so a
drained job writes it too: draining advances the watermark to the end), when the key's Beam state expires
(with the expiring bundle), and, in local runs, when the pipeline stops (``wait_for_commits``). A flush that
creates or deletes a group writes the row at once, as does every flush with ``state_save_delay`` 0. The timer
is set at the watermark known when it is armed plus the delay, so a key that is behind the watermark (old
message times) is saved at the next watermark advance. A local run that dies without stopping loses the key
states left behind since their last save, as it loses the messages it had pulled.

**Lookups.** If the background read of a flush's lookups' events is still running when the key's hold ends,
the hold is extended by ``READ_WAIT`` (until the read is done) rather than the flush waiting for it: the
runner's thread applies other keys meanwhile. A lookup whose event is not found waits and is retried every
``lookup_retry_interval`` (processing time) until the engine applies or dead-letters it; its event is read
from Spanner at most once per interval however often the key flushes, and once more just before its
deadline (events this process stores are known at once).

**Waiting across stops.** A key whose state starts holding occurrences waiting for their event is named in
``WaitingKeys`` (written before the commit of that state) and taken out once nothing waits (after the commit
that settles the last one): see ``track_waiting``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apache_beam import pvalue
from apache_beam.utils.timestamp import Timestamp

from transforms.applier import Encoded
from transforms.core import engine, metrics, reasons
from transforms.core.intents import KeyWrite, SaveKeyState
from transforms.core.model import MICROS, DeadLetter, Message, split_group_key
from transforms.per_group.bundle import Bundle
from transforms.per_group.drain import DRAIN
from transforms.per_group.hydration import HYDRATED
from transforms.per_group.key_context import END_OF_TIME, KeyHandles, timestamp
from transforms.per_group.local_commits import REBUILT, UNSAVED, step_committer
from transforms.per_group.routed import DEAD_LETTER, decode_message, project_info

READ_WAIT = 0.1  # seconds: a hold is extended by this while its lookups' events are read
CONFIRM_DELAY = 0.05  # seconds: overlap_commits, a later bundle comes this soon to count a commit


def flush(b: Bundle, h: KeyHandles, hold: Any = None) -> Iterator[Any]:
    """Apply the buffered messages the watermark has passed (called once the hold has passed). Given the
    ``hold`` timer (the hold's own flush), a flush whose lookups' events are still being read in the
    background extends the hold by ``READ_WAIT`` instead of waiting for the read."""
    s = b.settings
    applier = b.applier
    meta = h.meta
    key = h.key
    if REBUILT or applier.refusals:  # a write Spanner refused (rarely): see rebuild
        for dead_letter in rebuild(b, h):
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)
    ready = END_OF_TIME if DRAIN.requested else meta.ready_until
    delay = s.delay
    take: list[Message] = []
    taken: list[bytes] = []  # their bytes, which the applier keeps with the write (``Encoded``)
    keep: list[tuple[bytes, Message]] = []
    for encoded in h.buffer.read():
        message = decode_message(encoded)
        if message.message_time + delay <= ready:
            take.append(message)
            taken.append(encoded)
        else:
            keep.append((encoded, message))
    if keep:  # they wait for the watermark only: their hold has passed
        earliest = min(message.message_time for _, message in keep) + delay
        if meta.event_target is None or earliest < meta.event_target:
            meta.event_target = earliest
            h.event_flush.set(timestamp(earliest))
    if not take:
        return
    project = project_info(meta.project)
    if hold is not None and project is not None and applier.lookups_reading(take, project.project_id):
        meta.hold_passed, meta.hold_armed = False, True
        hold.set(Timestamp.of(s.clock() + READ_WAIT))
        return
    buffer = h.buffer
    buffer.clear()
    b.left += len(take)
    if DRAIN.requested:
        b.drain_flushes += 1
        b.drain_applied += len(take)
    for encoded, _ in keep:
        buffer.add(encoded)
    if keep:
        meta.buffer_max = max(message.message_time for _, message in keep) + delay
    else:
        meta.hold_armed, meta.hold_passed, meta.buffer_max = False, False, None
    if project is None:
        project_id = split_group_key(key)[0]
        for message in take:
            b.count(metrics.dead_letter_counter(reasons.UNKNOWN_PROJECT), 1)
            yield pvalue.TaggedOutput(
                DEAD_LETTER,
                DeadLetter(
                    message.message_id,
                    message.message_time,
                    message.data,
                    message.attributes,
                    reasons.UNKNOWN_PROJECT,
                    f"project {project_id} is not registered",
                    reasons.STAGE_APPLY,
                    project_id,
                ),
            )
        return
    if meta.hydrated:  # load's common case, without the call
        data = h.key_state.read()
        state = None if data is None else engine.decode_state(data)
    else:
        data, state = None, load(b, h)
    stored = state
    if state is not None and state.last_time is not None:
        # No message older than this can still be recognised as a duplicate of a forgotten one.
        state = engine.compact(state, min(ready - delay, state.last_time) - s.retention)
    encoded = Encoded(taken, decode_message, data if state is stored else None)  # data: the state's bytes
    new_state, dead_letters = applier.apply(
        key, state, take, project, defer_key_state=s.save_delay > 0, encoded=encoded
    )
    after_apply(b, h)
    if new_state.waiting or meta.waiting_marked:  # else track_waiting has nothing to do
        track_waiting(b, h, new_state)
    if s.overlap:
        arm_confirm(b, h)
    b.flushes.update(len(take))
    h.key_state.write(applier.encoded_state(new_state))
    if new_state.waiting:
        arm_lookup_retry(b, new_state, h.lookup_retry)
    elif not keep:
        h.expire.set(Timestamp.of(s.clock() + s.idle_timeout))
    for dead_letter in dead_letters:
        yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)


def load(b: Bundle, h: KeyHandles) -> engine.KeyState | None:
    """The key's state: from its Beam state once hydrated, else from the bundle's batched read (or alone)."""
    meta = h.meta
    if meta.hydrated:
        data = h.key_state.read()
        return None if data is None else engine.decode_state(data)
    found, state = HYDRATED.take(b.settings.config.spanner, h.key, meta.hydrate_token)
    if not found:
        state = b.applier.hydrate([h.key]).get(h.key)
        b.count(metrics.STATE_HYDRATED, 1)
    if state is not None and state.waiting:  # saved while waiting: its WaitingKeys row was written then
        meta.waiting_marked = True
    meta.hydrated = True
    meta.hydrate_token = ""
    b.to_hydrate.pop(h.key, None)
    return state


def save(b: Bundle, h: KeyHandles, data: bytes | None, state: engine.KeyState | None = None) -> bool:
    """Keep the deferred KeyStates save of the key, if one is due; True if there was one."""
    meta = h.meta
    if meta.unsaved_base is None or data is None:
        return False
    if state is None:
        state = engine.decode_state(data)
    # The key has no group (a deferred save is only left behind then): the row holds its state.
    saved = SaveKeyState(state.project_id, state.primary_hash, state.generation, None, data, relink=False)
    b.applier.keep(KeyWrite(key=h.key, seq=state.seq, intents=(saved,), base_seq=meta.unsaved_base))
    meta.unsaved_base = None
    if b.settings.overlap:
        UNSAVED.discard(b.settings.step, b.settings.config.spanner, h.key)
    b.count(metrics.STATE_SAVED_LATE, 1)
    if DRAIN.requested:
        b.drain_saves += 1
    arm_confirm(b, h)
    return True


def after_apply(b: Bundle, h: KeyHandles) -> None:
    """Bookkeeping of deferred saves after an engine call (see "Saves" above)."""
    s = b.settings
    meta = h.meta
    deferred = b.applier.deferred_save
    if deferred is None:
        if meta.unsaved_base is not None and b.applier.last_write is not None:
            # The call wrote KeyStates (the key got or lost a group): it is up to date.
            meta.unsaved_base = None
            if s.overlap:
                UNSAVED.discard(s.step, s.config.spanner, h.key)
        return
    if meta.unsaved_base is None:
        meta.unsaved_base = deferred.base_seq
    if s.overlap:
        UNSAVED.put(
            s.step,
            s.config.spanner,
            KeyWrite(key=h.key, seq=deferred.seq, intents=deferred.intents, base_seq=meta.unsaved_base),
        )
    if not meta.save_armed:
        meta.save_armed = True
        h.save.set(timestamp((meta.ready_until or meta.max_time) + s.save_delay))


def rebuild(b: Bundle, h: KeyHandles) -> list[DeadLetter]:
    """If Spanner refused a write of the key (a commit after the bundle that made it, with
    ``overlap_commits``), put the key's state rebuilt without the refused messages in its Beam state:
    rebuilt at the end of a bundle since (``REBUILT``), or now; returns the dead letters of a rebuild made now
    (see ``transforms.applier``)."""
    dead: list[DeadLetter] = []
    if REBUILT:
        found, data = REBUILT.take(b.settings.step, h.key)
        if found:
            rebuilt(b, h, data)
    if h.key in b.applier.refusals:
        if b.settings.overlap:  # every write of the key made since is then held
            step_committer(b.settings.step).wait(None)
        state, dead = b.applier.rebuild(h.key)
        rebuilt(b, h, None if state is None else engine.encode_state(state))
    return dead


def rebuilt(b: Bundle, h: KeyHandles, data: bytes | None) -> None:
    """Put a rebuilt state in the key's Beam state (its writes carried it to Spanner)."""
    meta = h.meta
    if data is not None:
        h.key_state.write(data)
        meta.hydrated, meta.hydrate_token = True, ""
    if meta.unsaved_base is not None:
        meta.unsaved_base = None
        UNSAVED.discard(b.settings.step, b.settings.config.spanner, h.key)


def track_waiting(b: Bundle, h: KeyHandles, state: engine.KeyState) -> None:
    """Name the key in ``WaitingKeys`` when it starts waiting, take it out when nothing waits any more
    (written by ``Bundle.finish``: the names before the bundle's commit, the removals after it)."""
    meta = h.meta
    if state.waiting:
        if not meta.waiting_marked:
            meta.waiting_marked = True
            b.marks.append(h.key)
    elif meta.waiting_marked:
        meta.waiting_marked = False
        b.unmarks.append(h.key)


def arm_confirm(b: Bundle, h: KeyHandles) -> None:
    """overlap_commits: make sure a later bundle comes to count (and wait for) this bundle's commit."""
    if b.settings.overlap and not b.confirm_armed and b.applier.pending_writes:
        b.confirm_armed = True
        h.confirm.set(Timestamp.of(b.settings.clock() + CONFIRM_DELAY))


def arm_lookup_retry(b: Bundle, state: engine.KeyState, lookup_retry: Any) -> None:
    deadline = engine.next_lookup_deadline(state)
    if deadline is None:
        return
    now = b.settings.clock()
    lookup_retry.set(Timestamp.of(min(now + b.settings.lookup_retry, max(deadline / MICROS, now))))
