"""The engine with and without its C functions (``transforms/core/engine/_engine.c``), in one process.

``python -m bench.native_engine [--messages 30000] [--rounds 7]`` (stack running, its environment set)

Records one ``bench.stream_cpu`` pass's engine calls as ``bench.cpu_parts`` does (the creation quota then
answers as recorded, from memory), then times ``engine.compact`` of each call's state (the horizon a flush
gives) and ``engine.apply`` of every call, with the extension's functions and with the Python path forced
(``dedup``'s hooks set to "not sure"), alternating (Python, C, C, Python) in each round, and prints the
medians and ranges in µs a message. One process, one collector and one machine load for both.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import cpu_inputs, cpu_parts, stream_cpu
from transforms.core import engine
from transforms.core.engine import dedup, ids, occurrence_path

_HOOKS = ("memory_id", "_find", "_time_at", "_freeze", "_prune")


def _use_c(native: dict[str, object], on: bool) -> None:
    for name in _HOOKS:
        setattr(dedup, name, native[name] if on else dedup._unsure)
    ids.native_memory_id = occurrence_path.native_memory_id = dedup.memory_id  # bound at their import


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.native_engine", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if dedup.native is None:
        raise SystemExit(
            "transforms.core.engine._engine is not built here: python setup.py build_ext --inplace"
        )
    native = {name: getattr(dedup, name) for name in _HOOKS}
    count = args.messages
    raw = cpu_inputs.last_hour(count, max(1, count // 10))
    with cpu_inputs.fresh_applier("native-engine") as (config, projects):
        calls, _windows, _answers = cpu_parts._record(raw, projects, config)
    retention = config.engine.duplicate_retention
    compactions = [
        (state, min(max(m.message_time for m in messages), state.last_time) - retention)
        for state, messages, _context in calls
        if state is not None and state.last_time is not None and messages
    ]

    def one_run() -> float:
        began = time.process_time()
        for state, horizon in compactions:
            engine.compact(state, horizon)
        for state, messages, context in calls:
            engine.apply(state, messages, context)
        return 1e6 * (time.process_time() - began) / count

    found: dict[bool, list[float]] = {False: [], True: []}
    try:
        with stream_cpu.workers_collector():
            for _ in range(args.rounds):
                for on in (False, True, True, False):
                    _use_c(native, on)
                    found[on].append(one_run())
    finally:
        _use_c(native, True)
    print(f"{count:,} messages, {len(calls):,} engine calls, {len(compactions):,} compactions")
    for on, runs in found.items():
        print(
            f"{'C' if on else 'Python'}: compact + engine.apply {statistics.median(runs):.2f} µs/msg "
            f"(range {min(runs):.2f}-{max(runs):.2f}, {len(runs)} runs)"
        )
    change = statistics.median(found[True]) / statistics.median(found[False]) - 1
    print(f"C against Python: {100 * change:+.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
