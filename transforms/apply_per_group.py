"""Streaming: apply each key's messages through the group engine, serially, in key order, in micro-batches.

``ApplyPerGroup`` takes ``(key, Message)`` pairs (keyed by ``Message.key``) and returns ``{"applied",
"dead_letter"}``, the latter with the dead letters of the engine and of messages that could not be routed.
Its writes go to Spanner from inside the DoFn, at the end of each bundle, before Beam commits the bundle's
state:

* **Order.** A key's messages are buffered until the watermark has passed their message time plus
  ``watermark_delay`` *and* ``processing_hold`` of processing time has passed since the first message of
  the (empty) buffer arrived; then every buffered message the watermark is known to have passed is applied
  in one engine call (the engine sorts them by message time and id). How far the watermark has gone is
  known from the timers: the greatest event-time timer fired in this process for this step (any key's), as
  the watermark is the step's. Messages that arrive behind the watermark are applied at the next flush under
  the engine's late rules.
* **Timers.** ``hold_flush`` (processing time) is armed when a message arrives in an empty buffer, and not
  again until the buffer is empty: messages kept for the watermark have had their hold. ``event_flush``
  (event time) is set for the earliest buffered message; while the hold runs, each firing moves it to the
  latest buffered message, so a backlog the watermark has already passed is applied in one flush when the
  hold ends instead of one flush per message time. A message the watermark is already known to have passed
  when it arrives, while the hold runs or is about to, sets no ``event_flush`` at all: the hold's flush
  takes it. To know that, the holds of a step keep one ``watermark_probe`` timer pending in each process
  (event time, ``PROBE_MARGIN`` behind the processing time when set): its firing tells that the watermark is
  that far, and the next hold sets the next probe. Over a backlog, whose message times the watermark has
  long passed, the local runner fired one ``event_flush`` per message without it (30,638 firings for
  50,000 messages; 5,569 with it).
* **Nothing lost, nothing doubled.** The Spanner commit happens in ``finish_bundle``; if it fails the bundle
  fails, Beam keeps the previous state and retries, and the engine recomputes the same writes (same ``seq``),
  which the guarded writer treats as already applied where they were. Writes of one key are committed in
  ``seq`` order because a key's next bundle starts only after this one committed. A write Spanner refuses
  for what it carries is not retried: its key is committed again without the refused message (see
  ``transforms.applier``), and then the bundle fails once (``WritesRefused``): Beam's retry, from the state
  before the bundle, dead-letters that message at once, so the key's Beam state never includes it.
* **Local runs** (``overlap_commits``): the local runner runs one bundle at a time and never retries one, so
  there a bundle hands its commit to a thread of the step's own (``_Committer``: one at a time, in order) and
  the next bundles are processed while it runs; a bundle that hands over a commit first waits until at most
  ``COMMITS_BEHIND`` (3, its own included) are unfinished. The bundle's counters are counted when its commit is done (so what is counted is in Spanner), by
  a later bundle: a ``confirm`` timer makes sure one comes. A write Spanner refuses holds its key's later
  writes; the key is rebuilt without the refused message at the end of the next bundle (its Beam state is
  replaced when the key is next touched, ``_REBUILT``), or at its next flush if that comes first, or when the
  pipeline stops. Any other failed commit fails every later bundle. Stopping the pipeline drains it
  (``_Drain``: every buffer flushed) and waits for the commits handed over (``LocalRun.cancel``).
* **State.** ``buffer`` (bag of messages waiting for the watermark), ``key_state`` (the engine's encoded
  state; empty until hydrated), ``meta`` (hydration, flush bookkeeping, the key's project). A key is
  hydrated from Spanner the first time this pipeline sees it (and again after its state expired): keys are
  collected in ``process`` and read in one batch, in the background, started by ``finish_bundle`` of the
  bundle that first saw them; the key's first flush takes that read, waiting for it if it is still running
  (a flush that comes first, or finds it gone or failed, reads its key alone). Before each flush the duplicate memory is compacted to ``duplicate_retention`` before the
  earlier of the watermark and the key's latest message time (``engine.compact``).
* **Expiry.** When a key has been idle (nothing buffered, nothing waiting for an event) for ``idle_timeout``
  of processing time, all of its Beam state is cleared: it lives on in Spanner, committed with the bundle of
  its last flush, and is hydrated again (one batched read) if the key comes back. The expiry timer is armed
  when the key becomes idle, so only recently active keys hold state and timers (the local runner scans
  every key with a timer whenever it looks for timers to fire).
* **Saves.** While a key has no group (and did not just lose one), its state lives only in its KeyStates
  row, and a flush does not write that row: it changes with nearly every flush (noise counts, duplicate
  memory) while nothing reads it but a pipeline that hydrates the key. The row is written, with the key's
  latest state, ``state_save_delay`` after the first flush that left it behind (an event-time timer, so a
  drained job writes it too: draining advances the watermark to the end), when the key's Beam state expires
  (with the expiring bundle), and, in local runs, when the pipeline stops (``wait_for_commits``). A flush
  that creates or deletes a group writes the row at once, as does every flush with ``state_save_delay`` 0.
  On the benchmark's workload most keys never get a group (the creation quota) and each gets messages
  spread over the whole run: a save per flush was a quarter of the rows written. The timer is set at the
  watermark known when it is armed plus the delay, so a key that is behind the watermark (old message
  times) is saved at the next watermark advance. A local run that dies without stopping loses the key
  states left behind since their last save, as it loses the messages it had pulled.
* **Lookups.** The events of the lookups a bundle received are read in the background, in one batch
  started half a ``processing_hold`` after its ``finish_bundle`` (by then the occurrence carrying the event
  has often been applied in this process, and the read skips it), so the flush finds them in the process's
  event cache. If that read is still running when the key's hold ends, the hold is extended by
  ``READ_WAIT`` (until the read is done) rather than the flush waiting for it: the runner's thread applies
  other keys meanwhile (waiting took a tenth of that thread's time in a local backlog). A lookup whose
  event is not found waits and is retried every ``lookup_retry_interval`` (processing time) until the engine
  applies or dead-letters it; its event is read from Spanner at most once per interval however often the
  key flushes, and once more just before its deadline (events this process stores are known at once).
* **Waiting across stops.** A key whose state starts holding occurrences waiting for their event is named in
  ``WaitingKeys`` (written before the commit of that state) and taken out once nothing waits (after the commit
  that settles the last one); with ``wake_waiting``, a starting pipeline sends each key named there a wake-up
  (``transforms.waiting_keys``), which reads its state and retries its lookups at once: what waited when the
  last pipeline stopped is settled by this one, whether or not its key gets another message.
* **Projects.** A stateless step (``AttachProject``) looks each message's ``ProjectInfo`` up in the registry
  side input; the stateful step keeps the latest one in ``meta`` (timer callbacks cannot read side inputs):
  registrations take effect for a key with its next message. The stateful step has no side input at all,
  which also keeps Beam from taking the side input's coder for its timers' keys.
* **Counters.** Everything the engine counts, ``dead_letters.<reason>`` for the dead letters of this stage,
  ``state.hydrated`` (keys read from Spanner) and ``state.expired`` (keys whose Beam state was cleared).

Processing time is read from ``clock`` (seconds), injectable for tests: the TestStream's processing time
starts at 0, so a test passes a clock that does too.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import apache_beam as beam
import msgspec
from apache_beam import pvalue
from apache_beam.coders import BytesCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from transforms import coders, internal_errors, waiting_keys
from transforms.applier import (
    PREFETCH,
    ApplierConfig,
    GroupApplier,
    RefusedKeys,
    SpannerTarget,
    commit_counts,
    commit_entries,
)
from transforms.core import engine, metrics, reasons
from transforms.core.intents import KeyWrite, SaveKeyState
from transforms.core.model import MICROS, DeadLetter, Message, Occurrence, ProjectInfo, split_group_key
from transforms.counting import CountingDoFn
from transforms.key_history import dead_letter_in_finish_bundle
from transforms.runtime import tune_garbage_collector
from transforms.spanner_writer import CommitStats, SpannerWriter

_LOG = logging.getLogger(__name__)

# Tokens of hydration reads: unique in this process (a counter) and across processes (a random prefix: a
# key's Beam state, with its token, may outlive the process that asked for the read). uuid4 for every new key
# cost 2.7% of a local run's CPU.
_TOKEN_PREFIX = uuid.uuid4().hex[:16] + "-"
_TOKENS = itertools.count()

DEAD_LETTER = "dead_letter"


class _Meta(msgspec.Struct, array_like=True):
    hydrated: bool = False
    hydrate_token: str = ""  # names this key's batched read, asked for by the bundle that first saw it
    hold_passed: bool = False  # the processing-time hold of the current buffer has passed
    hold_armed: bool = False  # the hold timer is set (the buffer is not empty and its hold runs)
    ready_until: int | None = None  # the watermark has passed this message time (+ delay): µs
    event_target: int | None = None  # when the event-time flush timer is set for (µs)
    buffer_max: int | None = None  # the latest message time (+ delay) in the buffer (µs)
    max_time: int = 0  # greatest message time of the key seen by this pipeline (µs)
    project: ProjectInfo | None = None
    # A state of the key without a group that is not in KeyStates yet: the base_seq its save carries (None:
    # KeyStates is up to date); and whether the save_state timer is set.
    unsaved_base: int | None = None
    save_armed: bool = False
    waiting_marked: bool = False  # the key's row in WaitingKeys is (believed) written


_META_ENCODER = msgspec.msgpack.Encoder()
_META_DECODER = msgspec.msgpack.Decoder(_Meta)


class _HydrationCache:
    """Key states being read, or read, in a batch started by ``finish_bundle``, waiting for the key's next
    flush. Process-wide, because the local runner builds a new DoFn for every bundle.

    The read runs in the background (``applier.PREFETCH``): the first flush of a key waits for it only if it
    has not finished yet, and reads its key alone if it failed. An entry is found only with the token the
    key's ``meta`` recorded when it asked for the read (in the same bundle), so a flush never takes a state
    read for another request, database or pipeline: a stale or foreign entry is simply never found. Entries
    that are never taken (the key was read alone first) are dropped after ``ttl`` seconds once the cache is
    large.
    """

    def __init__(self, ttl: float = 300.0, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[SpannerTarget, str, str], tuple[float, Future]] = {}
        self._ttl = ttl
        self._max_entries = max_entries

    def put(self, target: SpannerTarget, tokens: Mapping[str, str], read: Future) -> None:
        """``read`` gives ``{key: KeyState}`` for the keys of ``tokens`` that have a stored state."""
        now = time.monotonic()
        with self._lock:
            for key, token in tokens.items():
                self._entries[(target, key, token)] = (now, read)
            if len(self._entries) > self._max_entries:
                cutoff = now - self._ttl
                for entry in [entry for entry, (at, _) in self._entries.items() if at < cutoff]:
                    del self._entries[entry]

    def take(self, target: SpannerTarget, key: str, token: str) -> tuple[bool, engine.KeyState | None]:
        with self._lock:
            entry = self._entries.pop((target, key, token), None)
        if entry is None:
            return False, None
        try:
            states = entry[1].result()
        except Exception as error:  # the flush reads its key alone
            _LOG.warning("batched state read failed (%s); reading key %s alone", error, key)
            return False, None
        return True, states.get(key)


_HYDRATED = _HydrationCache()


class _ExpirySaves:
    """Local runs: the commits that carry the saves of expired keys, by key, while they run, so that a read
    of such a key (it came back) waits for its save instead of finding the state before it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commits: dict[tuple[SpannerTarget, str], Future] = {}

    def put(self, target: SpannerTarget, keys: list[str], commit: Future) -> None:
        with self._lock:
            for key in keys:
                self._commits[(target, key)] = commit
            for entry in [entry for entry, future in self._commits.items() if future.done()]:
                del self._commits[entry]

    def pending(self, target: SpannerTarget, keys: list[str]) -> list[Future]:
        with self._lock:
            if not self._commits:
                return []
            found = {self._commits.get((target, key)) for key in keys}
        return [future for future in found if future is not None and not future.done()]


