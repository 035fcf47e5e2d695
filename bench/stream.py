"""Streaming benchmark: the issue's figures, measured in one run against the local stack.

    python -m bench.stream [--messages 200000] [--keys 20000] [--hot-key-share 0.05] [--quick] ...

What it does, in this order, each part on a Spanner emulator of its own, started empty for it and stopped
after it (on the stack's ports + 4; ``--shared-emulator``: every part on the stack's emulator, each on a
fresh database). The emulator keeps every row it was ever given in memory and slows down as it grows, so
sharing one makes a part's figures depend on what ran before it (``--quick``, alternating: 1,685 and 1,464
msg/s with ``--shared-emulator``, 2,146 and 1,753 without):

1. **Emulator ceiling**: rows/second of blind ``insert_or_update`` batches of 1,000 rows (``bench.backfill``'s
   measurement), for 10-column rows and for occurrence-shaped rows.
2. **Naive baseline** (``bench.naive_baseline``, in a process of its own): one read-write transaction per
   message. The first ``--baseline-messages`` messages of the workload are published as a backlog;
   throughput = messages / (last commit - first publish). Then a latency probe: more messages published at
   half that throughput, latency = the return of the message's commit - the send of its Publish request.
3. **Pipeline** (``pipeline.stream`` on the DirectRunner, in a process of its own, ``bench.stream_worker``),
   started before anything is published:
   * phase A, throughput: the N messages are published as fast as Pub/Sub takes them (a backlog, or at
     ``--rate``); end-to-end throughput = N / (time the last of them was counted and its commit returned -
     the first publish). Spanner commits per message are the pipeline's own counters at that moment.
     Rows written per message are the whole run's (phases A and B, counted once the pipeline has stopped)
     over all its messages: the state of a key without a group is saved up to ``--state_save_delay`` after
     its flushes, when the key expires, or at the stop, so a count taken at the end of phase A would miss
     those rows (it is printed too). Nothing else touches the emulator meanwhile;
   * phase B, latency: ``--latency-messages`` more messages of the same workload, published at
     ``--latency-rate`` (default: half the phase A throughput), so latency is the pipeline's and not a queue's.
     A sample of them is watched in Spanner (``bench.commit_poller``: point reads every 0.2 s; commit time
     from ``Groups.UpdatedAt`` when it can be attributed, else the poll that first saw the row; both upper
     bounds), latency = commit - send of the Publish request.
   Peak memory = ``VmHWM`` of the pipeline's process (Beam, the runner, clients and our code; not
   ``ru_maxrss``, which a child process starts with its parent's).
4. **CPU in our code** (``bench.stream_cpu``): the pipeline's DoFns and functions driven directly over the
   phase A messages (same bytes, Pub/Sub ids and publish times), in the order a runner drives them, in
   windows of (phase A throughput x processing hold) messages; median over ``--cpu-repeats`` passes of
   ``time.process_time`` per stage.

Messages carry no timestamp attribute: the message time is Pub/Sub's publish time, as in production. The
workload is ``pipeline.workload.stream_config`` (Zipf keys, one hot key, bursts, 1% invalid, 3% status
changes, 5% lookups, redeliveries...); payload times span the hour before the run. The creation quota
(Redis) is on, as in production (``--no-quota`` turns it off). Lookups give up after 5 s
(``--lookup_retry_window=5s``) so that the never-found ones do not hold the run for the default 10 minutes.

Needs the local stack: ``python -m pipeline.stack start`` and ``eval "$(python -m pipeline.stack env)"``.
The machine is shared: every ratio printed is between figures measured in this run.

    python -m bench.stream --quick                 (20,000 messages over 2,000 keys, baseline 5,000)
    python -m bench.stream                         (the issue's 200,000 over 20,000, baseline 20,000)
    python -m bench.stream --py-spy /tmp/stream.svg   (profile the pipeline process during phase A)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_database  # noqa: E402
from bench.commit_poller import CommitPoller, Sample, sampleable  # noqa: E402
from bench.stream_feed import (  # noqa: E402
    Feed,
    Published,
    create_topic_and_subscription,
    delete_topic_and_subscription,
)
from pipeline.options import spanner_args  # noqa: E402
from transforms import progress  # noqa: E402
from transforms.core import metrics, reasons  # noqa: E402
from transforms.core.decode import decode  # noqa: E402
from transforms.core.model import MICROS, Message, ProjectInfo, RawMessage  # noqa: E402

GIB = 1 << 30
TARGET_CPU_MICROS = 20.0
TARGET_COMMITS = 0.01
TARGET_ROWS = 1.2
TARGET_RATIO = 8.0
TARGET_MEMORY = 2 * GIB
SAMPLES_PER_SECOND = 25  # latency samples per second of phase B publishing


# --------------------------------------------------------------------------------------------------------
# Child processes that report JSON lines


class Child:
    """A subprocess writing JSON lines on stdout; the latest lines are kept, ``stop`` asks it to finish."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._stderr = log.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[dict] = []
        self.ready = threading.Event()
        self.final: dict | None = None
        self.stopped: dict | None = None  # the counters once stopped, the saves written at stop included
        self.failed: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "ready" in record:
                self.ready.set()
            elif "final" in record:
                self.final = record["final"]
            elif "stopped" in record:
                self.stopped = record["stopped"]
            elif "failed" in record:
                self.failed = record["failed"]
            else:
                self.lines.append(record)
        if not self.ready.is_set():
            self.failed = self.failed or "exited before it was ready"
            self.ready.set()

    @property
    def latest(self) -> dict | None:
        return self.lines[-1] if self.lines else None

    def check(self) -> None:
        if self.failed or self.process.poll() not in (None, 0):
            raise SystemExit(f"{self.log.stem} failed: {self.failed}; its log:\n{tail(self.log)}")

    def stop(self, timeout: float = 60.0) -> dict | None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("stop\n")
                self.process.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(10)
        self._reader.join(5)
        self._stderr.close()
        return self.final


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --------------------------------------------------------------------------------------------------------
# Figures


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def seconds_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


