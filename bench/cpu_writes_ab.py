"""The write path's helpers of another checkout against this one's, in one process, on one pass's writes.

``python -m bench.cpu_writes_ab BEFORE_DIR [--messages 60000] [--rounds 5]`` (stack running, its environment
set)

Records one ``bench.stream_cpu`` pass as ``bench.cpu_parts`` does (each window's writes, chunked into
commits), then times BEFORE's and this checkout's versions of what the writes stage calls per row or per
commit, alternating (old, new, new, old in each round), and prints the medians in µs a message:

  rows        ``spanner_rows``' row builders of the Occurrences and Events rows (``occurrence_values``,
              ``event_values``) over every ``InsertOccurrence`` and ``RecordEvent`` of the pass;
  mutations   ``commit_plan.mutations`` and ``CommitPlan.mutation_count`` over every commit's plan (planned
              once, by each checkout's ``plan_commit``);
  put_all     ``EventCache.put_all`` of each write's events (``event_cache``), into a fresh cache per pass.

Only those modules come from BEFORE (``transforms/storage/spanner_rows.py``, ``commit_plan.py`` and
``event_cache.py``); what they import is this checkout's. First it checks that both give the same rows,
mutations and counts. Both run in one process, against one collector and one machine load: the A/B of a
change too small for ``bench.cpu_ab``'s passes, whose spread on a shared machine is several µs a message.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import cpu_inputs, cpu_parts, stream_cpu
from bench.engine_ab import _load
from transforms.core import intents
from transforms.storage import commit_plan, event_cache, spanner_rows
from transforms.storage.spanner_writer import chunk_writes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cpu_writes_ab", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("before", help="the other checkout (e.g. a git worktree of the previous commit)")
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    storage = Path(args.before) / "transforms/storage"
    if not (storage / "commit_plan.py").exists():
        raise SystemExit(
            f"{args.before} has no transforms/storage/commit_plan.py (a checkout before issue 21)"
        )
    old_rows = _load("transforms.storage._before_spanner_rows", storage / "spanner_rows.py")
    old_plans = _load("transforms.storage._before_commit_plan", storage / "commit_plan.py")
    old_cache = _load("transforms.storage._before_event_cache", storage / "event_cache.py")

    raw = cpu_inputs.last_hour(args.messages, max(1, args.messages // 10))
    with cpu_inputs.fresh_applier("writes-ab") as (config, projects):
        _calls, windows, _answers = cpu_parts._record(raw, projects, config)
    commits = [chunk for writes in windows for chunk in chunk_writes(writes, config.spanner.max_mutations)]
    every = [intent for writes in windows for write in writes for intent in write.intents]
    occurrences = [intent for intent in every if intent.__class__ is intents.InsertOccurrence]
    events = [intent for intent in every if intent.__class__ is intents.RecordEvent]
    batches = [
        [intent.event for intent in write.intents if intent.__class__ is intents.RecordEvent]
        for writes in windows
        for write in writes
    ]
    plans = {
        module: [
            module.plan_commit(commit, module.StoredVersions(), module.new_keys(commit)) for commit in commits
        ]
        for module in (old_plans, commit_plan)
    }

    for old, new in zip(plans[old_plans], plans[commit_plan], strict=True):
        if list(old_plans.mutations(old)) != list(commit_plan.mutations(new)) or (
            old.mutation_count() != new.mutation_count()
        ):
            raise SystemExit("the two planners' mutations differ: nothing to compare")
    if any(old_rows.occurrence_values(i) != spanner_rows.occurrence_values(i) for i in occurrences) or any(
        old_rows.event_values(i) != spanner_rows.event_values(i) for i in events
    ):
        raise SystemExit("the two row builders differ: nothing to compare")

    def row_work(rows: Any) -> Callable[[], None]:
        def run() -> None:
            for insert in occurrences:
                rows.occurrence_values(insert)
            for record in events:
                rows.event_values(record)

        return run

    def mutation_work(module: Any) -> Callable[[], None]:
        def run() -> None:
            grouped = getattr(module, "mutation_groups", None)  # the mutations and their count in one pass
            for plan in plans[module]:
                if grouped is not None:
                    grouped(plan)
                    continue
                for _mutation in module.mutations(plan):
                    pass
                plan.mutation_count()

        return run

    def cache_work(module: Any) -> Callable[[], None]:
        def run() -> None:
            cache = module.EventCache()
            for batch in batches:
                if batch:
                    cache.put_all(batch)

        return run

    parts = {
        "rows": (row_work(old_rows), row_work(spanner_rows)),
        "mutations": (mutation_work(old_plans), mutation_work(commit_plan)),
        "put_all": (cache_work(old_cache), cache_work(event_cache)),
    }
    timings = stream_cpu.alternating(parts, args.rounds)
    print(
        f"{len(raw):,} messages: {len(commits):,} commits, {len(occurrences):,} occurrence rows, "
        f"{len(events):,} events; medians of {2 * args.rounds}, µs a message"
    )
    for name, (before, after) in timings.items():
        old_us = 1e6 * statistics.median(before) / len(raw)
        new_us = 1e6 * statistics.median(after) / len(raw)
        print(f"{name}: before {old_us:.3f}, after {new_us:.3f} ({new_us - old_us:+.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
