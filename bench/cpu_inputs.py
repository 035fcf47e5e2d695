"""What the CPU benchmarks (``bench.stream_cpu``, ``bench.cpu_parts``, ``bench.floor``) run on: the stream
workload's messages over the last hour, and the streaming pipeline's applier config over a fresh database."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from pipeline.options import spanner_args
from pipeline.workload import Workload, stream_config
from transforms.core.model import RawMessage

_HOUR_MICROS = 3_600_000_000


def last_hour(messages: int, keys: int) -> list[RawMessage]:
    """``messages`` of ``bench.stream``'s workload over ``keys`` group keys, in message time the hour before now."""
    now = int(time.time() * 1_000) * 1_000
    config = stream_config(messages=messages, keys=keys, start=now - _HOUR_MICROS, duration=_HOUR_MICROS)
    return list(Workload(config))


@contextlib.contextmanager
def fresh_applier(name: str) -> Iterator[tuple[Any, dict]]:
    """Yields ``(config, projects)``: ``pipeline.stream.applier_config`` (waiting for events) over a database
    created for the block (``bench_database.create(name)``, dropped after it), and that database's projects.

    The creation quota uses the stack's Redis (``REDIS_URL``, from ``python -m pipeline.stack env``), not the
    option's default, which may be another's; without ``REDIS_URL`` the quota is off. The topics are named
    after ``name`` and never used."""
    from bench import bench_database
    from pipeline import stream
    from transforms.storage import registry

    database_id, database = bench_database.create(name)
    try:
        quota = (
            [f"--redis_url={os.environ['REDIS_URL']}"]
            if os.environ.get("REDIS_URL")
            else ["--no_creation_quota"]
        )
        options = stream.make_options(
            [
                *spanner_args(bench_database.PROJECT, bench_database.INSTANCE, database_id),
                f"--input_topic=projects/p/topics/{name}",
                f"--dead_letter_topic=projects/p/topics/{name}-dead",
                *quota,
            ]
        )
        yield stream.applier_config(options, wait_for_events=True), registry.read_projects(database)
    finally:
        bench_database.drop(database_id)
