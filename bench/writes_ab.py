"""The writes stage of another checkout against this one's, in one process, on one pass's recorded writes.

``python -m bench.writes_ab BEFORE_DIR [--messages 30000] [--rounds 5]`` (stack running, its environment set)

Records one ``bench.stream_cpu`` pass as ``bench.cpu_parts`` does (each window's writes), loads BEFORE's
``spanner_rows``, ``org_words``, ``mutation_buffer``, ``commit_plan``, ``tag_writer`` and ``spanner_writer``
(C extensions are this checkout's), checks that both give the same mutations (their bytes), counts and rows,
then times the writes stage as ``bench.stream_cpu`` does, by part, old and new alternating (old, new, new,
old in each round) under the workers' collector, and prints medians in µs a message:

  chunk        ``chunk_writes`` with the writer's tag estimate (a ``TagCost`` where the checkout has one);
  plan_commit  ``plan_commit``;
  plan_tags    ``tag_writer.plan_tags`` (the tag reads, I/O on Dataflow, answered by the benchmark's tag store
               and not timed);
  buffer       ``buffer_plan`` into a ``Batch``: the mutations' grouping, count and ``write_mutation``.

Unlike ``bench.plan_ab`` it times the mutations' encoding too, so a change of what the mutations are built
from shows in it. Both sides run this checkout's C extensions: a change of the C alone does not show in it
(``bench.cpu_ab`` runs each checkout's own, in its own process).

A checkout whose applier makes its events' JSON ahead (``spanner_rows.keep_payloads``, in the engine stage)
has it made before each window, untimed, as its recorded pass had: that side's ``plan_commit`` takes the text
instead of encoding the events, and the encoding's cost, moved to the engine stage, is not in these figures
(``bench.cpu_ab`` has both stages).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from google.cloud.spanner_v1 import Mutation
from google.cloud.spanner_v1.batch import Batch

from bench import cpu_inputs, cpu_parts, stream_cpu
from bench.plan_ab import _as_current

_MODULES = ("spanner_rows", "org_words", "mutation_buffer", "commit_plan", "tag_writer", "spanner_writer")
PARTS = ("chunk", "plan_commit", "plan_tags", "buffer")


def load(directory: str) -> dict[str, ModuleType]:
    """BEFORE's modules, each importing the ones before it as ``transforms.storage``'s."""
    loaded: dict[str, ModuleType] = {}
    for name in _MODULES:
        with _as_current(loaded):
            spec = importlib.util.spec_from_file_location(
                f"transforms.storage._before_{name}", Path(directory) / f"transforms/storage/{name}.py"
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            loaded[name] = module
    return loaded


def one_pass(side: dict[str, ModuleType], windows: list[list], max_mutations: int) -> tuple[dict, str]:
    """The writes of every window as ``bench.stream_cpu`` plans them: CPU seconds by part, and a digest."""
    plans, tags, writer = side["commit_plan"], side["tag_writer"], side["spanner_writer"]
    side["mutation_buffer"].BUFFER.private = True  # as once checked on a real transaction
    rows = side["spanner_rows"]
    if getattr(rows, "planning", None) is not None and hasattr(rows.planning, "configure_payloads"):
        # The one C extension takes the events' JSON from the ``event_payload`` it was configured with last
        # (each side's ``commit_plan`` configures its own at import): this side's, which finds what this side's
        # ``keep_payloads`` made ahead. Otherwise the side loaded first would encode every event again.
        rows.planning.configure_payloads(getattr(rows, "event_payload", None))
    cpu = time.process_time
    spent = dict.fromkeys(PARTS, 0.0)
    digest = hashlib.sha256()
    store, known, words = stream_cpu._TagStore(), tags.KnownRows(), side["org_words"].KnownWords()
    cost: Any = getattr(tags, "TagCost", None)
    cost = cost(known) if cost is not None else lambda intent: tags.estimate_mutations(intent, known)
    keep = getattr(side["spanner_rows"], "keep_payloads", None)
    for writes in windows:
        if keep is not None:  # the applier's (engine stage), untimed: see the module docstring
            cpu_parts._keep_payloads(writes, keep)
        began = cpu()
        commits = writer.chunk_writes(writes, max_mutations, cost)
        spent["chunk"] += cpu() - began
        for commit in commits:
            began = cpu()
            plan = plans.plan_commit(commit, plans.StoredVersions(), plans.new_keys(commit))
            spent["plan_commit"] += cpu() - began
            existing = store.groups & {intent.group_id for intent in plan.indexed}
            stored = tags.read_stored(store, plan.indexed, plan, existing, known)
            began = cpu()
            tagged = tags.plan_tags(commit, plan, existing, stored, known, plan.indexed, words)
            spent["plan_tags"] += cpu() - began
            batch = Batch(None)
            began = cpu()
            count = writer.buffer_plan(batch, plan)
            spent["buffer"] += cpu() - began
            known.add_all(tagged.known)
            words.add_all(tagged.words)
            store.commit(plan)
            digest.update(repr((count, plan.rows_by_table(), plan.stale_writes, tagged.counted)).encode())
            for mutation in batch._mutations:
                digest.update(Mutation.pb(mutation).SerializeToString())
    return spent, digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writes_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the other checkout (e.g. a git worktree of the previous commit)")
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    before = load(args.before)
    after = {name: sys.modules[f"transforms.storage.{name}"] for name in _MODULES}
    raw = cpu_inputs.last_hour(args.messages, max(1, args.messages // 10))
    with cpu_inputs.fresh_applier("writes-ab") as (config, projects):
        _calls, windows, _answers = cpu_parts._record(raw, projects, config)
    max_mutations = config.spanner.max_mutations
    if one_pass(before, windows, max_mutations)[1] != one_pass(after, windows, max_mutations)[1]:
        raise SystemExit("the two checkouts write different mutations, counts or rows: nothing to compare")
    print(f"{args.messages:,} messages; the same mutations, counts and rows on both sides")
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with stream_cpu.workers_collector():
        for _round in range(args.rounds):
            for name in ("before", "after", "after", "before"):
                runs[name].append(one_pass(before if name == "before" else after, windows, max_mutations)[0])
    for name, found in runs.items():
        totals = [1e6 * sum(run.values()) / args.messages for run in found]
        parts = ", ".join(
            f"{part} {statistics.median(1e6 * run[part] / args.messages for run in found):.2f}"
            for part in PARTS
        )
        print(f"{name}: {statistics.median(totals):.2f} ({min(totals):.2f}-{max(totals):.2f}); {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
