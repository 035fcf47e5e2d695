"""The issue index under hostile requests (issue 17's hostile suite, API part): every endpoint and parameter at
and past its limit, and hypothesis-generated query strings, parameters and bodies. Whatever comes in, the
answer is never a 5xx, and every error names the problem.

Runs against the Spanner emulator and the Pub/Sub emulator (bulk changes are really published). The number of
generated examples per test is ``HOSTILE_EXAMPLES`` (default 60, a few minutes for the module); a longer run:

    HOSTILE_EXAMPLES=2000 ./run_tests.sh tests/api/test_hostile.py
"""

from __future__ import annotations

import os
import string

import pytest
from fastapi.testclient import TestClient
from google.cloud import pubsub_v1
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import request_limits
from api.app import create_app
from api.bulk import StatusChangePublisher
from api.directory import Directory
from api.service import IssueIndex
from tests.api.factories import World, build_world

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "60"))
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=os.environ.get("HOSTILE_RANDOM") != "1",
)
ORG_PATH = "/api/0/organizations/{org}/issues/"
PROJECT_PATH = "/api/0/projects/{org}/{project}/issues/"
READ_PATHS = (
    ORG_PATH.format(org="acme"),
    PROJECT_PATH.format(org="acme", project="backend"),
)


@pytest.fixture
def world(spanner_db) -> World:
    return build_world(spanner_db.database, size=40)


@pytest.fixture
def client(spanner_db, pubsub_topics) -> TestClient:
    topic = pubsub_topics.create("status-changes")
    database = spanner_db.database
    publisher = StatusChangePublisher(pubsub_v1.PublisherClient(), topic.topic)
    index = IssueIndex(database, Directory(database, ttl=60, token_ttl=60), publisher)
    return TestClient(create_app(index), raise_server_exceptions=False)


