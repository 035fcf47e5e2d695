"""Our code's CPU per message in two checkouts, alternating in one run: the A/B of a change.

``python -m bench.cpu_ab A_DIR B_DIR [--rounds 3] [-- bench.stream_cpu flags]``

Runs ``python -m bench.stream_cpu --repeats 1`` in ``A_DIR``, then in ``B_DIR``, ``--rounds`` times (a fresh
process each time, each checkout importing its own code), and prints every pass and the medians by stage, so
that both figures come from the same run of a shared machine. Make the other checkout with
``git worktree add /tmp/before <commit>`` (and ``git worktree remove /tmp/before`` after). The stack must be
running (``python -m pipeline.stack start``), with its environment (``eval "$(python -m pipeline.stack env)"``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys

STAGES = ("decode", "keying", "state", "engine", "writes")


def one_pass(directory: str, extra: list[str]) -> tuple[float, dict[str, float], str]:
    """One ``bench.stream_cpu`` pass in ``directory``: total and stages (µs a message), and rows a message."""
    command = [sys.executable, "-m", "bench.stream_cpu", "--repeats", "1", *extra]
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("median")]
    if done.returncode or not lines:
        raise SystemExit(f"bench.stream_cpu failed in {directory}:\n{done.stdout}\n{done.stderr}")
    line = lines[0]
    total = float(re.search(r"([\d.]+) µs/msg", line).group(1))
    stages = {stage: float(re.search(stage + r" ([\d.]+)", line).group(1)) for stage in STAGES}
    rows = re.search(r"rows ([\d.]+) a message", line).group(1)
    return total, stages, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the checkout before (e.g. a git worktree of the previous commit)")
    parser.add_argument("b", help="the checkout after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="flags for bench.stream_cpu (after --)")
    args = parser.parse_args(argv)
    results: dict[str, list[tuple[float, dict[str, float]]]] = {"A": [], "B": []}
    for number in range(1, args.rounds + 1):
        for name, directory in (("A", args.a), ("B", args.b)):
            total, stages, rows = one_pass(directory, args.extra)
            results[name].append((total, stages))
            parts = ", ".join(f"{stage} {stages[stage]:.1f}" for stage in STAGES)
            print(f"round {number} {name}: {total:.1f} µs/msg ({parts}), rows {rows} a message", flush=True)
    medians = {}
    for name, passes in results.items():
        medians[name] = statistics.median(total for total, _ in passes)
        parts = ", ".join(
            f"{stage} {statistics.median(stages[stage] for _, stages in passes):.1f}" for stage in STAGES
        )
        print(f"median {name}: {medians[name]:.1f} µs/msg ({parts})")
    change = medians["B"] - medians["A"]
    print(f"B - A: {change:+.1f} µs/msg ({100 * change / medians['A']:+.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
