"""The pages in a real browser (Debian's Chromium through Playwright) against the running service, on data
written as the pipeline writes it: the issue page's chart counts, query errors inline, search with filters,
sorting, cursor pages, and bulk actions published as status changes."""

from __future__ import annotations

import random
import time
from collections import Counter

import orjson
import pytest

from pipeline.screenshots import sign_in
from tests.api.factories import G, add_environments, add_organization, add_project, add_token, write_groups
from tests.web.conftest import WebService, search
from transforms.core.enums import ActivityType, GroupStatus, GroupSubStatus, Priority
from transforms.core.model import MICROS
from web.demo import occurrence_row, write_activity, write_occurrences, write_tags

HOUR = 3600 * MICROS
DAY = 24 * HOUR
pytestmark = pytest.mark.slow


def hour_floor(micros: int) -> int:
    return micros // HOUR * HOUR


def stream(page, service: WebService, **params: str) -> None:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    page.goto(f"{service.url}/organizations/acme/issues/?{query}")


def row_ids(page) -> list[str]:
    return page.locator(".stream-body .stream-row[data-issue-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.issueId)"
    )


@pytest.fixture
def acme(web_service: WebService) -> dict:
    database = web_service.database.database
    add_organization(database, 1, "acme")
    add_project(database, 1, 1, "backend")
    add_project(database, 2, 1, "frontend")
    return {"write": add_token(database, 1, "write"), "read": add_token(database, 1, "read")}


def test_issue_page_chart_counts_the_stored_occurrences_per_hour_and_day(web_service, acme, page):
    database = web_service.database.database
    now = int(time.time()) * MICROS
    group = G(
        4242,
        1,
        1,
        last_seen=now - 2 * HOUR,
        first_seen=now - 30 * HOUR,
        times_seen=9,
        title="Checkout timeout",
        first_release="backend@1.0",
    )
    write_groups(database, [group])
    # the latest (now - 2 h) is the one whose release is last in the list
    moments = [now - 2 * HOUR - k * MICROS for k in range(3)] + [
        now - 5 * HOUR - k * MICROS for k in range(5)
    ]
    moments.append(now - 30 * HOUR)
    rows = [
        occurrence_row(
            4242, 1, moment, title="Checkout timeout", release=f"backend@1.{i}", environment="production"
        )
        for i, moment in enumerate(sorted(moments))
    ]
    write_occurrences(database, rows)
    write_activity(database, 4242, 1, ActivityType.SET_RESOLVED, now - 10 * HOUR)
    write_activity(database, 4242, 1, ActivityType.SET_REGRESSION, now - 3 * HOUR, {"version": "backend@1.7"})

    sign_in(page, web_service.url, acme["read"])
    page.goto(f"{web_service.url}/organizations/acme/issues/4242/?period=24h")
    bars = page.locator("svg.chart rect.chart-bar")
    counts = dict(
        zip(
            bars.evaluate_all("bars => bars.map(b => b.dataset.start)"),
            [int(c) for c in bars.evaluate_all("bars => bars.map(b => b.dataset.count)")],
        )
    )
    assert len(counts) == 25  # the hours covering the last 24 hours
    from web.timerange import iso

    expected = Counter(iso(hour_floor(m)) for m in moments if m >= hour_floor(now - DAY))
    assert {start: count for start, count in counts.items() if count} == expected
    assert page.locator("#in-range").inner_text() == "8"
    assert page.locator("#times-seen").inner_text() == "9"

    page.goto(f"{web_service.url}/organizations/acme/issues/4242/?period=14d")
    daily = page.locator("svg.chart rect.chart-bar").evaluate_all("bars => bars.map(b => +b.dataset.count)")
    assert len(daily) == 15 and sum(daily) == 9
    # the latest event, its release as the last seen release, the first release, the labelled tags panel
    assert "backend@1.8" in page.locator(".seen").inner_text()
    assert "backend@1.0" in page.locator(".seen").inner_text()
    panel = page.locator(".tags-panel")
    assert panel.get_attribute("data-source") == "latest_event"
    assert "latest event" in panel.inner_text()
    assert "backend@1.8" in panel.inner_text() and "production" in panel.inner_text()
    # activity newest first, first seen last
    labels = page.locator(".activity .activity-label").all_inner_texts()
    assert labels == ["Regressed", "Resolved", "First seen"]
    # a read token sees no actions
    assert page.locator("form.issue-actions button").count() == 0


