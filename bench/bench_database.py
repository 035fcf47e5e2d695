"""A throwaway Spanner database for a benchmark: the product's schema and the workload's three projects."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

PROJECT, INSTANCE = "bench-project", "bench-instance"
# The projects ``pipeline.workload`` generates for: (project id, organization id, slug).
PROJECTS = ((1, 1, "backend"), (2, 1, "frontend"), (3, 2, "mobile"))


def create(prefix: str = "bench"):
    """Create a database with the schema and the projects registered; returns ``(database_id, handle)``."""
    from pipeline import admin
    from transforms.storage import clients, registry

    database_id = f"{prefix}{uuid.uuid4().hex[:8]}"
    admin.create_database(PROJECT, INSTANCE, database_id)
    database = clients.spanner_database(PROJECT, INSTANCE, database_id)
    for project_id, organization_id, slug in PROJECTS:
        registry.register_project(database, project_id=project_id, organization_id=organization_id, slug=slug)
    return database_id, database


def drop(database_id: str) -> None:
    from transforms.storage import clients

    clients.spanner_database(PROJECT, INSTANCE, database_id).drop()
    clients.forget_database(PROJECT, INSTANCE, database_id)


# Ports of the benchmarks' own emulator: the stack's plus this (the tests' fault-injecting emulator uses +2).
FRESH_PORT_OFFSET = 4


@contextlib.contextmanager
def fresh_emulator(log=print) -> Iterator[str]:
    """A Spanner emulator of its own, started empty for one measured part and stopped after it.

    The emulator keeps every row it was ever given in memory and slows down as it grows, so a part measured
    after others (or after earlier runs) would be measured on a slower emulator. Inside the block
    ``SPANNER_EMULATOR_HOST`` (and every child process started in it) points at the fresh one; yields its
    host.
    """
    from pipeline.stack import SpannerEmulator, StackConfig
    from transforms.storage import clients

    config = StackConfig.from_env()
    emulator = SpannerEmulator(
        config.spanner_grpc_port + FRESH_PORT_OFFSET,
        config.spanner_rest_port + FRESH_PORT_OFFSET,
        config,
        name="spanner-bench",
    )
    emulator.stop()  # a leftover of an interrupted benchmark
    _wait_ports_free(emulator.ports)
    log(f"  ({emulator.start()})")
    previous = os.environ.get(clients.SPANNER_EMULATOR_VAR)
    os.environ[clients.SPANNER_EMULATOR_VAR] = emulator.host
    clients.reset()
    try:
        yield emulator.host
    finally:
        clients.reset()
        if previous is None:
            os.environ.pop(clients.SPANNER_EMULATOR_VAR, None)
        else:
            os.environ[clients.SPANNER_EMULATOR_VAR] = previous
        emulator.stop()
        _wait_ports_free(emulator.ports)


def _wait_ports_free(ports, timeout: float = 30.0) -> None:
    """A stopped emulator's processes take a moment to let go of their ports."""
    import time

    from pipeline.stack.processes import port_open

    deadline = time.monotonic() + timeout
    while any(port_open(port) for port in ports) and time.monotonic() < deadline:
        time.sleep(0.1)
