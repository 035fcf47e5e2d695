"""Temporary stand-ins for the shared fixtures (``stack``, ``spanner_db``, ``pubsub_topics``) until they land on
main: same names and shapes, on this branch's own emulator ports (Spanner 29010/29020, Pub/Sub 28085)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SPANNER_GRPC, SPANNER_REST, PUBSUB = 29010, 29020, 28085
TEST_PROJECT, TEST_INSTANCE = "test-project", "test-instance"
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "spanner.sql"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("localhost", port)) == 0


def _sdk_root() -> Path:
    return Path(os.path.realpath(shutil.which("gcloud"))).parents[1]


@pytest.fixture(scope="session")
def stack() -> Iterator[None]:
    started = []
    if not _listening(SPANNER_GRPC):
        started.append(
            subprocess.Popen(
                [
                    str(_sdk_root() / "bin/cloud_spanner_emulator/gateway_main"),
                    "--hostname=localhost",
                    f"--grpc_port={SPANNER_GRPC}",
                    f"--http_port={SPANNER_REST}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    if not _listening(PUBSUB):
        started.append(
            subprocess.Popen(
                [
                    str(_sdk_root() / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
                    "--host=localhost",
                    f"--port={PUBSUB}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 30
    while not (_listening(SPANNER_GRPC) and _listening(PUBSUB)):
        if time.monotonic() > deadline:
            raise RuntimeError("emulators did not start")
        time.sleep(0.2)
    time.sleep(1.0 if started else 0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPANNER_EMULATOR_HOST", f"localhost:{SPANNER_GRPC}")
        patch.setenv("PUBSUB_EMULATOR_HOST", f"localhost:{PUBSUB}")
        patch.setenv("GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW", "false")
        from google.cloud import spanner

        instance = spanner.Client(project=TEST_PROJECT).instance(
            TEST_INSTANCE,
            configuration_name=f"projects/{TEST_PROJECT}/instanceConfigs/emulator-config",
            node_count=1,
        )
        if not instance.exists():
            instance.create().result(60)
        yield None
    for process in started:
        os.killpg(process.pid, 15)


def schema_statements() -> list[str]:
    text = "\n".join(line for line in SCHEMA.read_text().splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


@dataclass
class TestDatabase:
    __test__ = False
    project: str
    instance: str
    database_id: str
    database: Any

    def pipeline_args(self) -> list[str]:
        return [
            f"--spanner_project={self.project}",
            f"--spanner_instance={self.instance}",
            f"--spanner_database={self.database_id}",
        ]


@pytest.fixture
def spanner_db(stack: None) -> Iterator[TestDatabase]:
    from google.cloud import spanner

    database_id = "t" + uuid.uuid4().hex[:12]
    handle = (
        spanner.Client(project=TEST_PROJECT)
        .instance(TEST_INSTANCE)
        .database(database_id, ddl_statements=schema_statements())
    )
    handle.create().result(60)
    yield TestDatabase(TEST_PROJECT, TEST_INSTANCE, database_id, handle)
    handle.drop()


@dataclass(frozen=True)
class TopicRef:
    topic: str
    subscription: str


@dataclass
class PubSubTopics:
    project: str = TEST_PROJECT
    created: list[TopicRef] = field(default_factory=list)

    def create(self, name: str = "topic") -> TopicRef:
        from google.cloud import pubsub_v1

        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        unique = f"{name}-{uuid.uuid4().hex[:12]}"
        ref = TopicRef(
            publisher.topic_path(self.project, unique), subscriber.subscription_path(self.project, unique)
        )
        publisher.create_topic(name=ref.topic)
        subscriber.create_subscription(name=ref.subscription, topic=ref.topic)
        self.created.append(ref)
        return ref

    def pull(self, topic: TopicRef, max_messages: int = 100, timeout_s: float = 5.0) -> list[Any]:
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        deadline = time.monotonic() + timeout_s
        while True:
            response = subscriber.pull(
                subscription=topic.subscription,
                max_messages=max_messages,
                timeout=max(0.5, deadline - time.monotonic()),
            )
            if response.received_messages or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if response.received_messages:
            subscriber.acknowledge(
                subscription=topic.subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
        return [m.message for m in response.received_messages]


@pytest.fixture
def pubsub_topics(stack: None) -> Iterator[PubSubTopics]:
    yield PubSubTopics()
