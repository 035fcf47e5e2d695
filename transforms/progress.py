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
