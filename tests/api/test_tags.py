"""Tags and free text of groups through the API: the reads search uses (``api.tag_index.TagIndex``) and Sentry's
tags endpoints, on groups written by the pipeline's engine and Spanner writer into the emulator."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.directory import Directory
from api.search import ReadStats
from api.serializers import short_id
from api.service import IssueIndex
from api.tag_index import TagIndex, search_key
from tests.api.factories import add_organization, add_project, add_token
from tests.engine.builders import PROJECT, T0, Run, occurrence
from transforms.core import limits
from transforms.core.model import MICROS
from transforms.storage import tag_writer
from transforms.storage.spanner_writer import SpannerWriter

SECOND = MICROS
LINK_RE = re.compile(r'<([^>]*)>; rel="(previous|next)"; results="(true|false)"; cursor="([^"]*)"')


def group(*events: dict, fingerprint: str = "fp", title: str = "Slow query", start: int = T0) -> Run:
    """A group made by the engine from occurrences with the given event fields (tags, user...)."""
    run = Run()
    for n, fields in enumerate(events):
        run.apply([occurrence(start + n * SECOND, fingerprint=(fingerprint,), title=title, **fields)])
    return run


@pytest.fixture
def database(spanner_db):
    database = spanner_db.database
    add_organization(database, PROJECT.organization_id, "acme")
    add_project(database, PROJECT.project_id, PROJECT.organization_id, "backend")
    add_organization(database, 99, "globex")
    add_project(database, 98, 99, "other")
    return database


def write(database, *runs: Run) -> list[int]:
    SpannerWriter(database).write([write for run in runs for write in run.writes])
    return [run.group.group_id for run in runs]


@pytest.fixture
def client(database) -> TestClient:
    return TestClient(create_app(IssueIndex(database, Directory(database, ttl=0, token_ttl=0))))


@pytest.fixture
def token(database) -> str:
    return add_token(database, PROJECT.organization_id, "read")


def get(client: TestClient, token: str, path: str, params=None):
    return client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


# ---- the tags endpoints


def test_tags_lists_keys_with_totals_and_top_values_in_sentrys_shape(database, client, token):
    (group_id,) = write(
        database,
        group(
            {"tags": (("server_name", "web-1"),), "user": {"id": "7"}},
            {"tags": (("server_name", "web-2"),), "user": {"id": "7"}},
            {"tags": (("server_name", "web-1"),), "user": {"email": "a@example.com"}},
            {"tags": (("server_name", "web-1"),), "environment": "production"},
        ),
    )
    response = get(client, token, f"/api/0/organizations/acme/issues/{group_id}/tags/")
    assert response.status_code == 200, response.text
    tags = {tag["key"]: tag for tag in response.json()}
    assert [tag["key"] for tag in response.json()][:2] == ["level", "server_name"]  # most seen first
    assert set(tags) == {"level", "server_name", "user", "environment"}  # no search-only key
    server = tags["server_name"]
    assert (server["name"], server["uniqueValues"], server["totalValues"], server["otherValues"]) == (
        "Server",
        2,
        4,
        0,
    )
    top = server["topValues"]
    assert [(v["value"], v["count"]) for v in top] == [("web-1", 3), ("web-2", 1)]
    assert top[0] == {
        "key": "server_name",
        "name": "web-1",
        "value": "web-1",
        "count": 3,
        "lastSeen": "2024-06-01T12:00:03.000Z",
        "firstSeen": "2024-06-01T12:00:00.000Z",
    }
    user = tags["user"]["topValues"]
    assert [(v["value"], v["name"], v["count"], v["query"]) for v in user] == [
        ("id:7", "7", 2, 'user.id:"7"'),
        ("email:a@example.com", "a@example.com", 1, 'user.email:"a@example.com"'),
    ]


def test_tags_of_named_keys_and_a_value_limit(database, client, token):
    (group_id,) = write(database, group(*({"tags": (("k", str(n % 4)),)} for n in range(8))))
    response = get(client, token, f"/api/0/issues/{group_id}/tags/", [("key", "k"), ("limit", "2")])
    assert response.status_code == 200, response.text
    (tag,) = response.json()
    assert tag["key"] == "k" and tag["totalValues"] == 8 and len(tag["topValues"]) == 2


def test_one_tag_and_its_values_paginated_and_sorted(database, client, token):
    counts = {"a": 3, "b": 1, "c": 2}
    events = [{"tags": (("k", value),)} for value, count in counts.items() for _ in range(count)]
    (group_id,) = write(database, group(*events))
    base = f"/api/0/organizations/acme/issues/{group_id}/tags/k/"
    detail = get(client, token, base).json()
    assert (detail["key"], detail["totalValues"], len(detail["topValues"])) == ("k", 6, 3)
    by_count = get(client, token, base + "values/", {"sort": "count"}).json()
    assert [v["value"] for v in by_count] == ["a", "c", "b"]
    by_date = get(client, token, base + "values/", {"sort": "date"}).json()
    assert [v["value"] for v in by_date] == ["c", "b", "a"]  # last seen latest first
    first_page = get(client, token, base + "values/", {"sort": "count", "per_page": "2"})
    assert [v["value"] for v in first_page.json()] == ["a", "c"]
    links = {
        rel: (results, cursor) for _, rel, results, cursor in LINK_RE.findall(first_page.headers["link"])
    }
    assert links["next"][0] == "true" and links["previous"][0] == "false"
    second = get(
        client, token, base + "values/", {"sort": "count", "per_page": "2", "cursor": links["next"][1]}
    )
    assert [v["value"] for v in second.json()] == ["b"]


def test_a_short_id_names_the_issue_too(database, client, token):
    (group_id,) = write(database, group({"tags": (("k", "v"),)}))
    response = get(client, token, f"/api/0/organizations/acme/issues/{short_id('backend', group_id)}/tags/")
    assert response.status_code == 200 and {t["key"] for t in response.json()} == {"k", "level"}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/0/organizations/acme/issues/{id}/tags/nope/", 404),
        ("/api/0/organizations/acme/issues/{id}/tags/@text/values/", 404),
        ("/api/0/organizations/acme/issues/123/tags/", 404),
        ("/api/0/organizations/acme/issues/OTHER-{b36}/tags/", 404),
        ("/api/0/organizations/globex/issues/{id}/tags/", 403),
        ("/api/0/organizations/acme/issues/{id}/tags/?environment=production", 400),
        ("/api/0/organizations/acme/issues/{id}/tags/k/values/?statsPeriod=24h", 400),
        ("/api/0/organizations/acme/issues/{id}/tags/k/values/?sort=nope", 400),
    ],
)
def test_what_the_tags_endpoints_refuse(database, client, token, path, status):
    (group_id,) = write(database, group({"tags": (("k", "v"),)}))
    url = path.format(id=group_id, b36=short_id("x", group_id).split("-")[1])
    assert get(client, token, url).status_code == status


def test_another_organizations_token_never_sees_the_issue(database, client):
    (group_id,) = write(database, group({"tags": (("k", "v"),)}))
    other = add_token(database, 99, "read")
    assert get(client, other, f"/api/0/issues/{group_id}/tags/").status_code == 404
    assert get(client, other, f"/api/0/organizations/acme/issues/{group_id}/tags/").status_code == 403
    assert client.get(f"/api/0/issues/{group_id}/tags/").status_code == 401


def test_values_past_a_full_key_count_in_the_total_as_other_values(database, client, token, monkeypatch):
    monkeypatch.setattr(tag_writer, "TAG_VALUES_PER_KEY", 2)
    monkeypatch.setattr(limits, "TAG_VALUES_PER_KEY", 2)
    (group_id,) = write(database, group(*({"tags": (("k", value),)} for value in "abcab")))
    (tag,) = get(client, token, f"/api/0/issues/{group_id}/tags/", {"key": "k"}).json()
    assert (tag["uniqueValues"], tag["totalValues"], tag["otherValues"]) == (2, 5, 1)
    assert {v["value"]: v["count"] for v in tag["topValues"]} == {"a": 2, "b": 2}


# ---- the reads search uses


@pytest.fixture
def three_groups(database) -> list[int]:
    return write(
        database,
        group({"tags": (("browser", "Chrome 120"),), "user": {"email": "a@example.com"}}, fingerprint="one"),
        group({"tags": (("browser", "Firefox 121"),)}, {"tags": (("os", "Linux"),)}, fingerprint="two"),
        group({}, fingerprint="three", title="TypeError: cannot read properties of undefined"),
    )


def test_candidates_of_a_value_an_in_list_a_prefix_and_a_key(database, three_groups):
    one, two, _three = three_groups
    org = PROJECT.organization_id
    with database.snapshot(multi_use=True) as snapshot:
        index = TagIndex(snapshot)
        assert index.value_candidates(org, "browser", ["Chrome 120"]).group_ids == (one,)
        assert set(index.value_candidates(org, "browser", ["Chrome 120", "Firefox 121"]).group_ids) == {
            one,
            two,
        }
        assert index.prefix_candidates(org, "browser", "Fire").group_ids == (two,)
        assert index.key_candidates(org, "os").group_ids == (two,)
        assert index.value_candidates(org, search_key("user.email"), ["a@example.com"]).group_ids == (one,)
        assert index.value_candidates(org, "browser", ["Chrome 120"], projects=[98]).group_ids == ()
        assert index.value_candidates(org + 1, "browser", ["Chrome 120"]).group_ids == ()
        everything = index.key_candidates(org, "level", limit=2)
        assert not everything.complete and len(everything.group_ids) == 2
        assert index.key_candidates(org, "level", limit=3).complete


def test_membership_of_candidate_groups(database, three_groups):
    one, two, three = three_groups
    with database.snapshot(multi_use=True) as snapshot:
        index = TagIndex(snapshot)
        assert index.with_values([one, two, three], "browser", ["Firefox 121"]) == {two}
        assert index.with_prefix([one, two, three], "browser", "C") == {one}
        assert index.with_key([one, two, three], "os") == {two}
        assert index.beyond_caps([one, two, three], "browser") == set()
        assert index.values_of([one, two, three], "browser") == {one: ["Chrome 120"], two: ["Firefox 121"]}


def test_free_text_candidates_and_membership_match_every_word_the_last_as_a_prefix(database, three_groups):
    one, two, three = three_groups
    org = PROJECT.organization_id
    with database.snapshot(multi_use=True) as snapshot:
        stats = ReadStats()
        index = TagIndex(snapshot, stats)
        assert index.text_candidates(org, "cannot READ propert").group_ids == (three,)
        assert index.text_candidates(org, "cannot read propert", prefix_last=False).group_ids == ()
        assert index.text_candidates(org, "slow").group_ids in ((one, two), (two, one))
        assert index.with_terms([one, two, three], ["slow", "qu"]) == {one, two}
        assert stats.reads >= 4 and stats.index_rows >= 1


def test_search_keys_name_what_is_stored():
    assert search_key("browser") == "browser"
    assert search_key("tags[browser]") == "browser"
    assert search_key("user.email") == "@user.email"
    assert search_key("sdk.name") == "@sdk.name"
    assert search_key("bad key") is None