@dataclass
class Latency:
    values: list[float] = field(default_factory=list)
    missing: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    resolution: float | None = None  # mean poll period + poll duration, when polled

    @property
    def p50(self) -> float | None:
        return percentile(self.values, 0.50)

    @property
    def p99(self) -> float | None:
        return percentile(self.values, 0.99)

    def text(self) -> str:
        return f"p50 {seconds_text(self.p50)}, p99 {seconds_text(self.p99)} ({len(self.values):,} messages)"


@dataclass
class Run:
    """What one consumer (naive or pipeline) did: throughput phase, then latency phase."""

    messages: int = 0
    seconds: float = 0.0
    commits: int = 0
    rows: int = 0
    latency_rate: float = 0.0
    latency: Latency = field(default_factory=Latency)
    peak_memory: int = 0
    cpu_seconds: float = 0.0  # the consumer process's CPU time over the throughput phase
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


# --------------------------------------------------------------------------------------------------------
# The parts of the run


def measure_ceiling(rows: int) -> dict[str, float]:
    from bench.backfill import CEILING_TABLES, emulator_ceiling

    database_id, database = bench_database.create("ceil")
    try:
        return {kind: emulator_ceiling(database, kind, rows=rows) for kind in CEILING_TABLES}
    finally:
        bench_database.drop(database_id)


def wait_until(condition, what: str, child: Child, timeout: float, poll: float = 0.1) -> None:
    deadline = time.time() + timeout
    while not condition():
        child.check()
        if time.time() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(poll)


