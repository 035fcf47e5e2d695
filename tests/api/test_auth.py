"""Authentication and organization isolation on every endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import new_token, token_hash
from api.bulk import StatusChangePublisher
from api.directory import Directory
from api.service import IssueIndex
from tests.api.factories import OTHER_ORG, World, add_token, build_world

ORG_PATH = "/api/0/organizations/{org}/issues/"
PROJECT_PATH = "/api/0/projects/{org}/{project}/issues/"


@dataclass
class Topic:
    """The status-change topic on the Pub/Sub emulator; ``published()`` pulls what reached it."""

    ref: object
    topics: object

    def published(self) -> list:
        return self.topics.pull(self.ref, timeout_s=1.0)


@pytest.fixture
def world(spanner_db) -> World:
    return build_world(spanner_db.database, size=20)


@pytest.fixture
def recorder(pubsub_topics) -> Topic:
    return Topic(pubsub_topics.create("status-changes"), pubsub_topics)


@pytest.fixture
def client(spanner_db, recorder) -> TestClient:
    from google.cloud import pubsub_v1

    database = spanner_db.database
    publisher = StatusChangePublisher(pubsub_v1.PublisherClient(), recorder.ref.topic)
    return TestClient(create_app(IssueIndex(database, Directory(database, ttl=0, token_ttl=0), publisher)))


def call(client, method, path, token=None, header=None, **kwargs):
    headers = {}
    if header is not None:
        headers["Authorization"] = header
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.request(method, path, headers=headers, **kwargs)


def test_tokens_look_like_sentry_user_tokens_and_are_stored_hashed():
    token = new_token()
    assert token.startswith("sntryu_") and len(token) == 7 + 64
    int(token[7:], 16)
    assert len(token_hash(token)) == 64 and token_hash(token) != token[7:]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "path", [ORG_PATH.format(org="acme"), PROJECT_PATH.format(org="acme", project="backend")]
)
def test_missing_or_wrong_credentials_are_401(client, world, recorder, method, path):
    response = call(client, method, path)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response.headers["www-authenticate"] == "Bearer"
    for header in (
        f"Bearer {new_token()}",
        "Bearer",
        f"Token {world.read_token}",
        "garbage",
        f"Bearer {world.read_token} x",
    ):
        response = call(client, method, path, header=header, params={"id": "1"}, json={"status": "resolved"})
        assert response.status_code == 401, header
        assert response.json() == {"detail": "Invalid token"}
    assert recorder.published() == []


def test_organization_by_id_or_slug(client, world):
    for org in ("acme", "1"):
        assert call(client, "GET", ORG_PATH.format(org=org), world.read_token).status_code == 200
    for project in ("backend", "11"):
        path = PROJECT_PATH.format(org="1", project=project)
        assert call(client, "GET", path, world.read_token).status_code == 200


@pytest.mark.parametrize("org", ["globex", "2", "no-such-org", "999"])
def test_another_or_unknown_organization_is_the_same_403(client, world, recorder, org):
    for method in ("GET", "PUT", "DELETE"):
        for path in (ORG_PATH.format(org=org), PROJECT_PATH.format(org=org, project="backend")):
            response = call(
                client,
                method,
                path,
                world.write_token,
                params={"id": str(world.other[0].group_id)},
                json={"status": "resolved"},
            )
            assert response.status_code == 403, (method, path)
            assert response.json() == {"detail": "You do not have permission to perform this action."}
    assert recorder.published() == []


def test_read_tokens_cannot_change_anything(client, world, recorder):
    gid = str(world.groups[0].group_id)
    for method, path in (
        ("PUT", ORG_PATH.format(org="acme")),
        ("DELETE", ORG_PATH.format(org="acme")),
        ("PUT", PROJECT_PATH.format(org="acme", project="backend")),
        ("DELETE", PROJECT_PATH.format(org="acme", project="backend")),
    ):
        response = call(
            client, method, path, world.read_token, params={"id": gid}, json={"status": "resolved"}
        )
        assert response.status_code == 403
    assert recorder.published() == []


def test_project_of_another_organization_is_404_like_an_unknown_one(client, world):
    for project in ("21", "no-such-project"):
        response = call(client, "GET", PROJECT_PATH.format(org="acme", project=project), world.read_token)
        assert response.status_code == 404
        assert response.json() == {"detail": "The requested resource does not exist"}


def test_naming_another_organizations_project_in_a_list_is_403(client, world):
    response = call(client, "GET", ORG_PATH.format(org="acme"), world.read_token, params={"project": "21"})
    assert response.status_code == 403


def test_ids_of_another_organization_are_ignored_by_bulk_operations(client, world, recorder):
    other_ids = [str(g.group_id) for g in world.other[:3]]
    for method in ("PUT", "DELETE"):
        response = call(
            client,
            method,
            ORG_PATH.format(org="acme"),
            world.write_token,
            params={"id": other_ids},
            json={"status": "resolved"},
        )
        assert response.status_code == 204
    assert recorder.published() == []


def test_a_new_token_works_at_once_and_tokens_are_bound_to_their_organization(client, spanner_db, world):
    token = add_token(spanner_db.database, OTHER_ORG, "read")
    assert call(client, "GET", ORG_PATH.format(org="globex"), token).status_code == 200
    assert call(client, "GET", ORG_PATH.format(org="acme"), token).status_code == 403


def test_openapi_document_is_served_without_a_token(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths[ORG_PATH.replace("{org}", "{organization}")]) == {"get", "put", "delete"}
    assert set(paths[PROJECT_PATH.replace("{org}", "{organization}")]) == {"get", "put", "delete"}
