"""What every page of the web interface shares: its labels and action table, the signed-in ``Viewer``,
``Pages`` (rendering with the security headers, the viewer of a request, the answer to a request without a
valid session) and the helpers the templates use. Routes: ``web.sign_in``, ``web.stream_page``,
``web.issue_page``; ``web.routes.install`` puts them together."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api import auth
from api.directory import Organization, Project
from api.errors import ApiError
from api.issue_details import EventSeries
from api.serializers import short_id
from api.service import IssueIndex
from transforms.core.model import from_datetime
from web import charts, session
from web.timerange import absolute, iso, relative

SORT_LABELS = {"date": "Last Seen", "new": "First Seen", "freq": "Events", "priority": "Priority"}
STATUS_LABELS = {"unresolved": "Unresolved", "resolved": "Resolved", "ignored": "Ignored"}
SUBSTATUS_LABELS = {
    "new": "New",
    "ongoing": "Ongoing",
    "regressed": "Regressed",
    "escalating": "Escalating",
    "archived_until_escalating": "Until escalating",
    "archived_until_condition_met": "Until condition met",
    "archived_forever": "Forever",
}
IGNORE_DURATIONS = {30: "30 minutes", 120: "2 hours", 360: "6 hours", 1440: "24 hours", 10080: "1 week"}
# What each action button sends (Sentry's bulk update bodies, as the API takes them).
ACTIONS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "resolve": ("Resolve", {"status": "resolved"}),
    "resolve_next_release": (
        "Resolve in next release",
        {"status": "resolved", "statusDetails": {"inNextRelease": True}},
    ),
    "ignore_forever": ("Ignore forever", {"status": "ignored", "substatus": "archived_forever"}),
    "ignore_until_escalating": (
        "Ignore until escalating",
        {"status": "ignored", "substatus": "archived_until_escalating"},
    ),
    "unresolve": ("Unresolve", {"status": "unresolved"}),
    "delete": ("Delete", None),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PACKAGE = resources.files("web")


@dataclass(slots=True)
class Notice:
    kind: str  # "success", "error" or "info"
    text: str


@dataclass(slots=True)
class Viewer:
    """The signed-in session of a request."""

    token: str
    organization: Organization
    can_write: bool
    csrf: str
    projects: dict[int, Project] = field(default_factory=dict)


class SignIn(Exception):
    """The request has no valid session: answer with the sign-in page (or a redirect to it)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "")
        self.reason = reason


class Refused(Exception):
    def __init__(self, status: int, title: str, text: str) -> None:
        super().__init__(text)
        self.status, self.title, self.text = status, title, text


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(PACKAGE.joinpath("templates"))),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{int(n):,}"
    return env


def _asset_version() -> str:
    digest = hashlib.sha256()
    for name in ("app.css", "app.js"):
        digest.update(PACKAGE.joinpath("static").joinpath(name).read_bytes())
    return digest.hexdigest()[:10]


