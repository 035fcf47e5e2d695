"""Tag filters and free text in issue search (api.tag_search) on the emulator: every term against an
independent oracle, in every sort, through every page, both when the tag indexes drive the page (a selective
term) and when the issue-index ranges do (the tag terms checked on their candidates); the 400s; and the cost
of a page in index rows read."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import tag_search
from api.app import create_app
from api.directory import Directory
from api.service import IssueIndex, ListRequest
from tests.api.factories import (
    BROWSERS,
    DAY,
    ORG,
    T0,
    G,
    World,
    add_organization,
    add_project,
    build_world,
    expected_order,
    write_groups,
)
from tests.api.pages import PATH, SORTS, fetch_all
from tests.conftest import _fresh_database
from transforms.core.enums import GroupStatus


@pytest.fixture(scope="module")
def shared(stack, spanner_instance) -> Iterator[tuple[Any, World]]:
    """One database with the search world for the module's read-only tests (a database costs seconds)."""
    made = _fresh_database(stack.spanner_host)
    database = next(made).database
    yield database, build_world(database)
    next(made, None)


@pytest.fixture
def world(shared) -> World:
    return shared[1]


@pytest.fixture
def index(shared) -> IssueIndex:
    return IssueIndex(shared[0], Directory(shared[0], ttl=0, token_ttl=0))


@pytest.fixture
def client(index) -> TestClient:
    return TestClient(create_app(index))


def tag(g: G, key: str) -> str | None:
    return dict(g.tags).get(key)


def words(g: G) -> set[str]:
    return set(re.findall(r"\w+", f"{g.title} {g.message}".lower()))


def visible(g: G) -> bool:
    return g.type != 6001


def unresolved(g: G) -> bool:
    return g.status == GroupStatus.UNRESOLVED


CHROME, FIREFOX, SAFARI = BROWSERS
Case = tuple[str, Callable[[G, World], bool]]
CASES: list[Case] = [
    ('browser:"Chrome 120"', lambda g, w: tag(g, "browser") == CHROME and visible(g)),
    ('tags[browser]:"Chrome 120"', lambda g, w: tag(g, "browser") == CHROME and visible(g)),
    ('browser:"chrome 120"', lambda g, w: False),  # a value is exact, as in Sentry
    (
        'browser:["Firefox 99", "Safari 17"] is:unresolved',
        lambda g, w: tag(g, "browser") in (FIREFOX, SAFARI) and unresolved(g) and visible(g),
    ),
    ('!browser:"Chrome 120"', lambda g, w: tag(g, "browser") != CHROME and visible(g)),
    ("browser:chrome*", lambda g, w: (tag(g, "browser") or "").lower().startswith("chrome") and visible(g)),
    ("browser:*9*", lambda g, w: "9" in (tag(g, "browser") or "") and visible(g)),
    ("browser:f*9", lambda g, w: tag(g, "browser") == FIREFOX and visible(g)),
    ("!browser:*fox*", lambda g, w: "fox" not in (tag(g, "browser") or "").lower() and visible(g)),
    ("has:browser", lambda g, w: tag(g, "browser") is not None and visible(g)),
    ("!has:browser", lambda g, w: tag(g, "browser") is None and visible(g)),
    ('browser:""', lambda g, w: tag(g, "browser") is None and visible(g)),
    ('!browser:""', lambda g, w: tag(g, "browser") is not None and visible(g)),
    (
        "server_name:web-1 level:error",
        lambda g, w: tag(g, "server_name") == "web-1" and g.level == 40 and visible(g),
    ),
    (
        "!server_name:web-1 !browser:Safari*",
        lambda g, w: tag(g, "server_name") != "web-1" and tag(g, "browser") != SAFARI and visible(g),
    ),
    ("user.email:u1@example.com", lambda g, w: tag(g, "@user.email") == "u1@example.com" and visible(g)),
    ("has:user.email", lambda g, w: tag(g, "@user.email") is not None and visible(g)),
    ("user.email:*@EXAMPLE.com", lambda g, w: tag(g, "@user.email") is not None and visible(g)),
    (
        'timeout browser:"Safari 17"',
        lambda g, w: "timeout" in words(g) and tag(g, "browser") == SAFARI and visible(g),
    ),
    ("!message:timeout", lambda g, w: not any(x.startswith("timeout") for x in words(g)) and visible(g)),
    ("message:connection", lambda g, w: "connection" in words(g) and visible(g)),
    (
        "environment:staging browser:Firefox*",
        lambda g, w: "staging" in w.environments[g.group_id] and tag(g, "browser") == FIREFOX and visible(g),
    ),
    (
        "release:2.0.0 !has:browser is:unresolved",
        lambda g, w: (
            "2.0.0" in w.releases[g.group_id] and tag(g, "browser") is None and unresolved(g) and visible(g)
        ),
    ),
    ("customer:nobody", lambda g, w: False),
    (
        "lastSeen:>2026-01-03 has:browser",
        lambda g, w: g.last_seen > T0 + 2 * DAY and tag(g, "browser") and visible(g),
    ),
]