def run_naive(messages: list[RawMessage], probe: list[RawMessage], work: Path, log) -> Run:
    """The naive baseline in its own process: a backlog of ``messages``, then ``probe`` at half its rate."""
    database_id, _database = bench_database.create("naive")
    topic, subscription = create_topic_and_subscription(bench_database.PROJECT, f"naive-{database_id}")
    times_file = work / "naive-commit-times.json"
    command = [sys.executable, "-m", "bench.naive_baseline", "worker", "--subscription", subscription]
    command += ["--database", database_id, "--commit-times", str(times_file)]
    child = Child(command, work / "naive-worker.log", child_env())
    run = Run(messages=len(messages))

    def handled() -> int:
        latest = child.latest
        return latest["stats"]["handled"] if latest else 0

    try:
        child.ready.wait(120)
        child.check()
        feed = Feed(topic)
        backlog = feed.start(messages, None)
        wait_until(lambda: handled() >= len(messages), "the naive baseline", child, 3600, 0.05)
        feed.join()
        done = next(line for line in child.lines if line["stats"]["handled"] >= len(messages))
        run.seconds = done["t"] - backlog.started
        run.cpu_seconds = done["cpu"]
        run.commits, run.rows = done["stats"]["commits"], done["stats"]["rows"]
        log(
            f"  {len(messages):,} messages in {run.seconds:.1f} s: {run.rate:,.0f} messages/s "
            f"({run.commits:,} commits, {run.rows:,} rows)"
        )
        probed = None
        if probe:
            run.latency_rate = max(1.0, 0.5 * run.rate)
            log(f"  latency probe: {len(probe):,} more messages at {run.latency_rate:,.0f}/s")
            probed = feed.start(probe, run.latency_rate)
            target = len(messages) + len(probe)
            wait_until(lambda: handled() >= target, "the naive latency probe", child, 3600, 0.05)
            feed.join()
        final = child.stop()
        if final is None:
            raise SystemExit(f"the naive worker ended without its figures:\n{tail(child.log)}")
        run.peak_memory = final["maxrss"]
        run.extra = final["stats"]
        if probed is not None:
            committed = json.loads(times_file.read_text())
            for message_id, sent_at in zip(probed.message_ids, probed.sent_at):
                at = committed.get(message_id)
                if at is None:
                    run.latency.missing += 1
                else:
                    run.latency.values.append(at - sent_at)
            run.latency.methods = {"its commit returned": len(run.latency.values)}
    finally:
        if child.process.poll() is None:
            child.stop()
        delete_topic_and_subscription(topic, subscription)
        bench_database.drop(database_id)
    return run


def done_count(p: dict[str, int]) -> int:
    """Messages the pipeline has finished with: applied (or waiting for their event), duplicate, dead-lettered.

    A lookup that waits is counted when it arrives, and again if it is finally dead-lettered: counted once.
    """
    return (
        p.get(metrics.OCCURRENCE_MESSAGES, 0)
        + p.get(metrics.STATUS_CHANGE_MESSAGES, 0)
        + p.get(metrics.DUPLICATES, 0)
        + p.get(progress.DEAD_LETTERS, 0)
        - p.get(metrics.dead_letter_counter(reasons.EVENT_NOT_FOUND), 0)
    )


def wait_for_pipeline(child: Child, target: int, timeout: float, log) -> dict:
    """The progress line at which ``target`` messages were done and their commits had returned.

    That is the first line from which on ``target`` messages are counted and the next line (0.2 s later) shows
    no new commit: the bundle that counts messages commits their writes before it ends.
    """
    deadline = time.time() + timeout
    index = 0
    last_report = time.time()
    commits = metrics.SPANNER_COMMITS
    while True:
        child.check()
        lines = child.lines
        while index + 1 < len(lines):
            line, following = lines[index], lines[index + 1]
            if done_count(line["p"]) >= target and following["p"].get(commits, 0) == line["p"].get(
                commits, 0
            ):
                return line
            index += 1
        if time.time() > deadline:
            latest = child.latest["p"] if child.latest else {}
            raise SystemExit(f"the pipeline did not finish {target:,} messages in time: {latest}")
        if time.time() - last_report > 15 and child.latest:
            p = child.latest["p"]
            log(f"    ... {done_count(p):,} of {target:,} done, {p.get(commits, 0):,} commits")
            last_report = time.time()
        time.sleep(0.05)


def pipeline_argv(args, subscription: str, dead_topic: str, database_id: str, prefix: str) -> list[str]:
    argv = [
        f"--input_subscription={subscription}",
        f"--dead_letter_topic={dead_topic}",
        f"--processing_hold={args.hold}",
        "--lookup_retry_window=5s",
        *spanner_args(bench_database.PROJECT, bench_database.INSTANCE, database_id),
        "--no_creation_quota" if args.no_quota else f"--redis_url={os.environ['REDIS_URL']}",
        f"--quota_key_prefix={prefix}",
    ]
    return argv + list(args.pipeline_arg)


