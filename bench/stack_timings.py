"""How long the local stack takes to start, and a test database with the full schema to create and drop.

Usage: python bench/stack_timings.py [--rounds N]

Uses the ports of the ``STACK_*`` variables (defaults 8085, 9010/9020, 6379) and a temporary stack folder. The
stack must not be running on those ports (the cold start is what is measured); it is stopped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import admin
from pipeline.stack import Stack, StackConfig
from transforms.storage import clients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="databases to create and drop")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(StackConfig.from_env(stack_dir=Path(folder)))
        if any(s.healthy() for s in stack.services):
            sys.exit(
                "a service already answers on the configured ports: stop it or choose other STACK_* ports"
            )
        try:
            started = time.perf_counter()
            for service in stack.services:
                began = time.perf_counter()
                service.start()
                print(f"start {service.name:<8} {time.perf_counter() - began:6.2f} s")
            print(f"start all      {time.perf_counter() - started:6.2f} s")
            os.environ.update(stack.env())

            began = time.perf_counter()
            admin.ensure_instance("bench-project", "bench-instance")
            print(f"create instance {time.perf_counter() - began:5.3f} s")
            creates, drops = [], []
            for _ in range(args.rounds):
                name = f"b{uuid.uuid4().hex[:12]}"
                began = time.perf_counter()
                result = admin.create_database("bench-project", "bench-instance", name)
                creates.append(time.perf_counter() - began)
                began = time.perf_counter()
                admin.drop_database("bench-project", "bench-instance", name)
                clients.forget_database("bench-project", "bench-instance", name)
                drops.append(time.perf_counter() - began)
            print(
                f"database with full schema ({result.tables} tables, {result.indexes} indexes), {args.rounds} rounds:"
            )
            print(
                f"  create + apply: median {statistics.median(creates) * 1000:.0f} ms, "
                f"max {max(creates) * 1000:.0f} ms"
            )
            print(
                f"  drop:           median {statistics.median(drops) * 1000:.0f} ms, max {max(drops) * 1000:.0f} ms"
            )
        finally:
            clients.reset()
            stack.stop(report=lambda line: None)


if __name__ == "__main__":
    main()
