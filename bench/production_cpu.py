"""The production shape's CPU: the streaming job Dataflow runs, on Beam's SDK harness, per message.

``python -m bench.production_cpu [--messages 6000] [--keys N] [--repeats 3] [--window 1600] [--hold 1]
[--profile]``
(the local stack must be running: ``python -m pipeline.stack start``; ``REDIS_URL`` from ``python -m
pipeline.stack env`` turns the creation quota on, as in ``bench.stream_cpu``).

Three measures of the same messages (``bench.floor``'s workload), alternating in each repeat so that all
come from one run of a shared machine:

  production  the streaming job as ``--runner DataflowRunner`` builds it (``--graph dataflow``), its Pub/Sub
              read replaced by a TestStream of the messages, run by ``pipeline.streaming_driver`` on the
              FnApiRunner's embedded SDK harness: every step of the job, Beam's bundle processing, coders,
              Fn API state and timers, the Spanner commits and reads (client side) and the creation quota's
              Redis calls. Whole-process CPU (``time.process_time``: every thread) of the driver's run, over
              a fresh database; the job's construction (the DataflowRunner dry run) is not counted, the
              driver's start (translation, the SDK worker) is, and is printed on its own (an empty run).
              The messages come in windows of ``--window``: each window one bundle, then the watermark
              passes it and ``--hold`` seconds of wall clock let the holds fire.
  ours        ``bench.stream_cpu``'s measure: our DoFns and functions alone, no runner (its docstring).
  floor       ``bench.floor``'s ``decoded`` design: what any pure-Python path pays.

``--profile`` then runs one more production pass under cProfile, timed by the CPU of the thread that runs the
bundles (the embedded SDK worker runs them in the caller's thread; the clients' background threads are not
in it), and prints its own time by package (ours, Beam, the Google clients with gRPC, protobuf, Redis, and the
rest: built-ins and the standard library, called from any of them): cProfile inflates code that makes many small calls, so read the shares, not the totals.

Also printed: the Fn API state requests per message the runner served, and a projection of Dataflow workers
(n2-standard-4: 4 vCPUs, kept at 60% CPU) per 100,000 messages a second from the production figure. The
projection assumes a Dataflow vCPU does what one core of this machine does, and that Dataflow's harness
costs what the embedded one does; on Dataflow the data and state go over gRPC to Streaming Engine, which
costs the harness more (serialising every request) than the in-process calls here: read it as a lower bound.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from pipeline.options import spanner_args
from transforms.core import metrics
from transforms.core.model import RawMessage

VCPUS = 4  # n2-standard-4
TARGET_UTILISATION = 0.6
RATE = 100_000  # messages a second


@dataclass
class ProductionPass:
    micros: float  # whole-process CPU µs per message
    wall: float  # seconds
    state_calls: float  # per message
    bundles: int
    applied: int  # messages the stateful step applied (occurrences and status changes)


def workers_per_rate(micros_per_message: float, rate: int = RATE) -> float:
    """n2-standard-4 workers at ``TARGET_UTILISATION`` for ``rate`` messages a second."""
    return rate * micros_per_message / 1e6 / (VCPUS * TARGET_UTILISATION)


def _source(messages: Sequence[RawMessage], window: int, hold: float):
    from pipeline.streaming_driver import pubsub_test_stream

    source = pubsub_test_stream()
    watermark = None
    for start in range(0, len(messages), window):
        chunk = messages[start : start + window]
        source = source.add_elements(
            [
                TimestampedValue(
                    PubsubMessage(m.data, m.attributes, message_id=m.message_id),
                    Timestamp(micros=m.message_time // 1000 * 1000),  # a TestStream keeps milliseconds
                )
                for m in chunk
            ]
        )
        newest = max(m.message_time for m in chunk) // 1000 * 1000 + 1000
        if watermark is None or newest > watermark:
            watermark = newest
            source = source.advance_watermark_to(Timestamp(micros=watermark))
        source = source.advance_processing_time(hold)
    return source


def _job_args(database_id: str, hold: float) -> list[str]:
    from bench import bench_database

    quota = (
        [
            f"--redis_url={os.environ['REDIS_URL']}",
            f"--quota_key_prefix=bench:production:{uuid.uuid4().hex[:8]}",
        ]
        if os.environ.get("REDIS_URL")
        else ["--no_creation_quota"]
    )
    return [
        *spanner_args(bench_database.PROJECT, bench_database.INSTANCE, database_id),
        "--watermark_delay=0s",
        f"--processing_hold={hold:g}s",
        *quota,
    ]


def production_pass(
    messages: Sequence[RawMessage], window: int, hold: float, profiler: Any = None
) -> ProductionPass:
    """One run of the production graph on the driver over ``messages``, on a fresh database (``profiler``: a
    ``cProfile.Profile`` enabled around the run only)."""
    from bench import bench_database
    from pipeline import stream, streaming_driver

    database_id, _database = bench_database.create("production")
    try:
        graph = streaming_driver.streaming_job_graph(
            _job_args(database_id, hold), _source(messages, window, hold)
        )
        driver = streaming_driver.StreamingDriver(graph, real_time=True)
        gc.collect()
        began, began_wall = time.process_time(), time.perf_counter()
        with profiler or contextlib.nullcontext():
            result = driver.run()
        cpu, wall = time.process_time() - began, time.perf_counter() - began_wall
    finally:
        bench_database.drop(database_id)
    counters = stream.counter_totals(result)
    applied = counters.get(metrics.OCCURRENCE_MESSAGES, 0) + counters.get(metrics.STATUS_CHANGE_MESSAGES, 0)
    count = max(len(messages), 1)
    return ProductionPass(1e6 * cpu / count, wall, driver.state_calls / count, driver.bundles, applied)


def empty_run_seconds(hold: float) -> float:
    """CPU seconds of the driver's run of the job with no message: its fixed start-up cost."""
    return production_pass([], 1, hold).micros / 1e6


