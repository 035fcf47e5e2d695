"""The issue index's request limits (issue 17, point 7): every list a request can carry, the query's length and
the body's size are bounded, and each bound answers a 400 that names it; ids that cannot exist, malformed
bodies and the caller's own organization slug in upper case get clear answers instead of 500s and bare 403s.
"""

from __future__ import annotations

import asyncio
import io

import orjson
import pytest
from fastapi.testclient import TestClient

from api import request_limits
from api.app import create_app
from pipeline import issues as issues_cli
from tests.api.factories import World, build_world

ORG_PATH = "/api/0/organizations/acme/issues/"
PROJECT_PATH = "/api/0/projects/acme/backend/issues/"
INT64_MAX = 2**63 - 1


@pytest.fixture
def world(spanner_db) -> World:
    return build_world(spanner_db.database, size=20)


@pytest.fixture
def client(publishing_index) -> TestClient:
    return TestClient(create_app(publishing_index), raise_server_exceptions=False)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- ids that cannot exist


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("ref", [str(INT64_MAX + 1), "9999999999999999999", "0", "-1", "1e5", "١٢"])
def test_an_issue_id_that_cannot_exist_is_a_400_naming_it(client, world, method, ref):
    response = client.request(
        method, ORG_PATH, params={"id": ref}, json={"status": "resolved"}, headers=auth(world.write_token)
    )
    assert response.status_code == 400, response.text
    assert (
        response.json()["detail"]
        == f'Invalid id "{ref}": not a valid issue id (a whole number from 1 to {INT64_MAX}).'
    )


def test_the_largest_issue_id_is_accepted_and_matches_nothing(client, world):
    response = client.put(
        ORG_PATH, params={"id": str(INT64_MAX)}, json={"status": "resolved"}, headers=auth(world.write_token)
    )
    assert response.status_code == 204


def test_a_short_id_beyond_the_id_range_is_no_direct_hit(client, world):
    # ZZZZZZZZZZZZZ in base 36 is about 1.7e20, past Spanner's INT64
    for query in ("BACKEND-ZZZZZZZZZZZZZ", "BACKEND-1Y2P0IJ32E8E8"):
        response = client.get(
            ORG_PATH, params={"query": query, "shortIdLookup": "1"}, headers=auth(world.read_token)
        )
        assert response.status_code in (200, 400), response.text
        assert "x-sentry-direct-hit" not in response.headers


def test_the_command_line_refuses_an_organization_id_that_cannot_exist(spanner_db, world):
    err = io.StringIO()
    code = issues_cli.main(
        ["list", "--organization", "9999999999999999999", *spanner_db.pipeline_args()],
        out=io.StringIO(),
        err=err,
    )
    assert code == 2, err.getvalue()
    assert "does not exist" in err.getvalue()


# ---- lists and lengths


def test_environment_parameters_past_the_limit_are_a_400_naming_it(client, world):
    at_limit = [("environment", f"env-{i}") for i in range(request_limits.MAX_ENVIRONMENTS)]
    assert client.get(ORG_PATH, params=at_limit, headers=auth(world.read_token)).status_code == 200
    past = [*at_limit, ("environment", "one-more")]
    response = client.get(ORG_PATH, params=past, headers=auth(world.read_token))
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"Too many environment parameters: {request_limits.MAX_ENVIRONMENTS + 1} (at most {request_limits.MAX_ENVIRONMENTS})."
    )


def test_project_parameters_past_the_limit_are_a_400_naming_it(client, world):
    past = [("project", "backend")] * (request_limits.MAX_PROJECTS + 1)
    response = client.get(ORG_PATH, params=past, headers=auth(world.read_token))
    assert response.status_code == 400
    assert f"at most {request_limits.MAX_PROJECTS}" in response.json()["detail"]
    assert "project parameters" in response.json()["detail"]


