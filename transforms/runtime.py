"""Process settings for the pipeline's worker processes.

``tune_garbage_collector``: a streaming worker keeps many small objects alive (the local runner keeps every
key's Beam state in the process; every worker keeps clients, caches and the modules it imported), and
Python's collector visits them again and again, though the pipeline's data has no reference cycles: a
third of the pipeline's CPU time on the local runner (100,000 messages over 10,000 keys: 704 µs of CPU per
message with the defaults, 496 with a threshold of 7,000). What exists when it is called is set aside for
good (``gc.freeze``) and the youngest generation is collected after ``GC_THRESHOLD`` allocations instead of
700. The larger the threshold, the more of what a bundle allocates is gone (freed by reference counting)
before a collection looks at it, and the fewer objects reach the older generations, whose collections visit
everything alive: CPU time in the collector over that run (``gc.callbacks`` in ``bench.stream_worker``'s
process) was 6.2 s at 7,000 (2.9 s in 921 youngest, 2.2 s in 83 middle, 1.3 s in 7 full collections),
3.6-4.2 s at 50,000 and 1.9-2.0 s at 200,000 (13 youngest collections, none older; about 0.15 s each, the
longest pause it adds); peak memory 0.45 GiB in each. Objects in reference cycles (Beam's, gRPC's) are
still collected, only later. Called once per process, by the local runner before the pipeline starts and by
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
