"""Bulk update and delete publish the right status-change messages to Pub/Sub (emulator), for the right groups."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from fastapi.testclient import TestClient
from google.cloud import pubsub_v1

from api.app import create_app
from api.bulk import StatusChangePublisher
from api.directory import Directory
from api.service import IssueIndex
from tests.api.factories import DAY, T0, World, add_release, build_world
from transforms.core.enums import GroupStatus, GroupSubStatus

ORG_PATH = "/api/0/organizations/acme/issues/"


@pytest.fixture
def world(spanner_db) -> World:
    return build_world(spanner_db.database, size=60)


@pytest.fixture
def client(publishing_index) -> TestClient:
    return TestClient(create_app(publishing_index))


def received(pubsub_topics, topic, expected: int, quiet: float = 1.0) -> list:
    """Pull until ``expected`` messages arrived, then make sure no more follow for ``quiet`` seconds."""
    messages: list = []
    deadline = time.monotonic() + 20
    while len(messages) < expected and time.monotonic() < deadline:
        messages += pubsub_topics.pull(topic, timeout_s=2.0)
    messages += pubsub_topics.pull(topic, timeout_s=quiet)
    return messages


def payloads(messages) -> dict[int, dict]:
    out = {}
    for message in messages:
        assert message.attributes["content_type"] == "application/json"
        payload = orjson.loads(message.data)
        assert payload["payload_type"] == "status_change"
        assert uuid.UUID(hex=payload["id"]).hex == payload["id"]
        out[int(payload["fingerprint"][0].removeprefix("fp-"))] = payload
    return out


def put(client, token, params, body, path=ORG_PATH):
    return client.put(path, params=params, json=body, headers={"Authorization": f"Bearer {token}"})


def delete(client, token, params, path=ORG_PATH):
    return client.delete(path, params=params, headers={"Authorization": f"Bearer {token}"})


def test_resolve_by_ids_publishes_one_status_change_per_group_of_the_organization(
    client, world, topic, pubsub_topics
):
    mine = world.groups[:3]
    ids = [str(g.group_id) for g in mine] + [str(world.other[0].group_id), "12345"]
    response = put(client, world.write_token, {"id": ids}, {"status": "resolved"})
    assert response.status_code == 202
    assert response.json() == {
        "ids": [str(g.group_id) for g in mine],
        "status": "resolved",
        "substatus": None,
        "statusDetails": {},
    }
    got = payloads(received(pubsub_topics, topic, 3))
    assert set(got) == {g.group_id for g in mine}
    for g in mine:
        payload = got[g.group_id]
        assert payload["project_id"] == g.project_id
        assert payload["fingerprint"] == [f"fp-{g.group_id}"]
        assert (payload["new_status"], payload["new_substatus"]) == (GroupStatus.RESOLVED, None)
        assert "resolution" not in payload
    assert len({p["id"] for p in got.values()}) == 3


@pytest.mark.parametrize(
    ("body", "status", "substatus"),
    [
        ({"status": "unresolved"}, GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING),
        ({"status": "ignored"}, GroupStatus.IGNORED, GroupSubStatus.FOREVER),
        ({"status": "muted", "snoozeDuration": None}, GroupStatus.IGNORED, GroupSubStatus.FOREVER),
        ({"status": "muted", "snoozeDuration": 60}, GroupStatus.IGNORED, GroupSubStatus.UNTIL_CONDITION_MET),
        (
            {"status": "ignored", "substatus": "archived_until_escalating"},
            GroupStatus.IGNORED,
            GroupSubStatus.UNTIL_ESCALATING,
        ),
    ],
)
def test_status_and_substatus_mapping(client, world, topic, pubsub_topics, body, status, substatus):
    g = world.groups[0]
    assert put(client, world.write_token, {"id": str(g.group_id)}, body).status_code == 202
    (payload,) = payloads(received(pubsub_topics, topic, 1)).values()
    assert (payload["new_status"], payload["new_substatus"]) == (status, substatus)


def test_resolve_in_release_and_in_next_release(client, spanner_db, world, topic, pubsub_topics):
    a = next(g for g in world.groups if g.project_id == 11)
    b = next(g for g in world.groups if g.project_id == 12)
    ids = {"id": [str(a.group_id), str(b.group_id)]}
    response = put(
        client, world.write_token, ids, {"status": "resolved", "statusDetails": {"inRelease": "3.1.4"}}
    )
    assert response.json()["statusDetails"] == {"inRelease": "3.1.4"}
    got = payloads(received(pubsub_topics, topic, 2))
    assert {p["resolution"]["version"] for p in got.values()} == {"3.1.4"}
    assert {p["resolution"]["type"] for p in got.values()} == {"in_release"}

    add_release(spanner_db.database, 11, "1.0.0", T0)
    add_release(spanner_db.database, 11, "1.1.0", T0 + DAY)
    add_release(spanner_db.database, 12, "9.0.0", T0 - DAY)
    response = put(client, world.write_token, ids, {"status": "resolvedInNextRelease"})
    assert response.status_code == 202
    assert response.json()["statusDetails"] == {"inNextRelease": True}
    got = payloads(received(pubsub_topics, topic, 2))
    assert got[a.group_id]["resolution"] == {"type": "in_next_release", "version": "1.1.0"}
    assert got[b.group_id]["resolution"] == {"type": "in_next_release", "version": "9.0.0"}
    assert got[a.group_id]["new_status"] == GroupStatus.RESOLVED


def test_in_next_release_without_a_release_is_400_and_sends_nothing(client, world, topic, pubsub_topics):
    g = next(g for g in world.groups if g.project_id == 13)
    response = put(
        client,
        world.write_token,
        {"id": str(g.group_id)},
        {"status": "resolved", "statusDetails": {"inNextRelease": True}},
    )
    assert response.status_code == 400
    assert "No release data" in response.json()["detail"]
    assert pubsub_topics.pull(topic, timeout_s=1.0) == []


def test_bulk_update_needs_ids_or_an_explicit_query(client, world, topic, pubsub_topics):
    response = put(client, world.write_token, {}, {"status": "resolved"})
    assert response.status_code == 400
    assert "explicit query" in response.json()["detail"]
    assert pubsub_topics.pull(topic, timeout_s=1.0) == []


def test_bulk_update_by_query_acts_on_the_matches(client, world, topic, pubsub_topics):
    matches = [
        g for g in world.groups if g.status == GroupStatus.UNRESOLVED and g.level == 50 and g.type != 6001
    ]
    response = put(client, world.write_token, {"query": "is:unresolved level:fatal"}, {"status": "ignored"})
    assert response.status_code == 202
    assert sorted(response.json()["ids"]) == sorted(str(g.group_id) for g in matches)
    assert set(payloads(received(pubsub_topics, topic, len(matches)))) == {g.group_id for g in matches}


def test_bulk_update_body_errors_are_400_before_anything_is_selected(client, world, topic, pubsub_topics):
    response = put(client, world.write_token, {"id": str(world.groups[0].group_id)}, {"status": "fixed"})
    assert response.status_code == 400
    response = put(client, world.write_token, {"id": "abc"}, {"status": "resolved"})
    assert response.status_code == 400 and 'Invalid id "abc"' in response.json()["detail"]
    response = client.put(
        ORG_PATH,
        params={"id": "1"},
        content=b"{not json",
        headers={"Authorization": f"Bearer {world.write_token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert pubsub_topics.pull(topic, timeout_s=1.0) == []


def test_project_endpoint_selects_by_status_within_the_project(client, world, topic, pubsub_topics):
    path = "/api/0/projects/acme/backend/issues/"
    resolved = [g for g in world.groups if g.project_id == 11 and g.status == GroupStatus.RESOLVED]
    response = put(client, world.write_token, {"status": "resolved"}, {"status": "unresolved"}, path)
    assert response.status_code == 202
    assert sorted(response.json()["ids"]) == sorted(str(g.group_id) for g in resolved)
    got = payloads(received(pubsub_topics, topic, len(resolved)))
    assert set(got) == {g.group_id for g in resolved}
    # ids of other projects are ignored on the project endpoint
    elsewhere = next(g for g in world.groups if g.project_id == 12)
    assert (
        put(
            client, world.write_token, {"id": str(elsewhere.group_id)}, {"status": "resolved"}, path
        ).status_code
        == 204
    )
    assert (
        put(client, world.write_token, {"status": "closed"}, {"status": "resolved"}, path).status_code == 400
    )


def test_delete_by_ids_publishes_delete_status_changes(client, world, topic, pubsub_topics):
    mine = world.groups[5:8]
    ids = [str(g.group_id) for g in mine] + [str(world.other[1].group_id)]
    response = delete(client, world.write_token, {"id": ids})
    assert response.status_code == 202
    assert response.json() == {"ids": [str(g.group_id) for g in mine]}
    got = payloads(received(pubsub_topics, topic, 3))
    assert set(got) == {g.group_id for g in mine}
    assert {(p["new_status"], p["new_substatus"]) for p in got.values()} == {
        (GroupStatus.PENDING_DELETION, None)
    }


def test_delete_with_nothing_matched_is_204(client, world, topic, pubsub_topics):
    assert delete(client, world.write_token, {"id": [str(world.other[0].group_id), "777"]}).status_code == 204
    assert delete(client, world.write_token, {"query": "is:resolved is:unresolved"}).status_code == 204
    assert pubsub_topics.pull(topic, timeout_s=1.0) == []


def test_delete_without_ids_needs_an_explicit_query(client, world, topic, pubsub_topics):
    response = delete(client, world.write_token, {})
    assert response.status_code == 400
    assert "explicit query" in response.json()["detail"]
    assert pubsub_topics.pull(topic, timeout_s=1.0) == []


def test_delete_by_query_takes_the_first_matches_up_to_the_limit(
    client, world, topic, pubsub_topics, monkeypatch
):
    import api.service

    monkeypatch.setattr(api.service, "BULK_LIMIT", 4)
    response = delete(client, world.write_token, {"query": "is:unresolved"})
    assert response.status_code == 202
    ids = response.json()["ids"]
    from tests.api.factories import expected_order

    first = expected_order([g for g in world.groups if g.status == 0 and g.type != 6001], "date")[:4]
    assert ids == [str(g.group_id) for g in first]
    assert set(payloads(received(pubsub_topics, topic, 4))) == {g.group_id for g in first}


def test_unreachable_topic_is_503(spanner_db, world):
    database = spanner_db.database
    publisher = StatusChangePublisher(
        pubsub_v1.PublisherClient(), "projects/test-project/topics/does-not-exist", 10
    )
    client = TestClient(create_app(IssueIndex(database, Directory(database, ttl=0, token_ttl=0), publisher)))
    response = put(client, world.write_token, {"id": str(world.groups[0].group_id)}, {"status": "resolved"})
    assert response.status_code == 503
    assert "could not be published" in response.json()["detail"]


def test_without_a_topic_bulk_operations_are_refused(spanner_db, world):
    database = spanner_db.database
    client = TestClient(create_app(IssueIndex(database, Directory(database, ttl=0, token_ttl=0))))
    response = delete(client, world.write_token, {"id": str(world.groups[0].group_id)})
    assert response.status_code == 503
    assert "--status_change_topic" in response.json()["detail"]
