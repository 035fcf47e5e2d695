"""TEMPORARY: a Pub/Sub emulator fixture for the archive tests until the shared ``tests/conftest.py`` lands.

Same API as the shared ``pubsub_topics`` fixture (``create(name)`` → ``TopicRef``); remove this file when the
shared fixtures are on main. Uses its own emulator on ``ARCHIVE_PUBSUB_PORT`` (default 48085).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PORT = int(os.environ.get("ARCHIVE_PUBSUB_PORT", "48085"))
TEST_PROJECT = "test-project"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "pubsub_topics" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


def _healthy() -> bool:
    try:
        with urllib.request.urlopen(f"http://localhost:{PORT}/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _launcher() -> Path:
    gcloud = shutil.which("gcloud")
    roots = [Path(gcloud).resolve().parent.parent] if gcloud else []
    roots.append(Path("/usr/lib/google-cloud-sdk"))
    for root in roots:
        launcher = root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
        if launcher.exists():
            return launcher
    raise RuntimeError("the Pub/Sub emulator is not installed (Google Cloud CLI component pubsub-emulator)")


@pytest.fixture(scope="session")
def _emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process = None
    if not _healthy():
        with socket.socket() as probe:
            if probe.connect_ex(("localhost", PORT)) == 0:
                raise RuntimeError(f"port {PORT} is taken by something that is not a Pub/Sub emulator")
        log = open(tmp_path_factory.mktemp("pubsub") / "emulator.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [str(_launcher()), "--host=localhost", f"--port={PORT}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not _healthy():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Pub/Sub emulator did not start")
            time.sleep(0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBSUB_EMULATOR_HOST", f"localhost:{PORT}")
        yield f"localhost:{PORT}"
    if process is not None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass(frozen=True)
class TopicRef:
    topic: str
    subscription: str


@dataclass
class PubSubTopics:
    project: str = TEST_PROJECT
    created: list[TopicRef] = field(default_factory=list)

    def create(self, name: str = "topic", *, ack_deadline_s: int = 60) -> TopicRef:
        from google.cloud import pubsub_v1

        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        unique = f"{name}-{uuid.uuid4().hex[:12]}"
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

    def cleanup(self) -> None:
        from google.cloud import pubsub_v1

        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        for ref in self.created:
            subscriber.delete_subscription(subscription=ref.subscription)
            publisher.delete_topic(topic=ref.topic)


@pytest.fixture
def pubsub_topics(_emulator: str) -> Iterator[PubSubTopics]:
    topics = PubSubTopics()
    yield topics
    topics.cleanup()
