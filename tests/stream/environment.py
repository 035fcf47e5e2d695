"""A complete, private environment for one pipeline run: a database with projects, topics, a Redis prefix."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import admin
from pipeline.stack import StackConfig
from tests.conftest import TEST_INSTANCE, TEST_PROJECT, TestDatabase
from tests.stream import harness
from transforms.core.envelopes import archive_line
from transforms.core.model import ProjectInfo, RawMessage
from transforms.storage import clients, registry

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database

PROJECTS = ((1, 1, "backend", "acme"), (2, 1, "frontend", None))


@dataclass
class StreamEnv:
    """What one pipeline run needs: a database with projects 1 and 2, an input topic with a subscription
    that retains acknowledged messages (so they can be replayed), a dead-letter topic with a subscription,
    and a Redis key prefix of its own."""

    database: TestDatabase
    input_topic: str
    input_subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str
    redis_url: str
    redis_prefix: str

    def args(self, *extra: str, quota: bool = True, redis_url: str | None = None) -> list[str]:
        return harness.pipeline_args(
            self.database,
            self.input_subscription,
            dead_letter_topic=self.dead_letter_topic,
            redis_url=(redis_url or self.redis_url) if quota else None,
            quota_key_prefix=self.redis_prefix,
            extra=extra,
        )


@contextlib.contextmanager
def stream_env(stack: StackConfig, name: str) -> Iterator[StreamEnv]:
    unique = f"{name}-{uuid.uuid4().hex[:8]}"
    database_id = f"s{uuid.uuid4().hex[:12]}"
    admin.ensure_instance(TEST_PROJECT, TEST_INSTANCE)
    admin.create_database(TEST_PROJECT, TEST_INSTANCE, database_id)
    handle = clients.spanner_database(TEST_PROJECT, TEST_INSTANCE, database_id)
    host = clients.spanner_emulator_host() or ""
    register_projects(handle)
    publisher = clients.pubsub_publisher()
    input_topic = publisher.topic_path(TEST_PROJECT, unique)
    dead_letter_topic = publisher.topic_path(TEST_PROJECT, f"{unique}-dead")
    publisher.create_topic(name=input_topic)
    publisher.create_topic(name=dead_letter_topic)
    input_subscription = harness.create_subscription(input_topic, f"{unique}-sub", retain_acked=True)
    dead_letter_subscription = harness.create_subscription(dead_letter_topic, f"{unique}-dead-sub")
    prefix = f"test:{unique}"
    try:
        yield StreamEnv(
            TestDatabase(TEST_PROJECT, TEST_INSTANCE, database_id, handle, host),
            input_topic,
            input_subscription,
            dead_letter_topic,
            dead_letter_subscription,
            stack.redis_url,
            prefix,
        )
    finally:
        for subscription in (input_subscription, dead_letter_subscription):
            with contextlib.suppress(Exception):
                harness.delete_subscription(subscription)
        for topic in (input_topic, dead_letter_topic):
            with contextlib.suppress(Exception):
                publisher.delete_topic(topic=topic)
        with contextlib.suppress(Exception):
            redis = clients.redis_client(stack.redis_url)
            keys = list(redis.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                redis.delete(*keys)
        clients.forget_database(TEST_PROJECT, TEST_INSTANCE, database_id)
        handle.drop()


def register_projects(database: Database) -> None:
    """Registers ``PROJECTS`` in ``database`` (a Spanner database handle)."""
    registry.register_projects(database, (ProjectInfo(*project) for project in PROJECTS))


def backfill_scripted(
    database: TestDatabase, messages: Sequence[harness.Scripted], tmp_path: Path
) -> dict[str, list[dict]]:
    """Backfills ``messages`` (archived in ``tmp_path`` with their labels as ids, their message times and
    attributes) into ``database``, with ``PROJECTS`` registered, without a creation quota; returns its tables."""
    from pipeline import backfill as backfill_pipeline

    register_projects(database.database)
    archive = tmp_path / "scripted.jsonl"
    archive.write_bytes(
        b"\n".join(
            archive_line(RawMessage(m.label, m.message_time, m.data, dict(m.attributes))) for m in messages
        )
        + b"\n"
    )
    args = [
        f"--input={archive}",
        f"--dead_letter_path={tmp_path / 'dead-letters'}",
        "--no_creation_quota",
        *database.pipeline_args(),
    ]
    assert backfill_pipeline.main(args) == 0
    return harness.read_tables(database.database)
