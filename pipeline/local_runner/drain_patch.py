"""Draining a local pipeline (``LocalRun.drain``; the ``drain`` patch).

While a drain runs, the Pub/Sub read returns nothing and schedules no next read, with no watermark hold: the
source ends and the watermark goes to the end, so every key's flush timer fires, as in a Dataflow drain.
Beam's monitor would then end the pipeline at once, dropping the processing-time timers (flushes of keys
whose hold runs), so it may not while draining; it notes instead when the runner has no work left, which
with empty key buffers ends the drain.
"""

from __future__ import annotations

import threading
import time

from transforms.private_api import Replacement


class _Draining:
    """A local pipeline being drained (``LocalRun.drain``): the reader's next read returns nothing and ends
    the source, which moves the watermark to the end (``install_drain``), and the runner's monitor notes when it
    finds no work at all (no bundle running or scheduled, no result waiting to be handed on). It also notes
    when the reader's first read returned (``LocalRun.reading_since``: a pipeline idle from its start)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requested = False
        self.reader_stopped_at: float | None = None  # monotonic
        self.quiet_at: float | None = None  # the latest monitor pass that found no work (monotonic)
        self.first_read_at: float | None = None  # when the reader's first read returned (monotonic)

    def reset(self) -> None:
        with self._lock:
            self.requested, self.reader_stopped_at, self.quiet_at = False, None, None
            self.first_read_at = None

    def start(self) -> None:
        with self._lock:
            self.requested = True

    def read_done(self) -> None:
        if self.first_read_at is None:
            with self._lock:
                self.first_read_at = time.monotonic()

    def reader_stopped(self) -> None:
        with self._lock:
            if self.reader_stopped_at is None:
                self.reader_stopped_at = time.monotonic()

    def observe(self, quiet: bool) -> None:
        with self._lock:
            self.quiet_at = time.monotonic() if quiet else None

    def quiet_since_reader_stopped(self) -> bool:
        """Whether the runner has had no work since a moment after the reader ended: everything it read has
        gone through every step (what is left is in key buffers, or in timers)."""
        with self._lock:
            return (
                self.reader_stopped_at is not None
                and self.quiet_at is not None
                and self.quiet_at > self.reader_stopped_at
            )


DRAINING = _Draining()


def install_drain() -> list[Replacement]:
    from apache_beam.runners.direct import executor, transform_evaluator
    from apache_beam.runners.direct.util import TransformResult
    from apache_beam.utils.timestamp import MAX_TIMESTAMP

    evaluator = transform_evaluator._PubSubReadEvaluator
    read = evaluator.finish_bundle

    def finish_bundle(self):
        """Beam's read, or while draining: nothing read, no next read scheduled, and no watermark hold, so the
        source is done and the watermark goes to the end (as a Dataflow drain does)."""
        if not DRAINING.requested:
            result = read(self)
            DRAINING.read_done()
            return result
        DRAINING.reader_stopped()
        return TransformResult(self, [], [], None, {None: MAX_TIMESTAMP})

    finish_bundle.__wrapped__ = read

    monitor = executor._ExecutorServiceParallelExecutor._MonitorTask
    watch = monitor.call

    def call(self, state_sampler):
        """Beam's monitor pass; while draining it also notes whether the runner has any work left. The runner
        has one worker thread, which runs this pass too: nothing runs meanwhile."""
        watch(self, state_sampler)
        if DRAINING.requested:
            work = self._executor
            DRAINING.observe(
                not work.transform_executor_services.executors and work.all_updates._queue.empty()
            )

    call.__wrapped__ = watch
    should_shutdown = monitor._should_shutdown

    def _should_shutdown(self) -> bool:
        """Beam's, except while draining: ``cancel`` ends a drained pipeline. Beam would end it as soon as the
        watermark is at the end and no bundle runs, dropping the processing-time timers (the flushes of keys
        whose processing hold runs) and the event-time timers its check found due."""
        if DRAINING.requested:
            return False
        return should_shutdown(self)

    _should_shutdown.__wrapped__ = should_shutdown
    return [
        (evaluator, "finish_bundle", finish_bundle),
        (monitor, "call", call),
        (monitor, "_should_shutdown", _should_shutdown),
    ]
