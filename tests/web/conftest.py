"""Fixtures of the web interface's tests: the issue index service running for real, and Debian's Chromium.

``web_service`` starts ``python -m pipeline.api`` (uvicorn, a process of its own) on the test's database, with
a fresh status-change topic, and gives its URL; ``page`` is a Playwright page (1280x800) in a headless Chromium
launched from ``/usr/bin/chromium`` (``CHROMIUM`` overrides it). Nothing is downloaded: without the system
browser the browser tests fail, saying how to install it (``./run_tests.sh`` installs it when run as root).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.screenshots import VIEWPORT, BrowserMissing, free_port, launch_chromium
from tests.conftest import PubSubTopics, TestDatabase, TopicRef
from tests.processes import start_module, stop, wait_until_serving


@dataclass
class WebService:
    url: str
    database: TestDatabase
    topic: TopicRef
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""


@pytest.fixture
def web_service(
    spanner_db: TestDatabase, pubsub_topics: PubSubTopics, tmp_path: Path
) -> Iterator[WebService]:
    topic = pubsub_topics.create("web-input")
    port = free_port()
    log = tmp_path / "service.log"
    with log.open("wb") as output:
        process = start_module(
            "pipeline.api",
            [f"--port={port}", *spanner_db.pipeline_args(), f"--status_change_topic={topic.topic}"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    service = WebService(f"http://127.0.0.1:{port}", spanner_db, topic, log)
    try:
        wait_until_serving(service.url, process, timeout=90, failure=service.log_tail, probe_timeout=2)
        yield service
    finally:
        stop(process, timeout=20)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            launched = launch_chromium(playwright)
        except BrowserMissing as exc:
            pytest.fail(str(exc))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def search(page: Any, query: str) -> None:
    """Types ``query`` into the issue stream's search box and submits it."""
    box = page.get_by_label("Search issues")
    box.fill(query)
    box.press("Enter")
