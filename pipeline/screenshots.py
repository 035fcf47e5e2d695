"""Screenshots of the web interface: the issue stream and an issue page at 1280x800, for the README.

    python -m pipeline.screenshots [--output docs/screenshots] [--port 0]

Needs the local stack (``python -m pipeline.stack start``; its ports are read as the stack's own commands read
them) and Debian's Chromium (``apt-get install chromium``; ``scripts/chromium.sh`` installs it). It creates a
database of its own with a demonstration organization (``web.demo.showcase``: ``acme``, three projects,
fourteen issues over the last 14 days), serves it with the issue index service in this process, signs in with
a fresh token in headless Chromium (driven by Playwright, pointed at the system browser: nothing is
downloaded), writes ``stream.png`` and ``issue.png``, and drops the database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Headless, and nothing that reaches out to the network on its own (a closed network refuses those
# connections, and they slow every page down).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
VIEWPORT = {"width": 1280, "height": 800}
ROOT = Path(__file__).resolve().parent.parent


class BrowserMissing(RuntimeError):
    pass


def chromium_path() -> str:
    """The system Chromium, or ``BrowserMissing`` saying how to install it."""
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        raise BrowserMissing(
            f"Chromium was not found at {CHROMIUM}. Install Debian's package (as root: apt-get install -y "
            "chromium, or scripts/chromium.sh), or set CHROMIUM to the browser's path."
        )
    return path


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser of Playwright's, on the system's Chromium."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), args=list(CHROMIUM_FLAGS), headless=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a thread of this process; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="screenshots-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the issue index service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sign_in(page: Any, base_url: str, token: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/organizations/**/issues/**")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.screenshots", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--output", default=str(ROOT / "docs" / "screenshots"), help="folder for the PNG files"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port of the service it runs (default: a free one)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    from api.app import create_app
    from api.directory import Directory
    from api.service import IssueIndex
    from pipeline import admin
    from pipeline.stack import StackConfig
    from transforms.core.model import MICROS
    from transforms.storage import clients
    from web import demo
    from web.routes import install

    try:
        chromium_path()
    except BrowserMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, value in StackConfig.from_env().env().items():
        os.environ.setdefault(name, value)
    project, instance, database_id = "local-project", "local-instance", f"screenshots-{uuid.uuid4().hex[:6]}"
    admin.ensure_instance(project, instance)
    admin.create_database(project, instance, database_id)
    database = clients.spanner_database(project, instance, database_id)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    try:
        now = int(time.time()) * MICROS
        groups = demo.showcase(database, now)
        token = demo.issue_token(database, "acme", "write")
        index = IssueIndex(database, Directory(database))
        app = create_app(index)
        install(app, index)
        featured = next(g for g in groups if g.title == "TimeoutError")
        with serve(app, args.port or free_port()) as base_url, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = context.new_page()
            sign_in(page, base_url, token)
            page.goto(f"{base_url}/organizations/acme/issues/?query=&period=14d")
            page.wait_for_selector(".stream-row[data-issue-id]")
            page.screenshot(path=str(output / "stream.png"))
            page.goto(f"{base_url}/organizations/acme/issues/{featured.group_id}/?period=7d")
            page.wait_for_selector("svg.chart")
            page.screenshot(path=str(output / "issue.png"))
            browser.close()
    finally:
        clients.forget_database(project, instance, database_id)
        database.drop()
    for name in ("stream.png", "issue.png"):
        print(f"wrote {output / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
