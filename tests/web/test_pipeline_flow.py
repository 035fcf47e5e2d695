"""The issue stream end to end: occurrences published to Pub/Sub become issues through the streaming pipeline,
a user signs in with a token in Chromium, searches with filters, sorts, pages with cursors, selects two issues
and resolves them; the pipeline applies the status changes and the stream shows them resolved."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest

from pipeline.screenshots import sign_in
from tests.api.factories import add_organization, add_project, add_token
from tests.processes import stream_pipeline, wait_for
from tests.web.conftest import search

pytestmark = pytest.mark.slow
ISSUES = 12


def occurrence(project_id: int, number: int, now: float) -> dict:
    event_id = uuid.uuid4().hex
    moment = now - (ISSUES - number) * 60
    return {
        "payload_type": "occurrence",
        "id": uuid.uuid4().hex,
        "project_id": project_id,
        "event_id": event_id,
        "fingerprint": [f"checkout-failure-{number}"],
        "issue_title": f"Checkout failure {number:02d}",
        "subtitle": "payment provider answered 502",
        "culprit": f"checkout.step_{number}",
        "evidence_display": [],
        "type": 1018,  # released, no noise gate: the first occurrence creates the group
        "detection_time": moment,
        "level": "error" if number % 2 else "warning",
        "initial_issue_priority": 75,
        "event": {
            "event_id": event_id,
            "project_id": project_id,
            "platform": "python",
            "timestamp": moment,
            "release": "backend@2.0.0",
            "environment": "production",
        },
    }


def visible_ids(page) -> list[str]:
    return page.locator(".stream-body .stream-row[data-issue-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.issueId)"
    )


def titles(page) -> list[str]:
    return page.locator(".stream-body .title-text").all_inner_texts()


def test_sign_in_search_sort_page_resolve_two_and_see_them_resolved(
    web_service, pubsub_topics, page, tmp_path
):
    database = web_service.database.database
    add_organization(database, 1, "acme")
    add_project(database, 1, 1, "backend")
    add_project(database, 2, 1, "frontend")
    token = add_token(database, 1, "write")
    now = time.time()
    for number in range(1, ISSUES + 1):
        project = 1 if number <= 8 else 2
        pubsub_topics.publish(
            web_service.topic, orjson.dumps(occurrence(project, number, now)), content_type="application/json"
        )

    log = tmp_path / "pipeline.log"
    with stream_pipeline(web_service.topic.subscription, web_service.database.pipeline_args(), log):

        def groups() -> int:
            with database.snapshot() as snapshot:
                return next(iter(snapshot.execute_sql("SELECT COUNT(*) FROM `Groups`")))[0]

        wait_for(lambda: groups() == ISSUES, "the pipeline to create the issues", timeout=240, log=log)

        sign_in(page, web_service.url, token)
        assert token not in page.url
        cookie = next(c for c in page.context.cookies() if c["name"] == "issues_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert page.evaluate("document.cookie") == ""  # script cannot read the session
        assert sorted(titles(page)) == [f"Checkout failure {n:02d}" for n in range(1, ISSUES + 1)]

        # search with filters: the frontend project's errors
        page.get_by_label("Project").select_option("frontend")
        page.wait_for_url("**project=frontend**")
        search(page, "is:unresolved level:error")
        page.wait_for_url("**level%3Aerror**")
        assert titles(page) == ["Checkout failure 11", "Checkout failure 09"]

        # sort: first seen, oldest last; then all projects, events sort, pages of 5
        page.get_by_label("Project").select_option("")
        page.wait_for_url(lambda url: "project=frontend" not in url)
        search(page, "is:unresolved")
        page.wait_for_url(lambda url: url.endswith("query=is%3Aunresolved"))
        page.get_by_label("Sort by").select_option("new")
        page.wait_for_url("**sort=new**")
        newest_first = [f"Checkout failure {n:02d}" for n in range(ISSUES, 0, -1)]
        assert titles(page) == newest_first

        page.goto(page.url + "&limit=5")
        assert titles(page) == newest_first[:5]
        page.get_by_role("link", name="Next ›").click()
        page.wait_for_function(
            "t => document.querySelector('.stream-body .title-text').textContent === t", arg=newest_first[5]
        )
        assert titles(page) == newest_first[5:10]

        # select two issues of this page and resolve them
        chosen = visible_ids(page)[:2]
        for issue_id in chosen:
            page.locator(f".stream-row[data-issue-id='{issue_id}'] input.row-check").check()
        page.get_by_role("button", name="Resolve", exact=True).click()
        notice = page.locator("#action-notice")
        notice.wait_for()
        assert "Resolve: sent for 2 issues" in notice.inner_text()
        assert "takes effect once the pipeline applies it" in notice.inner_text()

        # the pipeline applies them: the resolved search lists exactly those two, shown as resolved
        def resolved() -> list[str]:
            page.goto(f"{web_service.url}/organizations/acme/issues/?query=is%3Aresolved")
            return visible_ids(page)

        assert sorted(
            wait_for(resolved, "the resolves to take effect", timeout=180, interval=2, log=log)
        ) == sorted(chosen)
        assert page.locator(".stream-body .status-badge").all_inner_texts() == ["Resolved", "Resolved"]
        page.goto(f"{web_service.url}/organizations/acme/issues/?query=is%3Aunresolved")
        assert set(visible_ids(page)).isdisjoint(chosen) and len(visible_ids(page)) == ISSUES - 2
        # the issue page says so too
        page.goto(f"{web_service.url}/organizations/acme/issues/{chosen[0]}/")
        assert page.locator("#issue-status").inner_text() == "Resolved"
        assert page.locator(".activity .activity-label").first.inner_text() == "Resolved"
