"""Process settings for the pipeline's worker processes.

``tune_garbage_collector``: a streaming worker keeps many small objects alive (the local runner keeps every
key's Beam state in the process; every worker keeps clients, caches and the modules it imported), and
Python's collector visits them again and again, though the pipeline's data has no reference cycles (what
that cost, and what each threshold saves: docs/performance.md, "Figures behind the code"). What exists when
it is called is set aside for good (``gc.freeze``) and the youngest generation is collected after
``GC_THRESHOLD`` allocations instead of 700. The larger the threshold, the more of what a bundle allocates is
gone (freed by reference counting) before a collection looks at it, and the fewer objects reach the older
generations, whose collections visit everything alive; each youngest collection is then a longer pause.
Objects in reference cycles (Beam's, gRPC's) are still collected, only later. Called once per process, by the local runner before the pipeline starts and by
the stateful step's ``setup`` (on Dataflow workers).
"""

from __future__ import annotations

import gc
import threading

GC_THRESHOLD = 200_000

_lock = threading.Lock()
_tuned = False


def tune_garbage_collector() -> None:
    global _tuned
    with _lock:
        if _tuned:
            return
        _tuned = True
        gc.freeze()
        threshold = gc.get_threshold()
        if 0 < threshold[0] < GC_THRESHOLD:
            gc.set_threshold(GC_THRESHOLD, *threshold[1:])
