"""Shared pytest fixtures: the local stack, and a fresh Spanner database, Pub/Sub topics and Redis keys per test.

Integration tests ask for these fixtures by name; a test that asks for none of them starts nothing. A test
using ``stack`` (directly or through another fixture below) is marked ``integration`` automatically, so
``pytest -m "not integration"`` runs only the tests that need no server.

Session scope
    ``stack``: starts the stack's Pub/Sub emulator and Redis if they are not running (ports from
    ``STACK_PUBSUB_PORT``, ``STACK_REDIS_PORT``; defaults 8085, 6379) and a Spanner emulator of the test
    process's own (:class:`TestSpanner`: on free ports the system gives, restarted between test modules when
    its clock has run ahead, stopped at the end of the session; the stack's Spanner emulator is not used),
    sets ``PUBSUB_EMULATOR_HOST``, ``SPANNER_EMULATOR_HOST``, ``REDIS_URL`` and
    ``GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS(_FOR_RW)=false`` for the session, and gives a
    :class:`pipeline.stack.StackConfig` (with the own emulator's Spanner ports). Services it started are
    stopped at the end of the session unless ``STACK_KEEP=1``; services that were already running are left
    running.
    ``spanner_instance``: the id of an emulator instance (``test-instance`` in project ``test-project``).
    ``fault_spanner``: a second Spanner emulator started with ``--enable_fault_injection`` (it aborts commits
    at random), on ``STACK_FAULT_SPANNER_GRPC_PORT`` / ``STACK_FAULT_SPANNER_REST_PORT`` (defaults: the stack's
    Spanner ports + 2, + 2 more for each pytest-xdist worker after the first); a
    :class:`pipeline.stack.SpannerEmulator` whose ``host`` goes in ``SPANNER_EMULATOR_HOST``. Started on first
    use, stopped at the end of the session.

Function scope
    ``spanner_db``: a new database with the full schema applied (about 65 ms; `bench/stack_timings.py`), dropped after the test; a
    :class:`TestDatabase` with ``project``, ``instance``, ``database_id``, the shared ``database`` handle (from
    ``transforms.storage.clients``) and ``pipeline_args()`` (``--spanner_project=...`` etc.).
    ``spanner_db_factory``: a function making more such databases in one test (to compare two runs).
    ``fault_spanner_db``: the same on the fault-injecting emulator; ``SPANNER_EMULATOR_HOST`` points at that
    emulator for the duration of the test.
    ``pubsub_topics``: a :class:`PubSubTopics` factory; ``pubsub_topics.create("input")`` makes a topic with
    a subscription (unique names), ``publish`` and ``pull`` use them; all are deleted after the test.
    ``redis_ns``: a :class:`RedisNamespace` with the ``url``, a unique key ``prefix`` and a ``client``; keys
    under the prefix are deleted after the test.

Example::

    def test_something(spanner_db, pubsub_topics, redis_ns):
        registry.register_project(spanner_db.database, project_id=1, organization_id=1, slug="backend")
        topic = pubsub_topics.create("occurrences")
        pubsub_topics.publish(topic, b"{...}", kind="occurrence")
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pipeline import admin
from pipeline.options import spanner_args
from pipeline.stack import Service, SpannerEmulator, Stack, StackConfig
from tests.workers import exclusive, worker_number
from transforms.storage import clients

if TYPE_CHECKING:
    import redis
    from google.cloud.spanner_v1.database import Database

TEST_PROJECT = "test-project"
TEST_INSTANCE = "test-instance"

_STACK_FIXTURES = {"stack"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------------------------------------------
# Session


@pytest.fixture(scope="session")
def stack() -> Iterator[StackConfig]:
    shared = StackConfig.from_env()
    running = Stack(shared)
    with exclusive(shared.stack_dir / "tests.lock"):  # test processes (pytest -n) start it once
        started: list[Service] = [s for s in (running.pubsub, running.redis) if not s.healthy()]
        for service in started:
            service.start()
    spanner = TestSpanner(shared)
    config = dataclasses.replace(
        shared, spanner_grpc_port=spanner.emulator.grpc_port, spanner_rest_port=spanner.emulator.rest_port
    )
    global _test_spanner
    _test_spanner = spanner
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in config.env().items():
                patch.setenv(name, value)
            yield config
            clients.reset()
    finally:
        _test_spanner = None
        spanner.emulator.stop()
    # Under pytest -n, another test process may still use what this one started: it is left running
    # (./run_tests.sh stops the stack at the end).
    if os.environ.get("STACK_KEEP") != "1" and "PYTEST_XDIST_WORKER" not in os.environ:
        for service in started:
            service.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestSpanner:
    """The Spanner emulator of one test process, on two ports the system gives it (so that no other test
    process, of this run or another checkout's, shares or restarts it), restarted between test modules when its
    clock has run ahead (``restart_if_ahead``).

    Why: the emulator's clock never hands out the same time twice (it adds 1 us when asked twice within a
    microsecond), so it runs a little further ahead of the real time with nearly every request, and a strong read
    waits until the real time reaches its read timestamp: after the ~40,000 requests of tests/api every read
    waited ~30 ms. Only a new emulator process starts level again (docs/performance.md, "The test suite's
    time, and the Spanner emulator's slowdown").
    """

    __test__ = False  # not a test class, despite its name

    PROBE_INSTANCE = "emulator-clock"
    PROBE_DATABASE = "clock"

    def __init__(self, config: StackConfig) -> None:
        grpc_port = _free_port()
        rest_port = _free_port()
        while rest_port == grpc_port:
            rest_port = _free_port()
        self.emulator = SpannerEmulator(grpc_port, rest_port, config, name="spanner-tests")
        self.restart_ahead_ms = float(os.environ.get("TEST_SPANNER_RESTART_MS") or 2.0)
        self._probe_session: str | None = None  # a session in the probe's database, kept between probes
        self.emulator.start()

    def restart_if_ahead(self) -> None:
        """Restart the emulator if its clock is more than ``TEST_SPANNER_RESTART_MS`` (default 2; 0: never)
        ahead and it holds no database (one alive now may belong to a fixture of a wider scope, which later
        tests read). Its instances are created again; nothing else of the emulator's outlives a restart."""
        if self.restart_ahead_ms <= 0 or clients.spanner_emulator_host() != self.emulator.host:
            return
        instances = self._instances_if_no_database()
        if instances is None:
            return
        ahead = self.clock_ahead_ms()
        if ahead <= self.restart_ahead_ms:
            return
        started = time.monotonic()
        self._probe_session = None
        clients.forget_spanner()
        self.emulator.stop()
        self.emulator.start()
        for instance in instances:
            admin.ensure_instance(TEST_PROJECT, instance)
        with self.emulator.log_file.open("a") as log:
            took = time.monotonic() - started
            log.write(f"=== tests: restarted in {took:.2f} s, its clock was {ahead:.2f} ms ahead\n")

    def _instances_if_no_database(self) -> list[str] | None:
        """The ids of the emulator's instances (the probe's aside) if none holds a database, else None."""
        client = clients.spanner_client(TEST_PROJECT)
        instances = []
        for instance in client.list_instances():
            instance_id = instance.name.rsplit("/", 1)[1]
            if instance_id == self.PROBE_INSTANCE:
                continue
            if any(True for _ in client.instance(instance_id).list_databases()):
                return None
            instances.append(instance_id)
        return instances

    def clock_ahead_ms(self) -> float:
        """How far the emulator's clock is ahead of the real time, in ms, at least: a strong read-only
        transaction's read timestamp minus the time its BeginTransaction returned (the larger of two)."""
        from google.cloud.spanner_v1 import BeginTransactionRequest, TransactionOptions

        database = clients.spanner_database(TEST_PROJECT, self.PROBE_INSTANCE, self.PROBE_DATABASE)
        api = database.spanner_api
        if self._probe_session is None:
            admin.ensure_instance(TEST_PROJECT, self.PROBE_INSTANCE)
            if not database.exists():
                database.create().result(60)
            self._probe_session = api.create_session(database=database.name).name
        options = TransactionOptions(
            read_only=TransactionOptions.ReadOnly(strong=True, return_read_timestamp=True)
        )
        ahead = []
        for _ in range(2):
            request = BeginTransactionRequest(session=self._probe_session, options=options)
            read_timestamp = api.begin_transaction(request=request).read_timestamp.timestamp()
            ahead.append((read_timestamp - time.time()) * 1000)
        return max(ahead)


_test_spanner: TestSpanner | None = None


def _level_clock() -> None:
    """Restart this process's Spanner emulator if its clock has run ahead and it holds no database: before each
    test module, and before a test's database is created."""
    if _test_spanner is not None:
        _test_spanner.restart_if_ahead()


@pytest.fixture(scope="module", autouse=True)
def _level_clock_per_module() -> None:
    _level_clock()


@pytest.fixture(scope="session")
def spanner_instance(stack: StackConfig) -> str:
    admin.ensure_instance(TEST_PROJECT, TEST_INSTANCE)
    return TEST_INSTANCE


@pytest.fixture(scope="session")
def fault_spanner(stack: StackConfig) -> Iterator[SpannerEmulator]:
    offset = 2 * worker_number()  # default ports: 9012/9022, then 9014/9024 for worker gw1...
    shared = StackConfig.from_env()  # ``stack``'s Spanner ports are those of the test process's own emulator
    grpc_port = int(os.environ.get("STACK_FAULT_SPANNER_GRPC_PORT") or shared.spanner_grpc_port + 2) + offset
    rest_port = int(os.environ.get("STACK_FAULT_SPANNER_REST_PORT") or shared.spanner_rest_port + 2) + offset
    emulator = SpannerEmulator(
        grpc_port, rest_port, stack, extra_flags=["--enable_fault_injection"], name="spanner-faults"
    )
    already = emulator.healthy()
    emulator.start()
    yield emulator
    if not already:
        emulator.stop()


# ---------------------------------------------------------------------------------------------------------------
# Spanner


@dataclass
class TestDatabase:
    """A database of the test's own, with the full schema."""

    __test__ = False  # not a test class, despite its name

    project: str
    instance: str
    database_id: str
    database: Database
    emulator_host: str

    def pipeline_args(self) -> list[str]:
        return spanner_args(self.project, self.instance, self.database_id)


def _fresh_database(emulator_host: str) -> Iterator[TestDatabase]:
    database_id = _unique("t")
    admin.create_database(TEST_PROJECT, TEST_INSTANCE, database_id)
    handle = clients.spanner_database(TEST_PROJECT, TEST_INSTANCE, database_id)
    yield TestDatabase(TEST_PROJECT, TEST_INSTANCE, database_id, handle, emulator_host)
    clients.forget_database(TEST_PROJECT, TEST_INSTANCE, database_id)
    handle.drop()


@pytest.fixture
def spanner_db(stack: StackConfig, spanner_instance: str) -> Iterator[TestDatabase]:
    _level_clock()
    yield from _fresh_database(stack.spanner_host)


@pytest.fixture
def spanner_db_factory(stack: StackConfig, spanner_instance: str) -> Iterator[Any]:
    """Makes more fresh databases for one test (to compare two runs); all are dropped afterwards."""
    made: list[Iterator[TestDatabase]] = []

    def make() -> TestDatabase:
        _level_clock()
        database = _fresh_database(stack.spanner_host)
        made.append(database)
        return next(database)

    yield make
    for database in made:
        next(database, None)


@pytest.fixture
def fault_spanner_db(
    fault_spanner: SpannerEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestDatabase]:
    monkeypatch.setenv(clients.SPANNER_EMULATOR_VAR, fault_spanner.host)
    admin.ensure_instance(TEST_PROJECT, TEST_INSTANCE)
    yield from _fresh_database(fault_spanner.host)


# ---------------------------------------------------------------------------------------------------------------
# Pub/Sub


@dataclass(frozen=True)
class TopicRef:
    """A topic and its one subscription, as full resource paths."""

    topic: str
    subscription: str


@dataclass
class PubSubTopics:
    """Creates topics with a subscription on the Pub/Sub emulator, and deletes them at the end of the test."""

    project: str = TEST_PROJECT
    created: list[TopicRef] = field(default_factory=list)

    def create(self, name: str = "topic", *, ack_deadline_s: int = 60) -> TopicRef:
        publisher, subscriber = clients.pubsub_publisher(), clients.pubsub_subscriber()
        unique = _unique(f"{name}-")
        ref = TopicRef(
            publisher.topic_path(self.project, unique),
            subscriber.subscription_path(self.project, f"{unique}-sub"),
        )
        publisher.create_topic(name=ref.topic)
        subscriber.create_subscription(
            name=ref.subscription, topic=ref.topic, ack_deadline_seconds=ack_deadline_s
        )
        self.created.append(ref)
        return ref

    def publish(self, topic: TopicRef | str, data: bytes, **attributes: str) -> str:
        """Publish one message and wait for its id."""
        path = topic.topic if isinstance(topic, TopicRef) else topic
        return clients.pubsub_publisher().publish(path, data, **attributes).result(timeout=30)

    def pull(self, topic: TopicRef | str, max_messages: int = 100, timeout_s: float = 5.0) -> list[Any]:
        """Pull and acknowledge up to ``max_messages``, waiting up to ``timeout_s`` for the first ones.

        Returns ``google.pubsub_v1.PubsubMessage`` objects (``data``, ``attributes``, ``message_id``).
        """
        path = topic.subscription if isinstance(topic, TopicRef) else topic
        subscriber = clients.pubsub_subscriber()
        deadline = time.monotonic() + timeout_s
        while True:
            response = subscriber.pull(
                subscription=path, max_messages=max_messages, timeout=max(0.5, deadline - time.monotonic())
            )
            if response.received_messages or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if response.received_messages:
            subscriber.acknowledge(subscription=path, ack_ids=[m.ack_id for m in response.received_messages])
        return [m.message for m in response.received_messages]

    def cleanup(self) -> None:
        publisher, subscriber = clients.pubsub_publisher(), clients.pubsub_subscriber()
        for ref in self.created:
            subscriber.delete_subscription(subscription=ref.subscription)
            publisher.delete_topic(topic=ref.topic)
        self.created.clear()


@pytest.fixture
def pubsub_topics(stack: StackConfig) -> Iterator[PubSubTopics]:
    topics = PubSubTopics()
    yield topics
    topics.cleanup()


# ---------------------------------------------------------------------------------------------------------------
# Redis


@dataclass(frozen=True)
class RedisNamespace:
    """A key prefix of the test's own on the stack's Redis."""

    url: str
    prefix: str
    client: redis.Redis

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest.fixture
def redis_ns(stack: StackConfig) -> Iterator[RedisNamespace]:
    client = clients.redis_client(stack.redis_url)
    namespace = RedisNamespace(stack.redis_url, _unique("test:") + ":", client)
    yield namespace
    keys = list(client.scan_iter(match=f"{namespace.prefix}*", count=1000))
    if keys:
        client.delete(*keys)
