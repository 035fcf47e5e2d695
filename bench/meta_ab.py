"""The stateful step's work on a key's ``meta`` (``KeyMeta``), another checkout's against this one's.

``python -m bench.meta_ab BEFORE_DIR [--rounds 9]``

Emulates what ``bench.stream_cpu`` does with the ``meta`` state over 30,000 messages on 3,000 keys in windows
of 1,600 (decoded and encoded once a message, decoded twice and encoded once a flush), with BEFORE's
``transforms/per_group/key_context.py`` and this checkout's, alternating in one process with the collector as
in the workers; checks that both write the same bytes, then prints medians and ranges in µs a message.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import msgspec

from bench import stream_cpu
from transforms.per_group import key_context as new

# a project as Routed carries it (its msgpack bytes), keys as the workload's
p = msgspec.Raw(
    msgspec.msgpack.encode({"project_id": 3, "organization_id": 1, "features": ["a", "b"], "slug": "x" * 20})
)
keys = [f"3:{i:032x}" for i in range(3000)]
order = [keys[(i * 7919) % 3000] for i in range(30000)]


def _run(module: ModuleType) -> tuple[float, dict[str, bytes]]:
    """One pass of the meta work with ``module``'s ``KeyMeta``: µs a message, and the bytes written."""
    metas: dict[str, bytes] = {}
    KeyMeta, dec, enc = module.KeyMeta, module.META_DECODER.decode, module.META_ENCODER.encode
    began = time.process_time()
    for start in range(0, len(order), 1600):
        window = order[start : start + 1600]
        for i, key in enumerate(window):  # process()
            data = metas.get(key)
            meta = KeyMeta() if data is None else dec(data)
            meta.project = p
            meta.max_time = max(meta.max_time, start + i)
            meta.hydrate_token = meta.hydrate_token or "abcdef0123456789-1"
            metas[key] = enc(meta)
        for key in dict.fromkeys(window):  # the flushes
            meta = dec(metas[key])
            metas[key] = enc(dec(metas[key]))
    return 1e6 * (time.process_time() - began) / len(order), metas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.meta_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    spec = importlib.util.spec_from_file_location(
        "key_context_before", args.before / "transforms" / "per_group" / "key_context.py"
    )
    assert spec is not None and spec.loader is not None
    old: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules["key_context_before"] = old  # msgspec reads the struct's annotations from its module
    spec.loader.exec_module(old)
    assert _run(old)[1] == _run(new)[1], "the two write different bytes"
    with stream_cpu.workers_collector():
        spent: dict[str, list[float]] = {"before": [], "this": []}
        for r in range(args.rounds):
            sides = [("before", old), ("this", new)]
            for name, module in sides if r % 2 == 0 else reversed(sides):
                spent[name].append(_run(module)[0])
    for name, figures in spent.items():
        print(
            f"KeyMeta, {name}: {statistics.median(figures):.3f} µs a message ({min(figures):.3f}-{max(figures):.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
