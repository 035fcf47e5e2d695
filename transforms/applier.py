"""The one bridge between the Beam shells and the group engine, shared by streaming and backfill.

``GroupApplier`` builds an ``EngineContext`` for a key (project, quota, stored events, release book,
processing time), calls ``engine.apply``, counts what the engine counted and its dead letters (by reason),
and keeps the resulting ``KeyWrite``s until ``flush`` commits them through its store in few, large, guarded
transactions. It also hydrates key states from the store in batches. The store and the creation quota are
ports (``transforms.storage.group_store``): by default Spanner (``transforms.storage.spanner_writer``) and Redis, built from
the ``ApplierConfig``; tests give an in-memory store.

A ``GroupApplier`` belongs to one DoFn instance (not thread-safe); the clients it uses are the process's
(``transforms.storage.clients``), so building one per bundle is cheap. The events it stored or read are cached for
the process (``transforms.storage.event_cache``).

Writes Spanner refuses (``transforms.storage.spanner_writer``: a key or value it cannot store, rows that cannot be
built) never stop the pipeline. Every kept write remembers what it was made from (``Flush``: the key's state
before, the messages, the engine's context). A refused write's key is held (``RefusedKeys``): its later writes
are not committed (they were made from a state that includes the refused one), and ``rebuild`` applies its
flushes again from the state before the refused one, committing as it goes, and finds by bisection the message
whose write Spanner refuses (a prefix of the flush that commits is kept: it is what a flush of those messages
alone would have written); that message becomes a dead letter ``internal_error`` at stage ``write`` and is
remembered (``refused_writes.SET_ASIDE``), so a retried bundle or a redelivery dead-letters it at once. The key's state then
is what the engine gives without it, in Spanner as in the caller's hands.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from transforms import internal_errors
from transforms.core import engine, metrics, reasons
from transforms.core.engine import EngineConfig, EngineContext, KeyState, QuotaGate
from transforms.core.intents import KeyWrite, Outputs, SaveKeyState
from transforms.core.model import (
    MICROS,
    DeadLetter,
    Event,
    Message,
    ProjectInfo,
    split_group_key,
)
from transforms.refused_writes import (
    SET_ASIDE,
    Encoded,
    Entry,
    Flush,
    RefusedKeys,
    SpannerRefused,
    commit_entries,
)
from transforms.storage.event_cache import KNOWN_EVENTS, PREFETCH
from transforms.storage.group_store import (
    CommitWriter,
    Counter,
    GroupStore,
    SpannerTarget,
    creation_quota,
    spanner_store,
)
from transforms.storage.spanner_rows import keep_payloads
from transforms.storage.spanner_writer import CommitStats

# Names other modules import from here (their home is in the module named).
__all__ = [
    "PREFETCH",  # event_cache
    "ApplierConfig",
    "CommitWriter",  # group_store
    "Counter",  # group_store
    "Encoded",  # refused_writes
    "Entry",  # refused_writes
    "Flush",  # refused_writes
    "GroupApplier",
    "GroupStore",  # group_store
    "RefusedKeys",  # refused_writes
    "SpannerRefused",  # refused_writes
    "SpannerTarget",  # group_store
    "apply_around_failures",
    "commit_counts",
    "commit_entries",  # refused_writes
    "project_for",
    "split_key_state_save",
]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplierConfig:
    """Everything a ``GroupApplier`` needs, picklable so DoFns can carry it to workers."""

    spanner: SpannerTarget
    engine: EngineConfig = field(default_factory=EngineConfig)
    redis_url: str | None = None  # None: the creation quota is off
    quota_key_prefix: str = "occurrence-pipeline"
    # Seconds during which a lookup's event that a read did not find is not read again (its retries come at
    # this interval; 0: read at every attempt). Streaming sets it to --lookup_retry_interval.
    event_recheck_interval: float = 0.0


class GroupApplier:
    """Applies batches of keys' messages and commits their writes through a ``GroupStore`` (see the module
    docstring). ``GroupApplier(config, count, clock, refusals)`` is also the factory the stateful step calls;
    a test passes its own ``store`` and ``quota`` (``functools.partial(GroupApplier, store=..., quota=...)``)."""

    def __init__(
        self,
        config: ApplierConfig,
        count: Counter,
        clock: Callable[[], float] = time.time,
        refusals: RefusedKeys | None = None,
        *,
        store: GroupStore | None = None,
        quota: QuotaGate | None = None,
    ) -> None:
        """``refusals``: the keys held after a refused write, shared with whoever commits this applier's writes
        (its own when it commits them itself). ``store`` (default: the Spanner store of ``config.spanner``)
        and ``quota`` (default: the Redis quota of ``config.redis_url``, None when it has none) are the
        applier's ports (``transforms.storage.group_store``)."""
        self._config = config
        self._engine_config = config.engine
        self._count = count
        self._clock = clock
        self._store: GroupStore = store if store is not None else spanner_store(config.spanner)
        self._releases = self._store.releases
        if quota is None:
            quota = creation_quota(config.redis_url, config.quota_key_prefix, count)
        self._quota = quota
        self._pending: list[Entry] = []
        self._pending_messages = 0
        self.refusals = refusals if refusals is not None else RefusedKeys()
        self.deferred_save: KeyWrite | None = None  # see ``apply``
        self.last_write: KeyWrite | None = None  # the write the last ``apply`` kept, if any
        # The last ``apply``'s state and its encoding, when its write saved it (``encoded_state``).
        self._saved_state: KeyState | None = None
        self._saved_data = b""
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: list[Future[CommitStats]] = []

    @property
    def store(self) -> GroupStore:
        return self._store

    @property
    def database(self):
        """The store's Spanner database handle (``GroupStore.database``)."""
        return self._store.database

    @property
    def pending_writes(self) -> int:
        return len(self._pending)

    @property
    def pending_messages(self) -> int:
        """Messages behind the kept writes: what a flush will cost, roughly, in rows."""
        return self._pending_messages

    def now(self) -> int:
        """Processing time in microseconds (the only clock the engine ever sees, for lookup waits)."""
        return int(self._clock() * MICROS)

    def hydrate(self, keys: Iterable[str]) -> dict[str, KeyState]:
        """The stored states of ``keys`` (one batched read); keys new to the database are absent."""
        return {key: engine.decode_state(data) for key, data in self._store.read_key_states(keys).items()}

    def events_for(
        self, state: KeyState | None, messages: Sequence[Message], project_id: int
    ) -> dict[str, Event]:
        """The stored events the batch's lookups (and the key's waiting ones) need: from the events this
        process wrote or read before, else from Spanner (one read for the misses)."""
        wanted = engine.needed_event_ids(state, messages)
        if not wanted:
            return {}
        # A lookup at (or near) its deadline gets a fresh read before the engine may dead-letter it.
        soon = self.now() + MICROS
        final = (
            {w.occurrence.event_id for w in state.waiting if w.deadline <= soon} if state is not None else ()
        )
        recheck = self._config.event_recheck_interval
        recent = self._clock() - recheck
        name = self._store.name
        found: dict[str, Event] = {}
        missing: list[tuple[int, str]] = []
        for event_id in wanted:
            key = (project_id, event_id)
            event = KNOWN_EVENTS.get(key)
            if event is None:  # stored since the read was started (by a flush of this process): no wait
                KNOWN_EVENTS.settle(key)
                event = KNOWN_EVENTS.get(key)
            if event is not None:
                found[event_id] = event
            elif (
                not recheck
                or event_id in final
                or (KNOWN_EVENTS.absent_since(name, key) or -math.inf) <= recent
            ):
                missing.append(key)
        if missing:
            began = self._clock()
            stored = self._store.read_events(missing)
            KNOWN_EVENTS.record_read(name, missing, stored, began)
            for key, event in stored.items():
                found[key[1]] = event
        return found

    def lookups_reading(self, messages: Sequence[Message], project_id: int) -> bool:
        """Whether the event of a lookup among ``messages`` is still being read in the background
        (``prefetch_events``): ``apply`` would wait for that read (starting it now if it waits for its delay)."""
        if self._config.event_recheck_interval <= 0:
            return False
        for event_id in engine.needed_event_ids(None, messages):
            key = (project_id, event_id)
            if KNOWN_EVENTS.get(key) is None and KNOWN_EVENTS.reading(key):
                return True
        return False

    def prefetch_events(self, keys: Iterable[tuple[int, str]], delay: float = 0.0) -> None:
        """Start reading, in the background (after ``delay`` seconds), the events of lookups that just arrived
        (see ``event_cache.EventCache``)."""
        if self._config.event_recheck_interval > 0:
            KNOWN_EVENTS.prefetch(self._store, keys, self._clock, delay)

    def apply(
        self,
        key: str,
        state: KeyState | None,
        messages: Sequence[Message],
        project: ProjectInfo,
        *,
        events: Mapping[str, Event] | None = None,
        stored_occurrence_ids: frozenset[str] = frozenset(),
        defer_key_state: bool = False,
        encoded: Encoded | None = None,
    ) -> tuple[KeyState, list[DeadLetter]]:
        """Apply one batch of one key; the write is kept for ``flush``. Returns the new state and dead letters.

        ``defer_key_state``: when the key has no group before and after the batch, its KeyStates row is not
        part of the kept write; the write that would have saved it is left in ``deferred_save`` (None
        otherwise) for the caller to keep later (``keep``), with its state or a newer one.

        ``encoded``: ``messages`` (and ``state``, if ``encoded.state``) as the caller holds them encoded; the
        kept write's ``Flush`` then keeps those bytes instead of the decoded objects (see ``Flush``).
        """
        set_aside: list[DeadLetter] = []
        if SET_ASIDE and messages:  # messages whose write Spanner refused before: dead letters at once
            messages, set_aside = SET_ASIDE.split(key, messages)
        if events is None:
            events = self.events_for(state, messages, split_group_key(key)[0])
        # Positional, in the order of EngineContext's fields: a call per flush (``now`` inlined).
        context = EngineContext(
            project,
            self._engine_config,
            int(self._clock() * MICROS),
            self._quota,
            events,
            self._releases,
            stored_occurrence_ids,
        )
        new_state, outputs, failed = _engine_apply(key, state, messages, context)
        if failed:
            messages = _without(list(messages), failed)
        if failed or set_aside:
            dead = [internal_errors.for_message(m, reasons.STAGE_APPLY, error) for m, error in failed]
            outputs.dead_letters = [*set_aside, *dead, *outputs.dead_letters]
        counts = outputs.counters  # the engine's, made for this call: the group update is added to it
        write = outputs.write
        self.deferred_save = self.last_write = self._saved_state = None
        if write is not None:
            # The write's events (a lookup of this process may need them before they are read) and its group
            # updates, as the engine tallied them (``Outputs``): its intents are not scanned again.
            if outputs.events:
                KNOWN_EVENTS.put_by_id(outputs.events)
                # Their rows' JSON text, made while the events are in the CPU's caches.
                keep_payloads(outputs.events.values())
            if outputs.group_updates:
                counts[metrics.GROUP_UPDATES] = counts.get(metrics.GROUP_UPDATES, 0) + outputs.group_updates
            save = write.intents[-1]  # the engine ends every write with the key's state
            if save.__class__ is SaveKeyState:
                self._saved_state, self._saved_data = new_state, save.state
            if defer_key_state:
                write, self.deferred_save = split_key_state_save(write)
            if write is not None:
                self.last_write = write
                if encoded is None or failed or set_aside or len(encoded.messages) != len(messages):
                    flush = Flush(state, messages, context, counts)
                else:  # positional: state, messages, context, counts, encoded
                    flush = Flush(None if encoded.state is not None else state, (), context, counts, encoded)
                self._pending.append((write, flush))
                self._pending_messages += len(messages)
        count = self._count
        for name, amount in counts.items():
            count(name, amount)
        for dead_letter in outputs.dead_letters:
            count(metrics.dead_letter_counter(dead_letter.reason), 1)
        return new_state, outputs.dead_letters

    def encoded_state(self, state: KeyState) -> bytes:
        """``engine.encode_state(state)``; the state the last ``apply`` returned is not encoded again (its
        write carries it encoded)."""
        if state is self._saved_state:
            return self._saved_data
        return engine.encode_state(state)

    def keep(self, write: KeyWrite) -> None:
        """Keep a write made outside ``apply`` (a deferred key-state save) for the next flush."""
        self._pending.append((write, None))

    def flush(self, *, wait: bool = True) -> CommitStats:
        """Commit every kept write (chunked, guarded) and count the Spanner work.

        With ``wait=False`` the commit runs on this applier's writer thread while the caller goes on
        computing (one thread, first in first out, so a key's writes still commit in order; at most two
        commits are queued, so memory stays bounded). ``flush()`` (waiting) returns once everything handed
        over so far is committed, and raises the first commit error: call it before a bundle ends. Keys whose
        write Spanner refused are then in ``refusals``, for ``rebuild``.
        """
        done: list[CommitStats] = []
        if self._pending:
            entries, self._pending, self._pending_messages = self._pending, [], 0
            if wait and not self._in_flight:
                done.append(commit_entries(self._store, self.refusals, entries))  # nothing queued: here
            else:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanner-writer")
                self._in_flight.append(
                    self._executor.submit(commit_entries, self._store, self.refusals, entries)
                )
        while self._in_flight and (wait or len(self._in_flight) > 2):
            done.append(self._in_flight.pop(0).result())
        total = CommitStats()
        for stats in done:
            self.count_commit(stats)
            total.add(stats)
        return total

    def take_writes(self) -> list[KeyWrite]:
        """The kept writes, handed over to the caller to commit (``writer.write``) and no longer kept here."""
        return [write for write, _flush in self.take_entries()]

    def take_entries(self) -> list[Entry]:
        """The kept writes with what each was made from (``commit_entries``), no longer kept here."""
        entries, self._pending, self._pending_messages = self._pending, [], 0
        return entries

    def rebuild(self, key: str) -> tuple[KeyState | None, list[DeadLetter]]:
        """Apply the flushes of a held key (``refusals``) again, from the state before its refused write,
        without the messages Spanner refuses, committing as it goes (see the module docstring). Returns the
        key's state after them (None if nothing could be applied again) and the dead letters.

        Call it on the thread that applies, once the commits handed over are done (this applier's own are
        waited for here): every write of the key made since the refused one is then held, or kept here."""
        while self._in_flight:
            self.count_commit(self._in_flight.pop(0).result())
        held, reason = self.refusals.take(key)
        mine = [entry for entry in self._pending if entry[0].key == key]
        if mine:
            self._pending = [entry for entry in self._pending if entry[0].key != key]
        flushes = [
            flush for _write, flush in sorted(held + mine, key=lambda e: e[0].seq) if flush is not None
        ]
        if not flushes:
            return None, []
        state: KeyState | None = flushes[0].inputs()[0]
        dead: list[DeadLetter] = []
        for flush in flushes:
            for name, amount in flush.counts.items():  # counted again for what is committed
                self._count(name, -amount)
            state, more = self._apply_again(key, state, flush, reason)
            dead.extend(more)
        for dead_letter in dead:
            self._count(metrics.dead_letter_counter(dead_letter.reason), 1)
        return state, dead

    def _apply_again(
        self, key: str, state: KeyState | None, flush: Flush, reason: str
    ) -> tuple[KeyState | None, list[DeadLetter]]:
        """One flush again from ``state``, without the messages whose write Spanner refuses, its writes
        committed here (whole: with the key's state)."""
        rest, dead = SET_ASIDE.split(key, sorted(flush.inputs()[1], key=_ORDER))
        context = flush.context
        base = state
        while True:
            new_state, outputs, failed = _engine_apply(key, base, rest, context)
            if failed:
                rest = _without(rest, failed)
                dead.extend(internal_errors.for_message(m, reasons.STAGE_APPLY, e) for m, e in failed)
            refusal = self._commit_alone(outputs.write)
            if refusal is None:
                self._count_outputs(outputs)
                return new_state, dead
            if not rest:  # nothing left to blame: what Spanner holds stays the state before
                _LOG.error(
                    "key %s: its state alone was refused by Spanner (%s); left as it was", key, refusal
                )
                return base, dead
            size = len(rest)  # the prefix of ``size`` messages from ``base`` is refused
            while size > 1:
                half = size // 2
                half_state, half_outputs, _failed = _engine_apply(key, base, rest[:half], context)
                found = self._commit_alone(half_outputs.write)
                if found is None:  # committed: the search goes on from there
                    self._count_outputs(half_outputs)
                    base, rest, size = half_state, rest[half:], size - half
                else:
                    size, refusal = half, found
            culprit = rest.pop(0)
            SET_ASIDE.add(key, culprit.message_id, refusal or reason)
            KNOWN_EVENTS.forget_carried(culprit)
            dead.append(internal_errors.for_message(culprit, reasons.STAGE_WRITE, SpannerRefused(refusal)))

    def _count_outputs(self, outputs: Outputs) -> None:
        """Count what a committed application again counted (its dead letters are counted by ``rebuild``)."""
        for name, amount in _counts_of(outputs).items():
            self._count(name, amount)

    def _commit_alone(self, write: KeyWrite | None) -> str | None:
        """Commit one write now; returns why Spanner refused it, or None."""
        if write is None:
            return None
        stats = self._store.write([write])
        self.count_commit(stats)
        return stats.refused[0][1] if stats.refused else None

    @property
    def writer(self) -> CommitWriter:
        """What commits this applier's writes (its store), for a commit made elsewhere (``commit_entries``)."""
        return self._store

    def count_commit(self, stats: CommitStats) -> None:
        """Count what a commit did. Beam metrics must be counted on the DoFn's thread, so writer threads only
        return their stats."""
        for name, amount in commit_counts(stats).items():
            self._count(name, amount)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _engine_apply(
    key: str, state: KeyState | None, messages: Sequence[Message], context: EngineContext
) -> tuple[KeyState, Outputs, list[tuple[Message, Exception]]]:
    """``engine.apply``, and when it raises, what it gives without the messages it fails for (each with the
    error it raised)."""
    if state is None and not messages:
        project_id, primary_hash = split_group_key(key)
        return engine.new_state(project_id, primary_hash), Outputs(), []
    try:
        new_state, outputs = engine.apply(state, messages, context)
        return new_state, outputs, []
    except Exception as error:  # the last line of defence: set aside the messages it fails for
        return apply_around_failures(key, state, messages, context, error)


