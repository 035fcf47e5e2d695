"""A bulk update's release longer than a release name may be is a 400 naming the limit, and sends nothing.

Its status change would be a dead letter (``resolution.version`` past the limit, docs/limits.md); the API says
so at once instead of accepting it (202) for nothing.
"""

from __future__ import annotations

from api.bulk import parse_update
from tests.api.test_bulk import client, put, world  # noqa: F401  (fixtures; topic is tests/api/conftest.py's)
from tests.api.test_bulk_body import bad
from transforms.core import limits


def test_in_release_at_the_release_limit_is_accepted_and_longer_is_400_naming_the_limit():
    version = "é" * (limits.MAX_RELEASE_BYTES // 2)
    assert (
        parse_update({"status": "resolved", "statusDetails": {"inRelease": version}}).resolution_version
        == version
    )
    detail = bad({"status": "resolved", "statusDetails": {"inRelease": version + "a"}})
    assert detail == "statusDetails.inRelease is 201 bytes long; a release version is at most 200 bytes."


def test_a_too_long_in_release_is_answered_400_and_publishes_nothing(client, world, topic, pubsub_topics):  # noqa: F811
    group = world.groups[0]
    # Longer than a release name, well within the body's limit (65,536 bytes: a longer body is refused as such).
    body = {"status": "resolved", "statusDetails": {"inRelease": "v" * 10_000}}
    response = put(client, world.write_token, {"id": str(group.group_id)}, body)
    assert response.status_code == 400
    assert "at most 200 bytes" in response.json()["detail"]
    assert pubsub_topics.pull(topic, timeout_s=1.0) == []