_SAVING = _ExpirySaves()


def _after(commits: list[Future], read: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """``read``, once ``commits`` are done (at once if there are none)."""
    if not commits:
        return read

    def read_after(keys: list[str]) -> Any:
        wait(commits)
        return read(keys)

    return read_after


_MESSAGE_ENCODER = msgspec.msgpack.Encoder()
_MESSAGE_DECODER = msgspec.msgpack.Decoder(Message)


def decode_message(encoded: bytes | msgspec.Raw) -> Message:
    """A message as ``Routed.of`` encoded it (msgpack; the buffer keeps messages in this form)."""
    return _MESSAGE_DECODER.decode(encoded)


class Routed(msgspec.Struct, frozen=True, array_like=True):
    """A message on its way to its key's state, encoded once (the stateful step buffers those bytes as they
    are and decodes them when it applies the message), with what that step reads before then: the message
    time, the event an occurrence without its event looks up, and the project as the registry had it (None:
    unknown). Build with ``Routed.of``."""

    encoded: msgspec.Raw
    message_time: int  # µs
    lookup: tuple[int, str] | None = None  # (project id, event id)
    project: ProjectInfo | None = None

    @classmethod
    def wake(cls, project: ProjectInfo | None) -> Routed:
        """A wake-up of a key named in ``WaitingKeys`` (``transforms.waiting_keys``): no message."""
        return cls(msgspec.Raw(b"\xc0"), WAKE_TIME, None, project)

    @classmethod
    def of(cls, message: Message, project: ProjectInfo | None = None) -> Routed:
        payload = message.payload
        lookup = None
        if payload.__class__ is Occurrence and payload.event is None:
            lookup = (payload.project_id, payload.event_id)
        return cls(msgspec.Raw(_MESSAGE_ENCODER.encode(message)), message.message_time, lookup, project)


# The message time of a wake-up: outside the years 1 to 9999 that every message time is within.
WAKE_TIME = -(1 << 62)


class RoutedCoder(coders.MsgspecCoder):
    def __init__(self, type_: type = Routed) -> None:
        super().__init__(type_)


beam.coders.registry.register_coder(Routed, RoutedCoder)


class _AttachProject(beam.DoFn):
    """``(key, Message)`` → ``(key, Routed)``: the registry side input read outside the stateful step. A
    message that cannot be encoded for the shuffle (``Routed.of``) becomes a dead letter ``internal_error``
    (stage ``key``)."""

    def process(self, element: tuple[str, Message], projects: Mapping[int, ProjectInfo]) -> Iterator[Any]:
        key, message = element
        try:
            routed = key, Routed.of(message, projects.get(message.project_id))
        except Exception as error:  # the last line of defence: the message, not the pipeline
            Metrics.counter(metrics.NAMESPACE, metrics.dead_letter_counter(reasons.INTERNAL_ERROR)).inc()
            routed = pvalue.TaggedOutput(
                DEAD_LETTER, internal_errors.for_message(message, reasons.STAGE_KEY, error)
            )
        yield routed


class WritesRefused(RuntimeError):
    """Spanner refused writes of a bundle (not ``overlap_commits``): their keys were committed without the
    refused messages, and the bundle is failed so that Beam retries it without them."""


class CommitFailed(RuntimeError):
    """An overlapped commit failed (after the writer's retries): its bundle's state went on without its rows,
    so the step stops."""


class _Committer:
    """Local runs (``overlap_commits``): the Spanner commits of one stateful step, on the process's commit
    thread, one at a time in the order they were handed over (so a key's writes still commit in ``seq`` order), while
    the next bundles are processed. A bundle that hands over a commit waits until at most
    ``ApplyPerGroupFn.COMMITS_BEHIND`` (its own included) run behind the pipeline. Process-wide, because the local runner builds a new DoFn for every bundle.
    A write Spanner refuses holds its key (``refusals``) until a bundle rebuilds it; any other failed commit
    fails every bundle from then on (``CommitFailed``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[tuple[Future, dict[str, int]]] = []  # oldest first
        self._failure: BaseException | None = None
        # Keys whose write Spanner refused, held until a bundle rebuilds them (``ApplyPerGroupFn._rebuild``),
        # and the step's config, to rebuild at the stop those no bundle came back to.
        self.refusals = RefusedKeys()
        self.config: ApplierConfig | None = None

    def submit(self, write: Callable[[Any], Any], writes: list, counts: dict[str, int]) -> Future:
        """Commit ``writes`` (``write(writes)`` gives the commit's stats); ``counts`` are the counters of the
        bundle that made them, handed back with the stats once the commit is done."""
        future = _commit_thread().submit(write, writes)
        with self._lock:
            self._running.append((future, counts))
        return future

    def settle(self, at_most: int | None) -> list[tuple[Any, dict[str, int]]]:
        """``(stats, counts)`` of the finished commits, after waiting until at most ``at_most`` (the newest)
        are unfinished (None: no waiting)."""
        with self._lock:
            running = list(self._running)
        done = []
        for index, entry in enumerate(running):
            future, counts = entry
            if not future.done() and (at_most is None or index >= len(running) - at_most):
                break
            try:
                done.append((future.result(), counts))
            except BaseException as error:  # kept, and raised below and by every later bundle
                if self._failure is None:
                    self._failure = error
            with self._lock:
                self._running.remove(entry)
        if self._failure is not None:
            raise CommitFailed(f"a Spanner commit failed: {self._failure}") from self._failure
        return done

    def wait(self, timeout: float | None) -> int:
        """Wait for every commit handed over; returns how many are still running."""
        with self._lock:
            running = [future for future, _counts in self._running]
        return len(wait(running, timeout).not_done) if running else 0


_COMMITTERS: dict[str, _Committer] = {}
_COMMITTERS_LOCK = threading.Lock()
_COMMIT_THREAD: list[ThreadPoolExecutor] = []  # one thread for the process (tests run many pipelines)


def _commit_thread() -> ThreadPoolExecutor:
    with _COMMITTERS_LOCK:
        if not _COMMIT_THREAD:
            _COMMIT_THREAD.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlapped-commit"))
        return _COMMIT_THREAD[0]


def _committer(step: str) -> _Committer:
    with _COMMITTERS_LOCK:
        committer = _COMMITTERS.get(step)
        if committer is None:
            committer = _COMMITTERS[step] = _Committer()
        return committer


def wait_for_commits(timeout: float | None = 60.0) -> int:
    """Wait for the overlapped commits of every step of this process, then write the key states whose save
    was deferred and wait for those too (call it when stopping a local run); returns how many commits are
    still running. The saves' counts are in ``uncounted_counts``."""
    with _COMMITTERS_LOCK:
        committers = list(_COMMITTERS.values())
    running = sum(committer.wait(timeout) for committer in committers)
    saves = _UNSAVED.take()
    if saves:
        for (step, target), writes in saves.items():
            writer = SpannerWriter(target.database_handle(), max_mutations=target.max_mutations)
            committer = _committer(step)
            commit = functools.partial(commit_entries, writer, committer.refusals)
            committer.submit(
                commit, [(write, None) for write in writes], {metrics.STATE_SAVED_LATE: len(writes)}
            )
        with _COMMITTERS_LOCK:
            committers = list(_COMMITTERS.values())
        running = sum(committer.wait(timeout) for committer in committers)
    for committer in committers:  # keys whose write was refused and no bundle came back to
        if committer.refusals and committer.config is not None:
            counts: dict[str, int] = {}

            def count(name: str, amount: int, counts: dict[str, int] = counts) -> None:
                counts[name] = counts.get(name, 0) + amount

            applier = GroupApplier(committer.config, count, refusals=committer.refusals)
            for key in committer.refusals.held_keys():
                _state, dead = applier.rebuild(key)
                _STOPPED.extend(dead)
            for name, amount in counts.items():
                _STOPPED_COUNTS[name] = _STOPPED_COUNTS.get(name, 0) + amount
    return running


# Local runs: the dead letters and counts of what ``wait_for_commits`` rebuilt when the pipeline had stopped
# (no Beam output is left to give them to): ``stopped_dead_letters`` hands them to the caller.
_STOPPED: list[DeadLetter] = []
_STOPPED_COUNTS: dict[str, int] = {}


def stopped_dead_letters() -> list[DeadLetter]:
    """The dead letters made by ``wait_for_commits`` (taken: given once)."""
    taken = list(_STOPPED)
    _STOPPED.clear()
    return taken


def saves_due() -> int:
    """Deferred key-state saves that ``wait_for_commits`` would write now (local runs)."""
    return _UNSAVED.size()


def uncounted_counts() -> dict[str, int]:
    """The counters of the overlapped commits that finished but that no bundle counted, taken from every step
    of this process: what a stopped local run adds to its Beam counters when it reports them. Call it after
    ``wait_for_commits``; a failed commit's are not included."""
    with _COMMITTERS_LOCK:
        committers = list(_COMMITTERS.values())
    totals: dict[str, int] = dict(_STOPPED_COUNTS)
    _STOPPED_COUNTS.clear()
    for committer in committers:
        with contextlib.suppress(CommitFailed):
            for stats, counts in committer.settle(None):
                for name, amount in (*commit_counts(stats).items(), *counts.items()):
                    totals[name] = totals.get(name, 0) + amount
    return totals


class _UnsavedStates:
    """Local runs: the latest deferred KeyStates save of each key (``KeyWrite``), so that stopping the run
    writes them (``wait_for_commits``): the local runner never fires a stopped pipeline's timers. A save is
    taken out when a bundle hands it, or a newer write of the row, to the committer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._saves: dict[tuple[str, SpannerTarget], dict[str, KeyWrite]] = {}

    def put(self, step: str, target: SpannerTarget, save: KeyWrite) -> None:
        with self._lock:
            self._saves.setdefault((step, target), {})[save.key] = save

    def discard(self, step: str, target: SpannerTarget, key: str) -> None:
        with self._lock:
            saves = self._saves.get((step, target))
            if saves:
                saves.pop(key, None)

    def size(self) -> int:
        with self._lock:
            return sum(len(saves) for saves in self._saves.values())

    def take(self) -> dict[tuple[str, SpannerTarget], list[KeyWrite]]:
        with self._lock:
            taken, self._saves = self._saves, {}
        return {where: list(saves.values()) for where, saves in taken.items() if saves}


_UNSAVED = _UnsavedStates()


class _Rebuilt:
    """Local runs (``overlap_commits``): the states of keys rebuilt at the end of a bundle after Spanner refused
    one of their writes (``ApplyPerGroupFn.finish_bundle``), by (step, key), until the key is next touched,
    which puts it in the key's Beam state (it has none to change before: its state is the one its last flush
    wrote, with the refused message in it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], bytes | None] = {}

    def __bool__(self) -> bool:
        return bool(self._states)

    def put(self, step: str, key: str, state: bytes | None) -> None:
        with self._lock:
            self._states[(step, key)] = state

    def take(self, step: str, key: str) -> tuple[bool, bytes | None]:
        with self._lock:
            if (step, key) not in self._states:
                return False, None
            return True, self._states.pop((step, key))


