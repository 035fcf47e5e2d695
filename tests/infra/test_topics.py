"""``pipeline.admin create-topics``: the pipeline's Pub/Sub resources, created once."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from pipeline import admin
from transforms.storage import clients

REPO = Path(__file__).resolve().parents[2]


def _delete(paths: list[str]) -> None:
    publisher, subscriber = clients.pubsub_publisher(), clients.pubsub_subscriber()
    for path in paths:
        if "/subscriptions/" in path:
            subscriber.delete_subscription(subscription=path)
    for path in paths:
        if "/topics/" in path:
            publisher.delete_topic(topic=path)


def test_create_topics_creates_what_is_missing_and_input_reaches_the_subscription(stack) -> None:
    suffix = uuid.uuid4().hex[:8]
    names = dict(
        input_topic=f"in-{suffix}", input_subscription=f"in-{suffix}-sub", dead_letter_topic=f"dl-{suffix}"
    )
    first = admin.create_topics("test-project", **names)
    try:
        assert first == [
            (f"projects/test-project/topics/in-{suffix}", True),
            (f"projects/test-project/subscriptions/in-{suffix}-sub", True),
            (f"projects/test-project/topics/dl-{suffix}", True),
            (f"projects/test-project/subscriptions/dl-{suffix}", True),
        ]
        assert admin.create_topics("test-project", **names) == [(path, False) for path, _ in first]

        clients.pubsub_publisher().publish(first[0][0], b"hello").result(timeout=30)
        clients.pubsub_publisher().publish(first[2][0], b"dead").result(timeout=30)
        for (subscription, _), expected in ((first[1], b"hello"), (first[3], b"dead")):
            response = clients.pubsub_subscriber().pull(
                subscription=subscription, max_messages=10, timeout=10
            )
            assert [m.message.data for m in response.received_messages] == [expected]
    finally:
        _delete([path for path, _ in first])


def test_create_topics_cli_prints_each_resource_and_whether_it_was_created(stack) -> None:
    suffix = uuid.uuid4().hex[:8]
    args = [
        sys.executable,
        "-m",
        "pipeline.admin",
        "create-topics",
        "--pubsub_project=test-project",
        f"--input_topic=cli-{suffix}",
        f"--input_subscription=cli-{suffix}",
        f"--dead_letter_topic=cli-dl-{suffix}",
    ]
    try:
        first = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == [
            f"projects/test-project/topics/cli-{suffix}: created",
            f"projects/test-project/subscriptions/cli-{suffix}: created",
            f"projects/test-project/topics/cli-dl-{suffix}: created",
            f"projects/test-project/subscriptions/cli-dl-{suffix}: created",
        ]
        second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert second.stdout.count(": exists") == 4
    finally:
        _delete(
            [
                f"projects/test-project/subscriptions/cli-{suffix}",
                f"projects/test-project/subscriptions/cli-dl-{suffix}",
                f"projects/test-project/topics/cli-{suffix}",
                f"projects/test-project/topics/cli-dl-{suffix}",
            ]
        )