_ROOT = str(Path(__file__).resolve().parents[1])
_PACKAGES = (  # (label, path fragments of the files it holds), first match wins
    ("ours", tuple(f"{_ROOT}/{package}/" for package in ("transforms", "pipeline", "schemas"))),
    ("beam", ("/apache_beam/",)),
    ("google clients", ("/google/cloud/", "/google/api_core/", "/google/auth/", "/grpc/")),
    ("protobuf", ("/google/protobuf/", "<built-in method google")),
    ("redis", ("/redis/",)),
    ("msgspec, orjson", ("msgspec", "orjson")),
)


def profile_pass(messages: Sequence[RawMessage], window: int, hold: float) -> str:
    """One more production pass under cProfile: its own time by package (see the module docstring)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.thread_time)  # the CPU of the thread running the bundles, not waits
    production_pass(messages, window, hold, profiler)
    shares: dict[str, float] = {}
    for (filename, _line, function), row in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        own = row[2]
        where = f"{filename}:{function}"
        label = next((name for name, parts in _PACKAGES if any(part in where for part in parts)), "the rest")
        shares[label] = shares.get(label, 0.0) + own
    total = sum(shares.values()) or 1.0
    return "profile (cProfile, the bundles' thread's CPU, own time by package): " + ", ".join(
        f"{label} {100 * seconds / total:.0f}%"
        for label, seconds in sorted(shares.items(), key=lambda i: -i[1])
    )


@contextlib.contextmanager
def _ours(window: int):
    from bench.floor import _our_code

    with _our_code(window) as measure:
        yield measure


def main(argv: list[str] | None = None) -> int:
    from bench.floor import floor_pass
    from pipeline.workload import Workload, stream_config

    parser = argparse.ArgumentParser(
        prog="python -m bench.production_cpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=6_000)
    parser.add_argument("--keys", type=int, default=None, help="default: messages / 10, as bench.floor")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", type=int, default=1_600, help="messages a bundle brings (a hold's worth)")
    parser.add_argument("--hold", type=float, default=1.0, help="--processing_hold of the job, seconds")
    parser.add_argument("--profile", action="store_true", help="then one more production pass under cProfile")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.repeats < 1 or args.window < 1 or args.hold <= 0:
        parser.error("--messages, --repeats and --window must be at least 1, --hold more than 0")
    logging.basicConfig(level=logging.WARNING)

    now = int(time.time() * 1_000) * 1_000
    hour = 3_600_000_000
    keys = args.keys or max(1, args.messages // 10)
    raw = list(Workload(stream_config(messages=args.messages, keys=keys, start=now - hour, duration=hour)))
    timed = [(m.data, m.message_time) for m in raw]

    fixed = empty_run_seconds(args.hold)
    print(f"the driver's run with no message: {fixed:.2f} s CPU (start-up, counted in each production pass)")
    production: list[ProductionPass] = []
    ours: list[float] = []
    floors: list[float] = []
    with _ours(args.window) as our_code:
        for repeat in range(1, args.repeats + 1):
            production.append(production_pass(raw, args.window, args.hold))
            ours.append(our_code(raw).total)
            gc.collect()
            gc.freeze()
            floors.append(floor_pass(timed, args.window, "decoded").micros["total"])
            gc.unfreeze()
            last = production[-1]
            print(
                f"repeat {repeat}: production {last.micros:.0f} µs/msg (wall {last.wall:.1f} s, {last.bundles} "
                f"bundles, {last.state_calls:.1f} state calls/msg, applied {last.applied:,}), ours "
                f"{ours[-1]:.1f} µs/msg, floor (decoded) {floors[-1]:.1f} µs/msg",
                flush=True,
            )
    p = statistics.median(r.micros for r in production)
    o, f = statistics.median(ours), statistics.median(floors)
    per_message_fixed = 1e6 * fixed / len(raw)
    print(
        f"\n{len(raw):,} messages over {keys:,} keys, windows of {args.window:,}, hold {args.hold:g} s, "
        f"{args.repeats} repeats (medians)"
    )
    print(
        f"production shape (SDK harness, whole process): {p:.0f} µs/msg "
        f"({p - per_message_fixed:.0f} without the start-up's {per_message_fixed:.0f})"
    )
    print(
        f"our code (bench.stream_cpu):                   {o:.1f} µs/msg ({o / p:.0%} of the production figure)"
    )
    print(f"floor (bench.floor, decoded):                  {f:.1f} µs/msg; ours / floor {o / f:.2f}x")
    print(f"state calls: {statistics.median(r.state_calls for r in production):.1f} a message")
    steady = max(p - per_message_fixed, 0.0)
    print(
        f"projection: {workers_per_rate(steady):.0f} Dataflow workers (n2-standard-4 at "
        f"{TARGET_UTILISATION:.0%} CPU) per {RATE:,} messages/s "
        f"({RATE * steady / 1e6:.0f} vCPUs busy; a lower bound, see the module docstring)"
    )
    if args.profile:
        print(profile_pass(raw, args.window, args.hold), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