class Pages:
    """What the routes share: the index, the clock and the templates; a page rendered with the security
    headers (and its ``Server-Timing``), the signed-in viewer of a request, and the answer to a request
    without a valid session (the sign-in page, or a redirect to it) or refused (an error page)."""

    def __init__(self, index: IssueIndex, clock: Callable[[], float]) -> None:
        self.index = index
        self.clock = clock
        self.directory = index.directory
        self.templates = _templates()
        self.version = _asset_version()

    def now(self) -> int:
        return from_datetime(datetime.fromtimestamp(self.clock(), UTC))

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("viewer", None)
        timings: Timings | None = context.get("timings")
        began = time.perf_counter()
        html = self.templates.get_template(name).render(
            request=request, asset_version=self.version, now=self.now(), **_helpers(self.now()), **context
        )
        headers = dict(SECURITY_HEADERS)
        if timings is not None:
            timings.add("render", began)
            headers["Server-Timing"] = timings.header()
        return HTMLResponse(html, status_code=status, headers=headers)

    def viewer_for(self, request: Request, organization_ref: str | None, method: str = "GET") -> Viewer:
        token = session.session_token(request)
        if token is None:
            raise SignIn()
        try:
            stored = auth.authenticate(self.directory, f"Bearer {token}")
        except ApiError:
            raise SignIn("Your token is no longer valid. Sign in again.") from None
        organization = self.directory.organization(stored.organization_id)
        if organization is None:
            raise SignIn("Your token's organization no longer exists.")
        if organization_ref is not None:
            try:
                auth.authorize(self.directory, stored, organization_ref, "GET")
            except ApiError:
                raise Refused(
                    403,
                    "Not your organization",
                    f'Your token belongs to organization "{organization.slug}", not "{organization_ref}".',
                ) from None
        return Viewer(
            token,
            organization,
            stored.scope == auth.WRITE,
            session.csrf_token(token),
            self.directory.projects(organization.id),
        )

    def sign_in_redirect(self, request: Request, reason: str | None) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        if reason:
            session.end_session(response)
            response.set_cookie(
                session.FLASH_COOKIE, f"error:{reason}", max_age=60, httponly=True, samesite="lax"
            )
        return response

    def guarded(self, request: Request, build: Callable[[], Response]) -> Response:
        try:
            return build()
        except SignIn as exc:
            if request.headers.get("hx-request"):
                response = Response(status_code=204, headers={"HX-Redirect": "/login"})
                if exc.reason:
                    session.end_session(response)
                return response
            return self.sign_in_redirect(request, exc.reason)
        except Refused as exc:
            return self.render(request, "error.html", exc.status, title=exc.title, message=exc.text)

    @staticmethod
    def stream_path(organization: Organization) -> str:
        return f"/organizations/{organization.slug}/issues/"

    @staticmethod
    def fragment(html: str) -> HTMLResponse:
        return HTMLResponse(html, headers=SECURITY_HEADERS)


class Timings:
    """Where a page's time went, sent as a ``Server-Timing`` header (browsers' developer tools and
    ``bench/web.py`` show it)."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, float]] = []

    def add(self, name: str, began: float) -> None:
        self.parts.append((name, (time.perf_counter() - began) * 1000))

    def header(self) -> str:
        return ", ".join(f"{name};dur={ms:.1f}" for name, ms in self.parts)


async def read_form(request: Request, multi: bool = False) -> Any:
    """An ``application/x-www-form-urlencoded`` body: {name: value} (or {name: [values]} with ``multi``)."""
    body = (await request.body()).decode("utf-8", "replace")
    parsed = parse_qs(body, keep_blank_values=True)
    if multi:
        return parsed
    return {name: values[0] for name, values in parsed.items()}


def flash(request: Request) -> Notice | None:
    raw = request.cookies.get(session.FLASH_COOKIE)
    if not raw:
        return None
    kind, _, text = raw.partition(":")
    if kind not in ("success", "error", "info"):
        return None
    return Notice(kind, text)


def issue_row(issue: dict[str, Any], series: EventSeries | None, now: int) -> dict[str, Any]:
    """A serialized issue plus what the templates show next to it."""
    first = parse_iso(issue["firstSeen"])
    last = parse_iso(issue["lastSeen"])
    return {
        **issue,
        "count_int": int(issue["count"]),
        "status_label": STATUS_LABELS.get(issue["status"], issue["status"].title()),
        "substatus_label": SUBSTATUS_LABELS.get(issue["substatus"] or "", ""),
        "first_seen_relative": relative(first, now),
        "first_seen_absolute": absolute(first),
        "first_seen_iso": iso(first),
        "last_seen_relative": relative(last, now),
        "last_seen_absolute": absolute(last),
        "last_seen_iso": iso(last),
        "sparkline": charts.sparkline(series),
        "in_range": series.total if series is not None and series.complete else None,
    }


def parse_iso(text: str) -> int:
    return from_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _helpers(now: int) -> dict[str, Any]:
    return {
        "relative": lambda micros: relative(micros, now),
        "absolute": absolute,
        "iso": iso,
        "short_id": short_id,
        "urlencode": lambda params: urlencode(params, doseq=True),
        "pretty": lambda value: json.dumps(value, indent=2, sort_keys=True, default=str),
        "sort_labels": SORT_LABELS,
        "actions": ACTIONS,
    }
