"""Running a local streaming pipeline: ``prepare_direct_runner`` (the patches, the collector, the thread
switch interval) before it starts, and ``LocalRun`` (failure watch, drain, cancel) while it runs.

``prepare_direct_runner`` also sets the garbage collector as the pipeline's workers have it
(``transforms.runtime``), and Python's thread switch interval to ``SWITCH_INTERVAL`` (1 ms instead of 5 ms).
The runner's thread waits on sockets (the creation quota's Redis round trips, a commit handed over) while the
commit, pull and acknowledgement threads run Python; when its answer comes it must wait for the thread that
holds the GIL to give it up, up to a whole interval.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable

from pipeline.local_runner import patch_table
from pipeline.local_runner.drain_patch import DRAINING
from pipeline.local_runner.pulls import ACKNOWLEDGEMENTS, PULL_SETTINGS, PULLS_AHEAD
from transforms.runtime import tune_garbage_collector

_LOG = logging.getLogger(__package__)

_lock = threading.Lock()

# Python's thread switch interval in local runs (see the module docstring); Python's default is 5 ms.
SWITCH_INTERVAL = 0.001


def prepare_direct_runner(
    pull_max_messages: int = 2000,
    pull_timeout: float = 1.0,
    pull_max_bytes: int = 32 << 20,
    *,
    patches: bool | Iterable[str] = True,
) -> dict[str, str | None]:
    """Prepare this process for a local streaming pipeline: apply the patches (``patches``: True for all of
    them, False for none, or the names of those wanted) and remove the others, each only if Beam is still
    what it was written against (``PATCHES``); the pull settings of the latest call win. Returns, for every
    patch, None when it is in place, else why not. Process-wide; call it before the pipeline starts."""
    wanted = (
        [patch.name for patch in patch_table.PATCHES]
        if patches is True
        else []
        if patches is False
        else patches
    )
    with _lock:
        PULL_SETTINGS["max_messages"] = pull_max_messages
        PULL_SETTINGS["timeout"] = pull_timeout
        PULL_SETTINGS["max_bytes"] = pull_max_bytes
        outcome = patch_table.PATCHER.apply(wanted)
        DRAINING.reset()  # a new pipeline: not draining
        from transforms.apply_per_group import reset_draining

        reset_draining()
        tune_garbage_collector()
        sys.setswitchinterval(SWITCH_INTERVAL)
    if patches is False:
        _LOG.info("local runner: Beam's runner as it is, without our patches")
    return outcome


class LocalRun:
    """A streaming pipeline that runs in this process on the local runner, watched for failure.

    The local runner's ``PipelineResult`` stays RUNNING when the pipeline fails (a bundle that failed four
    times stops everything, and only ``wait_until_finish``, which otherwise never returns, raises it). A
    daemon thread waits on it here, so ``failure`` tells whether the pipeline died and why.
    """

    def __init__(self, result, dead_letter_sink=None) -> None:
        """``dead_letter_sink``: called with the dead letters made once the pipeline had stopped (keys whose
        write Spanner refused, settled by ``cancel``); without one they are logged."""
        self.result = result
        self.dead_letter_sink = dead_letter_sink
        self.failure: BaseException | None = None
        self._finished = threading.Event()
        self._started = time.monotonic()
        threading.Thread(target=self._watch, name="local-pipeline-watch", daemon=True).start()

    def _watch(self) -> None:
        try:
            self.result.wait_until_finish()
        except BaseException as error:  # the pipeline's own failure, reported by ``failure``
            self.failure = error
        finally:
            self._finished.set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def reading_since(self) -> float | None:
        """When (monotonic) the reader's first read returned, even with nothing: the pipeline runs from then.
        Starting the runner can take a while on a busy machine (see docs/runners.md): an idle time counted from
        before would end a pipeline that never had the chance to read. Without the drain patch (which sees
        the reads) it is when this ``LocalRun`` was made, so the runner's start counts as idle time."""
        if not patch_table.PATCHER.applied("drain"):
            return self._started
        return DRAINING.first_read_at

    def drain(self, timeout: float, abort: threading.Event | None = None) -> bool:
        """Stop reading, then apply every buffered message of every key, within ``timeout`` seconds (as a
        Dataflow drain does: the watermark goes to the end and every key's flush fires); returns whether
        everything was applied. Call ``cancel`` afterwards: it commits what the drain handed over, and saves
        the state of every key whose save was due (what is held on purpose: status changes waiting for their
        group, occurrences waiting for their event). ``abort`` (set, or a Ctrl-C) stops waiting at once.

        Messages the reader pulled are applied too: they reach their key's buffer before the runner has no
        work left. Pulls started ahead and not taken were not acknowledged: they go back to the subscription.
        Without the drain patch the drain is weaker (``_wait_quiet``).
        """
        from transforms.apply_per_group import buffered_messages, start_draining

        began = time.monotonic()
        _LOG.info(
            "draining: %s; applying what the key buffers hold (at most %.0fs)",
            "reading stopped"
            if patch_table.PATCHER.applied("drain") or patch_table.PATCHER.applied("pubsub_pulls")
            else "Beam's reader reads on",
            timeout,
        )
        start_draining()
        DRAINING.start()
        released = PULLS_AHEAD.release()
        try:
            if patch_table.PATCHER.applied("drain"):
                outcome = self._wait_drained(began, timeout, abort)
            else:
                outcome = self._wait_quiet(began, timeout, abort)
        except KeyboardInterrupt:
            outcome = "aborted"
        self._drain = (outcome, time.monotonic() - began, released)
        if outcome != "drained" and outcome != "finished":
            buffered = buffered_messages()
            _LOG.error(
                "drain %s after %.1fs: %s; %d messages still in key buffers are lost (acknowledged when they "
                "were pulled)%s",
                "aborted" if outcome == "aborted" else "failed" if outcome == "failed" else "timed out",
                time.monotonic() - began,
                "reading had stopped"
                if DRAINING.reader_stopped_at is not None
                else "the reader had not stopped",
                buffered,
                ""
                if DRAINING.quiet_since_reader_stopped()
                else ", and more pulled messages were still on their way",
            )
        return outcome in ("drained", "finished")

    def _wait_drained(self, began: float, timeout: float, abort: threading.Event | None) -> str:
        """With the drain patch: until the reader has ended, the runner has had no work since, and the key
        buffers are empty."""
        from transforms.apply_per_group import buffered_messages

        while True:
            if self.finished:  # it ended by itself: every source done, every timer fired
                return "finished" if self.failure is None and buffered_messages() == 0 else "failed"
            if DRAINING.quiet_since_reader_stopped() and buffered_messages() == 0:
                return "drained"
            if abort is not None and abort.is_set():
                return "aborted"
            if time.monotonic() - began >= timeout:
                return "timeout"
            time.sleep(0.05)

    # Without the drain patch: how long the key buffers must stay empty, with nothing read or applied, for
    # a drain to be taken as done.
    QUIET_SECONDS = 2.0

    def _wait_quiet(self, began: float, timeout: float, abort: threading.Event | None) -> str:
        """Without the drain patch (Beam's runner cannot be told that the source ended, nor asked whether it
        has work): until the key buffers are empty and nothing was read or applied for ``QUIET_SECONDS``. Every
        key still applies what it buffered at its next flush (``start_draining``), and timers fire as the
        watermark (the clock, for Pub/Sub) moves on. With the Pub/Sub pulls patch the reader reads nothing
        more; with Beam's own reader it goes on pulling, and acknowledges what it pulls at once: messages it
        pulls in the moments before the stop can be lost, as Beam's local runner loses them on any stop."""
        from transforms import progress
        from transforms.apply_per_group import buffered_messages

        if not patch_table.PATCHER.applied("pubsub_pulls"):
            _LOG.warning(
                "draining without our reader: Beam's reader goes on reading until the pipeline stops, and "
                "what it pulls in the moments before the stop is lost"
            )
        last, since = progress.snapshot(), time.monotonic()
        while True:
            if self.finished:
                return "finished" if self.failure is None and buffered_messages() == 0 else "failed"
            now, current = time.monotonic(), progress.snapshot()
            if current != last:
                last, since = current, now
            elif buffered_messages() == 0 and now - since >= self.QUIET_SECONDS:
                DRAINING.observe(True)
                return "drained"
            if abort is not None and abort.is_set():
                return "aborted"
            if now - began >= timeout:
                return "timeout"
            time.sleep(0.05)

    def cancel(self) -> None:
        """Stop the pipeline (after ``drain``; without it, what is in the key buffers is lost: the local reader
        acknowledged it), commit what it handed over and save the key states that were due, and log what a
        drain did."""
        from transforms.apply_per_group import drain_stats, saves_due, stopped_dead_letters, wait_for_commits

        if not self._finished.is_set():
            self.result.cancel()  # returns once the runner's threads are done
            if patch_table.PATCHER.applied("cancel_wakeup"):
                from apache_beam.runners.direct.executor import _ExecutorServiceParallelExecutor

                # Wake the watch: the runner's cancel does not tell the waiter.
                self.result._executor._executor.visible_updates.offer(
                    _ExecutorServiceParallelExecutor._VisibleExecutorUpdate()
                )
                self._finished.wait(5.0)
            else:  # the watch's wait never returns: it stays blocked (a daemon thread); the pipeline has stopped
                self._finished.wait(1.0)
                self._finished.set()
        PULLS_AHEAD.release()  # pulled, never read: back to the subscription for the next pipeline
        ACKNOWLEDGEMENTS.wait()  # a new pipeline must not get what this one pulled (and applied) again
        due = saves_due()
        # What the stopped pipeline handed over is in Spanner before a new one reads it.
        running = wait_for_commits()
        late = stopped_dead_letters()
        if late:
            if self.dead_letter_sink is not None:
                self.dead_letter_sink(late)
            else:
                for dead_letter in late:
                    _LOG.error(
                        "dead letter %s (%s at %s): %s",
                        dead_letter.message_id,
                        dead_letter.reason,
                        dead_letter.stage,
                        dead_letter.error,
                    )
        drained = getattr(self, "_drain", None)
        if drained is not None:
            outcome, seconds, released = drained
            stats = drain_stats()
            _LOG.info(
                "drain %s in %.1fs: %d key flushes applied %d messages; %d key states saved by their timers and "
                "%d at the stop; %d messages pulled ahead given back to the subscription%s",
                "complete" if outcome in ("drained", "finished") else "incomplete",
                seconds,
                stats["keys flushed"],
                stats["messages applied"],
                stats["states saved"],
                due,
                released,
                f"; {running} commits still running after 60s" if running else "",
            )
