"""The client's first calls (issue 19, point 3): the API index, the organization list, an organization's projects
and a project's details, in Sentry's shape and scoped to the token's organization."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.directory import Directory
from api.service import IssueIndex
from tests.api.factories import World, build_world
from transforms.storage import registry


@pytest.fixture
def world(spanner_db) -> World:
    world = build_world(spanner_db.database, size=5)
    registry.register_project(
        spanner_db.database,
        project_id=12,
        organization_id=1,
        slug="frontend",
        features=["organizations:x-ingest"],
    )
    return world


@pytest.fixture
def client(spanner_db) -> TestClient:
    database = spanner_db.database
    return TestClient(create_app(IssueIndex(database, Directory(database, ttl=0, token_ttl=0))))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_index_reports_the_tokens_scopes(client, world):
    assert client.get("/api/0/").json() == {"version": "0", "auth": None, "user": None}
    body = client.get("/api/0/", headers=auth(world.read_token)).json()
    assert body == {
        "version": "0",
        "auth": {"scopes": ["event:read", "org:read", "project:read"]},
        "user": None,
    }
    scopes = client.get("/api/0/", headers=auth(world.write_token)).json()["auth"]["scopes"]
    assert {"event:write", "event:admin"} <= set(scopes)
    response = client.get("/api/0/", headers=auth("sntryu_" + "0" * 64))
    assert response.status_code == 401


def test_the_organization_list_is_the_tokens_organization(client, world):
    response = client.get("/api/0/organizations/", params={"cursor": ""}, headers=auth(world.read_token))
    assert response.status_code == 200
    (org,) = response.json()
    assert (org["id"], org["slug"], org["name"]) == ("1", "acme", "acme")
    datetime.fromisoformat(org["dateCreated"].replace("Z", "+00:00"))
    assert org["isEarlyAdopter"] is False and org["require2FA"] is False
    assert org["requireEmailVerification"] is False and org["features"] == ["organizations:x-ingest"]
    assert 'rel="next"; results="false"' in response.headers["link"]
    other = client.get("/api/0/organizations/", headers=auth(world.other_token)).json()
    assert [o["slug"] for o in other] == ["globex"]
    assert (
        client.get("/api/0/organizations/", params={"cursor": "0:0:0"}, headers=auth(world.read_token)).json()
        == []
    )
    assert client.get("/api/0/organizations/").status_code == 401


def test_an_organizations_projects_and_a_projects_details(client, world):
    response = client.get("/api/0/organizations/acme/projects/", headers=auth(world.read_token))
    assert response.status_code == 200
    projects = response.json()
    assert [(p["id"], p["slug"], p["name"], p["team"]) for p in projects] == [
        ("11", "backend", "backend", None),
        ("12", "frontend", "frontend", None),
        ("13", "worker", "worker", None),
    ]
    assert projects[1]["features"] == ["organizations:x-ingest"]
    assert 'rel="next"; results="false"' in response.headers["link"]
    detail = client.get("/api/0/projects/acme/FRONTEND/", headers=auth(world.read_token)).json()
    assert (detail["id"], detail["slug"], detail["organization"]["slug"]) == ("12", "frontend", "acme")
    assert client.get("/api/0/organizations/1/", headers=auth(world.read_token)).json()["slug"] == "acme"


def test_other_organizations_and_unknown_projects_are_refused_as_for_issues(client, world):
    for path in (
        "/api/0/organizations/globex/projects/",
        "/api/0/organizations/globex/",
        "/api/0/projects/globex/backend/",
    ):
        response = client.get(path, headers=auth(world.read_token))
        assert response.status_code == 403, path
    response = client.get("/api/0/projects/acme/nope/", headers=auth(world.read_token))
    assert response.status_code == 404
    assert response.json() == {"detail": "The requested resource does not exist"}
    assert client.get("/api/0/organizations/acme/projects/").status_code == 401