def test_issue_page_tags_panel_shows_each_keys_top_values_and_shares_over_all_events(web_service, acme, page):
    database = web_service.database.database
    now = int(time.time()) * MICROS
    write_groups(database, [G(4343, 1, 1, last_seen=now - HOUR, times_seen=8, title="Checkout failed")])
    browsers = ["Chrome 131"] * 5 + ["Firefox 133"] * 2 + ["Safari 18.1"]
    rows = [
        occurrence_row(
            4343,
            1,
            now - (k + 1) * HOUR,
            title="Checkout failed",
            environment="production" if k % 4 else "staging",
            tags=[("browser", browser), ("user", f"id:{k % 2}")],
        )
        for k, browser in enumerate(browsers)
    ]
    write_occurrences(database, rows)
    write_tags(database, {4343: 1}, rows)
    sign_in(page, web_service.url, acme["read"])
    page.goto(f"{web_service.url}/organizations/acme/issues/4343/")
    panel = page.locator(".tags-panel")
    assert panel.get_attribute("data-source") == "all_events"
    assert "over all of this issue's events" in panel.inner_text()
    browser = panel.locator('.tag-key[data-key="browser"]')
    assert browser.get_attribute("data-total") == "8"
    assert browser.locator("dd .tag-value").all_inner_texts() == ["Chrome 131", "Firefox 133", "Safari 18.1"]
    assert browser.locator("dd .tag-share").all_inner_texts() == ["62%", "25%", "12%"]
    environment = panel.locator('.tag-key[data-key="environment"] dd')
    assert environment.evaluate_all("rows => rows.map(r => [r.dataset.value, +r.dataset.count])") == [
        ["production", 6],
        ["staging", 2],
    ]
    # Sentry's labels: the user tag shows its identifier without the "id:" prefix, under "User"
    user = panel.locator('.tag-key[data-key="user"]')
    assert user.locator("dt").inner_text().startswith("User")
    assert sorted(user.locator("dd .tag-value").all_inner_texts()) == ["0", "1"]


def test_a_wrong_query_shows_its_error_inline_where_the_query_is_wrong(web_service, acme, page):
    now = int(time.time()) * MICROS
    write_groups(web_service.database.database, [G(7, 1, 1, title="Some issue", last_seen=now - HOUR)])
    sign_in(page, web_service.url, acme["read"])
    search(page, "is:unresolved error.handled:0")
    error = page.locator("#query-error")
    error.wait_for()
    assert '"error.handled" cannot be searched here' in error.inner_text()
    assert page.locator("#query-error mark").inner_text() == "error.handled:0"
    assert page.get_by_label("Search issues").get_attribute("aria-invalid") == "true"
    assert page.locator(".stream-body .stream-row[data-issue-id]").count() == 0
    # fixing it brings the issues back, and the URL says what was searched
    search(page, "is:unresolved")
    page.locator(".stream-row[data-issue-id='7']").wait_for()
    assert page.locator("#query-error").count() == 0
    assert "query=is%3Aunresolved" in page.url