_REBUILT = _Rebuilt()


class _WatermarkSeen:
    """The greatest event-time timer fired in this process, per stateful step: a lower bound of the step's
    input watermark (the watermark is the step's, not a key's, and only grows), so a key's flush can take
    every buffered message up to it, not only up to the timestamp of its own timer. Without it a key whose
    messages never stop (a hot key) advanced one timer, often one message, per firing."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def update(self, step: str, fired: int) -> int:
        # No lock: two threads racing may leave the smaller of their values, which is still a lower bound.
        seen = self._seen.get(step)
        if seen is None or fired > seen:
            self._seen[step] = seen = fired
        return seen

    def get(self, step: str) -> int | None:
        return self._seen.get(step)


_WATERMARK_SEEN = _WatermarkSeen()


class _WatermarkProbes:
    """Per stateful step, whether this process has a ``watermark_probe`` timer pending (set when, monotonic
    seconds): one at a time, and another may be set if the pending one has not fired for ``stale`` seconds."""

    def __init__(self, stale: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        self._stale = stale

    def claim(self, step: str) -> bool:
        """Whether the caller should set a probe now (and it is recorded as pending)."""
        now = time.monotonic()
        with self._lock:
            since = self._pending.get(step)
            if since is not None and now - since < self._stale:
                return False
            self._pending[step] = now
            return True

    def fired(self, step: str) -> None:
        with self._lock:
            self._pending.pop(step, None)


_PROBES = _WatermarkProbes()


class _Drain:
    """Local runs: whether the pipeline is draining (``start_draining``), what the step did meanwhile, and how
    many messages this process's stateful steps hold in their key buffers (counted per bundle, when it ends).

    While draining, a key applies everything it buffered at its next flush, whatever the watermark says, and a
    message arriving in an empty buffer is flushed at once instead of after the processing hold; the local
    runner has stopped reading and moves the watermark to the end, so every key with a buffer gets a flush
    (see ``pipeline.local_runner.LocalRun.drain``). ``reset`` (a new pipeline in this process) starts a new
    generation: the counts of bundles of an earlier pipeline's steps are not added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requested = False
        self.generation = 0
        self._entered = self._left = 0
        self.keys_flushed = self.messages_applied = self.states_saved = 0

    def reset(self) -> None:
        with self._lock:
            self.generation += 1
            self.requested = False
            self._entered = self._left = 0
            self.keys_flushed = self.messages_applied = self.states_saved = 0

    def start(self) -> None:
        with self._lock:
            self.requested = True

    def add(self, generation: int, entered: int, left: int, flushes: int, applied: int, saves: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            self._entered += entered
            self._left += left
            self.keys_flushed += flushes
            self.messages_applied += applied
            self.states_saved += saves

    def buffered(self) -> int:
        with self._lock:
            return self._entered - self._left


_DRAIN = _Drain()


def reset_draining() -> None:
    """A new local pipeline starts in this process: not draining, nothing buffered (see ``_Drain``). Call it
    before the pipeline is built."""
    _DRAIN.reset()


def start_draining() -> None:
    """Local runs: the pipeline stops reading; every key applies what it buffered (see ``_Drain``)."""
    _DRAIN.start()


def buffered_messages() -> int:
    """Messages in the key buffers of this process's stateful steps (as of the last bundle that ended)."""
    return _DRAIN.buffered()


def drain_stats() -> dict[str, int]:
    """What the stateful steps did since ``start_draining``: key flushes, messages applied, key states saved
    by their timers (the saves still due when the pipeline stops are written by ``wait_for_commits``)."""
    return {
        "keys flushed": _DRAIN.keys_flushed,
        "messages applied": _DRAIN.messages_applied,
        "states saved": _DRAIN.states_saved,
    }


def _timestamp(micros: int) -> Timestamp:
    return Timestamp(micros=micros)


# A message time every message is before: a draining flush takes the whole buffer (the delay is added to
# message times before they are compared with it, so it leaves room for any delay).
_END_OF_TIME = 1 << 62


class ApplyPerGroupFn(CountingDoFn):
    BUFFER = BagStateSpec("buffer", BytesCoder())  # messages as Routed.of encoded them
    KEY_STATE = ReadModifyWriteStateSpec("key_state", BytesCoder())
    META = ReadModifyWriteStateSpec("meta", BytesCoder())
    EVENT_FLUSH = TimerSpec("event_flush", TimeDomain.WATERMARK)
    HOLD_FLUSH = TimerSpec("hold_flush", TimeDomain.REAL_TIME)
    LOOKUP_RETRY = TimerSpec("lookup_retry", TimeDomain.REAL_TIME)
    EXPIRE = TimerSpec("expire", TimeDomain.REAL_TIME)
    CONFIRM = TimerSpec("confirm", TimeDomain.REAL_TIME)  # overlap_commits: a later bundle counts the commit
    SAVE = TimerSpec("save_state", TimeDomain.WATERMARK)  # a deferred KeyStates save is due
    PROBE = TimerSpec("watermark_probe", TimeDomain.WATERMARK)  # tells how far the watermark has gone
    PROBE_MARGIN = 1.0  # seconds: a probe is set this far behind the processing time
    READ_WAIT = 0.1  # seconds: a hold is extended by this while its lookups' events are read (see Lookups)
    CONFIRM_DELAY = 0.05  # seconds
    COMMITS_BEHIND = 3  # overlap_commits: how many commits may run behind the bundles (see _Committer)

    def __init__(
        self,
        config: ApplierConfig,
        *,
        watermark_delay: float = 2.0,
        processing_hold: float = 2.0,
        lookup_retry_interval: float = 5.0,
        idle_timeout: float = 120.0,
        state_save_delay: float = 300.0,
        clock: Callable[[], float] = time.time,
        overlap_commits: bool = False,
    ) -> None:
        """``overlap_commits`` (local runs only): a bundle's commit runs while the next bundles are
        processed (``_Committer``); otherwise it ends before its bundle does. ``state_save_delay``: see
        "Saves" in the module docstring (0: the KeyStates row is written with every flush)."""
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive (seconds), got {idle_timeout}")
        if state_save_delay < 0:
            raise ValueError(f"state_save_delay must not be negative (seconds), got {state_save_delay}")
        if watermark_delay < 0 or processing_hold < 0 or lookup_retry_interval <= 0:
            raise ValueError(
                "watermark_delay and processing_hold must not be negative and lookup_retry_interval must be "
                f"positive (seconds), got {watermark_delay}, {processing_hold}, {lookup_retry_interval}"
            )
        self._config = config
        self._delay = int(watermark_delay * MICROS)
        self._hold = processing_hold
        self._lookup_retry = lookup_retry_interval
        self._clock = clock
        self._retention = config.engine.duplicate_retention
        self._idle_timeout = idle_timeout
        self._save_delay = int(state_save_delay * MICROS)
        self._step = uuid.uuid4().hex  # names this step (and its copies in bundles) process-wide
        self._overlap = overlap_commits
        self._generation = _DRAIN.generation  # the local pipeline this step belongs to (see _Drain)

    # --- lifecycle ---------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        tune_garbage_collector()
        self._flushes = Metrics.distribution(metrics.NAMESPACE, metrics.FLUSH_BATCH_SIZE)

    def start_bundle(self) -> None:
        refusals = _committer(self._step).refusals if self._overlap else None
        self._applier = GroupApplier(self._config, self._count, self._clock, refusals)
        self._to_hydrate: dict[str, str] = {}  # key -> token of this bundle's read
        self._lookups: set[tuple[int, str]] = set()  # events of this bundle's lookups, read in the background
        self._confirm_armed = False  # overlap_commits: a confirm timer is set for this bundle's commit
        self._confirmed = False  # a confirm timer fired in this bundle
        # The bundle's counts, added up here and counted at the end of the bundle (a Beam counter costs a
        # tracker lookup per call, and flushes count several names each) or, with overlap_commits, once its
        # commit is done (counted means committed).
        self._deferred: dict[str, int] | None = {}
        self._expired_saves: list[str] = []  # overlap_commits: keys expired with a save in this bundle
        self._marks: list[str] = []  # keys that started waiting in this bundle (see _track_waiting)
        self._unmarks: list[str] = []  # keys that stopped waiting
        # Messages this bundle put into key buffers and took out of them, and its flushes while draining.
        self._entered = self._left = self._drain_flushes = self._drain_applied = self._drain_saves = 0

    def _waiting_rows(self, write: Callable[[Any, list[str]], None]) -> Callable[[list[str]], CommitStats]:
        """``write`` (``waiting_keys.mark`` or ``unmark``) of this step's database, as a commit of the
        committer (its stats: one commit of as many WaitingKeys rows as keys)."""
        database = self._applier.database

        def commit(keys: list[str]) -> CommitStats:
            write(database, keys)
            rows = len(set(keys))
            return CommitStats(
                commits=1,
                attempts=1,
                mutations=rows,
                rows=rows,
                rows_by_table={waiting_keys.TABLE: rows},
            )

        return commit

    def _count(self, name: str, amount: int) -> None:
        deferred = getattr(self, "_deferred", None)
        if deferred is None:
            super()._count(name, amount)
        else:
            deferred[name] = deferred.get(name, 0) + amount

    def _count_all(self, counts: dict[str, int]) -> None:
        for name, amount in counts.items():
            self._count(name, amount)

    def finish_bundle(self) -> list[Any]:
        rebuilt_dead: list[Any] = []
        if self._overlap:
            counts, self._deferred = self._deferred or {}, None  # from here on, counted at once
            committer = _committer(self._step)
            committer.config = self._config
            writes = self._applier.take_entries()
            if self._marks:  # before the states they wait in (the commit thread runs one at a time, in order)
                committer.submit(self._waiting_rows(waiting_keys.mark), self._marks, {})
            if writes:
                commit = functools.partial(commit_entries, self._applier.writer, committer.refusals)
                future = committer.submit(commit, writes, counts)
                if self._expired_saves:
                    _SAVING.put(self._config.spanner, self._expired_saves, future)
                    self._expired_saves = []
            else:
                self._count_all(counts)
            if self._unmarks:
                committer.submit(self._waiting_rows(waiting_keys.unmark), self._unmarks, {})
            # With a new commit, wait until at most COMMITS_BEHIND run; without, count what has finished, or
            # (a confirm timer fired: no later bundle may come) wait for all.
            at_most = self.COMMITS_BEHIND if writes else (0 if self._confirmed else None)
            for stats, later in committer.settle(at_most):
                self._applier.count_commit(stats)
                self._count_all(later)
            if committer.refusals:  # writes Spanner refused: their keys rebuilt now, their Beam state later
                committer.wait(None)
                for key in committer.refusals.held_keys():
                    state, dead = self._applier.rebuild(key)
                    _REBUILT.put(self._step, key, None if state is None else engine.encode_state(state))
                    rebuilt_dead.extend(dead_letter_in_finish_bundle(dead_letter) for dead_letter in dead)
        else:
            if self._marks:  # before the states they wait in
                self._waiting_rows(waiting_keys.mark)(self._marks)
            self._applier.flush()
            refused = self._applier.refusals.held_keys()
            if refused:
                # This bundle's state would say those writes were made: commit their keys without the
                # messages Spanner refuses, remember those (SET_ASIDE), and fail the bundle, which Beam retries
                # from the state before it: the retry dead-letters them and writes what was just committed.
                for key in refused:
                    self._applier.rebuild(key)
                raise WritesRefused(
                    f"Spanner refused writes of {len(refused)} keys (e.g. {refused[0]}); their messages are set "
                    "aside and the bundle is retried without them"
                )
            if self._unmarks:
                self._waiting_rows(waiting_keys.unmark)(self._unmarks)
            counts, self._deferred = self._deferred or {}, None
            for name, amount in counts.items():  # added up by _count, now counted
                super()._count(name, amount)
        if self._to_hydrate:
            requests, self._to_hydrate = self._to_hydrate, {}
            self._count(metrics.STATE_HYDRATED, len(requests))
            keys = list(requests)
            saving = _SAVING.pending(self._config.spanner, keys) if self._overlap else []
            read = PREFETCH.submit(_after(saving, self._applier.hydrate), keys)
            _HYDRATED.put(self._config.spanner, requests, read)
        if self._lookups:
            lookups, self._lookups = self._lookups, set()
            self._applier.prefetch_events(lookups, delay=self._hold / 2)
        if self._entered or self._left or self._drain_saves:
            _DRAIN.add(
                self._generation,
                self._entered,
                self._left,
                self._drain_flushes,
                self._drain_applied,
                self._drain_saves,
            )
        return rebuilt_dead

    # --- input ---------------------------------------------------------------------------------------
    def process(
        self,
        element: tuple[str, Routed],
        buffer=beam.DoFn.StateParam(BUFFER),
        meta_state=beam.DoFn.StateParam(META),
        event_flush=beam.DoFn.TimerParam(EVENT_FLUSH),
        hold_flush=beam.DoFn.TimerParam(HOLD_FLUSH),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
    ):  # no "-> None": Beam 2.78 reads process's annotations as type hints and refuses a None output type
        key, routed = element
        meta = self._meta(meta_state)
        if routed.message_time == WAKE_TIME:
            self._wake(key, routed, meta, meta_state, lookup_retry)
            return
        buffer.add(bytes(routed.encoded))
        self._entered += 1
        if routed.lookup is not None:
            self._lookups.add(routed.lookup)
        if routed.project is not None:
            meta.project = routed.project
        if not meta.hydrated and not meta.hydrate_token:
            meta.hydrate_token = self._to_hydrate[key] = f"{_TOKEN_PREFIX}{next(_TOKENS)}"
        if not meta.hold_armed and not meta.hold_passed:  # the buffer was empty
            meta.hold_armed = True
            hold_flush.set(Timestamp.of(self._clock() + (0.0 if _DRAIN.requested else self._hold)))
        message_time = routed.message_time
        target = message_time + self._delay
        if meta.buffer_max is None or target > meta.buffer_max:
            meta.buffer_max = target
        if meta.event_target is None or target < meta.event_target:
            seen = _WATERMARK_SEEN.get(self._step)
            if seen is not None and target <= seen and not meta.hold_passed:
                # The watermark has passed the message already: the hold's flush takes it, no timer needed.
                meta.ready_until = seen if meta.ready_until is None else max(meta.ready_until, seen)
            else:
                meta.event_target = target
                event_flush.set(_timestamp(target))
        if message_time > meta.max_time:
            meta.max_time = message_time
        meta_state.write(_META_ENCODER.encode(meta))

    def _wake(self, key: str, routed: Routed, meta: _Meta, meta_state, lookup_retry) -> None:
        """A key named in ``WaitingKeys``: read its state (in the bundle's batch) and retry its lookups once
        the read is done (``on_lookup_retry``), which also deletes the row if nothing waits."""
        if routed.project is not None:
            meta.project = routed.project
        if not meta.hydrated and not meta.hydrate_token:
            meta.hydrate_token = self._to_hydrate[key] = f"{_TOKEN_PREFIX}{next(_TOKENS)}"
        meta.waiting_marked = True
        lookup_retry.set(Timestamp.of(self._clock() + self._hold))
        meta_state.write(_META_ENCODER.encode(meta))

    def _track_waiting(self, key: str, meta: _Meta, state: engine.KeyState) -> None:
        """Name the key in ``WaitingKeys`` when it starts waiting, take it out when nothing waits any more
        (written by ``finish_bundle``: the names before the bundle's commit, the removals after it)."""
        if state.waiting:
            if not meta.waiting_marked:
                meta.waiting_marked = True
                self._marks.append(key)
        elif meta.waiting_marked:
            meta.waiting_marked = False
            self._unmarks.append(key)

    # --- timers --------------------------------------------------------------------------------------
    @on_timer(EVENT_FLUSH)
    def on_event_flush(
        self,
        key=beam.DoFn.KeyParam,
        fired=beam.DoFn.TimestampParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        event_flush=beam.DoFn.TimerParam(EVENT_FLUSH),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
        expire=beam.DoFn.TimerParam(EXPIRE),
        confirm=beam.DoFn.TimerParam(CONFIRM),
        save=beam.DoFn.TimerParam(SAVE),
    ) -> Iterator[Any]:
        meta = self._meta(meta_state)
        meta.event_target = None
        fired_micros = fired.micros
        seen = _WATERMARK_SEEN.update(self._step, fired_micros)
        meta.ready_until = seen if meta.ready_until is None else max(meta.ready_until, seen)
        if meta.hold_passed or _DRAIN.requested:  # draining: everything buffered, now (see _Drain)
            yield from self._flush(
                key, buffer, key_state, meta, event_flush, lookup_retry, expire, confirm, save
            )
        elif meta.buffer_max is not None and meta.buffer_max > fired_micros:
            # While the hold runs, find out whether the watermark has passed the whole buffer already.
            meta.event_target = meta.buffer_max
            event_flush.set(_timestamp(meta.buffer_max))
        meta_state.write(_META_ENCODER.encode(meta))

    @on_timer(HOLD_FLUSH)
    def on_hold_flush(
        self,
        key=beam.DoFn.KeyParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        event_flush=beam.DoFn.TimerParam(EVENT_FLUSH),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
        expire=beam.DoFn.TimerParam(EXPIRE),
        confirm=beam.DoFn.TimerParam(CONFIRM),
        save=beam.DoFn.TimerParam(SAVE),
        probe=beam.DoFn.TimerParam(PROBE),
        hold_flush=beam.DoFn.TimerParam(HOLD_FLUSH),
    ) -> Iterator[Any]:
        if _PROBES.claim(self._step):
            probe.set(Timestamp.of(self._clock() - self.PROBE_MARGIN))
        meta = self._meta(meta_state)
        meta.hold_passed, meta.hold_armed = True, False
        seen = _WATERMARK_SEEN.get(self._step)
        if seen is not None and (meta.ready_until is None or seen > meta.ready_until):
            meta.ready_until = seen
        if meta.ready_until is not None or _DRAIN.requested:  # draining: everything buffered, now
            yield from self._flush(
                key, buffer, key_state, meta, event_flush, lookup_retry, expire, confirm, save, hold_flush
            )
        meta_state.write(_META_ENCODER.encode(meta))

    @on_timer(LOOKUP_RETRY)
    def on_lookup_retry(
        self,
        key=beam.DoFn.KeyParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
        expire=beam.DoFn.TimerParam(EXPIRE),
        confirm=beam.DoFn.TimerParam(CONFIRM),
        save=beam.DoFn.TimerParam(SAVE),
    ) -> Iterator[Any]:
        meta = self._meta(meta_state)
        rebuilt = self._rebuild(key, key_state, meta)
        for dead_letter in rebuilt:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)
        state = self._load(key, key_state, meta)
        if state is None or not state.waiting or meta.project is None:
            if meta.waiting_marked and (state is None or not state.waiting):  # a wake-up of a stale row
                meta.waiting_marked = False
                self._unmarks.append(key)
                if next(iter(buffer.read()), None) is None:
                    expire.set(Timestamp.of(self._clock() + self._idle_timeout))
                meta_state.write(_META_ENCODER.encode(meta))
            elif rebuilt:
                meta_state.write(_META_ENCODER.encode(meta))
            return
        new_state, dead_letters = self._applier.apply(
            key, state, [], meta.project, defer_key_state=self._save_delay > 0
        )
        self._after_apply(key, meta, save)
        self._track_waiting(key, meta, new_state)
        self._arm_confirm(confirm)
        key_state.write(self._applier.encoded_state(new_state))
        if new_state.waiting:
            self._arm_lookup_retry(new_state, lookup_retry)
        elif next(iter(buffer.read()), None) is None:
            expire.set(Timestamp.of(self._clock() + self._idle_timeout))
        meta_state.write(_META_ENCODER.encode(meta))
        for dead_letter in dead_letters:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)

    @on_timer(CONFIRM)
    def on_confirm(self) -> None:
        self._confirmed = True

    @on_timer(PROBE)
    def on_probe(self, fired=beam.DoFn.TimestampParam) -> None:
        _WATERMARK_SEEN.update(self._step, fired.micros)
        _PROBES.fired(self._step)

    @on_timer(SAVE)
    def on_save(
        self,
        key=beam.DoFn.KeyParam,
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        confirm=beam.DoFn.TimerParam(CONFIRM),
    ) -> list[Any]:
        data = meta_state.read()
        if data is None:
            return []  # the key expired (and was saved) meanwhile
        meta = _META_DECODER.decode(data)
        meta.save_armed = False
        dead_letters = self._rebuild(key, key_state, meta)
        self._save(key, key_state.read(), meta, confirm)
        meta_state.write(_META_ENCODER.encode(meta))
        return [pvalue.TaggedOutput(DEAD_LETTER, dead_letter) for dead_letter in dead_letters]

    @on_timer(EXPIRE)
    def on_expire(
        self,
        key=beam.DoFn.KeyParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        confirm=beam.DoFn.TimerParam(CONFIRM),
        save=beam.DoFn.TimerParam(SAVE),
    ) -> list[Any]:
        if next(iter(buffer.read()), None) is not None:
            return []  # re-armed when the buffer is flushed
        outputs = []
        if key in self._applier.refusals or _REBUILT:
            meta = self._meta(meta_state)
            outputs = [pvalue.TaggedOutput(DEAD_LETTER, dead) for dead in self._rebuild(key, key_state, meta)]
            meta_state.write(_META_ENCODER.encode(meta))
        data = key_state.read()
        state = None if data is None else engine.decode_state(data)
        if state is not None and state.waiting:
            return outputs  # re-armed when the last lookup is settled
        # Everything the key knows is in Spanner (committed with the bundle of its last flush), or is saved
        # now, with this bundle.
        meta = self._meta(meta_state)
        if self._save(key, data, meta, confirm, state) and self._overlap:
            self._expired_saves.append(key)
        save.clear()
        buffer.clear()
        key_state.clear()
        meta_state.clear()
        self._count(metrics.STATE_EXPIRED, 1)
        return outputs

    def _save(self, key: str, data: bytes | None, meta: _Meta, confirm, state=None) -> bool:
        """Keep the deferred KeyStates save of the key, if one is due; True if there was one."""
        if meta.unsaved_base is None or data is None:
            return False
        if state is None:
            state = engine.decode_state(data)
        save = SaveKeyState(
            project_id=state.project_id,
            primary_hash=state.primary_hash,
            generation=state.generation,
            group_id=None,
            state=data,
            relink=False,
        )
        self._applier.keep(KeyWrite(key=key, seq=state.seq, intents=(save,), base_seq=meta.unsaved_base))
        meta.unsaved_base = None
        if self._overlap:
            _UNSAVED.discard(self._step, self._config.spanner, key)
        self._count(metrics.STATE_SAVED_LATE, 1)
        if _DRAIN.requested:
            self._drain_saves += 1
        self._arm_confirm(confirm)
        return True

    def _after_apply(self, key: str, meta: _Meta, save) -> None:
        """Bookkeeping of deferred saves after an engine call (see "Saves" in the module docstring)."""
        deferred = self._applier.deferred_save
        if deferred is None:
            if meta.unsaved_base is not None and self._applier.last_write is not None:
                # The call wrote KeyStates (the key got or lost a group): it is up to date.
                meta.unsaved_base = None
                if self._overlap:
                    _UNSAVED.discard(self._step, self._config.spanner, key)
            return
        if meta.unsaved_base is None:
            meta.unsaved_base = deferred.base_seq
        if self._overlap:
            _UNSAVED.put(
                self._step,
                self._config.spanner,
                KeyWrite(key=key, seq=deferred.seq, intents=deferred.intents, base_seq=meta.unsaved_base),
            )
        if not meta.save_armed:
            meta.save_armed = True
            save.set(_timestamp((meta.ready_until or meta.max_time) + self._save_delay))

    def _rebuild(self, key: str, key_state, meta: _Meta) -> list[DeadLetter]:
        """If Spanner refused a write of the key (a commit after the bundle that made it, with
        ``overlap_commits``), put the key's state rebuilt without the refused messages in its Beam state:
        rebuilt at the end of a bundle since (``_REBUILT``), or now; returns the dead letters of a rebuild
        made now (see ``transforms.applier``)."""
        dead: list[DeadLetter] = []
        if _REBUILT:
            found, data = _REBUILT.take(self._step, key)
            if found:
                self._rebuilt(key, key_state, meta, data)
        if key in self._applier.refusals:
            if self._overlap:  # every write of the key made since is then held
                _committer(self._step).wait(None)
            state, dead = self._applier.rebuild(key)
            self._rebuilt(key, key_state, meta, None if state is None else engine.encode_state(state))
        return dead

    def _rebuilt(self, key: str, key_state, meta: _Meta, data: bytes | None) -> None:
        """Put a rebuilt state in the key's Beam state (its writes carried it to Spanner)."""
        if data is not None:
            key_state.write(data)
            meta.hydrated, meta.hydrate_token = True, ""
        if meta.unsaved_base is not None:
            meta.unsaved_base = None
            _UNSAVED.discard(self._step, self._config.spanner, key)

    # --- the flush -----------------------------------------------------------------------------------
    def _flush(
        self, key, buffer, key_state, meta: _Meta, event_flush, lookup_retry, expire, confirm, save, hold=None
    ) -> Iterator[Any]:
        """Apply the buffered messages the watermark has passed (called once the hold has passed). Given the
        ``hold`` timer (the hold's own flush), a flush whose lookups' events are still being read in the
        background extends the hold by ``READ_WAIT`` instead of waiting for the read."""
        if _REBUILT or self._applier.refusals:  # a write Spanner refused (rarely): see _rebuild
            for dead_letter in self._rebuild(key, key_state, meta):
                yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)
        ready = _END_OF_TIME if _DRAIN.requested else meta.ready_until
        take: list[Message] = []
        keep: list[tuple[bytes, Message]] = []
        for encoded in buffer.read():
            message = _MESSAGE_DECODER.decode(encoded)
            if message.message_time + self._delay <= ready:
                take.append(message)
            else:
                keep.append((encoded, message))
        if keep:  # they wait for the watermark only: their hold has passed
            earliest = min(message.message_time for _, message in keep) + self._delay
            if meta.event_target is None or earliest < meta.event_target:
                meta.event_target = earliest
                event_flush.set(_timestamp(earliest))
        if not take:
            return
        if (
            hold is not None
            and meta.project is not None
            and self._applier.lookups_reading(take, meta.project.project_id)
        ):
            meta.hold_passed, meta.hold_armed = False, True
            hold.set(Timestamp.of(self._clock() + self.READ_WAIT))
            return
        buffer.clear()
        self._left += len(take)
        if _DRAIN.requested:
            self._drain_flushes += 1
            self._drain_applied += len(take)
        for encoded, _ in keep:
            buffer.add(encoded)
        if keep:
            meta.buffer_max = max(message.message_time for _, message in keep) + self._delay
        else:
            meta.hold_armed, meta.hold_passed, meta.buffer_max = False, False, None
        if meta.project is None:
            project_id = split_group_key(key)[0]
            for message in take:
                self._count(metrics.dead_letter_counter(reasons.UNKNOWN_PROJECT), 1)
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
        state = self._load(key, key_state, meta)
        if state is not None and state.last_time is not None:
            # No message older than this can still be recognised as a duplicate of a forgotten one.
            state = engine.compact(state, min(ready - self._delay, state.last_time) - self._retention)
        new_state, dead_letters = self._applier.apply(
            key, state, take, meta.project, defer_key_state=self._save_delay > 0
        )
        self._after_apply(key, meta, save)
        self._track_waiting(key, meta, new_state)
        self._arm_confirm(confirm)
        self._flushes.update(len(take))
        key_state.write(self._applier.encoded_state(new_state))
        if new_state.waiting:
            self._arm_lookup_retry(new_state, lookup_retry)
        elif not keep:
            expire.set(Timestamp.of(self._clock() + self._idle_timeout))
        for dead_letter in dead_letters:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)

    def _arm_confirm(self, confirm) -> None:
        """overlap_commits: make sure a later bundle comes to count (and wait for) this bundle's commit."""
        if self._overlap and not self._confirm_armed and self._applier.pending_writes:
            self._confirm_armed = True
            confirm.set(Timestamp.of(self._clock() + self.CONFIRM_DELAY))

    def _arm_lookup_retry(self, state, lookup_retry) -> None:
        deadline = engine.next_lookup_deadline(state)
        if deadline is None:
            return
        now = self._clock()
        lookup_retry.set(Timestamp.of(min(now + self._lookup_retry, max(deadline / MICROS, now))))

    def _load(self, key: str, key_state, meta: _Meta) -> engine.KeyState | None:
        if meta.hydrated:
            data = key_state.read()
            return None if data is None else engine.decode_state(data)
        found, state = _HYDRATED.take(self._config.spanner, key, meta.hydrate_token)
        if not found:
            state = self._applier.hydrate([key]).get(key)
            self._count(metrics.STATE_HYDRATED, 1)
        if state is not None and state.waiting:  # saved while waiting: its WaitingKeys row was written then
            meta.waiting_marked = True
        meta.hydrated = True
        meta.hydrate_token = ""
        self._to_hydrate.pop(key, None)
        return state

    @staticmethod
    def _meta(meta_state) -> _Meta:
        data = meta_state.read()
        return _Meta() if data is None else _META_DECODER.decode(data)