def start_py_spy(path: str, pid: int, idle: bool = False) -> subprocess.Popen:
    fmt = "flamegraph" if path.endswith(".svg") else "raw"
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking", "-r", "200"]
    command += ["--idle"] if idle else []
    command += ["-f", fmt, "-o", path, "--pid", str(pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_pipeline(
    args, messages: list[RawMessage], probe: list[RawMessage], probe_decoded: list, work: Path, log
) -> tuple[Run, list[str], Published]:
    """The pipeline in its own process: phase A (throughput), then phase B (latency); see the docstring."""
    from transforms.storage import clients

    database_id, database = bench_database.create("stream")
    unique = database_id[-8:]
    topic, subscription = create_topic_and_subscription(bench_database.PROJECT, f"stream-{unique}")
    publisher = clients.pubsub_publisher()
    dead_topic = publisher.topic_path(bench_database.PROJECT, f"stream-{unique}-dead")
    publisher.create_topic(name=dead_topic)
    argv = pipeline_argv(args, subscription, dead_topic, database_id, f"bench:{unique}")
    command = [sys.executable, "-m", "bench.stream_worker", *argv]
    child = Child(command, work / "pipeline-worker.log", child_env())
    run = Run(messages=len(messages))
    spy = None
    poller = CommitPoller(database, period=0.2)
    try:
        child.ready.wait(180)
        child.check()
        # The runner's start-up is not the pipeline's work: start the clock once it reports steadily.
        wait_until(lambda: len(child.lines) >= 10, "the pipeline to start", child, 120)
        if args.py_spy:
            spy = start_py_spy(args.py_spy, child.process.pid, args.py_spy_idle)
        feed = Feed(topic)
        start_cpu = child.latest["cpu"]
        phase_a = feed.start(messages, args.rate or None)
        how = f"at {args.rate:,.0f}/s" if args.rate else "as fast as Pub/Sub takes them"
        log(f"  phase A: {len(messages):,} messages published {how}")
        done = wait_for_pipeline(child, len(messages), args.timeout, log)
        feed.join()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(120)
            log(f"  py-spy profile of the pipeline process during phase A: {args.py_spy}")
        run.seconds = done["t"] - phase_a.started
        run.cpu_seconds = done["cpu"] - start_cpu
        p_a = done["p"]
        run.commits, run.rows = p_a.get(metrics.SPANNER_COMMITS, 0), p_a.get(metrics.SPANNER_ROWS, 0)
        run.extra["phase_a"] = p_a
        run.extra["publish_seconds"] = phase_a.finished - phase_a.started
        run.extra["rss_at_a"] = max(line["rss"] for line in child.lines)
        log(
            f"  phase A: done in {run.seconds:.1f} s from the first publish (publishing took "
            f"{phase_a.finished - phase_a.started:.1f} s): {run.rate:,.0f} messages/s; "
            f"{run.commits:,} commits, {run.rows:,} rows"
        )
        if probe:
            run.latency_rate = args.latency_rate or max(1.0, 0.5 * run.rate)
            candidates = [i for i, decoded in enumerate(probe_decoded) if decoded is not None]
            per_second = len(candidates) / len(probe) * run.latency_rate
            stride = max(1, round(per_second / SAMPLES_PER_SECOND))
            samples = [
                Sample(probe_decoded[i].payload.project_id, probe_decoded[i].payload.event_id, i, "B")
                for i in candidates[::stride]
            ]
            live: list[Published] = []

            def sent_at(sample: Sample) -> float | None:
                times = live[0].sent_at if live else []
                return times[sample.index] if sample.index < len(times) else None

            poller.add(samples)
            poller.start(sent_at)
            log(
                f"  phase B: {len(probe):,} messages at {run.latency_rate:,.0f}/s; {len(samples):,} of them "
                f"watched in Spanner every {poller.period:.1f} s"
            )
            live.append(feed.start(probe, run.latency_rate))
            wait_for_pipeline(child, len(messages) + len(probe), args.timeout, log)
            feed.join()
            deadline = time.time() + 30
            while poller.pending and time.time() < deadline:
                time.sleep(0.2)
            poller.stop()
            if args.latency_csv:
                with open(args.latency_csv, "w") as out:
                    out.write("index,key,event_id,sent_at,committed,latency,method\n")
                    for s in samples:
                        out.write(
                            f"{s.index},{probe_decoded[s.index].key},{s.event_id},{s.sent_at},{s.committed},"
                            f"{s.latency},{s.method}\n"
                        )
            run.latency.values = [s.latency for s in samples if s.latency is not None]
            run.latency.missing = sum(1 for s in samples if s.latency is None)
            for s in samples:
                if s.method:
                    run.latency.methods[s.method] = run.latency.methods.get(s.method, 0) + 1
            if poller.polls:
                run.latency.resolution = poller.period + poller.poll_seconds / poller.polls
            run.extra["poll_errors"] = poller.errors
        final = child.stop()
        if final is None:
            raise SystemExit(f"the pipeline worker ended without its figures:\n{tail(child.log)}")
        run.peak_memory = final["maxrss"]
        run.extra["final"] = final
        if child.stopped is None:
            raise SystemExit(
                f"the pipeline worker did not report its counters once stopped:\n{tail(child.log)}"
            )
        run.extra["stopped"] = child.stopped
        run.extra["all_messages"] = len(messages) + len(probe)
        return run, argv, phase_a
    finally:
        poller.stop()
        if spy is not None and spy.poll() is None:
            spy.send_signal(signal.SIGINT)
            spy.wait(120)
        if child.process.poll() is None:
            child.stop()
        delete_topic_and_subscription(topic, subscription)
        publisher.delete_topic(topic=dead_topic)
        bench_database.drop(database_id)


def run_cpu(args, argv: list[str], phase_a: Published, messages: list[RawMessage], window: int):
    """``bench.stream_cpu`` over the phase A messages as the pipeline received them, on a fresh database."""
    from bench import stream_cpu
    from pipeline import stream
    from pipeline.options import StreamOptions, parse_duration
    from transforms.storage import registry

    database_id, database = bench_database.create("cpu")
    try:
        cpu_argv = [a for a in argv if not a.startswith("--spanner_database=")]
        cpu_argv.append(f"--spanner_database={database_id}")
        options = stream.make_options(cpu_argv)
        config = stream.applier_config(options, wait_for_events=True)
        seen = [
            RawMessage(message_id, int(sent_at * MICROS), m.data, m.attributes)
            for m, message_id, sent_at in zip(messages, phase_a.message_ids, phase_a.sent_at)
        ]
        delay = parse_duration(options.view_as(StreamOptions).watermark_delay)
        projects = registry.read_projects(database)
        return stream_cpu.measure(
            seen, projects, config, window=window, repeats=args.cpu_repeats, delay_seconds=delay
        )
    finally:
        bench_database.drop(database_id)


# --------------------------------------------------------------------------------------------------------
# The report


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def report(args, summary, ceiling, naive: Run | None, pipe: Run, cpu, window: int) -> None:
    final = pipe.extra["final"]
    counters = final["counters"]
    n = pipe.messages
    commits_per = pipe.commits / n
    # Rows: the whole run's, once stopped, over all its messages (phases A and B), so that the key states
    # whose save was deferred past the end of phase A (written when keys expire, or at the stop) count.
    stopped, all_messages = pipe.extra["stopped"], pipe.extra["all_messages"]
    rows_per = stopped.get(metrics.SPANNER_ROWS, 0) / all_messages
    ratio = pipe.rate / naive.rate if naive and naive.rate else None
    flush = final["distributions"].get("flush_batch_size")
    rows: list[tuple[str, str, str, str]] = []
    rows.append(
        (
            "end-to-end throughput (phase A)",
            f"{pipe.rate:,.0f} msg/s",
            f">= {TARGET_RATIO:g}x naive" + (f" = {TARGET_RATIO * naive.rate:,.0f}" if naive else ""),
            verdict(None if ratio is None else ratio >= TARGET_RATIO),
        )
    )
    if ratio is not None:
        rows.append(("  vs naive baseline", f"{ratio:.2f}x", f">= {TARGET_RATIO:g}x", ""))
    rows.append(
        (
            f"latency publish->commit (phase B, {pipe.latency_rate:,.0f}/s)",
            f"p50 {seconds_text(pipe.latency.p50)} / p99 {seconds_text(pipe.latency.p99)}",
            "-",
            "",
        )
    )
    rows.append(
        (
            "Spanner commits per message",
            f"{commits_per:.5f}",
            f"< {TARGET_COMMITS}",
            verdict(commits_per < TARGET_COMMITS),
        )
    )
    rows.append(
        (
            "rows written per message (whole run)",
            f"{rows_per:.3f}",
            f"<= {TARGET_ROWS}",
            verdict(rows_per <= TARGET_ROWS),
        )
    )
    by_table = {
        name[len(metrics.SPANNER_ROWS_PREFIX) :]: count
        for name, count in stopped.items()
        if name.startswith(metrics.SPANNER_ROWS_PREFIX)
    }
    for table, count in sorted(by_table.items(), key=lambda item: -item[1]):
        rows.append((f"  {table}", f"{count / all_messages:.3f}", "", ""))
    rows.append(("  phase A alone, at its end (saves due later not in)", f"{pipe.rows / n:.3f}", "", ""))
    rows.append(
        (
            "peak memory, pipeline process",
            f"{pipe.peak_memory / GIB:.2f} GiB",
            f"< {TARGET_MEMORY / GIB:g} GiB",
            verdict(pipe.peak_memory < TARGET_MEMORY),
        )
    )
    if cpu is not None:
        rows.append(
            (
                "CPU of our code per message",
                f"{cpu.total:.1f} µs",
                f"< {TARGET_CPU_MICROS:g} µs",
                verdict(cpu.total < TARGET_CPU_MICROS),
            )
        )
        from bench.stream_cpu import STAGES

        for stage in STAGES:
            rows.append((f"  {stage}", f"{cpu.median(stage):.1f} µs", "", ""))
        rows.append(("  (garbage collection, inside the above)", f"{cpu.gc_median:.1f} µs", "", ""))
    rows.append(("pipeline process CPU per message (all)", f"{1e6 * pipe.cpu_seconds / n:,.0f} µs", "-", ""))
    if naive is not None:
        rows.append(("naive baseline throughput", f"{naive.rate:,.0f} msg/s", "-", ""))
        rows.append(
            (
                f"naive latency (probe, {naive.latency_rate:,.0f}/s)",
                f"p50 {seconds_text(naive.latency.p50)} / p99 {seconds_text(naive.latency.p99)}",
                "-",
                "",
            )
        )
        rows.append(
            (
                "naive commits / rows per message",
                f"{naive.commits / naive.messages:.3f} / {naive.rows / naive.messages:.2f}",
                "-",
                "",
            )
        )
        rows.append(("naive peak memory", f"{naive.peak_memory / GIB:.2f} GiB", "-", ""))
    for kind, value in (ceiling or {}).items():
        rows.append((f"emulator ceiling, {kind}", f"{value:,.0f} rows/s", "-", ""))
    if ceiling:
        rate_rows = pipe.rows / pipe.seconds
        best = max(ceiling.values())
        rows.append(
            (
                "pipeline rows written/s (phase A)",
                f"{rate_rows:,.0f} = {rate_rows / best:.0%} of the higher ceiling",
                "-",
                "",
            )
        )
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    print()
    print(f"{'figure':<{width[0]}}  {'measured':<{width[1]}}  {'target':<{width[2]}}  result")
    for r in rows:
        print(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]}")
    print()
    print("how measured:")
    print(
        f"  workload: {n:,} messages (phase A) over {args.keys:,} keys, {args.hot_key_share:.0%} on the hot key "
        f"({summary.hot_key_messages:,} messages of all {summary.messages:,} generated); {summary.keys_used:,} keys used"
    )
    print(
        f"  phase A: published in {pipe.extra['publish_seconds']:.1f} s "
        + (f"at {args.rate:,.0f}/s" if args.rate else "(as fast as possible: a backlog)")
        + f"; throughput = messages / (last counted and committed - first publish); hold {args.hold}"
    )
    lat = pipe.latency
    if lat.values or lat.missing:
        methods = ", ".join(f"{k}: {v}" for k, v in sorted(lat.methods.items()))
        print(
            f"  latency (pipeline): {len(lat.values):,} sampled occurrences of phase B ({methods}; "
            f"{lat.missing} never seen), commit time an upper bound within "
            f"{lat.resolution or 0:.2f} s (poll period + mean poll)"
        )
    if naive is not None:
        print(
            f"  naive: {naive.messages:,} messages as a backlog, then {len(naive.latency.values):,} at "
            f"{naive.latency_rate:,.0f}/s; latency = return of the message's commit - its Publish request"
        )
    if cpu is not None:
        counts = cpu.repeats[0]
        print(
            f"  CPU: median of {len(cpu.repeats)} passes over the phase A messages, windows of {window:,} messages "
            f"({counts.flushes / len(range(0, counts.messages, window)):,.0f} flushes and "
            f"{counts.rows / counts.messages:.2f} rows/message per window; the pipeline's mean flush: "
            + (f"{flush['sum'] / flush['count']:.1f} messages)" if flush else "n/a)")
        )
    print(
        f"  pipeline counters (Beam, whole run): groups created {counters.get(metrics.GROUP_CREATED, 0):,}, "
        f"refused by quota {counters.get(metrics.DROPPED_RATE_LIMITING, 0):,}, noise-gated "
        f"{counters.get(metrics.DROPPED_NOISE, 0):,}, duplicates {counters.get(metrics.DUPLICATES, 0):,}, "
        f"late {counters.get(metrics.LATE_MESSAGES, 0):,}, hydrated {counters.get(metrics.STATE_HYDRATED, 0):,}, "
        f"commit attempts {counters.get(metrics.SPANNER_COMMIT_ATTEMPTS, 0):,} for "
        f"{counters.get(metrics.SPANNER_COMMITS, 0):,} commits"
    )
    if pipe.extra.get("poll_errors"):
        print(f"  latency poll errors: {pipe.extra['poll_errors']}")


# --------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__[__doc__.index("What it does") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=200_000, help="messages of phase A")
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--hot-key-share", type=float, default=0.05)
    parser.add_argument("--baseline-messages", type=int, default=None, help="default 20,000 (quick: 5,000)")
    parser.add_argument(
        "--rate", type=float, default=0, help="phase A publishing rate (0: as fast as possible)"
    )
    parser.add_argument("--latency-messages", type=int, default=None, help="phase B (default N/10, >= 2,000)")
    parser.add_argument(
        "--latency-rate", type=float, default=0, help="phase B rate (default half of phase A's)"
    )
    parser.add_argument("--quick", action="store_true", help="20,000 messages over 2,000 keys")
    parser.add_argument("--hold", default="2s", help="--processing_hold of the pipeline")
    parser.add_argument("--no-quota", action="store_true", help="run the pipeline without the creation quota")
    parser.add_argument("--encoding", default="json", choices=("json", "protobuf", "mixed"))
    parser.add_argument(
        "--cpu-repeats", type=int, default=None, help="passes of the CPU measurement (default 5, quick 3)"
    )
    parser.add_argument("--ceiling-rows", type=int, default=30_000)
    parser.add_argument(
        "--latency-csv",
        default=None,
        help="write every phase B sample (times, latency, how measured) to this file",
    )
    parser.add_argument("--skip", action="append", default=[], choices=("ceiling", "naive", "cpu", "latency"))
    parser.add_argument(
        "--py-spy", default=None, help="profile the pipeline process in phase A (.svg or raw)"
    )
    parser.add_argument(
        "--py-spy-idle", action="store_true", help="profile wall time (waiting threads too), not CPU"
    )
    parser.add_argument("--pipeline-arg", action="append", default=[], help="extra flag for pipeline.stream")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for each phase")
    parser.add_argument(
        "--shared-emulator",
        action="store_true",
        help="measure every part on the stack's Spanner emulator instead of a fresh one each",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.keys = 20_000, 2_000
    if args.baseline_messages is None:
        args.baseline_messages = min(args.messages, 5_000 if args.quick else 20_000)
    if args.latency_messages is None:
        args.latency_messages = max(2_000, args.messages // 10)
    if "latency" in args.skip:
        args.latency_messages = 0
    if args.cpu_repeats is None:
        args.cpu_repeats = 3 if args.quick else 5
    missing = [v for v in ("SPANNER_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST") if not os.environ.get(v)]
    if not args.no_quota and not os.environ.get("REDIS_URL"):
        missing.append("REDIS_URL")
    if missing:
        sys.exit(f'set {", ".join(missing)} first: eval "$(python -m pipeline.stack env)" (stack running)')

    from pipeline.workload import Workload, stream_config

    def log(text: str) -> None:
        print(text, flush=True)

    began = time.time()
    now_ms = int(time.time()) * 1000
    config = stream_config(
        messages=args.messages + args.latency_messages,
        keys=args.keys,
        hot_key_share=args.hot_key_share,
        encoding=args.encoding,
        start=(now_ms - 3_600_000) * 1000,
        duration=3600 * MICROS,
    )
    workload = Workload(config)
    log(
        f"generating {config.messages:,} messages over {args.keys:,} keys ({args.hot_key_share:.0%} on the hot "
        f"key): {args.messages:,} for phase A, {args.latency_messages:,} for phase B"
    )
    messages = list(workload)
    summary = workload.summary()
    phase_a, probe = messages[: args.messages], messages[args.messages :]
    projects = {p: ProjectInfo(p, o, s) for p, o, s in bench_database.PROJECTS}
    seen_events: set[tuple[int, str]] = set()
    for message in phase_a:
        decoded = decode(message)
        if isinstance(decoded, Message):
            sampleable(decoded, projects, seen_events)
    probe_decoded = []
    for message in probe:
        decoded = decode(message)
        ok = isinstance(decoded, Message) and sampleable(decoded, projects, seen_events)
        probe_decoded.append(decoded if ok else None)

    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))

    def part():
        """Each measured part on a Spanner emulator of its own, started empty (unless --shared-emulator)."""
        return contextlib.nullcontext() if args.shared_emulator else bench_database.fresh_emulator(log)

    ceiling = None
    if "ceiling" not in args.skip:
        log(f"emulator ceiling: blind batches of 1,000 rows, {args.ceiling_rows:,} rows of each shape")
        with part():
            ceiling = measure_ceiling(args.ceiling_rows)
        for kind, value in ceiling.items():
            log(f"  {kind}: {value:,.0f} rows/s")
    naive = None
    if "naive" not in args.skip:
        count = args.baseline_messages
        log(f"naive baseline: the first {count:,} messages, one read-write transaction each")
        naive_probe = messages[count : count + max(200, count // 20)] if args.latency_messages else []
        with part():
            naive = run_naive(messages[:count], naive_probe, work, log)
    log("pipeline: pipeline.stream on the DirectRunner (BundleBasedDirectRunner), in its own process")
    cpu = None
    with part():
        pipe, argv_used, published = run_pipeline(args, phase_a, probe, probe_decoded, work, log)
        window = max(100, min(args.messages, round(pipe.rate * _seconds(args.hold))))
        if "cpu" not in args.skip:
            log(
                f"CPU of our code: {args.cpu_repeats} passes over the phase A messages in windows of {window:,}"
            )
            cpu = run_cpu(args, argv_used, published, phase_a, window)
    report(args, summary, ceiling, naive, pipe, cpu, window)
    print(f"\n(run took {time.time() - began:,.0f} s; worker logs in {work})")
    return 0


def _seconds(text: str) -> float:
    from pipeline.options import parse_duration

    return parse_duration(text)


if __name__ == "__main__":
    sys.exit(main())
