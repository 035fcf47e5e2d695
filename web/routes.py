"""The web interface: the issue stream and issue pages, served by the issue index service.

Pages (server-rendered Jinja2; htmx swaps the stream's results in place when scripts run, and every page and
action also works as plain links and forms without them):

  GET  /                                         to the signed-in organization's stream, or to sign in
  GET  /login, POST /login, POST /logout         sign in with an API token (kept in an HttpOnly cookie)
  GET  /organizations/{org}/issues/              the issue stream: search, sort, filters, range, cursor pages
  POST /organizations/{org}/issues/actions       bulk actions on the selected issues (CSRF-checked)
  GET  /organizations/{org}/issues/{id}/         an issue: chart, latest event, tags panel, activity
  GET  /static/...                               the stylesheet, script and the vendored htmx

Everything goes through the API's own pieces: ``api.auth`` to authenticate and authorize (a read token
browses, a write token also acts), ``IssueIndex.list_issues`` to search (same query language, sorts, cursors,
organization scoping), ``IssueIndex.update_issues`` / ``delete_issues`` to publish status changes, the API's
serializer for every issue shown, and ``api.issue_details`` for the issue page's reads.

The routes are in ``web.sign_in``, ``web.stream_page`` and ``web.issue_page``; what they share (rendering,
the signed-in viewer, labels, the action table) in ``web.pages``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from api.service import IssueIndex
from web.issue_page import add_issue_routes
from web.pages import PACKAGE, Pages
from web.sign_in import add_sign_in_routes
from web.stream_page import SPARKLINE_BUDGET, add_stream_routes

__all__ = ["SPARKLINE_BUDGET", "install"]


def install(app: FastAPI, index: IssueIndex, *, clock: Callable[[], float] = time.time) -> None:
    """Add the pages and their static files to ``app`` (the issue index service)."""
    app.mount("/static", StaticFiles(directory=str(PACKAGE.joinpath("static"))), name="web-static")
    app.include_router(_router(index, clock))


def _router(index: IssueIndex, clock: Callable[[], float]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    pages = Pages(index, clock)
    add_sign_in_routes(router, pages)
    add_stream_routes(router, pages)
    add_issue_routes(router, pages)
    return router
