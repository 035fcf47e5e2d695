"""The backfill's two graphs on the FnApiRunner, alternating: the local one and the one Dataflow runs.

    python -m bench.backfill_graphs [--messages 5000] [--rounds 2]    (stack running)

Generates one archive (``--messages`` over a tenth as many keys), then backfills it into a fresh database of
the stack's Spanner emulator with each design in turn, ``--rounds`` times, alternating:

* ``local``: ``python -m pipeline.backfill``'s default local run (``--grouping spill``);
* ``dataflow``: the job ``--runner DataflowRunner`` submits, run unchanged on the FnApiRunner
  (``pipeline/production_graph.py``), with the runner's SDK state cache as the FnApiRunner sets it
  (100 MB);
* ``dataflow-nocache``: the same with the SDK state cache off, as on Dataflow, whose SDK harness caches
  nothing unless ``--max_cache_memory_usage_mb`` is set.

For each run it prints wall time, the process's CPU time (every thread), messages per second, and the time
spent in Beam's ``statecache.get_deep_size`` (the cache weighs every value it holds with ``objsize``, whose
cost grows with the number of modules loaded, not with the value).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import threading
import time

from bench import bench_database
from pipeline.options import spanner_args

DESIGNS = ("local", "dataflow", "dataflow-nocache")


class _SizeTimer:
    """Wraps Beam's ``statecache.get_deep_size`` to add up the thread CPU time spent in it."""

    def __init__(self) -> None:
        from apache_beam.runners.worker import statecache

        self._module = statecache
        self._original = statecache.get_deep_size
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.calls = 0

        def timed(*objs):
            started = time.thread_time()
            try:
                return self._original(*objs)
            finally:
                with self._lock:
                    self.seconds += time.thread_time() - started
                    self.calls += 1

        statecache.get_deep_size = timed

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--designs", default=",".join(DESIGNS), help="comma-separated, in the order of a round"
    )
    args = parser.parse_args(argv)

    from pipeline import backfill
    from pipeline.archive_writer import ArchiveWriter
    from pipeline.production_graph import backfill_job_graph, run_on_fn_api_runner
    from pipeline.workload import Workload, WorkloadConfig

    designs = args.designs.split(",")
    sizes = _SizeTimer()
    folder = tempfile.mkdtemp(prefix="backfill-graphs-")
    config = WorkloadConfig(messages=args.messages, keys=max(args.messages // 10, 1), seed=3)
    with ArchiveWriter(f"{folder}/archive.avro", max_records_per_file=10_000) as writer:
        writer.write_all(Workload(config))
    print(f"{args.messages:,} messages over {config.keys:,} keys; designs alternating: {', '.join(designs)}")
    for round_number in range(1, args.rounds + 1):
        for design in designs:
            database_id, _ = bench_database.create("graphs")
            flags = [
                f"--input={folder}/archive-*.avro",
                f"--dead_letter_path={folder}/dead-letters-{database_id}",
                "--no_creation_quota",
                *spanner_args(bench_database.PROJECT, bench_database.INSTANCE, database_id),
            ]
            sizes.reset()
            wall, cpu = time.monotonic(), time.process_time()
            if design == "local":
                with contextlib.redirect_stdout(io.StringIO()):
                    backfill.main(flags)
            else:
                cache = 0 if design == "dataflow-nocache" else None  # None: the FnApiRunner's own
                run_on_fn_api_runner(backfill_job_graph(flags), state_cache_mb=cache)
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            print(
                f"round {round_number}  {design:17s} wall {wall:6.1f} s  CPU {cpu:6.1f} s "
                f"({cpu / args.messages * 1e6:,.0f} µs a message)  {args.messages / wall:,.0f} msg/s  "
                f"state cache sizing {sizes.seconds:5.1f} s CPU in {sizes.calls:,} calls",
                flush=True,
            )
            bench_database.drop(database_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
