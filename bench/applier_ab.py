"""``GroupApplier.apply``'s own work of another checkout against this one's, in one process, on the same data.

``python -m bench.applier_ab BEFORE_DIR [--messages 60000] [--rounds 5]`` (stack running, its environment set)

Records one ``bench.stream_cpu`` pass as ``bench.cpu_parts`` does (the engine calls), then replays them
through BEFORE's ``GroupApplier.apply`` and this checkout's, with the engine's results given (``_engine_apply``
answers from a list made afresh before each replay: the applier adds to their counters), the benchmark's
counter (``stream_cpu._counter``) and ``defer_key_state`` as in a pass, alternating (old, new, new, old in each
round) under the workers' collector, and prints the medians in µs a message: the applier's bookkeeping around
the engine (its context, the write's scan, the event cache, the kept write and what it was made from, the
counts, the split of a deferred save). Steadier than passes in two processes (``bench.cpu_ab``).

From BEFORE come ``transforms/applier.py`` and the modules whose objects it keeps (``refused_writes.py``,
``storage/event_cache.py``, with ``storage/redis_quota.py`` and ``storage/group_store.py`` they import); the
rest is this checkout's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from types import ModuleType
from typing import Any

from bench import cpu_inputs, cpu_parts, stream_cpu
from transforms import applier as this_applier
from transforms.core import engine
from transforms.core.model import group_key

# Loaded from BEFORE in this order, each in place of this checkout's while the next ones load.
_MODULES = (
    ("transforms.storage.redis_quota", "transforms/storage/redis_quota.py"),
    ("transforms.storage.group_store", "transforms/storage/group_store.py"),
    ("transforms.refused_writes", "transforms/refused_writes.py"),
    ("transforms.storage.event_cache", "transforms/storage/event_cache.py"),
)


def _load(directory: str, name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"before_{name}", os.path.join(directory, path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def before_applier(directory: str) -> ModuleType:
    """BEFORE's ``transforms.applier``, importing BEFORE's modules of ``_MODULES``."""
    saved = {name: sys.modules[name] for name, _path in _MODULES}
    try:
        for name, path in _MODULES:
            sys.modules[name] = _load(directory, name, path)
        return _load(directory, "transforms.applier", "transforms/applier.py")
    finally:
        sys.modules.update(saved)


def replay(module: ModuleType, calls: list, keys: list[str], config: Any) -> float:
    """CPU seconds of ``module.GroupApplier.apply`` over the recorded calls, the engine's results given."""
    results = iter([engine.apply(state, messages, context) for state, messages, context in calls])
    count, settle = stream_cpu._counter()
    applier = module.GroupApplier(config, count, quota=None)
    applier._quota = None  # the recorded contexts carry the quota as answered
    engine_apply = module._engine_apply
    module._engine_apply = lambda key, state, messages, context: (*next(results), [])
    try:
        began = time.process_time()
        for key, (state, messages, context) in zip(keys, calls):
            applier.apply(key, state, messages, context.project, events=context.events, defer_key_state=True)
            if applier.pending_writes > 1_000:  # as a window hands its writes over
                applier.take_writes()
        settle()
        return time.process_time() - began
    finally:
        module._engine_apply = engine_apply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.applier_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the other checkout (e.g. git worktree add /tmp/before <commit>)")
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    old = before_applier(args.before)
    raw = cpu_inputs.last_hour(args.messages, max(1, args.messages // 10))
    timings: dict[str, list[float]] = {"before": [], "this": []}
    with cpu_inputs.fresh_applier("applier-ab") as (config, projects):  # the appliers' store needs it
        calls, _windows, _answers = cpu_parts._record(raw, projects, config)
        keys = [
            group_key(
                context.project.project_id, state.primary_hash if state else messages[0].payload.hashes[0]
            )
            for state, messages, context in calls
        ]
        with stream_cpu.workers_collector():
            for _round in range(args.rounds):
                for name, module in (
                    ("before", old),
                    ("this", this_applier),
                    ("this", this_applier),
                    ("before", old),
                ):
                    timings[name].append(1e6 * replay(module, calls, keys, config) / len(raw))
    print(f"{len(raw):,} messages, {len(calls):,} engine calls; {2 * args.rounds} replays each")
    for name, spent in timings.items():
        print(
            f"GroupApplier.apply, own work, {name}: {statistics.median(spent):.2f} µs/msg "
            f"({min(spent):.2f}-{max(spent):.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
