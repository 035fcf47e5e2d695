"""Fixtures of the issue index's tests that publish status changes: a topic, and the index publishing to it."""

from __future__ import annotations

import pytest
from google.cloud import pubsub_v1

from api.bulk import StatusChangePublisher
from api.directory import Directory
from api.service import IssueIndex
from tests.conftest import TopicRef


@pytest.fixture
def topic(pubsub_topics) -> TopicRef:
    """The status-change topic, with a subscription to read what the index published."""
    return pubsub_topics.create("status-changes")


@pytest.fixture
def publishing_index(spanner_db, topic) -> IssueIndex:
    """The issue index over the test's database (its directory read afresh on every request), publishing
    status changes to ``topic``."""
    database = spanner_db.database
    publisher = StatusChangePublisher(pubsub_v1.PublisherClient(), topic.topic)
    return IssueIndex(database, Directory(database, ttl=0, token_ttl=0), publisher)