def test_search_with_filters_sort_and_cursor_pages(web_service, acme, page):
    database = web_service.database.database
    now = int(time.time()) * MICROS
    rnd = random.Random(3)
    groups = []
    for i in range(1, 31):
        groups.append(
            G(
                1000 + i,
                1 if i % 3 else 2,
                1,
                last_seen=now - i * HOUR,
                first_seen=now - (40 - i) * HOUR,
                times_seen=rnd.randrange(1, 500),
                level=40 if i % 2 else 30,
                priority=Priority.HIGH,
                title=f"{'Timeout' if i % 4 == 0 else 'Failure'} number {i}",
            )
        )
    write_groups(database, groups)
    add_environments(database, [(g.group_id, "production" if g.group_id % 2 else "staging") for g in groups])
    sign_in(page, web_service.url, acme["read"])
    # the environment box suggests the environments of the matching issues once it has the focus
    page.get_by_label("Environment").focus()
    page.wait_for_function("() => document.querySelectorAll('#environment-options option').length === 2")
    options = page.locator("#environment-options option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["production", "staging"]

    # filters: project picker and a query
    page.get_by_label("Project").select_option("backend")
    page.wait_for_url("**project=backend**")
    search(page, "is:unresolved level:error")
    page.wait_for_url("**level%3Aerror**")
    expected = [g for g in groups if g.project_id == 1 and g.level == 40]
    by_date = [str(g.group_id) for g in sorted(expected, key=lambda g: g.last_seen, reverse=True)]
    assert row_ids(page) == by_date
    assert all(level == "error" for level in page.locator(".stream-body .level-badge").all_inner_texts())

    # sort by events, then by first seen
    page.get_by_label("Sort by").select_option("freq")
    page.wait_for_url("**sort=freq**")
    by_events = sorted(expected, key=lambda g: (g.times_seen, g.group_id), reverse=True)
    assert row_ids(page) == [str(g.group_id) for g in by_events]
    page.get_by_label("Sort by").select_option("new")
    page.wait_for_url("**sort=new**")
    assert row_ids(page) == [
        str(g.group_id) for g in sorted(expected, key=lambda g: g.first_seen, reverse=True)
    ]

    # cursor pages of 8 over all 30, by last seen
    stream(page, web_service, query="", limit="8")
    everything = [str(g.group_id) for g in sorted(groups, key=lambda g: g.last_seen, reverse=True)]
    seen = row_ids(page)
    assert seen == everything[:8]
    page.locator("#stream-count").wait_for()  # the count comes after the page
    assert (
        page.locator("#stream-summary").inner_text().startswith("8 issues on this page of 30 matching issues")
    )
    for start in (8, 16, 24):
        page.get_by_role("link", name="Next ›").click()
        page.wait_for_function(
            "first => document.querySelector('.stream-body .stream-row[data-issue-id]').dataset.issueId === first",
            arg=everything[start],
        )
        seen += row_ids(page)
    assert seen == everything
    assert page.get_by_role("link", name="Next ›").count() == 0  # the last page has no next link
    page.get_by_role("link", name="‹ Previous").click()
    page.wait_for_function(
        "first => document.querySelector('.stream-body .stream-row[data-issue-id]').dataset.issueId === first",
        arg=everything[16],
    )
    assert "cursor=" in page.url and acme["read"] not in page.url


def test_bulk_actions_publish_status_changes_and_delete_asks_first(web_service, acme, page, pubsub_topics):
    database = web_service.database.database
    groups = [
        G(
            500 + i,
            1,
            1,
            title=f"Issue {i}",
            fingerprint=f"fp-{i}",
            last_seen=int(time.time()) * MICROS - i * HOUR,
        )
        for i in range(4)
    ]
    write_groups(database, groups)
    sign_in(page, web_service.url, acme["write"])
    stream(page, web_service, query="")
    page.locator(".stream-row[data-issue-id='500'] input.row-check").check()
    page.locator(".stream-row[data-issue-id='502'] input.row-check").check()
    assert page.locator("#selection-count").inner_text() == "2 selected"
    page.locator("summary", has_text="Ignore").click()
    page.get_by_role("button", name="For 2 hours").click()
    notice = page.locator("#action-notice")
    notice.wait_for()
    assert "sent for 2 issues" in notice.inner_text()
    assert "once the pipeline applies it" in notice.inner_text()
    published = [orjson.loads(m.data) for m in pubsub_topics.pull(web_service.topic, timeout_s=10)]
    assert sorted(p["fingerprint"][0] for p in published) == ["fp-0", "fp-2"]
    assert {(p["new_status"], p["new_substatus"]) for p in published} == {
        (GroupStatus.IGNORED, GroupSubStatus.UNTIL_CONDITION_MET)
    }

    # delete: a confirmation first, nothing published until it is confirmed
    page.locator(".stream-row[data-issue-id='501'] input.row-check").check()
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("heading", name="Delete 1 issue?").wait_for()
    assert pubsub_topics.pull(web_service.topic, timeout_s=2) == []
    page.get_by_role("button", name="Delete 1 issue").click()
    page.locator("#action-notice").wait_for()
    deleted = [orjson.loads(m.data) for m in pubsub_topics.pull(web_service.topic, timeout_s=10)]
    assert [(p["fingerprint"], p["new_status"]) for p in deleted] == [
        (["fp-1"], GroupStatus.PENDING_DELETION)
    ]


def test_every_control_is_named_and_actions_work_from_the_keyboard(web_service, acme, page, pubsub_topics):
    now = int(time.time()) * MICROS
    write_groups(web_service.database.database, [G(900, 1, 1, title="Keyboard issue", last_seen=now - HOUR)])
    sign_in(page, web_service.url, acme["write"])
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, button')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
            .map(el => el.outerHTML)"""
    )
    assert unnamed == []
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    # select the issue and ignore it until escalating, with the keyboard only
    box = page.get_by_label("Select BACKEND-")
    box.focus()
    page.keyboard.press("Space")
    ignore = page.locator("summary", has_text="Ignore")
    ignore.focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Until escalating").focus()
    page.keyboard.press("Enter")
    page.locator("#action-notice").wait_for()
    (message,) = [orjson.loads(m.data) for m in pubsub_topics.pull(web_service.topic, timeout_s=10)]
    assert (message["new_status"], message["new_substatus"]) == (
        GroupStatus.IGNORED,
        GroupSubStatus.UNTIL_ESCALATING,
    )
