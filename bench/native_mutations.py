"""``spanner_rows``' two mutation builders, pure Python and C, on the writes of one pass, in one process.

``python -m bench.native_mutations [--messages 30000] [--rounds 7]`` (stack running, its environment set;
the C extension built: ``python setup.py build_ext --inplace``)

Records one ``bench.stream_cpu`` pass as ``bench.cpu_parts`` does and plans its commits as the writes stage
does (``plan_commit``, then ``plan_tags``), keeping every write ``commit_plan.mutations`` yields (deletes
aside): what ``buffer_plan`` hands ``write_mutation``. First it checks that both builders give byte-identical
mutations for all of them, then times ``write_mutation_python`` and ``write_mutation_native`` over them,
alternating (python, C, C, python in each round), and prints medians and ranges in µs a message, with the
cells and writes a message.
"""

from __future__ import annotations

import argparse
import statistics

from google.cloud.spanner_v1 import Mutation

from bench import cpu_inputs, cpu_parts, stream_cpu
from transforms.storage import commit_plan, spanner_rows, tag_writer
from transforms.storage.spanner_writer import StoredVersions, chunk_writes, new_keys, plan_commit


def _writes(windows: list[list], max_mutations: int) -> list[tuple]:
    """Every (kind, table, columns, rows) the pass's commits hand ``write_mutation``."""
    found: list[tuple] = []
    tag_store, known = stream_cpu._TagStore(), tag_writer.KnownRows()
    for writes in windows:
        for commit in chunk_writes(
            writes, max_mutations, lambda intent: tag_writer.estimate_mutations(intent, known)
        ):
            plan = plan_commit(commit, StoredVersions(), new_keys(commit))
            existing = tag_store.groups & {intent.group_id for intent in plan.indexed}
            stored = tag_writer.read_stored(tag_store, plan.indexed, plan, existing, known)
            tagged = tag_writer.plan_tags(commit, plan, existing, stored, known, plan.indexed)
            found.extend(write for write in commit_plan.mutations(plan) if write[0] != "delete")
            known.add_all(tagged.known)
            tag_store.commit(plan)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.native_mutations", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if spanner_rows._native is None:
        raise SystemExit("the C extension is not built (python setup.py build_ext --inplace)")
    raw = cpu_inputs.last_hour(args.messages, max(1, args.messages // 10))
    with cpu_inputs.fresh_applier("native-mutations") as (config, projects):
        _calls, windows, _answers = cpu_parts._record(raw, projects, config)
    writes = _writes(windows, config.spanner.max_mutations)
    serialize = Mutation.pb().SerializeToString
    for write in writes:
        if serialize(Mutation.pb(spanner_rows.write_mutation_python(*write))) != serialize(
            Mutation.pb(spanner_rows.write_mutation_native(*write))
        ):
            raise SystemExit(f"the two builders differ on a write of {write[1]}: nothing to compare")

    def work(build):
        def run() -> None:
            for write in writes:
                build(*write)

        return run

    parts = {
        "write_mutation": (work(spanner_rows.write_mutation_python), work(spanner_rows.write_mutation_native))
    }
    timings = stream_cpu.alternating(parts, args.rounds)
    rows = sum(len(write[3]) for write in writes)
    cells = sum(len(row) for write in writes for row in write[3])
    count = len(raw)
    print(
        f"{count:,} messages: {len(writes) / count:.3f} writes, {rows / count:.2f} rows, {cells / count:.1f} "
        f"cells a message; medians (ranges) of {2 * args.rounds}, µs a message"
    )
    for name, (python, native) in timings.items():
        low, high = (1e6 * min(python) / count, 1e6 * max(python) / count)
        c_low, c_high = (1e6 * min(native) / count, 1e6 * max(native) / count)
        py_us = 1e6 * statistics.median(python) / count
        c_us = 1e6 * statistics.median(native) / count
        print(
            f"{name}: python {py_us:.3f} ({low:.3f}-{high:.3f}), C {c_us:.3f} ({c_low:.3f}-{c_high:.3f}), "
            f"{c_us - py_us:+.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
