"""Process-wide progress counters for console progress lines of local runs.

Beam metrics are the source of truth (and what Dataflow shows), but a local batch runner reports them only
when the job ends. DoFns also add here; a launcher running the job in the same process reads ``snapshot()``
every few seconds to print progress. Thread-safe; costs one lock per ``add``.
"""

from __future__ import annotations

import threading
from collections import Counter

READ = "progress.read"
APPLIED = "progress.applied"
DEAD_LETTERS = "progress.dead_letters"

_lock = threading.Lock()
_totals: Counter[str] = Counter()


def add(name: str, amount: int = 1) -> None:
    with _lock:
        _totals[name] += amount


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_totals)


def reset() -> None:
    with _lock:
        _totals.clear()


def peak_memory() -> int:
    """The peak resident memory of this process, in bytes: Linux's ``VmHWM``, which (unlike ``ru_maxrss``)
    does not start from the memory of the parent process that launched this one. ``ru_maxrss`` elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