class ApplyPerGroup(beam.PTransform):
    """``(key, Message)`` → ``{"applied": ..., "dead_letter": ...}`` (see the module docstring): the dead letters
    of the engine, and of ``AttachProject`` (messages that could not be routed)."""

    def __init__(
        self,
        config: ApplierConfig,
        projects: pvalue.AsSideInput,
        *,
        watermark_delay: float = 2.0,
        processing_hold: float = 2.0,
        lookup_retry_interval: float = 5.0,
        idle_timeout: float = 120.0,
        state_save_delay: float = 300.0,
        clock: Callable[[], float] = time.time,
        routed: bool = False,
        overlap_commits: bool = False,
        wake_waiting: bool = False,
        label: str | None = None,
    ) -> None:
        """``routed``: the input is ``(key, Routed)`` already (``transforms.ingest.Ingest``), not
        ``(key, Message)``: no ``AttachProject`` step. ``wake_waiting``: when the pipeline starts, the keys
        ``WaitingKeys`` names are taken up (``WakeWaitingKeys``; a streaming job sets it)."""
        super().__init__(label)
        self._routed = routed
        self._wake_waiting = wake_waiting
        self._target = config.spanner
        self._fn = ApplyPerGroupFn(
            config,
            watermark_delay=watermark_delay,
            processing_hold=processing_hold,
            lookup_retry_interval=lookup_retry_interval,
            idle_timeout=idle_timeout,
            state_save_delay=state_save_delay,
            clock=clock,
            overlap_commits=overlap_commits,
        )
        self._projects = projects

    def expand(self, keyed: beam.PCollection) -> pvalue.DoOutputsTuple:
        early: beam.PCollection | None = None
        if self._routed:
            routed = keyed
        else:
            attached = keyed | "AttachProject" >> beam.ParDo(_AttachProject(), self._projects).with_outputs(
                DEAD_LETTER, main="routed"
            )
            routed = attached["routed"]
            routed.element_type = beam.typehints.Tuple[str, Routed]
            early = attached[DEAD_LETTER]
            early.element_type = DeadLetter
        if self._wake_waiting:
            wakes = keyed.pipeline | "WakeWaitingKeys" >> waiting_keys.WakeWaitingKeys(
                self._target, self._projects
            )
            routed = (routed, wakes) | "WithWakes" >> beam.Flatten()
            routed.element_type = beam.typehints.Tuple[str, Routed]
        # Typed, so that the key coder of the state and timers is Beam's deterministic string coder.
        outputs = routed | "ApplyEngine" >> beam.ParDo(self._fn).with_input_types(
            tuple[str, Routed]
        ).with_outputs(DEAD_LETTER, main="applied")
        coders.typed(outputs, **{DEAD_LETTER: DeadLetter})
        dead_letters = outputs[DEAD_LETTER]
        if early is not None:
            dead_letters = (early, dead_letters) | "CollectDeadLetters" >> beam.Flatten()
            dead_letters.element_type = DeadLetter
        return {"applied": outputs["applied"], DEAD_LETTER: dead_letters}