def check(response, *, allowed: tuple[int, ...] = ()) -> None:
    """No 5xx; an error carries a ``detail`` that says something (not a bare status)."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if allowed:
        assert response.status_code in allowed, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and len(detail) >= 10, detail
        assert len(detail) <= 2000, "an error message must not echo a huge input"


def named(response, *words: str) -> None:
    """A 400 whose detail contains every one of ``words`` (the limit, the parameter...)."""
    check(response, allowed=(400,))
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, (word, detail)


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------------------------------------------------
# Every limit, at and past it


def test_repeated_parameters_at_and_past_their_limits(client, world):
    h = headers(world.write_token)
    for name, maximum, method in (
        ("environment", request_limits.MAX_ENVIRONMENTS, "GET"),
        ("project", request_limits.MAX_PROJECTS, "GET"),
        ("id", request_limits.MAX_IDS, "PUT"),
        ("id", request_limits.MAX_IDS, "DELETE"),
        ("environment", request_limits.MAX_ENVIRONMENTS, "PUT"),
        ("project", request_limits.MAX_PROJECTS, "DELETE"),
    ):
        value = {"environment": "production", "project": "backend", "id": "1"}[name]
        body = {"status": "resolved"} if method == "PUT" else None
        extra = [("query", "is:unresolved")] if method != "GET" and name != "id" else []
        for path in READ_PATHS[:1] if name == "project" else READ_PATHS:
            at = client.request(method, path, params=[(name, value)] * maximum + extra, json=body, headers=h)
            check(at)
            assert at.status_code != 400 or "Too many" not in at.json()["detail"], at.text
            past = client.request(
                method, path, params=[(name, value)] * (maximum + 1) + extra, json=body, headers=h
            )
            named(past, f"Too many {name} parameters", f"at most {maximum}")


def test_query_length_list_size_and_value_bytes_at_and_past_their_limits(client, world):
    h = headers(world.read_token)
    for path in READ_PATHS:
        check(
            client.get(path, params={"query": "a" * request_limits.MAX_QUERY_CHARS}, headers=h),
            allowed=(200,),
        )
        named(
            client.get(path, params={"query": "a" * (request_limits.MAX_QUERY_CHARS + 1)}, headers=h),
            "at most 4096",
        )
        values = ", ".join(str(i) for i in range(request_limits.MAX_LIST_VALUES))
        check(client.get(path, params={"query": f"environment:[{values}]"}, headers=h), allowed=(200,))
        named(
            client.get(path, params={"query": f"environment:[{values}, x]"}, headers=h),
            f"at most {request_limits.MAX_LIST_VALUES} values",
        )
        at = "x" * request_limits.MAX_VALUE_BYTES
        check(client.get(path, params={"environment": at}, headers=h), allowed=(200,))
        named(
            client.get(path, params={"environment": at + "x"}, headers=h),
            f"{request_limits.MAX_VALUE_BYTES} bytes",
        )
        named(client.get(path, params={"query": f'release:"{"ü" * 2049}"'}, headers=h), "bytes")


def test_other_parameters_at_and_past_their_limits(client, world):
    h = headers(world.read_token)
    for path in READ_PATHS:
        check(client.get(path, params={"limit": "100"}, headers=h), allowed=(200,))
        check(client.get(path, params={"limit": "101"}, headers=h), allowed=(200,))  # capped, as Sentry
        named(client.get(path, params={"limit": "0"}, headers=h), "limit")
        named(client.get(path, params={"limit": "9" * 5000}, headers=h), "limit")
        named(client.get(path, params={"cursor": "A" * 4097}, headers=h), "cursor", "too long")
        named(client.get(path, params={"cursor": "A" * 4096}, headers=h), "cursor")
        check(client.get(path, params={"statsPeriod": "999999999w"}, headers=h), allowed=(200,))
        named(client.get(path, params={"statsPeriod": "9999999999w"}, headers=h), "statsPeriod")
        named(client.get(path, params={"start": "x" * 10_000, "end": "2026-01-01"}, headers=h), "start")
        check(client.get(path, params={"start": "0001-01-01", "end": "9999-12-31T23:59:59"}, headers=h))
        named(client.get(path, params={"sort": "s" * 10_000}, headers=h), "sort")
    named(client.get(READ_PATHS[0], params={"groupStatsPeriod": "1y"}, headers=h), "stats_period")


def test_ids_at_and_past_the_id_range(client, world):
    h = headers(world.write_token)
    for path in READ_PATHS:
        for ref in ("1", str(request_limits.MAX_ISSUE_ID)):
            check(
                client.put(path, params={"id": ref}, json={"status": "resolved"}, headers=h), allowed=(204,)
            )
        for ref in (str(request_limits.MAX_ISSUE_ID + 1), "0", "-5", "1.0", " 1", "0x10", "9" * 400):
            named(
                client.put(path, params={"id": ref}, json={"status": "resolved"}, headers=h),
                "Invalid id",
                "not a valid issue id",
            )


def test_bodies_at_and_past_the_size_limit_and_malformed(client, world):
    h = {**headers(world.write_token), "Content-Type": "application/json"}
    path = READ_PATHS[0]
    params = {"id": str(world.groups[0].group_id)}
    text = b'{"status": "resolved"}'
    at = text + b" " * (request_limits.MAX_BODY_BYTES - len(text))
    check(client.put(path, params=params, content=at, headers=h), allowed=(202, 204))
    named(client.put(path, params=params, content=at + b" ", headers=h), "larger than 65536 bytes")
    for body in (
        b"",
        b"{",
        b'{"status": resolved}',
        b"\xff\xfe",
        b"[" * 60_000 + b"]" * 60_000,
        b"null",
        b"7",
    ):
        check(client.put(path, params=params, content=body, headers=h), allowed=(400,))
    nested = b'{"status": "resolved", "statusDetails": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001
    check(client.put(path, params=params, content=nested, headers=h), allowed=(400,))


def test_headers_and_paths_that_are_not_what_they_should_be(client, world):
    for authorization in ("Bearer " + "a" * 100_000, "Bearer sntryu_" + "é" * 64, "Bearer \x00", "bearer"):
        check(client.get(READ_PATHS[0], headers={"Authorization": authorization.encode()}), allowed=(401,))
    h = headers(world.read_token)
    for org in ("ACME", "a" * 5000, "9" * 25, str(2**63), "%00", "acme%2F..%2F"):
        check(client.get(ORG_PATH.format(org=org), headers=h))
        check(client.get(PROJECT_PATH.format(org="acme", project=org), headers=h))


# ---------------------------------------------------------------------------------------------------------
# Generated requests

_KEYS = (
    "is", "issue.priority", "issue.category", "issue.type", "level", "release", "first_release", "first-release",
    "firstRelease", "environment", "firstSeen", "lastSeen", "age", "timesSeen", "status", "substatus", "has",
    "project", "issue", "title", "message", "timestamp", "date", "release.version", "release.stage",
    "release.package", "release.build", "regressed_in_release", "error.handled", "error.unhandled", "user.email",
    "sdk.name", "trace", "assigned", "assigned_or_suggested", "bookmarks", "subscribed", "browser", "tags[foo]",
    "count()", "", "x" * 300,
)  # fmt: skip
_VALUES = (
    "unresolved", "resolved", "ignored", "ongoing", "archived_until_escalating", "for_review", "linked", "high",
    "error", "feedback", "1.0.0", "backend@1.2.3", "latest", "production", "-24h", "+14d", ">2026-01-01",
    "<=2026-01-01T00:00:00Z", "2026-01-01", ">10", "1k", ">=1.2", "<1.0.0-rc.1", "1.*", "*", "so*t", "\\*",
    "none", "me", "BACKEND-1", "00" * 16, "[a, b]", "[]", "[,]", '""', '"a b"', '"unterminated', "\x00",
    "é" * 10, "9" * 40, "-" * 3, ":", "::", "!", "(", ")",
)  # fmt: skip


@st.composite
def queries(draw) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            parts.append(draw(st.text(alphabet=string.printable, max_size=30)))
        elif kind == 1:
            parts.append(draw(st.sampled_from(("OR", "AND", "or", "and", "(", ")", '"', "!", "[", "]"))))
        else:
            negation = draw(st.sampled_from(("", "", "!")))
            key = draw(st.sampled_from(_KEYS))
            operator = draw(st.sampled_from(("", "", ">", ">=", "<", "<=", "=", "!=")))
            value = draw(
                st.one_of(
                    st.sampled_from(_VALUES),
                    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
                    st.lists(st.sampled_from(_VALUES), min_size=1, max_size=4).map(
                        lambda v: "[" + ", ".join(v) + "]"
                    ),
                )
            )
            parts.append(f"{negation}{key}:{operator}{value}")
    return draw(st.sampled_from((" ", "  ", "\t"))).join(parts)


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_PARAM_VALUES = st.one_of(_TEXT, st.sampled_from(("", "-1", "0", "1", "100", "101", str(2**63), "9" * 30)))


@given(query=queries())
@HYPOTHESIS
def test_generated_queries_never_fail_with_a_5xx(client, world, query):
    h = headers(world.read_token)
    for path in READ_PATHS:
        response = client.get(path, params={"query": query}, headers=h)
        check(response)
        if response.status_code == 400:
            assert response.json()["detail"].startswith("Invalid search query"), response.text


@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(
                (
                    "project",
                    "environment",
                    "query",
                    "sort",
                    "statsPeriod",
                    "start",
                    "end",
                    "limit",
                    "cursor",
                    "groupStatsPeriod",
                    "shortIdLookup",
                    "id",
                    "status",
                    "unknown",
                )
            ),
            _PARAM_VALUES,
        ),
        max_size=8,
    ),
    method=st.sampled_from(("GET", "GET", "PUT", "DELETE")),
    path=st.sampled_from(READ_PATHS),
)
@HYPOTHESIS
def test_generated_parameters_never_fail_with_a_5xx(client, world, params, method, path):
    body = {"status": "resolved"} if method == "PUT" else None
    check(client.request(method, path, params=params, json=body, headers=headers(world.write_token)))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=12,
)
_BODY = st.one_of(
    _JSON,
    st.fixed_dictionaries(
        {
            "status": st.sampled_from(
                ("resolved", "unresolved", "ignored", "muted", "resolvedInNextRelease", "x")
            )
        },
        optional={
            "substatus": st.one_of(_TEXT, st.sampled_from(("ongoing", "archived_forever", "new"))),
            "statusDetails": st.one_of(
                _JSON,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "inRelease": st.one_of(_TEXT, st.just("r" * 9000)),
                        "inNextRelease": _JSON,
                        "ignoreCount": st.one_of(st.integers(), _JSON),
                        "ignoreUntilEscalating": _JSON,
                    },
                ),
            ),
            "snoozeDuration": st.one_of(st.integers(-(2**70), 2**70), _JSON),
        },
    ),
)


@given(body=_BODY, use_id=st.booleans())
@HYPOTHESIS
def test_generated_bodies_never_fail_with_a_5xx(client, world, body, use_id):
    params = {"id": str(world.groups[0].group_id)} if use_id else {"query": "is:resolved"}
    response = client.put(READ_PATHS[0], params=params, json=body, headers=headers(world.write_token))
    check(response)