def _counts_of(outputs: Outputs) -> dict[str, int]:
    """What an application counts besides its dead letters: the engine's counters, and the group update."""
    counts = dict(outputs.counters)
    if outputs.write is not None and outputs.group_updates:  # one per UpsertGroup, as ``apply`` counts them
        counts[metrics.GROUP_UPDATES] = counts.get(metrics.GROUP_UPDATES, 0) + outputs.group_updates
    return counts


def _without(messages: list[Message], failed: list[tuple[Message, Exception]]) -> list[Message]:
    gone = {id(message) for message, _error in failed}
    return [message for message in messages if id(message) not in gone]


def apply_around_failures(
    key: str, state: KeyState | None, messages: Sequence[Message], context: EngineContext, error: Exception
) -> tuple[KeyState, Outputs, list[tuple[Message, Exception]]]:
    """``engine.apply`` raised ``error`` for a batch: what it gives without the messages it fails for, and
    those messages, each with the error it raised.

    The batch is taken in key order; the first message whose prefix fails is found by bisection (``apply`` of
    prefixes from the same state: none of them is kept), set aside, and the batch applied again without it,
    until it applies. The same batch from the same state sets aside the same messages, whatever the caller
    (streaming's flushes, the backfill's chunks). The engine's only effect outside its result, the creation
    quota, is remembered per group (``RedisCreationQuota``): a prefix that creates a group creates the one the
    final application creates. If the state alone fails (no message to blame), ``error`` is raised.
    """
    if state is not None:
        try:
            engine.apply(state, [], context)
        except Exception:
            raise error from None
    remaining = sorted(messages, key=_ORDER)
    refused: list[tuple[Message, Exception]] = []
    failure: Exception = error
    while remaining:
        try:
            new_state, outputs = engine.apply(state, remaining, context)
            return new_state, outputs, refused
        except Exception as again:
            failure = again
        low, high = 0, len(remaining)  # the prefix of ``low`` messages applies, that of ``high`` fails
        while high - low > 1:
            middle = (low + high) // 2
            try:
                engine.apply(state, remaining[:middle], context)
                low = middle
            except Exception as found:
                high, failure = middle, found
        refused.append((remaining.pop(high - 1), failure))
    if state is None:  # every message failed: the key stays as new
        project_id, primary_hash = split_group_key(key)
        return engine.new_state(project_id, primary_hash), Outputs(), refused
    new_state, outputs = engine.apply(state, [], context)
    return new_state, outputs, refused


