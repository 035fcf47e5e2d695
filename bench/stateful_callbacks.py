"""CPU of the stateful step's own callbacks, without the engine, Spanner or a runner: what the DoFn adds.

``python -m bench.stateful_callbacks [--against DIR] [--rounds 3] [--keys 2000] [--messages 3] [--windows 5]``

Drives ``ApplyPerGroupFn`` as the test driver of ``tests/stream/test_flush_timers.py`` does: its methods are
called directly, with in-memory state cells and timers, and the engine's store replaced by ``NullApplier``
(applies nothing, writes nothing, hydrates nothing). Each window is two bundles: one whose ``process`` takes
``--messages`` messages of each of ``--keys`` keys, then one that fires each key's timers as a runner would
(``event_flush`` until it is no longer re-armed, then ``hold_flush``, whose flush takes the key's buffer).
Printed: CPU µs per ``process`` call and per timer callback (with its flush), medians over the windows, timed
with ``time.process_time`` around each loop, never per call.

With ``--against DIR`` it runs itself in a fresh process in ``DIR`` (another checkout, e.g. ``git worktree
add /tmp/before main``), then in this checkout, ``--rounds`` times alternating, each importing its own
``transforms``, and prints every pass and the medians: the A/B of a change to the stateful step. A checkout
whose ``ApplyPerGroupFn`` takes no ``applier_factory`` gets ``NullApplier`` in place of its module's
``GroupApplier``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


class _Key:
    """One key's state cells and timers (the in-memory ones of the timer tests, in the checkout measured)."""

    def __init__(self, key: str) -> None:
        from tests.stream.test_flush_timers import Bag, Timer, Value

        self.key = key
        self.buffer, self.key_state, self.meta = Bag(), Value(), Value()
        self.event, self.hold, self.lookup, self.expire = Timer(), Timer(), Timer(), Timer()
        self.confirm, self.save, self.probe = Timer(), Timer(), Timer()


class _Applied:
    waiting = ()


class _NoRefusals:
    def __bool__(self) -> bool:
        return False

    def __contains__(self, key: object) -> bool:
        return False

    def held_keys(self) -> list[str]:
        return []


class NullApplier:
    """``GroupApplier``'s interface as the stateful step uses it, doing nothing: the key state stays empty."""

    deferred_save = None
    last_write = None
    pending_writes = 0
    writer = database = None

    def __init__(self, config: Any, count: Any, clock: Any = None, refusals: Any = None) -> None:
        self.refusals = _NoRefusals()

    def apply(self, key, state, messages, project, defer_key_state=False, encoded=None):
        return _Applied(), []

    def encoded_state(self, state: Any) -> None:
        return None

    def lookups_reading(self, messages: Any, project_id: int) -> bool:
        return False

    def hydrate(self, keys: list[str]) -> dict:
        return {}

    def prefetch_events(self, lookups: Any, delay: float = 0.0) -> None:
        pass

    def take_entries(self) -> list:
        return []

    def flush(self) -> None:
        pass

    def count_commit(self, stats: Any) -> None:
        pass


def measure(keys: int, per_key: int, windows: int) -> tuple[float, float]:
    """Median CPU µs per ``process`` call and per timer callback over ``windows`` windows."""
    import transforms.apply_per_group as step
    from tests.engine import builders as b
    from transforms.applier import ApplierConfig, SpannerTarget
    from transforms.core.engine import EngineConfig

    config = ApplierConfig(spanner=SpannerTarget("p", "i", "d"), engine=EngineConfig())
    now = [1000.0]
    options: dict[str, Any] = dict(
        watermark_delay=0.0,
        processing_hold=2.0,
        idle_timeout=30.0,
        state_save_delay=0.0,
        clock=lambda: now[0],
    )
    if "applier_factory" in inspect.signature(step.ApplyPerGroupFn.__init__).parameters:
        options["applier_factory"] = NullApplier
    else:
        step.GroupApplier = NullApplier  # an earlier checkout: its module builds the applier itself
    fn = step.ApplyPerGroupFn(config, **options)
    fn.setup()
    states = [_Key(f"{b.PROJECT.project_id}:{index:032x}") for index in range(keys)]
    process_us, timer_us = [], []
    message_time = b.T0
    for _window in range(windows):
        routed = []
        for state in states:
            for _ in range(per_key):
                message_time += 1000
                message = b.occurrence(message_time)
                routed.append((state, (state.key, step.Routed.of(message, b.PROJECT))))
        fn.start_bundle()
        began = time.process_time()
        for state, element in routed:
            fn.process(
                element,
                buffer=state.buffer,
                meta_state=state.meta,
                event_flush=state.event,
                hold_flush=state.hold,
                lookup_retry=state.lookup,
            )
        process_us.append((time.process_time() - began) * 1e6 / len(routed))
        fn.finish_bundle()
        fn.start_bundle()
        now[0] += 3.0
        callbacks = 0
        began = time.process_time()
        for state in states:
            timers = dict(
                lookup_retry=state.lookup, expire=state.expire, confirm=state.confirm, save=state.save
            )
            while state.event.at is not None:
                fired = state.event.take()
                for _ in fn.on_event_flush(
                    key=state.key,
                    fired=fired,
                    buffer=state.buffer,
                    key_state=state.key_state,
                    meta_state=state.meta,
                    event_flush=state.event,
                    **timers,
                ):
                    pass
                callbacks += 1
            if state.hold.at is not None:
                state.hold.take()
                for _ in fn.on_hold_flush(
                    key=state.key,
                    buffer=state.buffer,
                    key_state=state.key_state,
                    meta_state=state.meta,
                    event_flush=state.event,
                    probe=state.probe,
                    hold_flush=state.hold,
                    **timers,
                ):
                    pass
                callbacks += 1
            if state.probe.at is not None:
                fn.on_probe(fired=state.probe.take())
                callbacks += 1
        timer_us.append((time.process_time() - began) * 1e6 / max(callbacks, 1))
        fn.finish_bundle()
        assert all(not state.buffer.items for state in states), "a flush left messages behind"
    return statistics.median(process_us), statistics.median(timer_us)


def _inner(args: argparse.Namespace) -> None:
    process, timers = measure(args.keys, args.messages, args.windows)
    print(f"process {process:.2f} µs/call, timers {timers:.2f} µs/callback")


def _one_pass(directory: str, args: argparse.Namespace) -> tuple[float, float]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--inner",
        "--keys",
        str(args.keys),
        "--messages",
        str(args.messages),
        "--windows",
        str(args.windows),
    ]
    env = dict(os.environ, PYTHONPATH=str(Path(directory).resolve()))
    done = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"process ([\d.]+) µs/call, timers ([\d.]+) µs/callback", done.stdout)
    if done.returncode or not found:
        raise SystemExit(f"the pass in {directory} failed:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1)), float(found.group(2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stateful_callbacks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--against", metavar="DIR", help="another checkout, run alternating with this one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=3, help="messages a key gets in each window")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        _inner(args)
        return 0
    checkouts = [("A", args.against), ("B", str(HERE))] if args.against else [("B", str(HERE))]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in checkouts}
    for number in range(1, args.rounds + 1):
        for name, directory in checkouts:
            process, timers = _one_pass(directory, args)
            results[name].append((process, timers))
            print(
                f"round {number} {name}: process {process:.2f} µs/call, timers {timers:.2f} µs/callback",
                flush=True,
            )
    for name, passes in results.items():
        process = statistics.median(p for p, _ in passes)
        timers = statistics.median(t for _, t in passes)
        print(f"median {name}: process {process:.2f} µs/call, timers {timers:.2f} µs/callback")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
