"""The one bridge between the Beam shells and the group engine, shared by streaming and backfill.

``GroupApplier`` builds an ``EngineContext`` for a key (project, quota, stored events, release book,
processing time), calls ``engine.apply``, counts what the engine counted and its dead letters (by reason),
and keeps the resulting ``KeyWrite``s until ``flush`` commits them to Spanner in few, large, guarded
transactions (``transforms.spanner_writer``). It also hydrates key states from Spanner in batches.

A ``GroupApplier`` belongs to one DoFn instance (not thread-safe); the clients it uses are the process's
(``transforms.clients``), so building one per bundle is cheap.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import operator
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from transforms import clients, internal_errors, state_store
from transforms.core import engine, metrics, reasons
from transforms.core.engine import EngineConfig, EngineContext, KeyState
from transforms.core.intents import KeyWrite, Outputs, RecordEvent, SaveKeyState, UpsertGroup
from transforms.core.model import MICROS, DeadLetter, Event, Message, ProjectInfo, split_group_key
from transforms.quota import RedisCreationQuota
from transforms.spanner_writer import DEFAULT_MAX_MUTATIONS, CommitStats, SpannerWriter

_LOG = logging.getLogger(__name__)


class _Prefetcher:
    """A small process-wide pool of threads for Spanner reads started by one bundle and taken by a later one
    (the key's first flush, a lookup's first attempt), so the runner's thread does not wait for them."""

    def __init__(self, workers: int = 2) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, function: Callable, *args) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="spanner-prefetch")
            return self._pool.submit(function, *args)


PREFETCH = _Prefetcher()


