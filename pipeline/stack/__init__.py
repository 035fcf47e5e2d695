"""The local stack: the Pub/Sub and Spanner emulators and a Redis server, for development and tests.

Command line::

    python -m pipeline.stack start    # start what is not running yet, wait until healthy
    python -m pipeline.stack status   # one line per service; exit code 0 only if all are healthy
    python -m pipeline.stack env      # `export ...` lines: eval "$(python -m pipeline.stack env)"
    python -m pipeline.stack stop     # stop every process `start` started from this stack folder

Each service listens on its own port, set by a flag or an environment variable (defaults in brackets):
Pub/Sub ``--pubsub_port`` / ``STACK_PUBSUB_PORT`` (8085), Spanner gRPC ``--spanner_grpc_port`` /
``STACK_SPANNER_GRPC_PORT`` (9010) and REST ``--spanner_rest_port`` / ``STACK_SPANNER_REST_PORT`` (9020), Redis
``--redis_port`` / ``STACK_REDIS_PORT`` (6379). The stack folder (``--stack_dir`` / ``STACK_DIR``, default
``.stack`` in the checkout) holds ``logs/`` (one log per service, appended to; ``--log_dir`` / ``STACK_LOG_DIR``
moves it) and ``run/`` (one JSON pid file per process started).

Contract: ``start`` is idempotent. A service already answering its health check on its port is reused, whoever
started it; a port taken by something that does not answer like the service is an error (nothing is killed).
``stop`` stops only processes recorded in ``run/`` by ``start`` (checked against their command line, so a
recycled pid is never signalled), and removes stale pid files.

Python API (used by ``tests/conftest.py``, ``run_local.sh`` and the test command): :class:`StackConfig`,
:class:`Stack`, and the services :class:`PubSubEmulator`, :class:`SpannerEmulator` and :class:`RedisServer`,
each of which can be started on its own, e.g. a second Spanner emulator with ``--enable_fault_injection`` on
other ports for retry tests::

    extra = SpannerEmulator(19012, 19022, extra_flags=["--enable_fault_injection"], name="spanner-faults",
                            config=StackConfig.from_env())
    extra.start()
    ...
    extra.stop()

The stack needs the Google Cloud CLI with its Pub/Sub and Spanner emulator components, Java for the Pub/Sub
emulator, and Debian's ``redis-server`` (installed by ``start`` when missing and running as root).
"""

from __future__ import annotations

from pipeline.stack.cli import main
from pipeline.stack.programs import cloud_sdk_root, java_executable, redis_server_executable
from pipeline.stack.services import (
    PubSubEmulator,
    RedisServer,
    Service,
    ServiceStatus,
    SpannerEmulator,
    Stack,
)
from pipeline.stack.settings import (
    DEFAULT_PUBSUB_PORT,
    DEFAULT_REDIS_PORT,
    DEFAULT_SPANNER_GRPC_PORT,
    DEFAULT_SPANNER_REST_PORT,
    HOST,
    PrerequisiteError,
    StackConfig,
    StackError,
    checkout_root,
)

__all__ = [
    "DEFAULT_PUBSUB_PORT",
    "DEFAULT_REDIS_PORT",
    "DEFAULT_SPANNER_GRPC_PORT",
    "DEFAULT_SPANNER_REST_PORT",
    "HOST",
    "PrerequisiteError",
    "PubSubEmulator",
    "RedisServer",
    "Service",
    "ServiceStatus",
    "SpannerEmulator",
    "Stack",
    "StackConfig",
    "StackError",
    "checkout_root",
    "cloud_sdk_root",
    "java_executable",
    "main",
    "redis_server_executable",
]
