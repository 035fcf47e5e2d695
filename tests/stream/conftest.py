"""Fixtures of the streaming tests.

``main_run`` is one run of the scripted stream and ``workload_run`` one uninterrupted run of a generated
workload, each shared by the whole session: the end-to-end tests check the scripted run's rows, and the
restart and fault tests compare their runs of the same messages with them.

Both keep only what their run read (rows, counters, dead letters): their environment (database, topics, Redis
keys) is removed as soon as the run is over, so that no database outlives its test module on the test
process's Spanner emulator, which is then free to be restarted when its clock has run ahead (tests/conftest.py,
``TestSpanner``). A fixture's ``outcome.env`` names that removed environment: nothing may read it later.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pipeline.stack import RedisServer, StackConfig
from tests.stream import workload_runs
from tests.stream.environment import StreamEnv, stream_env
from tests.stream.runs import MainRun, run_main
from tests.workers import worker_number


@pytest.fixture
def env(stack: StackConfig, spanner_instance: str, request: pytest.FixtureRequest) -> Iterator[StreamEnv]:
    with stream_env(stack, request.node.name[:20].replace("_", "-").strip("-")) as environment:
        yield environment


@pytest.fixture(scope="session")
def main_run(stack: StackConfig, spanner_instance: str) -> MainRun:
    with stream_env(stack, "e2e") as environment:
        return run_main(environment)


@pytest.fixture(scope="session")
def generated() -> workload_runs.GeneratedStream:
    return workload_runs.generate()


@pytest.fixture(scope="session")
def workload_run(
    stack: StackConfig, spanner_instance: str, generated: workload_runs.GeneratedStream
) -> workload_runs.WorkloadOutcome:
    """The generated workload, published at once and applied by one pipeline."""
    with stream_env(stack, "workload") as environment:
        return workload_runs.run_parts(environment, generated, [generated.messages])


@pytest.fixture
def private_redis(stack: StackConfig) -> Iterator[RedisServer]:
    """A Redis server of the test's own (the test may stop it), on ``STACK_FAULT_REDIS_PORT`` (default: the
    stack's Redis port + 1), + 1 for each pytest-xdist worker after the first."""
    port = int(os.environ.get("STACK_FAULT_REDIS_PORT") or stack.redis_port + 1) + worker_number()
    server = RedisServer(port, stack, name="redis-private")
    server.start()
    yield server
    server.stop()
