"""How far the stateful step's watermark is known to have gone, in this process.

The watermark is the step's, not a key's, and only grows: the greatest event-time timer fired here for the
step (any key's) is a lower bound of it (``WATERMARK_SEEN``), so a key's flush takes every buffered message
up to it. The holds of a step keep one ``watermark_probe`` timer pending in each process (``PROBES``): its
firing tells that the watermark is that far, and the next hold sets the next probe, so that a message the
watermark is already known to have passed needs no event-time timer of its own.
"""

from __future__ import annotations

import threading
import time


class WatermarkSeen:
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


WATERMARK_SEEN = WatermarkSeen()


class WatermarkProbes:
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


PROBES = WatermarkProbes()


PROBE_MARGIN = 1.0  # seconds: a probe is set this far behind the processing time