class _Later:
    """Runs functions after a delay, on one daemon thread of the process (for prefetches that wait)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call(self, delay: float, function: Callable[[], None]) -> None:
        with self._condition:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), function))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delayed-prefetch", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._condition.wait(None if not self._due else self._due[0][0] - time.monotonic())
                _due, _order, function = heapq.heappop(self._due)
            try:
                function()
            except Exception:  # a prefetch's own errors are the flush's to see
                _LOG.exception("delayed prefetch failed to start")


_LATER = _Later()


class _EventCache:
    """Events this process stored or read, by (project, event id): events never change once stored, so a
    lookup can take one from here instead of reading Spanner. Bounded (oldest entries dropped first).

    ``prefetch`` reads, in the background, the events of lookups that just arrived. Every read remembers what
    it did not find in which database as *absent*, with the processing time the read started
    (``absent_since``), so that a lookup's event is read at most once per retry interval however often its
    key flushes, and again just before its deadline (``GroupApplier.events_for``).
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._events: dict[tuple[int, str], Event] = {}
        self._max_entries = max_entries
        self._absent: dict[tuple[str, int, str], float] = {}  # (database name, project, event id)
        self._in_flight: dict[tuple[int, str], Future] = {}
        self._not_started: dict[Future, Callable[[], object]] = {}  # delayed reads, by their future

    def get(self, key: tuple[int, str]) -> Event | None:
        return self._events.get(key)

    def put(self, key: tuple[int, str], event: Event) -> None:
        with self._lock:
            self._put(key, event)

    def _put(self, key: tuple[int, str], event: Event) -> None:
        self._events[key] = event  # found from now on: its absent entries are never asked for again
        if len(self._events) > self._max_entries:
            for old in list(itertools.islice(self._events, self._max_entries // 10)):
                del self._events[old]

    def prefetch(
        self, database, keys: Iterable[tuple[int, str]], clock: Callable[[], float], delay: float = 0.0
    ) -> None:
        """Start one background read of those of ``keys`` not known, absent or being read already, after
        ``delay`` seconds: the event of a lookup is often carried by an occurrence that arrived with it and is
        applied (and so known here) before the lookup's flush; by then the read skips what became known. A
        flush that needs a delayed read before it started starts it at once (``settle``)."""
        name = database.name
        with self._lock:
            wanted = sorted(
                key
                for key in set(keys)
                if key not in self._events and key not in self._in_flight and (name, *key) not in self._absent
            )
            if not wanted:
                return
            done: Future = Future()
            for key in wanted:
                self._in_flight.setdefault(key, done)
            self._not_started[done] = lambda: PREFETCH.submit(self._read, database, wanted, clock, done)
        if delay > 0:
            _LATER.call(delay, lambda: self._start(done))
        else:
            self._start(done)

    def _start(self, done: Future) -> None:
        with self._lock:
            start = self._not_started.pop(done, None)
        if start is not None:
            start()

    def _read(self, database, keys: list[tuple[int, str]], clock: Callable[[], float], done: Future) -> None:
        began = clock()
        try:
            unknown = [key for key in keys if key not in self._events]  # applied here meanwhile: no read
            if unknown:
                self.record_read(database.name, unknown, state_store.read_events(database, unknown), began)
            done.set_result(None)
        except Exception as error:  # the flush reads them itself
            done.set_exception(error)
        finally:
            with self._lock:
                for key in keys:
                    if self._in_flight.get(key) is done:
                        del self._in_flight[key]

    def settle(self, key: tuple[int, str]) -> None:
        """Wait for the background read of ``key``, starting it if it waits for its delay (its errors are the
        flush's to retry)."""
        future = self._in_flight.get(key)
        if future is not None:
            self._start(future)
            with contextlib.suppress(Exception):  # the caller then reads the event itself
                future.result()

    def reading(self, key: tuple[int, str]) -> bool:
        """Whether a background read of ``key`` is still running (started now if it waited for its delay)."""
        future = self._in_flight.get(key)
        if future is None:
            return False
        self._start(future)
        return not future.done()

    def absent_since(self, database_name: str, key: tuple[int, str]) -> float | None:
        """When (processing time, seconds) the latest read of ``database_name`` that did not find ``key``
        started, or None."""
        return self._absent.get((database_name, *key))

    def record_read(
        self, database_name: str, keys: Iterable[tuple[int, str]], found: Mapping, began: float
    ) -> None:
        with self._lock:
            for key in keys:
                event = found.get(key)
                if event is not None:
                    self._put(key, event)
                elif key not in self._events:
                    self._absent[(database_name, *key)] = began
            self._bound_absent()

    def _bound_absent(self) -> None:
        if len(self._absent) > self._max_entries:
            for old in list(itertools.islice(self._absent, self._max_entries // 10)):
                del self._absent[old]


_KNOWN_EVENTS = _EventCache()


@dataclass(frozen=True)
class SpannerTarget:
    """Where the pipeline writes (picklable, kept on DoFns)."""

    project: str
    instance: str
    database: str
    max_mutations: int = DEFAULT_MAX_MUTATIONS

    def database_handle(self):
        return clients.spanner_database(self.project, self.instance, self.database)


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


Counter = Callable[[str, int], None]


class GroupApplier:
    def __init__(self, config: ApplierConfig, count: Counter, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._count = count
        self._clock = clock
        self._database = config.spanner.database_handle()
        self._writer = SpannerWriter(self._database, max_mutations=config.spanner.max_mutations)
        self._releases = state_store.SpannerReleaseBook(self._database)
        self._quota = None
        if config.redis_url:
            self._quota = RedisCreationQuota(
                clients.redis_client(config.redis_url),
                prefix=config.quota_key_prefix,
                fail_open=lambda: count(metrics.QUOTA_FAIL_OPEN, 1),
            )
        self._pending: list[KeyWrite] = []
        self._pending_messages = 0
        self.deferred_save: KeyWrite | None = None  # see ``apply``
        self.last_write: KeyWrite | None = None  # the write the last ``apply`` kept, if any
        self._last_saved: tuple[KeyState, bytes] | None = None  # the last ``apply``'s state, as it saved it
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: list[Future[CommitStats]] = []

    @property
    def database(self):
        return self._database

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
        return {
            key: engine.decode_state(data)
            for key, data in state_store.read_key_states(self._database, keys).items()
        }

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
        name = self._database.name
        found: dict[str, Event] = {}
        missing: list[tuple[int, str]] = []
        for event_id in wanted:
            key = (project_id, event_id)
            event = _KNOWN_EVENTS.get(key)
            if event is None:  # stored since the read was started (by a flush of this process): no wait
                _KNOWN_EVENTS.settle(key)
                event = _KNOWN_EVENTS.get(key)
            if event is not None:
                found[event_id] = event
            elif (
                not recheck
                or event_id in final
                or (_KNOWN_EVENTS.absent_since(name, key) or -math.inf) <= recent
            ):
                missing.append(key)
        if missing:
            began = self._clock()
            stored = state_store.read_events(self._database, missing)
            _KNOWN_EVENTS.record_read(name, missing, stored, began)
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
            if _KNOWN_EVENTS.get(key) is None and _KNOWN_EVENTS.reading(key):
                return True
        return False

    def prefetch_events(self, keys: Iterable[tuple[int, str]], delay: float = 0.0) -> None:
        """Start reading, in the background (after ``delay`` seconds), the events of lookups that just arrived
        (see ``_EventCache``)."""
        if self._config.event_recheck_interval > 0:
            _KNOWN_EVENTS.prefetch(self._database, keys, self._clock, delay)

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
    ) -> tuple[KeyState, list[DeadLetter]]:
        """Apply one batch of one key; the write is kept for ``flush``. Returns the new state and dead letters.

        ``defer_key_state``: when the key has no group before and after the batch, its KeyStates row is not
        part of the kept write; the write that would have saved it is left in ``deferred_save`` (None
        otherwise) for the caller to keep later (``keep``), with its state or a newer one.
        """
        if events is None:
            events = self.events_for(state, messages, split_group_key(key)[0])
        context = EngineContext(
            project=project,
            config=self._config.engine,
            now=self.now(),
            quota=self._quota,
            events=events,
            releases=self._releases,
            stored_occurrence_ids=stored_occurrence_ids,
        )
        try:
            new_state, outputs = engine.apply(state, messages, context)
            refused: list[DeadLetter] = []
        except Exception as error:  # the last line of defence: set aside the messages it fails for
            new_state, outputs, refused = apply_around_failures(key, state, messages, context, error)
            if refused:
                outputs.dead_letters = [*refused, *outputs.dead_letters]
        for name, amount in outputs.counters.items():
            self._count(name, amount)
        for dead_letter in outputs.dead_letters:
            self._count(metrics.dead_letter_counter(dead_letter.reason), 1)
        write = outputs.write
        self.deferred_save = self.last_write = self._last_saved = None
        if write is not None:
            save = write.intents[-1]  # the engine ends every write with the key's state
            if save.__class__ is SaveKeyState:
                self._last_saved = (new_state, save.state)
            if defer_key_state:
                write, self.deferred_save = split_key_state_save(write)
            for intent in outputs.write.intents:
                if isinstance(intent, RecordEvent):  # a lookup of this process may need it before it is read
                    _KNOWN_EVENTS.put((intent.event.project_id, intent.event.event_id), intent.event)
            if write is not None:
                self.last_write = write
                self._pending.append(write)
                if any(isinstance(intent, UpsertGroup) for intent in write.intents):
                    self._count(metrics.GROUP_UPDATES, 1)
                self._pending_messages += len(messages)
        return new_state, outputs.dead_letters

    def encoded_state(self, state: KeyState) -> bytes:
        """``engine.encode_state(state)``; the state the last ``apply`` returned is not encoded again (its
        write carries it encoded)."""
        saved = self._last_saved
        if saved is not None and saved[0] is state:
            return saved[1]
        return engine.encode_state(state)

    def keep(self, write: KeyWrite) -> None:
        """Keep a write made outside ``apply`` (a deferred key-state save) for the next flush."""
        self._pending.append(write)

    def flush(self, *, wait: bool = True) -> CommitStats:
        """Commit every kept write (chunked, guarded) and count the Spanner work.

        With ``wait=False`` the commit runs on this applier's writer thread while the caller goes on
        computing (one thread, first in first out, so a key's writes still commit in order; at most two
        commits are queued, so memory stays bounded). ``flush()`` (waiting) returns once everything handed
        over so far is committed, and raises the first commit error: call it before a bundle ends.
        """
        done: list[CommitStats] = []
        if self._pending:
            writes, self._pending, self._pending_messages = self._pending, [], 0
            if wait and not self._in_flight:
                done.append(self._writer.write(writes))  # nothing queued: commit on this thread
            else:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanner-writer")
                self._in_flight.append(self._executor.submit(self._writer.write, writes))
        while self._in_flight and (wait or len(self._in_flight) > 2):
            done.append(self._in_flight.pop(0).result())
        total = CommitStats()
        for stats in done:
            self.count_commit(stats)
            total.add(stats)
        return total

    def take_writes(self) -> list[KeyWrite]:
        """The kept writes, handed over to the caller to commit (``writer.write``) and no longer kept here."""
        writes, self._pending, self._pending_messages = self._pending, [], 0
        return writes

    @property
    def writer(self) -> SpannerWriter:
        return self._writer

    def count_commit(self, stats: CommitStats) -> None:
        """Count what a commit did. Beam metrics must be counted on the DoFn's thread, so writer threads only
        return their stats."""
        for name, amount in commit_counts(stats).items():
            self._count(name, amount)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def apply_around_failures(
    key: str, state: KeyState | None, messages: Sequence[Message], context: EngineContext, error: Exception
) -> tuple[KeyState, Outputs, list[DeadLetter]]:
    """``engine.apply`` raised ``error`` for a batch: what it gives without the messages it fails for, and their
    dead letters (``internal_error``, stage ``apply``).

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
    refused: list[DeadLetter] = []
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
        culprit = remaining.pop(high - 1)
        refused.append(internal_errors.for_message(culprit, reasons.STAGE_APPLY, failure))
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
    rest = write.intents[:-1]
    alone = KeyWrite(key=write.key, seq=write.seq, intents=(save,), base_seq=write.base_seq)
    if not rest:
        return None, alone
    return KeyWrite(key=write.key, seq=write.seq, intents=rest, base_seq=write.base_seq), alone


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
    return counts


def project_for(key: str, projects: Mapping[int, ProjectInfo]) -> ProjectInfo | None:
    return projects.get(split_group_key(key)[0])