@pytest.mark.parametrize(("query", "predicate"), CASES, ids=[c[0] for c in CASES])
def test_tag_terms_page_through_exactly_the_matching_groups_in_every_sort(
    client, world, monkeypatch, query, predicate
):
    expected_groups = [g for g in world.groups if predicate(g, world)]
    # driven by the tag index; driven by the ranges with the terms resolved to sets of groups; driven by the
    # ranges with the terms looked up on each batch of candidates (every term matches "more than the limit")
    for limit, resolve_limit in ((tag_search.CANDIDATE_LIMIT, tag_search.RESOLVE_LIMIT), (0, 5000), (0, 0)):
        monkeypatch.setattr(tag_search, "CANDIDATE_LIMIT", limit)
        monkeypatch.setattr(tag_search, "RESOLVE_LIMIT", resolve_limit)
        for sort in SORTS if limit else ("date", "priority"):  # two sorts for the ranges (the tests' cost)
            ids = fetch_all(client, world.read_token, {"query": query, "sort": sort, "limit": 13})
            expected = [str(g.group_id) for g in expected_order(expected_groups, sort)]
            assert ids == expected, f"sort={sort}, limits {limit}, {resolve_limit}"


def test_tag_terms_stay_within_the_organization_and_projects(client, world):
    ids = fetch_all(client, world.read_token, {"query": "has:browser", "project": "12", "limit": 50})
    expected = [g for g in world.groups if g.project_id == 12 and tag(g, "browser") and visible(g)]
    assert ids == [str(g.group_id) for g in expected_order(expected, "date")]
    other = [g.group_id for g in world.other]
    assert not set(fetch_all(client, world.read_token, {"query": "has:server_name"})) & set(map(str, other))


def test_x_hits_counts_tag_matches(client, world):
    response = client.get(
        PATH,
        params={"query": 'browser:"Chrome 120"', "limit": 3},
        headers={"Authorization": f"Bearer {world.read_token}"},
    )
    expected = [g for g in world.groups if tag(g, "browser") == CHROME and visible(g)]
    assert response.headers["x-hits"] == str(len(expected))


def test_bulk_selection_by_a_tag_query(index, world):
    from api.service import Selection

    organization = index.organization("acme")
    selected = index.select(organization, Selection(query='browser:"Safari 17" is:unresolved'))
    expected = {
        g.group_id for g in world.groups if tag(g, "browser") == SAFARI and unresolved(g) and visible(g)
    }
    assert {s.group_id for s in selected} == expected


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("browser:[chrome*, firefox]", "a list cannot hold wildcards"),
        ("tags[]:x", "not a valid tag key"),
        ("error.handled:0", "cannot be searched here"),
        ("trace:abc", "cannot be searched here"),
    ],
)
def test_tag_terms_this_index_cannot_run_are_a_400_naming_them(client, world, query, needle):
    response = client.get(
        PATH, params={"query": query}, headers={"Authorization": f"Bearer {world.read_token}"}
    )
    assert response.status_code == 400
    assert needle in response.json()["detail"]
    assert "at position 0" in response.json()["detail"]


