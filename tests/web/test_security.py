"""Sign-in, sessions and CSRF against the running service (plain HTTP, no browser): the token stays in an
HttpOnly cookie and out of URLs, every change needs the page's CSRF token from the same origin and a write
token, and nothing is published when a change is refused."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.factories import G, add_organization, add_project, add_token, write_groups
from tests.web.conftest import WebService
from web.session import csrf_token

pytestmark = pytest.mark.slow


@pytest.fixture
def tokens(web_service: WebService) -> dict[str, str]:
    database = web_service.database.database
    add_organization(database, 1, "acme")
    add_organization(database, 2, "globex")
    add_project(database, 1, 1, "backend")
    add_project(database, 3, 2, "mobile")
    write_groups(database, [G(11, 1, 1, fingerprint="fp-11")])
    return {"write": add_token(database, 1, "write"), "read": add_token(database, 1, "read")}


def signed_in(service: WebService, token: str) -> httpx.Client:
    client = httpx.Client(base_url=service.url, follow_redirects=False, timeout=30)
    page = client.get("/login")
    value = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"csrf_token": value, "token": token, "next": ""})
    assert response.status_code == 303, response.text
    return client


def test_pages_need_a_session_and_sign_in_keeps_the_token_out_of_urls(web_service, tokens):
    client = httpx.Client(base_url=web_service.url, follow_redirects=False, timeout=30)
    response = client.get("/organizations/acme/issues/?query=is%3Aresolved")
    assert response.status_code == 303
    assert (
        response.headers["location"]
        == "/login?next=%2Forganizations%2Facme%2Fissues%2F%3Fquery%3Dis%253Aresolved"
    )

    # the sign-in form's own CSRF cookie must match the form
    page = client.get("/login")
    assert "HttpOnly" in page.headers["set-cookie"]
    assert client.post("/login", data={"csrf_token": "forged", "token": tokens["write"]}).status_code == 403
    value = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    refused = client.post("/login", data={"csrf_token": value, "token": "sntryu_" + "0" * 64})
    assert refused.status_code == 401 and "issues_session" not in refused.headers.get("set-cookie", "")

    page = client.get("/login")
    value = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login",
        data={"csrf_token": value, "token": tokens["write"], "next": "/organizations/acme/issues/?query="},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/organizations/acme/issues/?query="
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"issues_session={tokens['write']};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/organizations/acme/issues/?query=")
    assert page.status_code == 200 and tokens["write"] not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    # another organization's pages are refused; the next parameter cannot lead off the site
    assert client.get("/organizations/globex/issues/").status_code == 403
    assert 'value="https://evil.example/"' not in client.get("/login?next=https://evil.example/").text


def test_changes_need_the_csrf_token_the_same_origin_and_a_write_token(web_service, tokens, pubsub_topics):
    client = signed_in(web_service, tokens["write"])
    action = {"action": "resolve", "id": "11", "return_to": "/organizations/acme/issues/"}
    assert client.post("/organizations/acme/issues/actions", data=action).status_code == 403
    forged = {**action, "csrf_token": csrf_token(tokens["read"])}
    assert client.post("/organizations/acme/issues/actions", data=forged).status_code == 403
    good = {**action, "csrf_token": csrf_token(tokens["write"])}
    cross_site = client.post(
        "/organizations/acme/issues/actions", data=good, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert pubsub_topics.pull(web_service.topic, timeout_s=2) == []

    reader = signed_in(web_service, tokens["read"])
    response = reader.post(
        "/organizations/acme/issues/actions",
        data={**action, "csrf_token": csrf_token(tokens["read"])},
        headers={"HX-Request": "true", "HX-Target": "stream-results"},
    )
    assert response.status_code == 200 and "This token can only read" in response.text
    assert pubsub_topics.pull(web_service.topic, timeout_s=2) == []

    accepted = client.post("/organizations/acme/issues/actions", data=good)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/organizations/acme/issues/"
    assert len(pubsub_topics.pull(web_service.topic, timeout_s=10)) == 1
    notice = client.get("/organizations/acme/issues/")
    assert "Resolve: sent for 1 issue" in notice.text

    # signing out needs the CSRF token too, and ends the session
    assert client.post("/logout", data={}).status_code == 403
    out = client.post("/logout", data={"csrf_token": csrf_token(tokens["write"])})
    assert out.status_code == 303 and 'issues_session=""' in out.headers["set-cookie"]
    assert client.get("/organizations/acme/issues/").status_code == 303