_ORDER = operator.attrgetter("message_time", "message_id")  # the engine's key order (rule 2)


def split_key_state_save(write: KeyWrite) -> tuple[KeyWrite | None, KeyWrite | None]:
    """``(write without its KeyStates row, the write of that row alone)`` when the write's key has no group
    and did not just lose one (its state lives in KeyStates and only there); else ``(write, None)``. The
    first is None when the save was all there was to write."""
    save = write.intents[-1]
    if save.__class__ is not SaveKeyState or save.group_id is not None or save.relink:
        return write, None
    intents = write.intents
    if len(intents) == 1:  # the save is all there is: the write is the save alone (a frozen struct)
        return None, write
    alone = KeyWrite(write.key, write.seq, (save,), write.base_seq)  # key, seq, intents, base_seq
    return KeyWrite(write.key, write.seq, intents[:-1], write.base_seq), alone


def commit_counts(stats: CommitStats) -> dict[str, int]:
    """The counters a commit adds to."""
    counts = {
        metrics.SPANNER_COMMITS: stats.commits,
        metrics.SPANNER_COMMIT_ATTEMPTS: stats.attempts,
        metrics.SPANNER_MUTATIONS: stats.mutations,
        metrics.SPANNER_ROWS: stats.rows,
    }
    for table, rows in stats.rows_by_table.items():
        counts[metrics.spanner_rows_counter(table)] = rows
    if stats.stale_writes:
        counts[metrics.SPANNER_STALE_WRITES] = stats.stale_writes
    if stats.refused:
        counts[metrics.SPANNER_WRITES_REFUSED] = len({write.key for write, _reason in stats.refused})
    return counts


def project_for(key: str, projects: Mapping[int, ProjectInfo]) -> ProjectInfo | None:
    return projects.get(split_group_key(key)[0])
