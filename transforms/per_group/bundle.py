"""One bundle of the stateful step: the step's settings, what the bundle collects while it runs, and its end.

A bundle's writes go to Spanner at its end (``Bundle.finish``), before Beam commits the bundle's state. If the
commit fails the bundle fails, Beam keeps the previous state and retries, and the engine recomputes the same
writes (same ``seq``), which the guarded writer treats as already applied where they were. Writes of one key
are committed in ``seq`` order because a key's next bundle starts only after this one committed. A write
Spanner refuses for what it carries is not retried: its key is committed again without the refused message
(see ``transforms.applier``), and then the bundle fails once (``WritesRefused``): Beam's retry, from the state
before the bundle, dead-letters that message at once, so the key's Beam state never includes it. With
``overlap_commits`` (local runs) the commit is handed to the step's ``Committer`` instead
(``transforms.per_group.local_commits``), and the bundle's counters are counted once it is done.

The end of a bundle also starts the batched hydration read of the keys it saw first
(``transforms.per_group.hydration``) and the background read of its lookups' events (half a
``processing_hold`` later: by then the occurrence carrying the event has often been applied in this process,
and the read skips it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transforms import waiting_keys
from transforms.applier import PREFETCH, ApplierConfig
from transforms.core import engine, metrics
from transforms.key_history import dead_letter_in_finish_bundle
from transforms.per_group.drain import DRAIN
from transforms.per_group.hydration import HYDRATED, SAVING, after
from transforms.per_group.local_commits import REBUILT, ApplierFactory, commit_entries, step_committer
from transforms.storage.spanner_writer import CommitStats

Counter = Callable[[str, int], None]

# overlap_commits: how many commits may run behind the bundles, a bundle's own included (see Committer).
COMMITS_BEHIND = 3


class WritesRefused(RuntimeError):
    """Spanner refused writes of a bundle (not ``overlap_commits``): their keys were committed without the
    refused messages, and the bundle is failed so that Beam retries it without them."""


@dataclass(frozen=True, slots=True)
class StepSettings:
    """What the stateful step was built with, as its callbacks read it (times in µs where noted, else
    seconds). Pickled with the DoFn: ``step`` names the step and its copies in bundles process-wide."""

    config: ApplierConfig
    delay: int  # watermark_delay, µs
    hold: float  # processing_hold
    lookup_retry: float  # lookup_retry_interval
    clock: Callable[[], float]
    retention: int  # the engine's duplicate_retention, µs
    idle_timeout: float
    save_delay: int  # state_save_delay, µs
    step: str
    overlap: bool  # overlap_commits
    generation: int  # the local pipeline this step belongs to (see transforms.per_group.drain)
    applier_factory: ApplierFactory


class Bundle:
    """What one bundle of the step collects for its end: the keys to hydrate, the events its lookups need,
    the WaitingKeys rows to write, and its counts. ``count`` defers a count to the end of the bundle (a Beam
    counter costs a tracker lookup per call, and flushes count several names each) or, with
    ``overlap_commits``, until its commit is done (counted means committed); ``count_now`` counts at once."""

    def __init__(self, settings: StepSettings, count: Counter, count_now: Counter, flushes: Any) -> None:
        self.settings = settings
        refusals = step_committer(settings.step).refusals if settings.overlap else None
        self.applier = settings.applier_factory(settings.config, count, settings.clock, refusals)
        self.count = count
        self._count_now = count_now
        self.flushes = flushes  # the distribution of messages a flush applies
        self.to_hydrate: dict[str, str] = {}  # key -> token of this bundle's read
        self.lookups: set[tuple[int, str]] = set()  # events of this bundle's lookups, read in the background
        self.confirm_armed = False  # overlap_commits: a confirm timer is set for this bundle's commit
        self.confirmed = False  # a confirm timer fired in this bundle
        self.deferred: dict[str, int] | None = {}  # counts added up until the end of the bundle
        self.expired_saves: list[str] = []  # overlap_commits: keys expired with a save in this bundle
        self.marks: list[str] = []  # keys that started waiting in this bundle (see flush.track_waiting)
        self.unmarks: list[str] = []  # keys that stopped waiting
        # Messages this bundle put into key buffers and took out of them, and its flushes while draining.
        self.entered = self.left = self.drain_flushes = self.drain_applied = self.drain_saves = 0

    def count_all(self, counts: dict[str, int]) -> None:
        for name, amount in counts.items():
            self.count(name, amount)

    def waiting_rows(self, write: Callable[[Any, list[str]], None]) -> Callable[[list[str]], CommitStats]:
        """``write`` (``waiting_keys.mark`` or ``unmark``) of this step's database, as a commit of the
        committer (its stats: one commit of as many WaitingKeys rows as keys)."""
        database = self.applier.database

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

    def finish(self) -> list[Any]:
        """The end of the bundle: its writes committed (or handed over), its counts counted, its reads
        started; returns the dead letters of keys rebuilt now (see ``local_commits``)."""
        settings = self.settings
        rebuilt_dead: list[Any] = []
        if settings.overlap:
            counts, self.deferred = self.deferred or {}, None  # from here on, counted at once
            committer = step_committer(settings.step)
            committer.config = settings.config
            committer.applier_factory = settings.applier_factory
            writes = self.applier.take_entries()
            if self.marks:  # before the states they wait in (the commit thread runs one at a time, in order)
                committer.submit(self.waiting_rows(waiting_keys.mark), self.marks, {})
            if writes:
                commit = functools.partial(commit_entries, self.applier.writer, committer.refusals)
                future = committer.submit(commit, writes, counts)
                if self.expired_saves:
                    SAVING.put(settings.config.spanner, self.expired_saves, future)
                    self.expired_saves = []
            else:
                self.count_all(counts)
            if self.unmarks:
                committer.submit(self.waiting_rows(waiting_keys.unmark), self.unmarks, {})
            # With a new commit, wait until at most COMMITS_BEHIND run; without, count what has finished, or
            # (a confirm timer fired: no later bundle may come) wait for all.
            at_most = COMMITS_BEHIND if writes else (0 if self.confirmed else None)
            for stats, later in committer.settle(at_most):
                self.applier.count_commit(stats)
                self.count_all(later)
            if committer.refusals:  # writes Spanner refused: their keys rebuilt now, their Beam state later
                committer.wait(None)
                for key in committer.refusals.held_keys():
                    state, dead = self.applier.rebuild(key)
                    REBUILT.put(settings.step, key, None if state is None else engine.encode_state(state))
                    rebuilt_dead.extend(dead_letter_in_finish_bundle(dead_letter) for dead_letter in dead)
        else:
            if self.marks:  # before the states they wait in
                self.waiting_rows(waiting_keys.mark)(self.marks)
            self.applier.flush()
            refused = self.applier.refusals.held_keys()
            if refused:
                # This bundle's state would say those writes were made: commit their keys without the
                # messages Spanner refuses, remember those (SET_ASIDE), and fail the bundle, which Beam retries
                # from the state before it: the retry dead-letters them and writes what was just committed.
                for key in refused:
                    self.applier.rebuild(key)
                raise WritesRefused(
                    f"Spanner refused writes of {len(refused)} keys (e.g. {refused[0]}); their messages are set "
                    "aside and the bundle is retried without them"
                )
            if self.unmarks:
                self.waiting_rows(waiting_keys.unmark)(self.unmarks)
            counts, self.deferred = self.deferred or {}, None
            for name, amount in counts.items():  # added up by count, now counted
                self._count_now(name, amount)
        if self.to_hydrate:
            requests, self.to_hydrate = self.to_hydrate, {}
            self.count(metrics.STATE_HYDRATED, len(requests))
            keys = list(requests)
            saving = SAVING.pending(settings.config.spanner, keys) if settings.overlap else []
            read = PREFETCH.submit(after(saving, self.applier.hydrate), keys)
            HYDRATED.put(settings.config.spanner, requests, read)
        if self.lookups:
            lookups, self.lookups = self.lookups, set()
            self.applier.prefetch_events(lookups, delay=settings.hold / 2)
        if self.entered or self.left or self.drain_saves:
            DRAIN.add(
                settings.generation,
                self.entered,
                self.left,
                self.drain_flushes,
                self.drain_applied,
                self.drain_saves,
            )
        return rebuilt_dead
