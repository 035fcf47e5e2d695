"""Local runs: draining a stopping pipeline, and what the stateful steps of this process hold meanwhile.

The local runner calls ``reset_draining`` before it builds a pipeline, ``start_draining`` when it stops
reading, then waits until ``buffered_messages`` is 0 (see ``pipeline.local_runner.LocalRun.drain``).
"""

from __future__ import annotations

import threading


class Drain:
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


DRAIN = Drain()


def reset_draining() -> None:
    """A new local pipeline starts in this process: not draining, nothing buffered (see ``Drain``). Call it
    before the pipeline is built."""
    DRAIN.reset()


def start_draining() -> None:
    """Local runs: the pipeline stops reading; every key applies what it buffered (see ``Drain``)."""
    DRAIN.start()


def buffered_messages() -> int:
    """Messages in the key buffers of this process's stateful steps (as of the last bundle that ended)."""
    return DRAIN.buffered()


def drain_stats() -> dict[str, int]:
    """What the stateful steps did since ``start_draining``: key flushes, messages applied, key states saved
    by their timers (the saves still due when the pipeline stops are written by ``wait_for_commits``)."""
    return {
        "keys flushed": DRAIN.keys_flushed,
        "messages applied": DRAIN.messages_applied,
        "states saved": DRAIN.states_saved,
    }