def test_id_parameters_past_the_limit_are_a_400_naming_it(client, world):
    past = [("id", str(i)) for i in range(1, request_limits.MAX_IDS + 2)]
    response = client.put(ORG_PATH, params=past, json={"status": "resolved"}, headers=auth(world.write_token))
    assert response.status_code == 400
    assert (
        response.json()["detail"]
        == f"Too many id parameters: {request_limits.MAX_IDS + 1} (at most {request_limits.MAX_IDS})."
    )


def test_a_query_list_past_the_limit_is_a_400_naming_it(client, world):
    values = ", ".join(f"1.0.{i}" for i in range(request_limits.MAX_LIST_VALUES))
    response = client.get(ORG_PATH, params={"query": f"release:[{values}]"}, headers=auth(world.read_token))
    assert response.status_code == 200, response.text
    values += ", 9.9.9"
    response = client.get(ORG_PATH, params={"query": f"release:[{values}]"}, headers=auth(world.read_token))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert (
        f"a list holds at most {request_limits.MAX_LIST_VALUES} values" in detail and "position 0" in detail
    )


def test_a_query_past_the_length_limit_is_a_400_naming_it(client, world):
    query = "x" * request_limits.MAX_QUERY_CHARS
    assert client.get(ORG_PATH, params={"query": query}, headers=auth(world.read_token)).status_code == 200
    response = client.get(ORG_PATH, params={"query": query + "y"}, headers=auth(world.read_token))
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"Invalid search query: the query is {request_limits.MAX_QUERY_CHARS + 1} characters long "
        f"(at most {request_limits.MAX_QUERY_CHARS})"
    )


