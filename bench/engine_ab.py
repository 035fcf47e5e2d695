"""``engine.apply`` and ``plan_commit`` of another checkout against this one's, in one process, on the same data.

``python -m bench.engine_ab BEFORE_DIR [--messages 30000] [--rounds 5]`` (stack running, its environment set)

Records one ``bench.stream_cpu`` pass as ``bench.cpu_parts`` does (the engine calls, each window's writes),
then times BEFORE's ``engine.apply`` and ``plan_commit`` against this checkout's on the recorded inputs,
alternating (old, new, new, old in each round), and prints the medians in µs a message. First it checks that
both give the same results on the first calls and commits. Both run in one process, against one collector
and one machine load, so the comparison is steadier than passes in two processes (``bench.cpu_ab``).

Only the entry modules come from BEFORE (``transforms/core/engine/engine.py``, and ``commit_plan.py`` or, in
a checkout without it, ``spanner_writer.py``); what they import is this checkout's. So it compares changes of
those modules (the engine's sequencing, the planner), not of the rule modules or the rows under them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from bench import bench_database, cpu_parts, stream_cpu
from pipeline import stream
from pipeline.options import spanner_args
from pipeline.workload import Workload, stream_config
from transforms.core import engine
from transforms.storage import registry
from transforms.storage.commit_plan import StoredVersions, new_keys, plan_commit
from transforms.storage.spanner_writer import chunk_writes

CHECKED_CALLS = 3_000
CHECKED_COMMITS = 50


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _record(count: int, database_id: str, database) -> tuple[list, list]:
    now = int(time.time() * 1_000) * 1_000
    hour = 3_600_000_000
    raw = list(
        Workload(stream_config(messages=count, keys=max(1, count // 10), start=now - hour, duration=hour))
    )
    redis_url = os.environ.get("REDIS_URL")
    options = stream.make_options(
        [
            *spanner_args(bench_database.PROJECT, bench_database.INSTANCE, database_id),
            "--input_topic=projects/p/topics/engine-ab",
            "--dead_letter_topic=projects/p/topics/engine-ab-dead",
            f"--redis_url={redis_url}" if redis_url else "--no_creation_quota",
        ]
    )
    config = stream.applier_config(options, wait_for_events=True)
    calls, windows, _answers = cpu_parts._record(raw, registry.read_projects(database), config)
    commits = [chunk for writes in windows for chunk in chunk_writes(writes, config.spanner.max_mutations)]
    return calls, commits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the other checkout (e.g. a git worktree of the previous commit)")
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    before = Path(args.before)
    old_apply: Callable = _load("before_engine", before / "transforms/core/engine/engine.py").apply
    planner = before / "transforms/storage/commit_plan.py"
    old_plan: Callable = _load(
        "before_planner", planner if planner.exists() else before / "transforms/storage/spanner_writer.py"
    ).plan_commit
    # The database stays until the end: the contexts' release books read it (again after their TTL).
    database_id, database = bench_database.create("engine-ab")
    try:
        return _compare(args, old_apply, old_plan, *_record(args.messages, database_id, database))
    finally:
        bench_database.drop(database_id)


def _compare(
    args: argparse.Namespace, old_apply: Callable, old_plan: Callable, calls: list, commits: list
) -> int:

    for state, messages, context in calls[:CHECKED_CALLS]:
        old, new = old_apply(state, messages, context), engine.apply(state, messages, context)
        if old[0] != new[0] or old[1].write != new[1].write:
            raise SystemExit("the two engines differ: nothing to compare")
    for commit in commits[:CHECKED_COMMITS]:
        old, new = (plan(commit, StoredVersions(), new_keys(commit)) for plan in (old_plan, plan_commit))
        if (old.upserts, old.deletes, old.inserts) != (new.upserts, new.deletes, new.inserts):
            raise SystemExit("the two planners differ: nothing to compare")

    def engine_time(apply: Callable) -> float:
        began = time.process_time()
        for state, messages, context in calls:
            apply(state, messages, context)
        return time.process_time() - began

    def plan_time(plan: Callable) -> float:
        began = time.process_time()
        for commit in commits:
            plan(commit, StoredVersions(), new_keys(commit))
        return time.process_time() - began

    parts = {
        "engine": (lambda: engine_time(old_apply), lambda: engine_time(engine.apply)),
        "plan": (lambda: plan_time(old_plan), lambda: plan_time(plan_commit)),
    }
    timings: dict[str, list[float]] = {}
    for name, (before, after) in stream_cpu.alternating(parts, args.rounds).items():
        timings[f"{name} before"], timings[f"{name} after"] = before, after
    count = args.messages
    print(
        f"{count:,} messages, {len(calls):,} engine calls, {len(commits):,} commits; "
        f"{2 * args.rounds} timings each, alternating"
    )
    for name, values in timings.items():
        print(
            f"{name}: {1e6 * statistics.median(values) / count:.2f} µs/msg "
            f"(min {1e6 * min(values) / count:.2f}, max {1e6 * max(values) / count:.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