def test_a_selective_tag_term_reads_its_candidates_not_the_organization(spanner_db):
    """2,000 groups, 3 with the tag: the page reads a handful of index rows (its 3 candidates' index entries
    and their rows by key), not the organization's index range."""
    database = spanner_db.database
    index = IssueIndex(database, Directory(database, ttl=0, token_ttl=0))

    add_organization(database, ORG, "acme")
    add_project(database, 11, ORG, "backend")
    groups = [
        G(
            1000 + n,
            11,
            ORG,
            last_seen=T0 + n,
            tags=(("customer", f"c-{n % 700}"),),
            title=f"Error number {n}",
        )
        for n in range(2000)
    ]
    write_groups(database, groups)
    organization = index.organization("acme")
    page = index.list_issues(organization, ListRequest(query="customer:c-5", limit=100))
    assert [int(i["id"]) for i in page.issues] == [1000 + 1405, 1000 + 705, 1000 + 5]
    assert page.stats.index_rows <= 10, page.stats
    assert page.stats.rows <= 20, page.stats
    # a negation alone is checked on the page's candidates of the issue-index range: O(page)
    page = index.list_issues(organization, ListRequest(query="!customer:c-5", limit=100), count_hits=False)
    assert len(page.issues) == 100
    assert page.stats.index_rows <= 300, page.stats
    # free text: a word in 3 groups, read through its index entries
    page = index.list_issues(organization, ListRequest(query="number 1405", limit=100))
    assert [int(i["id"]) for i in page.issues] == [1000 + 1405]
    assert page.stats.index_rows <= 10, page.stats


# ---- pure parts


def test_a_wildcards_case_variant_ranges_cover_every_case_of_its_literal_start():
    from api.query import parse_query

    (cond,) = parse_query("browser:Fi*x").tags
    assert cond.lead == "Fi"
    ranges = tag_search._case_ranges(cond.lead)
    assert [start for start, _ in ranges] == ["FI", "Fi", "fI", "fi"]
    for value in ("Firefox", "FIREFOX", "fix", "fIx"):
        assert any(start <= value < end for start, end in ranges), value
    assert not any(start <= "Fa" < end for start, end in ranges)
    # at most four letters vary (16 ranges); digits and punctuation do not
    assert len(tag_search._case_ranges("web-server-1")) == 16
    assert tag_search._case_ranges("10.2") == [("10.2", "10.3")]
    assert cond.regex().fullmatch("FIREFOX") and not cond.regex().fullmatch("Firefox 99")


def test_a_wildcard_over_more_rows_than_the_limit_lists_the_keys_values_and_reads_the_matching_ones(
    shared, world, monkeypatch
):
    """More than the limit of rows in the pattern's ranges: the key's values are listed one Read each, then
    the matching values' groups are read as an IN list (complete when they fit the limit)."""
    from api.query import parse_query
    from api.search import ReadStats
    from api.tag_index import TagIndex

    database, _ = shared
    firefox = {g.group_id for g in world.groups if tag(g, "browser") == FIREFOX}
    monkeypatch.setattr(tag_search, "CANDIDATE_LIMIT", len(firefox) + 1)
    for query in ("browser:*fox*", "browser:F*9", "browser:*9*"):
        (condition,) = parse_query(query).tags
        with database.snapshot(multi_use=True) as snapshot:
            stats = ReadStats()
            found = tag_search.candidates(TagIndex(snapshot, stats), ORG, condition, None)
        expected = {g.group_id for g in world.groups if condition.regex().fullmatch(tag(g, "browser") or "")}
        assert found.complete and set(found.group_ids) == expected, query
        assert stats.reads <= 6  # the first read, one per other value (3 browsers) and the end, the IN list
    monkeypatch.setattr(tag_search, "MAX_VALUE_SKIPS", 1)
    (condition,) = parse_query("browser:*fox*").tags
    with database.snapshot(multi_use=True) as snapshot:
        assert not tag_search.candidates(TagIndex(snapshot), ORG, condition, None).complete
