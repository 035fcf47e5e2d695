"""A free-text wildcard such as ``*timeout*`` through the word index (api.tag_search.word_wildcard): the
organization's vocabulary gives the groups with a word holding the pattern, and their titles and messages are
checked as before, so the answer is the one the title-and-message check gives on the issue-index ranges,
including words with punctuation around them, any case, words cut at 64 characters, words of older
occurrences, and patterns that cannot be served by words (they fall back to that check)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from google.cloud.spanner_v1 import KeySet

from api import tag_index, tag_search
from api.app import create_app
from api.directory import Directory
from api.query import TextMatch
from api.service import IssueIndex, ListRequest
from tests.api.factories import (
    DAY,
    ORG,
    OTHER_ORG,
    T0,
    G,
    add_organization,
    add_project,
    add_token,
    write_groups,
)
from tests.api.pages import SORTS, fetch_all
from tests.conftest import _fresh_database
from transforms.core.engine.tags import TEXT_KEY, text_terms
from transforms.core.enums import GroupStatus, GroupSubStatus
from transforms.core.limits import TERMS_PER_GROUP
from transforms.storage import org_words

LONG = "x" * 60 + "timeoutexceeded"  # stored cut to 64 characters: "x" * 60 + "time"
TITLES = [
    ("ReadTimeoutError in handler", "socket read"),
    ("socket.timeout: timed out", "while reading"),
    ("TIMEOUT!!!", "(timeout)"),
    ("Request failed", "[Timeout] after 30s"),
    ("time-out in checkout", "time out"),
    ("timeouts everywhere", "retrying"),
    ("Database error", "connection refused"),
    (f"Error {LONG}", "cut word"),
    ("Null pointer", "no match here"),
    ("Slow query", "t_i_m_e_o_u_t"),
]


STATUSES = [
    (GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING),
    (GroupStatus.UNRESOLVED, GroupSubStatus.NEW),
    (GroupStatus.RESOLVED, None),
    (GroupStatus.IGNORED, GroupSubStatus.FOREVER),
]


@pytest.fixture(scope="module")
def shared(stack, spanner_instance) -> Iterator[tuple[Any, list[G], str]]:
    made = _fresh_database(stack.spanner_host)
    database = next(made).database
    add_organization(database, ORG, "acme")
    add_organization(database, OTHER_ORG, "globex")
    add_project(database, 11, ORG, "backend")
    add_project(database, 12, ORG, "frontend")
    add_project(database, 21, OTHER_ORG, "backend")
    groups = []
    for n in range(60):
        title, message = TITLES[n % len(TITLES)]
        groups.append(
            G(
                1000 + n * 7919,
                11 + n % 2,
                ORG,
                last_seen=T0 + (n % 9) * DAY,
                times_seen=1 + n % 4,
                title=f"{title} #{n}",
                message=message,
                status=STATUSES[n % 4][0],
                substatus=STATUSES[n % 4][1],
            )
        )
    # an older occurrence said "timeout" (its word is stored), the group's title and message no longer do
    groups.append(
        G(999_999, 11, ORG, title="Renamed issue", message="other text", tags=((TEXT_KEY, "timeout"),))
    )
    other = [G(5_000_000 + n, 21, OTHER_ORG, title="timeout elsewhere", message="timeout") for n in range(5)]
    write_groups(database, groups + other)
    token = add_token(database, ORG)
    yield database, groups, token
    next(made, None)


@pytest.fixture
def client(shared) -> TestClient:
    database = shared[0]
    return TestClient(create_app(IssueIndex(database, Directory(database, ttl=0, token_ttl=0))))


@pytest.fixture(autouse=True)
def fresh_hints(monkeypatch):
    monkeypatch.setattr(tag_search, "_large_vocabularies", {})


def old_answer(groups: list[G], pattern: str) -> list[G]:
    """What the title-and-message check accepts: the pattern anywhere in either, case-insensitively."""
    body = ".*".join(re.escape(part) for part in pattern.split("*"))
    regex = re.compile(body, re.IGNORECASE | re.DOTALL)
    return [g for g in groups if regex.search(g.title or "") or regex.search(g.message or "")]


def listed(client: TestClient, token: str, query: str, sort: str) -> list[str]:
    return fetch_all(client, token, {"query": query, "sort": sort, "limit": 4})


def expected_ids(groups: list[G], sort: str) -> list[str]:
    from tests.api.factories import expected_order

    return [str(g.group_id) for g in expected_order(groups, sort)]


def _spy_on_word_candidates(monkeypatch) -> list[bool]:
    """Records, for each call of ``tag_search.word_wildcard_candidates``, whether the word index served it
    (complete candidates)."""
    served: list[bool] = []
    real = tag_search.word_wildcard_candidates

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
        served.append(found is not None and found.complete)
        return found

    monkeypatch.setattr(tag_search, "word_wildcard_candidates", spy)
    return served


@pytest.mark.parametrize(
    "pattern", ["*timeout*", "timeout*", "*TimeOut", "*TIMEOUTEXCEED*", "*out*", "*_i_*"]
)
def test_a_wildcard_through_the_word_index_gives_the_title_and_message_answer(
    client, shared, monkeypatch, pattern
):
    _, groups, token = shared
    served = _spy_on_word_candidates(monkeypatch)
    expected = old_answer(groups, pattern)
    assert expected or pattern == "*TIMEOUTEXCEED*"
    for sort in SORTS:
        got = listed(client, token, pattern, sort)
        missing = [(g.title, g.message) for g in expected if str(g.group_id) not in got]
        assert got == expected_ids(expected, sort), (sort, missing)
    assert served and all(served)  # every page was driven by the word index
    with monkeypatch.context() as patched:  # the same through the issue-index ranges
        patched.setattr(tag_search, "VOCABULARY_WORDS", 0)
        patched.setattr(tag_search, "_large_vocabularies", {})
        for sort in ("date", "freq"):
            assert listed(client, token, pattern, sort) == expected_ids(expected, sort), sort
    with incomplete_vocabularies(shared[0]):  # and through the @text rows, as before the vocabulary
        for sort in ("date", "freq"):
            assert listed(client, token, pattern, sort) == expected_ids(expected, sort), sort


@pytest.mark.parametrize("pattern", ["*timeoutexceeded*", "*exceeded", "*outexc*"])
def test_a_long_word_cut_in_storage_is_still_found_past_the_cut(client, shared, pattern):
    _, groups, token = shared
    expected = [g for g in groups if LONG in (g.title or "")]
    assert expected
    assert listed(client, token, pattern, "date") == expected_ids(expected, "date")


@pytest.mark.parametrize(
    "query",
    ["*time-out*", "*time*out*", "is:unresolved *socket.timeout*", r"*time\*out*"],
)
def test_a_wildcard_words_cannot_serve_falls_back_to_the_title_and_message_check(client, shared, query):
    _, groups, token = shared
    pattern = query.removeprefix("is:unresolved ")
    expected = old_answer(groups, pattern.replace("\\*", "\x00")) if "\\" not in pattern else []
    if query.startswith("is:unresolved"):
        expected = [g for g in expected if g.status == GroupStatus.UNRESOLVED]
    assert tag_search.word_wildcard(TextMatch(((pattern, True),))) is None
    for sort in ("date", "new"):
        assert listed(client, token, query, sort) == expected_ids(expected, sort)


def test_an_organization_with_a_large_vocabulary_falls_back_and_is_not_read_again(shared, monkeypatch):
    database, groups, _ = shared
    index = IssueIndex(database, Directory(database, ttl=0, token_ttl=0))
    organization = index.organization("acme")
    monkeypatch.setattr(tag_search, "VOCABULARY_WORDS", 3)
    first = index.list_issues(organization, ListRequest(query="*timeout*", limit=100))
    assert ORG in tag_search._large_vocabularies
    again = index.list_issues(organization, ListRequest(query="*timeout*", limit=100))
    assert [i["id"] for i in first.issues] == [i["id"] for i in again.issues]
    assert {int(i["id"]) for i in first.issues} == {g.group_id for g in old_answer(groups, "*timeout*")}
    assert again.stats.reads < first.stats.reads  # the vocabulary was not read the second time


def with_and_without_vocabulary(database, monkeypatch, limit: int) -> tuple[Any, Any]:
    """A page of ``*timeout*`` with the vocabulary, then without it (the issue-index ranges alone)."""
    index = IssueIndex(database, Directory(database, ttl=0, token_ttl=0))
    organization = index.organization("acme")
    request = ListRequest(query="*timeout*", limit=limit)
    first = index.list_issues(organization, request, count_hits=False)
    monkeypatch.setattr(tag_search, "VOCABULARY_WORDS", 0)
    return first, index.list_issues(organization, request, count_hits=False)


def test_the_word_index_path_reads_the_vocabulary_and_candidates_not_the_ranges(shared, monkeypatch):
    driven, ranges = with_and_without_vocabulary(shared[0], monkeypatch, 5)
    assert driven.issues == ranges.issues and len(driven.issues) == 5
    # the vocabulary, the candidates of its matching words, their index rows by key, their titles, the page's
    # display columns
    assert driven.stats.reads <= 5 < ranges.stats.reads
    assert driven.stats.ranges < ranges.stats.ranges


def test_the_vocabulary_holds_each_word_once_and_is_read_in_one_read(shared):
    database, groups, _ = shared
    words = {word for g in groups for word in text_terms(f"{g.title} {g.message}")} | {"timeout"}
    with database.snapshot(multi_use=True) as snapshot:
        index = tag_index.TagIndex(snapshot)
        found = index.word_candidates(ORG, lambda word: "timeout" in word)
    assert found is not None and found.complete
    expected = {
        g.group_id for g in groups if any("timeout" in w for w in text_terms(f"{g.title} {g.message}"))
    }
    assert set(found.group_ids) == expected | {999_999}  # an older occurrence's word counts too
    # the vocabulary (with its COMPLETE row) in one Read, the matching words' groups in one
    assert index.stats.reads == 2 and index.stats.rows == len(words) + 1 + len(found.group_ids)
    with incomplete_vocabularies(database), database.snapshot(multi_use=True) as snapshot:
        scanned = tag_index.TagIndex(snapshot)
        again = scanned.word_candidates(ORG, lambda word: "timeout" in word, chunk=10_000)
        assert again is not None and set(again.group_ids) == set(found.group_ids)
        assert scanned.stats.rows > 2 * index.stats.rows  # one row per group and word


@contextlib.contextmanager
def incomplete_vocabularies(database) -> Iterator[None]:
    """The database as one whose @text rows predate OrgWords: no COMPLETE row, so no vocabulary is used."""
    with database.batch() as batch:
        batch.delete(org_words.TABLE, KeySet(keys=[list(org_words.COMPLETE)]))
    try:
        yield
    finally:
        org_words.mark_complete(database)


@pytest.mark.parametrize(
    ("value", "negated", "fields", "served"),
    [
        ("*timeout*", False, ("title", "message"), True),
        ("timeout*", False, ("title", "message"), True),
        ("*time_out*", False, ("title", "message"), True),
        ("*timeout*", True, ("title", "message"), False),
        ("*timeout*", False, ("title",), False),
        ("*time.out*", False, ("title", "message"), False),
        ("*", False, ("title", "message"), False),
        ("*İstanbul*", False, ("title", "message"), False),
        ("*" + "a" * 65 + "*", False, ("title", "message"), False),
    ],
)
def test_which_wildcards_the_word_index_serves(value, negated, fields, served):
    text = TextMatch(((value, True),), fields, exact=fields == ("title",), negated=negated)
    assert (tag_search.word_wildcard(text) is not None) == served


def test_a_word_cut_in_storage_may_hold_any_literal_past_the_cut():
    wildcard = tag_search.word_wildcard(TextMatch((("*exceeded*", True),)))
    assert wildcard is not None
    assert wildcard.matches("x" * 60 + "time")  # 64 characters: it may have been longer
    assert not wildcard.matches("x" * 59 + "time")  # shorter: the whole word, which does not hold it
    assert wildcard.matches("readtimeoutexceeded")
    assert wildcard.matches("EXCEEDED".lower())


def test_a_group_whose_words_are_full_is_a_candidate_of_every_wildcard(stack, spanner_instance, monkeypatch):
    """Past its first TERMS_PER_GROUP words a group stores no new word, so a word of its title may be missing
    from the vocabulary: such a group is kept as a candidate and its title checked, as on the ranges."""
    made = _fresh_database(stack.spanner_host)
    database = next(made).database
    try:
        add_organization(database, ORG, "acme")
        add_project(database, 11, ORG, "backend")
        filler = " ".join(f"w{n}" for n in range(TERMS_PER_GROUP))
        full = G(1, 11, ORG, title=f"{filler} timeout", message="")
        plain = G(2, 11, ORG, title="timeout here", message="")
        other = G(3, 11, ORG, title="nothing to see", message="")
        write_groups(database, [full, plain, other])
        served = _spy_on_word_candidates(monkeypatch)
        index = IssueIndex(database, Directory(database, ttl=0, token_ttl=0))
        page = index.list_issues(index.organization("acme"), ListRequest(query="*timeout*", limit=100))
        assert served == [True]  # the vocabulary drove the page, the full group's mark made it a candidate
        assert sorted(int(issue["id"]) for issue in page.issues) == [1, 2]
        with incomplete_vocabularies(database):  # the @text rows (about 260) drive it the same way
            page = index.list_issues(index.organization("acme"), ListRequest(query="*timeout*", limit=100))
            assert served == [True, True]
            assert sorted(int(issue["id"]) for issue in page.issues) == [1, 2]
    finally:
        next(made, None)


def test_word_candidates_too_many_to_drive_drop_the_ranges_candidates_that_cannot_match(
    client, shared, monkeypatch
):
    """Past CANDIDATE_LIMIT the ranges drive, but a candidate without a matching word is dropped before its
    title and message are read: the same answer, fewer rows by key."""
    database, groups, token = shared
    monkeypatch.setattr(tag_search, "CANDIDATE_LIMIT", 2)
    expected = old_answer(groups, "*timeout*")
    assert len(expected) > 2
    for sort in ("date", "new"):
        assert listed(client, token, "*timeout*", sort) == expected_ids(expected, sort), sort
    filtered, unfiltered = with_and_without_vocabulary(database, monkeypatch, 100)
    assert filtered.issues == unfiltered.issues
    by_key = [page.stats.rows - page.stats.index_rows for page in (filtered, unfiltered)]
    wildcard = tag_search.word_wildcard(TextMatch((("*timeout*", True),)))
    assert wildcard is not None
    without = [g for g in groups if not any(map(wildcard.matches, text_terms(f"{g.title} {g.message}")))]
    without = [g for g in without if g.group_id != 999_999]  # an older occurrence's word
    assert by_key[1] - by_key[0] == len(without) > 0, by_key  # their titles and messages are not read
