"""Reading the organization issue index over HTTP in tests: its Link header, and every page of a list."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

LINK_RE = re.compile(r'<([^>]*)>; rel="(previous|next)"; results="(true|false)"; cursor="([^"]*)"')
SORTS = ("date", "new", "freq", "priority")
PATH = "/api/0/organizations/acme/issues/"


def links(response) -> dict[str, tuple[bool, str]]:
    return {
        rel: (results == "true", cursor)
        for _, rel, results, cursor in LINK_RE.findall(response.headers["link"])
    }


def get(client: TestClient, token: str, params: dict[str, Any] | list, path: str = PATH):
    return client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def fetch_all(client: TestClient, token: str, params: dict[str, Any], path: str = PATH) -> list[str]:
    """Every page, following next cursors; checks that each page's Link header is consistent."""
    ids: list[str] = []
    cursor = None
    for _ in range(200):
        response = get(client, token, {**params, **({"cursor": cursor} if cursor else {})}, path)
        assert response.status_code == 200, response.text
        page = [issue["id"] for issue in response.json()]
        ids.extend(page)
        has_next, cursor = links(response)["next"]
        if not has_next:
            return ids
        assert page, "a page with a next page must not be empty"
    raise AssertionError("too many pages")