def test_a_query_value_too_long_to_be_stored_is_a_400_naming_the_limit(client, world):
    value = "é" * (request_limits.MAX_VALUE_BYTES // 2 + 1)  # within the query length, past the key bytes
    for query in (f'release:"{value}"', f"environment:[a, {value}]"):
        response = client.get(ORG_PATH, params={"query": query}, headers=auth(world.read_token))
        assert response.status_code == 400, response.text
        assert f"longer than {request_limits.MAX_VALUE_BYTES} bytes" in response.json()["detail"]
    response = client.get(ORG_PATH, params={"environment": value}, headers=auth(world.read_token))
    assert response.status_code == 400
    assert f"longer than {request_limits.MAX_VALUE_BYTES} bytes" in response.json()["detail"]


def test_many_list_terms_cannot_add_up_past_the_lookup_limit(client, world):
    lists = [", ".join(f"v{n}.{i}" for i in range(request_limits.MAX_LIST_VALUES)) for n in range(3)]
    query = " ".join(f"release:[{values}]" for values in lists)
    response = client.get(ORG_PATH, params={"query": query}, headers=auth(world.read_token))
    assert response.status_code == 400
    assert f"at most {request_limits.MAX_LOOKUP_VALUES}" in response.json()["detail"]


# ---- the cost of one page


@pytest.mark.parametrize(
    "query", ["level:fatal is:unresolved", "release:[1.0.0, 1.1.0, nope] level:[error, fatal]"]
)
def test_a_page_examines_a_bounded_number_of_rows_and_the_next_pages_find_every_match(
    publishing_index, spanner_db, monkeypatch, query
):
    import api.search.searcher
    from api.service import ListRequest
    from tests.api.factories import expected_order

    world = build_world(spanner_db.database, size=150)
    monkeypatch.setattr(api.search.searcher, "PAGE_ROW_BUDGET", 12)
    monkeypatch.setattr(api.search.searcher, "PAGE_LOOKUP_BUDGET", 9)
    organization = publishing_index.organization("acme")
    ids, cursor, pages = [], None, 0
    while True:
        page = publishing_index.list_issues(
            organization, ListRequest(query=query, limit=5, cursor=cursor), count_hits=False
        )
        pages += 1
        # the rows handed out, plus at most as many read ahead in chunks, plus a first chunk per range (4)
        assert page.stats.index_rows <= 2 * 12 + 4 * api.search.searcher.MIN_FIRST_CHUNK
        ids += [issue["id"] for issue in page.issues]
        if not page.has_next:
            break
        cursor = page.next.encode()
        assert pages < 200
    wanted = [
        g
        for g in world.groups
        if g.type != 6001
        and (g.status == 0 or not query.startswith("level"))
        and g.level in ((50,) if query.startswith("level") else (40, 50))
        and (query.startswith("level") or world.releases[g.group_id] & {"1.0.0", "1.1.0", "nope"})
    ]
    assert ids == [str(g.group_id) for g in expected_order(wanted, "date")]
    assert pages > len(ids) // 5 + 1, "pages ended early at the budget"


# ---- the body


def test_an_invalid_json_body_is_a_400_saying_so(client, world):
    response = client.put(
        ORG_PATH,
        params={"id": str(world.groups[0].group_id)},
        content=b'{"status": resolved}',
        headers={**auth(world.write_token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("Invalid request body: not valid JSON"), detail
    assert "position 11" in detail


def _asgi_put(app, body_chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, int]:
    """Send a PUT through the ASGI app chunk by chunk; (status, body, chunks the app asked for)."""
    consumed = 0
    sent: list[dict] = []
    chunks = list(body_chunks)

    async def receive() -> dict:
        nonlocal consumed
        if not chunks:
            return {"type": "http.disconnect"}
        consumed += 1
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": ORG_PATH,
        "raw_path": ORG_PATH.encode(),
        "query_string": b"id=1",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], orjson.loads(body) if body else {}, consumed


def test_a_body_past_the_limit_is_refused_before_it_is_read(publishing_index, world):
    app = create_app(publishing_index)
    chunk = b" " * 65_536
    chunks = [b'{"status": "resolved"' + chunk] + [chunk] * 319  # about 20 MB
    headers = [
        (b"authorization", f"Bearer {world.write_token}".encode()),
        (b"content-type", b"application/json"),
    ]
    status, body, consumed = _asgi_put(app, chunks, headers)
    assert status == 400
    assert body["detail"] == f"The request body is larger than {request_limits.MAX_BODY_BYTES} bytes."
    assert consumed * len(chunk) <= request_limits.MAX_BODY_BYTES + 2 * len(chunk)
    # a declared length past the limit is refused without reading anything
    declared = [*headers, (b"content-length", str(20_000_000).encode())]
    status, body, consumed = _asgi_put(app, chunks, declared)
    assert (status, consumed) == (400, 0)
    assert "larger than" in body["detail"]


def test_a_body_at_the_limit_is_read(publishing_index, world):
    app = create_app(publishing_index)
    text = b'{"status": "resolved"}'
    body = text + b" " * (request_limits.MAX_BODY_BYTES - len(text))
    headers = [
        (b"authorization", f"Bearer {world.write_token}".encode()),
        (b"content-type", b"application/json"),
    ]
    status, _, _ = _asgi_put(app, [body[:1000], body[1000:]], headers)
    assert status in (202, 204)


# ---- the organization slug


def test_the_callers_own_organization_slug_matches_in_any_case(client, world):
    lower = client.get(ORG_PATH, params={"query": ""}, headers=auth(world.read_token))
    upper = client.get(ORG_PATH.replace("acme", "ACME"), params={"query": ""}, headers=auth(world.read_token))
    assert upper.status_code == 200, upper.text
    assert upper.json() == lower.json()
    response = client.get(
        PROJECT_PATH.replace("acme", "Acme").replace("backend", "BackEnd"), headers=auth(world.read_token)
    )
    assert response.status_code == 200, response.text
    # another organization stays a 403 whatever its case
    response = client.get(ORG_PATH.replace("acme", "GLOBEX"), headers=auth(world.read_token))
    assert response.status_code == 403
