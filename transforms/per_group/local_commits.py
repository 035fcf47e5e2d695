"""Local runs (``overlap_commits``): a bundle's Spanner commit runs on a thread of the step's own while the next
bundles are processed, and what that thread must still do when the pipeline stops.

The local runner runs one bundle at a time and never retries one, so there a bundle hands its commit to its
step's ``Committer`` (one at a time, in order) and goes on; a bundle that hands over a commit first waits
until at most ``COMMITS_BEHIND`` (its own included) are unfinished. The bundle's counters are counted when
its commit is done (so what is counted is in Spanner), by a later bundle: a ``confirm`` timer makes sure one
comes. A write Spanner refuses holds its key's later writes; the key is rebuilt without the refused message at the end of the first bundle that ends once Spanner has
answered, which may be the bundle that made the write (kept in ``REBUILT``
until the key is next touched), or at its next flush if that comes first, or when the pipeline stops. Any
other failed commit fails every later bundle (``CommitFailed``). Deferred KeyStates saves are kept in
``UNSAVED`` so that ``wait_for_commits`` writes them when the run stops (the local runner never fires a
stopped pipeline's timers). Stopping the pipeline drains it (``transforms.per_group.drain``: every buffer
flushed) and waits for the commits handed over (``pipeline.local_runner.LocalRun.cancel``).

The objects here are process-wide, because the local runner builds a new DoFn for every bundle.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from transforms.applier import (
    ApplierConfig,
    GroupApplier,
    RefusedKeys,
    SpannerTarget,
    commit_counts,
    commit_entries,
)
from transforms.core import metrics
from transforms.core.intents import KeyWrite
from transforms.core.model import DeadLetter
from transforms.storage.spanner_writer import SpannerWriter


class ApplierFactory(Protocol):
    """Builds the stateful step's ``GroupApplier`` (or an object with its methods, e.g. a test's fake store);
    ``GroupApplier`` itself is the default. Must be picklable (it travels with the DoFn)."""

    def __call__(
        self,
        config: ApplierConfig,
        count: Callable[[str, int], None],
        clock: Callable[[], float] = ...,
        refusals: RefusedKeys | None = None,
    ) -> GroupApplier: ...


class CommitFailed(RuntimeError):
    """An overlapped commit failed (after the writer's retries): its bundle's state went on without its rows,
    so the step stops."""


class Committer:
    """Local runs (``overlap_commits``): the Spanner commits of one stateful step, on the process's commit
    thread, one at a time in the order they were handed over (so a key's writes still commit in ``seq`` order), while
    the next bundles are processed. A bundle that hands over a commit waits until at most
    ``bundle.COMMITS_BEHIND`` (its own included) run behind the pipeline. Process-wide, because the local runner builds a new DoFn for every bundle.
    A write Spanner refuses holds its key (``refusals``) until a bundle rebuilds it; any other failed commit
    fails every bundle from then on (``CommitFailed``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[tuple[Future, dict[str, int]]] = []  # oldest first
        self._failure: BaseException | None = None
        # Keys whose write Spanner refused, held until a bundle rebuilds them (``flush.rebuild``),
        # and the step's config, to rebuild at the stop those no bundle came back to.
        self.refusals = RefusedKeys()
        self.config: ApplierConfig | None = None
        self.applier_factory: ApplierFactory = GroupApplier

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


_COMMITTERS: dict[str, Committer] = {}
_COMMITTERS_LOCK = threading.Lock()
_COMMIT_THREAD: list[ThreadPoolExecutor] = []  # one thread for the process (tests run many pipelines)


def _commit_thread() -> ThreadPoolExecutor:
    with _COMMITTERS_LOCK:
        if not _COMMIT_THREAD:
            _COMMIT_THREAD.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlapped-commit"))
        return _COMMIT_THREAD[0]


def step_committer(step: str) -> Committer:
    with _COMMITTERS_LOCK:
        committer = _COMMITTERS.get(step)
        if committer is None:
            committer = _COMMITTERS[step] = Committer()
        return committer


def wait_for_commits(timeout: float | None = 60.0) -> int:
    """Wait for the overlapped commits of every step of this process, then write the key states whose save
    was deferred and wait for those too (call it when stopping a local run); returns how many commits are
    still running. The saves' counts are in ``uncounted_counts``."""
    with _COMMITTERS_LOCK:
        committers = list(_COMMITTERS.values())
    running = sum(committer.wait(timeout) for committer in committers)
    saves = UNSAVED.take()
    if saves:
        for (step, target), writes in saves.items():
            writer = SpannerWriter(target.database_handle(), max_mutations=target.max_mutations)
            committer = step_committer(step)
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

            applier = committer.applier_factory(committer.config, count, refusals=committer.refusals)
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
    return UNSAVED.size()


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


class UnsavedStates:
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


UNSAVED = UnsavedStates()


class Rebuilt:
    """Local runs (``overlap_commits``): the states of keys rebuilt at the end of a bundle after Spanner refused
    one of their writes (``Bundle.finish``), by (step, key), until the key is next touched,
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


REBUILT = Rebuilt()
