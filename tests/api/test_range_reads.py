"""How a page reads its issue-index ranges (api.search.searcher): concurrently on the read pool or one after
another, the same pages; no read left in flight when a page ends; and X-Hits reusing what the page read."""

from __future__ import annotations

import pytest

from api.search import searcher as searcher_module
from api.service import ListRequest
from tests.api import test_tag_search
from tests.api.factories import expected_order
from tests.api.pages import SORTS, fetch_all, get

# The search world's fixtures (a module-scoped database of this module's own)
shared, world, index, client = (
    test_tag_search.shared,
    test_tag_search.world,
    test_tag_search.index,
    test_tag_search.client,
)


def _visible(g) -> bool:
    return g.type != 6001


# Queries whose pages merge several ranges (no status term: 12), with conditions of every kind
QUERIES = {
    "": lambda g: _visible(g),
    '!browser:"Chrome 120"': lambda g: dict(g.tags).get("browser") != "Chrome 120" and _visible(g),
    "*timeout*": lambda g: "timeout" in f"{g.title} {g.message}".lower() and _visible(g),
    "is:unresolved timesSeen:>=5": lambda g: g.status == 0 and g.times_seen >= 5 and _visible(g),
}


@pytest.mark.parametrize("query", list(QUERIES))
def test_ranges_read_concurrently_give_the_pages_and_hits_of_ranges_read_one_after_another(
    client, world, monkeypatch, query
):
    expected_groups = [g for g in world.groups if QUERIES[query](g)]
    for sort in SORTS:
        expected = [str(g.group_id) for g in expected_order(expected_groups, sort)]
        params = {"query": query, "sort": sort, "limit": 7}
        parallel = fetch_all(client, world.read_token, params)
        parallel_hits = get(client, world.read_token, params).headers["x-hits"]
        with monkeypatch.context() as patched:
            patched.setattr(searcher_module, "READ_THREADS", 0)
            sequential = fetch_all(client, world.read_token, params)
            sequential_hits = get(client, world.read_token, params).headers["x-hits"]
        assert parallel == sequential == expected, f"sort={sort}"
        assert parallel_hits == sequential_hits == str(len(expected)), f"sort={sort}"


def test_a_page_that_ends_early_leaves_no_read_in_flight(index, world, monkeypatch):
    pool = searcher_module.read_pool()
    sent = []
    submit = pool.submit

    def recording(fn, *args, **kwargs):
        future = submit(fn, *args, **kwargs)
        sent.append(future)
        return future

    monkeypatch.setattr(pool, "submit", recording)
    organization = index.organization("acme")
    page = index.list_issues(organization, ListRequest(query="", limit=3), count_hits=False)
    assert len(page.issues) == 3
    assert len(sent) >= 12  # the 12 ranges' first chunks, at least
    assert all(future.done() for future in sent)


def test_x_hits_counts_the_rows_its_page_read_without_reading_them_again(index, world):
    """The page (limit 20 of about 120) read part of each range; counting reads only the rest: every index row
    of the organization's 12 ranges is read once."""
    organization = index.organization("acme")
    page = index.list_issues(organization, ListRequest(query="", limit=20))
    assert page.hits is not None and page.hits.value == sum(1 for g in world.groups if _visible(g))
    assert page.stats.index_rows == len(world.groups)
    assert page.stats.rows - page.stats.index_rows == 20  # the page's display columns, by key


def test_x_hits_of_a_text_wildcard_reads_no_title_twice(index, world):
    organization = index.organization("acme")
    page = index.list_issues(organization, ListRequest(query="*timeout*", limit=5))
    matching = [g for g in world.groups if QUERIES["*timeout*"](g)]
    assert page.hits is not None and page.hits.value == len(matching)
    titles_read = page.stats.rows - page.stats.index_rows - len(page.issues)
    assert titles_read <= len(world.groups)  # each candidate's title and message, once
