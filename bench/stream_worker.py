"""The streaming pipeline in a process of its own, reporting its progress as JSON lines (for ``bench.stream``).

    python -m bench.stream_worker <pipeline.stream flags...>

Starts ``pipeline.stream`` on the local runner in this process and writes one JSON line to stdout every
``--report-every`` seconds (set by the ``BENCH_REPORT_EVERY`` environment variable, default 0.2 s)::

    {"t": wall time (s), "cpu": this process's CPU seconds, "rss": resident set (bytes), "p": {counter: value}}

where ``p`` is ``transforms.progress.snapshot()``: the process-wide counters the DoFns add to as they go
(the engine's counters at each flush, ``spanner.*`` once a commit returned, ``progress.dead_letters`` for
every dead letter written). When a line ``stop`` arrives on stdin (or stdin closes) it writes a last line
``{"final": {...}}`` with Beam's own counter totals, the ``flush_batch_size`` distribution, the peak
resident set (``VmHWM``) and the CPU time of the process, then cancels the pipeline (which writes the key states whose
save was still due: ``transforms.apply_per_group.wait_for_commits``) and writes ``{"stopped": {counter:
value}}``, the process-wide counters with what the commits done after the last bundle added, and exits.

The pipeline runs alone in this process, so the peak memory and CPU time reported are the pipeline's (Beam,
its runner, the clients and our code), not the benchmark's.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _distributions(result) -> dict[str, dict[str, float]]:
    import apache_beam as beam

    from transforms.core import metrics

    out: dict[str, dict[str, float]] = {}
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(metrics.NAMESPACE))
    for distribution in query["distributions"]:
        value = distribution.committed or distribution.attempted
        if value is None or not value.count:
            continue
        entry = out.setdefault(distribution.key.metric.name, {"count": 0, "sum": 0, "min": None, "max": None})
        entry["count"] += value.count
        entry["sum"] += value.sum
        entry["min"] = value.min if entry["min"] is None else min(entry["min"], value.min)
        entry["max"] = value.max if entry["max"] is None else max(entry["max"], value.max)
    return out


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pipeline import stream
    from pipeline.local_runner import LocalRun
    from transforms import progress

    every = float(os.environ.get("BENCH_REPORT_EVERY", "0.2"))
    result = stream.start(stream.make_options(argv))
    run = LocalRun(result)
    stop = threading.Event()

    def wait_for_stop() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    _emit({"ready": time.time()})
    while not stop.wait(every):
        if run.finished:
            _emit({"failed": repr(run.failure)})
            sys.stdout.flush()
            os._exit(1)
        _emit({"t": time.time(), "cpu": time.process_time(), "rss": _rss(), "p": progress.snapshot()})
    final = {
        "t": time.time(),
        "cpu": time.process_time(),
        "maxrss": progress.peak_memory(),
        "p": progress.snapshot(),
        "counters": stream.counter_totals(result),
        "distributions": _distributions(result),
        "failure": None if run.failure is None else repr(run.failure),
    }
    _emit({"final": final})
    run.cancel()
    from transforms.apply_per_group import uncounted_counts

    totals = progress.snapshot()
    for name, amount in uncounted_counts().items():
        totals[name] = totals.get(name, 0) + amount
    _emit({"stopped": totals})
    sys.stdout.flush()
    os._exit(0)  # the runner's threads are not daemons; the pipeline was cancelled


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
