"""An attached occurrence's tags by Python against the C extension (``transforms/core/engine/_tags.c``).

``python -m bench.tags_ab [--messages 30000] [--rounds 7]`` (stack running, its environment set)

Records one ``bench.stream_cpu`` pass's engine calls (``bench.cpu_parts``), checks that ``engine.apply`` gives
the same results with the tags found either way, then replays the calls alternating three ways in one
process: tags by ``index_tags_python``, by ``index_tags_native``, and with ``_index`` doing nothing (what
``_index`` costs is the difference; not a result: its intents are missing). Then ``index_tags`` alone over
the pass's events, both ways. Prints medians and the rounds' ranges in µs a message (an event).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bench import cpu_inputs, cpu_parts, stream_cpu
from transforms.core import engine
from transforms.core.engine import occurrence_path, tags
from transforms.core.model import Occurrence


def _alternating(sides: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    spent: dict[str, list[float]] = {name: [] for name in sides}
    for turn in range(rounds):
        for name in list(sides) if turn % 2 == 0 else reversed(list(sides)):
            spent[name].append(sides[name]())
    return spent


def _print(title: str, spent: dict[str, list[float]]) -> None:
    for name, figures in spent.items():
        print(f"{title} {name}: {statistics.median(figures):.2f} ({min(figures):.2f}-{max(figures):.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tags_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if tags._native is None:
        raise SystemExit("the C extension is not built: python setup.py build_ext --inplace")
    count = args.messages
    raw = cpu_inputs.last_hour(count, max(1, count // 10))
    with cpu_inputs.fresh_applier("tags-ab") as (config, projects):
        calls, _windows, _answers = cpu_parts._record(raw, projects, config)
    ways = {"python": tags.index_tags_python, "c": tags.index_tags_native}
    results = {}
    for name, index_tags in ways.items():
        occurrence_path.index_tags = index_tags
        results[name] = [engine.apply(state, messages, context) for state, messages, context in calls]
    assert results["python"] == results["c"], "the engine's results differ"
    index = occurrence_path.OccurrencePath._index

    def replay(index_tags: Callable | None) -> Callable[[], float]:
        def run() -> float:
            occurrence_path.index_tags = index_tags or tags.index_tags
            occurrence_path.OccurrencePath._index = index if index_tags else lambda *_: None
            return 1e6 * cpu_parts._engine_alone(calls) / count

        return run

    events = [
        (payload.level, payload.event)
        for _state, messages, _context in calls
        for message in messages
        if (payload := message.payload).__class__ is Occurrence and payload.event is not None
    ]

    def alone(index_tags: Callable) -> Callable[[], float]:
        def run() -> float:
            began = time.process_time()
            for level, event in events:
                index_tags(level, event)
            return 1e6 * (time.process_time() - began) / len(events)

        return run

    try:
        with stream_cpu.workers_collector():
            replays = _alternating(
                {
                    "python": replay(tags.index_tags_python),
                    "c": replay(tags.index_tags_native),
                    "no _index": replay(None),
                },
                args.rounds,
            )
            apart = _alternating({name: alone(way) for name, way in ways.items()}, args.rounds)
    finally:
        occurrence_path.index_tags = tags.index_tags
        occurrence_path.OccurrencePath._index = index
    declined = sum(tags._native.index_tags(level, event) is None for level, event in events)
    print(f"{count:,} messages, {len(calls):,} engine calls; {len(events):,} events, C declined {declined}")
    _print("engine.apply µs a message, tags by", replays)
    _print("index_tags µs an event,", apart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
