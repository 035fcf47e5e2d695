"""The writes' planning of another checkout against this one's, in one process, on one pass's writes.

``python -m bench.plan_ab BEFORE_DIR [--messages 30000] [--rounds 7] [--known-releases 0,1000,10000]
[--commit-writes 20]`` (stack running, its environment set)

Records one ``bench.stream_cpu`` pass as ``bench.cpu_parts`` does (each window's writes), loads BEFORE's
``transforms/storage/commit_plan.py``, ``tag_writer.py`` and ``spanner_writer.py`` (importing each other;
everything else is this checkout's), checks that both give the same mutations, mutation counts, rows and
stale writes, then prints medians and ranges in µs a message of the passes, old and new alternating (old,
new, new, old in each round) under the workers' collector:

  planning    each window as ``bench.stream_cpu`` plans it, by part: chunking (``chunk_writes`` with the tag
              writer's estimate), ``plan_commit``, the tag reads (``read_stored``, the benchmark's tag store
              answering), ``plan_tags``, the mutations and their count without building them (the rows'
              grouping; ``write_mutation`` is the same code on both sides), and ``TagWriter.committed``;
  planner     the writer's ``CommitPlanner.plan`` and ``committed`` (its guard reads answered empty by a
              stand-in transaction) with ``--known-releases`` releases already known to the writer, over the
              pass's commits and over commits of ``--commit-writes`` writes (smaller bundles).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import cpu_inputs, cpu_parts, stream_cpu
from bench.engine_ab import _load
from transforms.storage import commit_plan, spanner_writer, tag_writer

PARTS = ("chunking", "plan_commit", "reads", "plan_tags", "mutations", "committed")
_MODULES = ("commit_plan", "tag_writer", "spanner_writer")


@contextlib.contextmanager
def _as_current(modules: dict[str, ModuleType]) -> Iterator[None]:
    """``transforms.storage.<name>`` is ``modules[name]`` inside the block (module table and package)."""
    package = sys.modules["transforms.storage"]
    saved = {name: sys.modules[f"transforms.storage.{name}"] for name in modules}
    for name, module in modules.items():
        sys.modules[f"transforms.storage.{name}"] = module
        setattr(package, name, module)
    try:
        yield
    finally:
        for name, module in saved.items():
            sys.modules[f"transforms.storage.{name}"] = module
            setattr(package, name, module)


def load_before(directory: str) -> dict[str, ModuleType]:
    storage = Path(directory) / "transforms/storage"
    loaded: dict[str, ModuleType] = {}
    for name in _MODULES:  # in import order: each sees the ones before it as transforms.storage's
        with _as_current(loaded):
            loaded[name] = _load(f"before_{name}", storage / f"{name}.py")
    return loaded


def _mutations(plans: ModuleType, plan: Any) -> tuple[list, int]:
    grouped = getattr(plans, "mutation_groups", None)
    if grouped is not None:
        return grouped(plan)
    return list(plans.mutations(plan)), plan.mutation_count()


def planning(side: dict[str, ModuleType], windows: list[list], max_mutations: int) -> tuple[dict, str]:
    """One pass of the planning over ``windows``: CPU seconds by part, and a digest of what it planned."""
    plans, tags, writer = side["commit_plan"], side["tag_writer"], side["spanner_writer"]
    cpu = time.process_time
    spent = dict.fromkeys(PARTS, 0.0)
    digest = hashlib.sha256()
    store, tag_planner = stream_cpu._TagStore(), tags.TagWriter()
    for writes in windows:
        began = cpu()
        commits = writer.chunk_writes(writes, max_mutations, tag_planner.estimate)
        spent["chunking"] += cpu() - began
        for commit in commits:
            began = cpu()
            plan = plans.plan_commit(commit, plans.StoredVersions(), plans.new_keys(commit))
            spent["plan_commit"] += cpu() - began
            existing = store.groups & {intent.group_id for intent in plan.indexed}
            began = cpu()  # TagWriter.add_to_commit, its reads apart
            stored = tags.read_stored(store, plan.indexed, plan, existing, tag_planner.known)
            spent["reads"] += cpu() - began
            began = cpu()
            result = tags.plan_tags(commit, plan, existing, stored, tag_planner.known, plan.indexed)
            result.known.extend(stored.values)
            spent["plan_tags"] += cpu() - began
            began = cpu()
            found, count = _mutations(plans, plan)
            spent["mutations"] += cpu() - began
            began = cpu()
            tag_planner.committed(result)
            spent["committed"] += cpu() - began
            store.commit(plan)
            digest.update(
                repr((found, count, plan.rows_by_table(), plan.stale_writes, result.counted)).encode()
            )
    return spent, digest.hexdigest()


class _NothingStored:
    """A transaction whose reads find nothing."""

    def read(self, *_args: Any, **_kwargs: Any) -> list:
        return []


def planner(side: dict[str, ModuleType], commits: list[list], known_releases: int) -> float:
    """CPU seconds of ``CommitPlanner.plan`` and ``committed`` over ``commits``."""
    writer = side["spanner_writer"]
    commit_planner = writer.CommitPlanner()
    commit_planner._known_releases.update({(0, f"known-{n}"): 1 for n in range(known_releases)})
    transaction = _NothingStored()
    began = time.process_time()
    for commit in commits:
        commit_planner.committed(commit_planner.plan(transaction, commit, writer.new_keys(commit)))
    return time.process_time() - began


def _figures(seconds: list[float], count: int) -> str:
    micros = [1e6 * value / count for value in seconds]
    return f"{statistics.median(micros):.3f} ({min(micros):.3f}-{max(micros):.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plan_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the other checkout (e.g. a git worktree of the previous commit)")
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--known-releases", default="0,1000,10000")
    parser.add_argument("--commit-writes", type=int, default=20)
    args = parser.parse_args(argv)
    before = load_before(args.before)
    after = {"commit_plan": commit_plan, "tag_writer": tag_writer, "spanner_writer": spanner_writer}
    count = args.messages
    raw = cpu_inputs.last_hour(count, max(1, count // 10))
    with cpu_inputs.fresh_applier("plan-ab") as (config, _projects):
        _calls, windows, _answers = cpu_parts._record(raw, _projects, config)
    max_mutations = config.spanner.max_mutations
    if planning(before, windows, max_mutations)[1] != planning(after, windows, max_mutations)[1]:
        raise SystemExit("the two checkouts plan different mutations, counts or rows: nothing to compare")
    writes = [write for window in windows for write in window]
    print(f"{count:,} messages, {len(writes):,} writes; the same mutations, counts and rows on both sides")

    timings: dict[str, tuple[list[dict], list[dict]]] = {"planning": ([], [])}
    with stream_cpu.workers_collector():
        for _round in range(args.rounds):
            for side, spent in ((before, 0), (after, 1), (after, 1), (before, 0)):
                timings["planning"][spent].append(planning(side, windows, max_mutations)[0])
    for name, runs in zip(("before", "after"), timings["planning"], strict=True):
        total = _figures([sum(run.values()) for run in runs], count)
        parts = ", ".join(f"{part} {_figures([run[part] for run in runs], count)}" for part in PARTS)
        print(f"planning, {name}: {total}; {parts}")

    sizes = {
        "the pass's commits": [
            c for window in windows for c in spanner_writer.chunk_writes(window, max_mutations)
        ],
        f"commits of {args.commit_writes} writes": [
            c
            for start in range(0, len(writes), args.commit_writes)
            for c in spanner_writer.chunk_writes(writes[start : start + args.commit_writes], max_mutations)
        ],
    }
    for label, commits in sizes.items():
        for known in (int(n) for n in args.known_releases.split(",")):
            spent: tuple[list[float], list[float]] = ([], [])
            with stream_cpu.workers_collector():
                for _round in range(max(1, args.rounds // 2)):
                    for side, index in ((before, 0), (after, 1), (after, 1), (before, 0)):
                        spent[index].append(planner(side, commits, known))
            print(
                f"planner, {label} ({len(commits)}), {known:,} known releases: "
                f"before {_figures(spent[0], count)}, after {_figures(spent[1], count)}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
