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
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from api import auth, issue_details
from api.directory import Organization, Project
from api.errors import ApiError
from api.issue_details import EventSeries
from api.query import DEFAULT_QUERY, QueryError, parse_query
from api.search import SORTS
from api.serializers import serialize_group, short_id
from api.service import IssueIndex, ListRequest, Selection
from transforms.core.enums import ActivityType
from transforms.core.model import from_datetime
from web import charts, session, tags
from web.timerange import PRESET_LABELS, RangeError, TimeRange, absolute, iso, parse_range, relative

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
# Index entries the stream's sparklines may read per page (about 40 ms on the emulator); an issue whose
# range holds more than its share shows a dash and its page has the exact chart.
SPARKLINE_BUDGET = 20_000
# Index entries the issue page's chart may read: past this the chart says it was cut short.
CHART_BUDGET = 1_000_000
ACTIVITY_LIMIT = 50
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
ACTIVITY_LABELS = {
    ActivityType.SET_RESOLVED: "Resolved",
    ActivityType.SET_UNRESOLVED: "Marked as unresolved",
    ActivityType.SET_IGNORED: "Ignored",
    ActivityType.SET_REGRESSION: "Regressed",
    ActivityType.SET_RESOLVED_IN_RELEASE: "Resolved in release",
    ActivityType.AUTO_SET_ONGOING: "Marked as ongoing (no longer escalating)",
    ActivityType.SET_ESCALATING: "Escalating",
    ActivityType.SET_PRIORITY: "Priority changed",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_PACKAGE = resources.files("web")


@dataclass(slots=True)
class StreamState:
    """What a stream URL asks for (unvalidated; the index checks query, sort and cursor)."""

    query: str
    sort: str
    project: str
    environment: str
    period: str
    start: str
    end: str
    cursor: str
    limit: int

    @classmethod
    def from_params(cls, params: Any) -> StreamState:
        def one(name: str) -> str:
            value = params.get(name)
            return value if isinstance(value, str) else ""

        query = params.get("query")
        try:
            limit = min(max(int(one("limit") or PAGE_SIZE), 1), MAX_PAGE_SIZE)
        except ValueError:
            limit = PAGE_SIZE
        return cls(
            DEFAULT_QUERY if query is None else query,
            one("sort") or "date",
            one("project"),
            one("environment"),
            one("period"),
            one("start"),
            one("end"),
            one("cursor"),
            limit,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        values = {
            "query": self.query,
            "sort": self.sort,
            "project": self.project,
            "environment": self.environment,
            "period": self.period,
            "start": self.start if self.period == "custom" else "",
            "end": self.end if self.period == "custom" else "",
            "cursor": self.cursor,
            "limit": "" if self.limit == PAGE_SIZE else str(self.limit),
        }
        values.update({k: "" if v is None else str(v) for k, v in changes.items()})
        # the query is kept even when empty ('' means everything, absent the default query)
        return {k: v for k, v in values.items() if v or k == "query"}


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


class _SignIn(Exception):
    """The request has no valid session: answer with the sign-in page (or a redirect to it)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "")
        self.reason = reason


class _Refused(Exception):
    def __init__(self, status: int, title: str, text: str) -> None:
        super().__init__(text)
        self.status, self.title, self.text = status, title, text


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(_PACKAGE.joinpath("templates"))),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{int(n):,}"
    return env


def _asset_version() -> str:
    digest = hashlib.sha256()
    for name in ("app.css", "app.js"):
        digest.update(_PACKAGE.joinpath("static").joinpath(name).read_bytes())
    return digest.hexdigest()[:10]


def install(app: FastAPI, index: IssueIndex, *, clock: Callable[[], float] = time.time) -> None:
    """Add the pages and their static files to ``app`` (the issue index service)."""
    app.mount("/static", StaticFiles(directory=str(_PACKAGE.joinpath("static"))), name="web-static")
    app.include_router(_router(index, clock))


def _router(index: IssueIndex, clock: Callable[[], float]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    templates = _templates()
    version = _asset_version()
    directory = index.directory

    def now() -> int:
        return from_datetime(datetime.fromtimestamp(clock(), UTC))

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("viewer", None)
        timings: Timings | None = context.get("timings")
        began = time.perf_counter()
        html = templates.get_template(name).render(
            request=request, asset_version=version, now=now(), **_helpers(now()), **context
        )
        headers = dict(_SECURITY_HEADERS)
        if timings is not None:
            timings.add("render", began)
            headers["Server-Timing"] = timings.header()
        return HTMLResponse(html, status_code=status, headers=headers)

    def viewer_for(request: Request, organization_ref: str | None, method: str = "GET") -> Viewer:
        token = session.session_token(request)
        if token is None:
            raise _SignIn()
        try:
            stored = auth.authenticate(directory, f"Bearer {token}")
        except ApiError:
            raise _SignIn("Your token is no longer valid. Sign in again.") from None
        organization = directory.organization(stored.organization_id)
        if organization is None:
            raise _SignIn("Your token's organization no longer exists.")
        if organization_ref is not None:
            try:
                auth.authorize(directory, stored, organization_ref, "GET")
            except ApiError:
                raise _Refused(
                    403,
                    "Not your organization",
                    f'Your token belongs to organization "{organization.slug}", not "{organization_ref}".',
                ) from None
        return Viewer(
            token,
            organization,
            stored.scope == auth.WRITE,
            session.csrf_token(token),
            directory.projects(organization.id),
        )

    def sign_in_redirect(request: Request, reason: str | None) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        if reason:
            session.end_session(response)
            response.set_cookie(
                session.FLASH_COOKIE, f"error:{reason}", max_age=60, httponly=True, samesite="lax"
            )
        return response

    def guarded(request: Request, build: Callable[[], Response]) -> Response:
        try:
            return build()
        except _SignIn as exc:
            if request.headers.get("hx-request"):
                response = Response(status_code=204, headers={"HX-Redirect": "/login"})
                if exc.reason:
                    session.end_session(response)
                return response
            return sign_in_redirect(request, exc.reason)
        except _Refused as exc:
            return render(request, "error.html", exc.status, title=exc.title, message=exc.text)

    def stream_path(organization: Organization) -> str:
        return f"/organizations/{organization.slug}/issues/"

    # ---- sign in

    @router.get("/")
    def home(request: Request) -> Response:
        def build() -> Response:
            viewer = viewer_for(request, None)
            return RedirectResponse(stream_path(viewer.organization), status_code=303)

        return guarded(request, build)

    @router.get("/login")
    def login_page(request: Request, next: str | None = None) -> Response:
        value = session.new_login_csrf()
        notice = _flash(request)
        response = render(
            request,
            "login.html",
            csrf=value,
            next=session.safe_next(next, ""),
            error=notice.text if notice is not None and notice.kind == "error" else None,
        )
        session.set_login_csrf(response, request, value)
        if notice:
            response.delete_cookie(session.FLASH_COOKIE)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        token = form.get("token", "").strip()
        target = session.safe_next(form.get("next"), "")

        def fail(message: str, status: int = 400) -> Response:
            value = session.new_login_csrf()
            response = render(request, "login.html", status, csrf=value, next=target, error=message)
            session.set_login_csrf(response, request, value)
            return response

        if not session.same_origin(request) or not session.login_csrf_ok(request, form.get("csrf_token")):
            return fail("The sign-in form expired. Try again.", 403)
        if not token:
            return fail("Enter an API token.")
        try:
            stored = await run_in_threadpool(auth.authenticate, directory, f"Bearer {token}")
            organization = await run_in_threadpool(directory.organization, stored.organization_id)
        except ApiError:
            return fail("That token is not valid. Tokens look like sntryu_ followed by 64 characters.", 401)
        if organization is None:
            return fail("That token's organization does not exist.", 401)
        response = RedirectResponse(target or stream_path(organization), status_code=303)
        session.start_session(response, request, token)
        response.delete_cookie(session.LOGIN_CSRF_COOKIE, path="/")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        token = session.session_token(request)
        if token is not None and not (
            session.same_origin(request) and session.csrf_ok(token, form.get("csrf_token"))
        ):
            return render(request, "error.html", 403, title="Not signed out", message="The form expired.")
        response = RedirectResponse("/login", status_code=303)
        session.end_session(response)
        return response

    # ---- the stream

    def stream_context(viewer: Viewer, state: StreamState, notice: Notice | None = None) -> dict[str, Any]:
        moment = now()
        timings = Timings()
        context: dict[str, Any] = {
            "timings": timings,
            "viewer": viewer,
            "state": state,
            "notice": notice,
            "issues": [],
            "page": None,
            "query_error": None,
            "range_error": None,
            "sorts": [(name, SORT_LABELS[name]) for name in SORTS],
            "presets": PRESET_LABELS,
            "ignore_durations": IGNORE_DURATIONS,
            "stream_path": stream_path(viewer.organization),
            "environments": [],
        }
        try:
            window = parse_range(state.period, state.start, state.end, moment)
        except RangeError as exc:
            context["range_error"] = str(exc)
            window = parse_range(None, None, None, moment)
        context["window"] = window
        try:
            parse_query(state.query, now=moment)
        except QueryError as exc:
            context["query_error"] = _query_error(state.query, exc)
            return context
        began = time.perf_counter()
        try:
            # X-Hits is left out: the page asks for the count afterwards (stream_count), off its own path
            page = index.list_issues(viewer.organization, list_request(state, window), count_hits=False)
        except ApiError as exc:
            context["query_error"] = {"message": exc.detail, "query": state.query, "before": "", "term": ""}
            return context
        timings.add("search", began)
        ids = [int(issue["id"]) for issue in page.issues]
        began = time.perf_counter()
        with index.database.snapshot(multi_use=True) as snapshot:
            series = issue_details.event_counts(snapshot, ids, window.sparkline_buckets, SPARKLINE_BUDGET)
        timings.add("sparklines", began)
        context.update(
            page=page,
            issues=[_row(issue, series.get(int(issue["id"])), moment) for issue in page.issues],
            environments=[state.environment] if state.environment else [],
        )
        return context

    def list_request(state: StreamState, window: TimeRange, **changes: Any) -> ListRequest:
        values = {
            "projects": (state.project,) if state.project else (),
            "environments": (state.environment,) if state.environment else (),
            "query": state.query,
            "sort": state.sort,
            "limit": state.limit,
            "cursor": state.cursor or None,
            **_window_params(window),
        }
        values.update(changes)
        return ListRequest(**values)

    def fragment(html: str) -> HTMLResponse:
        return HTMLResponse(html, headers=_SECURITY_HEADERS)

    @router.get("/organizations/{organization}/issues/count")
    def stream_count(request: Request, organization: str) -> Response:
        """How many issues match the stream's filters (the API's X-Hits), for the page's summary line."""

        def build() -> Response:
            viewer = viewer_for(request, organization)
            state = StreamState.from_params(request.query_params)
            try:
                window = parse_range(state.period, state.start, state.end, now())
                page = index.list_issues(
                    viewer.organization, list_request(state, window, limit=1, cursor=None)
                )
            except (ApiError, RangeError):
                return fragment("")
            hits = page.hits
            if hits is None:
                return fragment("")
            more = "+" if hits.capped or hits.partial else ""
            plural = "" if hits.value == 1 and not more else "s"
            return fragment(f'<span id="stream-count">of {hits.value:,}{more} matching issue{plural}</span>')

        return guarded(request, build)

    @router.get("/organizations/{organization}/issues/environments")
    def stream_environments(request: Request, organization: str) -> Response:
        """Suggestions for the environment box: the environments of the first 100 issues the stream's other
        filters match (there is no list of an organization's environments to read)."""

        def build() -> Response:
            viewer = viewer_for(request, organization)
            state = StreamState.from_params(request.query_params)
            try:
                window = parse_range(state.period, state.start, state.end, now())
                page = index.list_issues(
                    viewer.organization,
                    list_request(state, window, environments=(), limit=MAX_PAGE_SIZE, cursor=None),
                    count_hits=False,
                )
            except (ApiError, RangeError):
                return fragment("")
            with index.database.snapshot(multi_use=True) as snapshot:
                found = issue_details.environments(snapshot, [int(issue["id"]) for issue in page.issues])
            names = sorted({env for envs in found.values() for env in envs if env})
            return render(request, "_environments.html", environments=names)

        return guarded(request, build)

    def stream_response(
        request: Request, viewer: Viewer, state: StreamState, notice: Notice | None
    ) -> Response:
        context = stream_context(viewer, state, notice)
        partial = request.headers.get("hx-target") == "stream-results"
        return render(request, "_results.html" if partial else "stream.html", **context)

    @router.get("/organizations/{organization}/issues/")
    def stream(request: Request, organization: str) -> Response:
        def build() -> Response:
            viewer = viewer_for(request, organization)
            notice = _flash(request)
            response = stream_response(request, viewer, StreamState.from_params(request.query_params), notice)
            if notice is not None:
                response.delete_cookie(session.FLASH_COOKIE)
            return response

        return guarded(request, build)

    @router.post("/organizations/{organization}/issues/actions")
    async def actions(request: Request, organization: str) -> Response:
        form = await _form(request, multi=True)
        return await run_in_threadpool(guarded, request, lambda: act(request, organization, form))

    def act(request: Request, organization: str, form: dict[str, list[str]]) -> Response:
        viewer = viewer_for(request, organization)
        first = {name: values[0] for name, values in form.items() if values}
        back = session.safe_next(first.get("return_to"), stream_path(viewer.organization))
        if not session.same_origin(request) or not session.csrf_ok(viewer.token, first.get("csrf_token")):
            raise _Refused(
                403,
                "Action refused",
                "The form expired (its security token did not match). Reload the page and try again.",
            )
        is_stream = request.headers.get("hx-target") == "stream-results"
        state = StreamState.from_params(_query_of(back))
        ids = [value for value in form.get("id", []) if value]
        action = first.get("action", "")
        notice = perform(viewer, action, ids, first, request, back, is_stream, state)
        if isinstance(notice, Response):
            return notice
        if is_stream:
            return stream_response(request, viewer, state, notice)
        response = RedirectResponse(back, status_code=303)
        response.set_cookie(
            session.FLASH_COOKIE, f"{notice.kind}:{notice.text}", max_age=60, httponly=True, samesite="lax"
        )
        return response

    def perform(
        viewer: Viewer,
        action: str,
        ids: list[str],
        form: dict[str, str],
        request: Request,
        back: str,
        is_stream: bool,
        state: StreamState,
    ) -> Notice | Response:
        if not viewer.can_write:
            return Notice("error", "This token can only read. Sign in with a write token to change issues.")
        if not ids:
            return Notice("error", "Select at least one issue first.")
        minutes = None
        if action.startswith("ignore_for_"):
            try:
                minutes = int(action.removeprefix("ignore_for_"))
            except ValueError:
                minutes = None
            if minutes not in IGNORE_DURATIONS:
                return Notice("error", "Unknown ignore duration.")
            label = f"Ignore for {IGNORE_DURATIONS[minutes]}"
            body: dict[str, Any] | None = {"status": "ignored", "snoozeDuration": minutes}
        elif action in ACTIONS:
            label, body = ACTIONS[action]
        else:
            return Notice("error", "Unknown action.")
        if action == "delete" and form.get("confirm") != "yes":
            context = {
                "viewer": viewer,
                "ids": ids,
                "return_to": back,
                "stream_path": stream_path(viewer.organization),
                "titles": _titles(viewer, ids),
            }
            if is_stream:
                context["state"] = state
            return render(request, "_confirm_delete.html" if is_stream else "confirm_delete.html", **context)
        selection = Selection(ids=ids)
        try:
            if body is None:
                mutation = index.delete_issues(viewer.organization, selection)
            else:
                mutation = index.update_issues(viewer.organization, selection, body)
        except ApiError as exc:
            return Notice("error", f"{label} was not sent: {exc.detail}")
        if mutation is None:
            return Notice("error", "None of the selected issues exist any more.")
        count = len(mutation.ids)
        what = f"{count} issue{'s' if count != 1 else ''}"
        return Notice(
            "success",
            f"{label}: sent for {what}. It takes effect once the pipeline applies it (usually within seconds); "
            "reload to see it.",
        )

    def _titles(viewer: Viewer, ids: list[str]) -> list[str]:
        numbers = [int(i) for i in ids if i.isdigit() and len(i) <= 19][:20]
        titles = []
        with index.database.snapshot(multi_use=True) as snapshot:
            for number in numbers:
                row = issue_details.group_row(snapshot, number)
                if row is not None and row.organization_id == viewer.organization.id and row.detail:
                    titles.append(row.detail.title)
        return titles

    # ---- an issue

    @router.get("/organizations/{organization}/issues/{group_id}/")
    def issue(request: Request, organization: str, group_id: str) -> Response:
        return guarded(request, lambda: issue_page(request, organization, group_id))

    def issue_page(request: Request, organization: str, group_id: str) -> Response:
        viewer = viewer_for(request, organization)
        notice = _flash(request)
        moment = now()
        params = request.query_params
        range_error = None
        try:
            window = parse_range(params.get("period"), params.get("start"), params.get("end"), moment)
        except RangeError as exc:
            range_error = str(exc)
            window = parse_range(None, None, None, moment)
        if not (group_id.isascii() and group_id.isdigit() and len(group_id) <= 19):
            raise _Refused(404, "Issue not found", "There is no such issue in this organization.")
        timings = Timings()
        began = time.perf_counter()
        with index.database.snapshot(multi_use=True) as snapshot:
            row = issue_details.group_row(snapshot, int(group_id))
            if row is None or row.organization_id != viewer.organization.id:
                raise _Refused(404, "Issue not found", "There is no such issue in this organization.")
            series = issue_details.event_counts(snapshot, [row.group_id], window.buckets, CHART_BUDGET)[
                row.group_id
            ]
            latest = issue_details.latest_event(snapshot, row.group_id)
            event = latest.event if latest is not None else None
            if latest is not None and event is None:
                event = issue_details.stored_event(snapshot, latest.project_id, latest.event_id)
            history, older = issue_details.activities(snapshot, row.group_id, ACTIVITY_LIMIT)
            environments = issue_details.environments(snapshot, [row.group_id]).get(row.group_id, [])
            stored_tags = tags.stored_tags(snapshot, row.group_id)
        timings.add("reads", began)
        project = viewer.projects.get(row.project_id) or Project(
            row.project_id, row.organization_id, str(row.project_id)
        )
        issue = serialize_group(row, project)
        path = f"{stream_path(viewer.organization)}{row.group_id}/"
        response = render(
            request,
            "issue.html",
            viewer=viewer,
            issue=_row(issue, series, moment),
            group=row,
            window=window,
            range_error=range_error,
            presets=PRESET_LABELS,
            chart=charts.bar_chart(series),
            series=series,
            latest=latest,
            event=event,
            event_extras={
                k: event[k] for k in ("request", "user", "contexts", "sdk") if event and event.get(k)
            },
            tag_panel=tags.tag_panel(latest, event, stored_tags),
            activities=[_activity(a) for a in history],
            older_activities=older,
            environments=environments,
            notice=notice,
            ignore_durations=IGNORE_DURATIONS,
            issue_path=path,
            stream_path=stream_path(viewer.organization),
            timings=timings,
        )
        if notice is not None:
            response.delete_cookie(session.FLASH_COOKIE)
        return response

    return router


# ---- helpers (no I/O)


class Timings:
    """Where a page's time went, sent as a ``Server-Timing`` header (browsers' developer tools and
    ``bench/web.py`` show it)."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, float]] = []

    def add(self, name: str, began: float) -> None:
        self.parts.append((name, (time.perf_counter() - began) * 1000))

    def header(self) -> str:
        return ", ".join(f"{name};dur={ms:.1f}" for name, ms in self.parts)


async def _form(request: Request, multi: bool = False) -> Any:
    """An ``application/x-www-form-urlencoded`` body: {name: value} (or {name: [values]} with ``multi``)."""
    body = (await request.body()).decode("utf-8", "replace")
    parsed = parse_qs(body, keep_blank_values=True)
    if multi:
        return parsed
    return {name: values[0] for name, values in parsed.items()}


def _query_of(path: str) -> dict[str, str]:
    return {
        name: values[0] for name, values in parse_qs(urlsplit(path).query, keep_blank_values=True).items()
    }


def _window_params(window: TimeRange) -> dict[str, str | None]:
    params = window.list_params()
    return {
        "stats_period": params.get("statsPeriod"),
        "start": params.get("start"),
        "end": params.get("end"),
    }


def _flash(request: Request) -> Notice | None:
    raw = request.cookies.get(session.FLASH_COOKIE)
    if not raw:
        return None
    kind, _, text = raw.partition(":")
    if kind not in ("success", "error", "info"):
        return None
    return Notice(kind, text)


def _query_error(query: str, exc: QueryError) -> dict[str, Any]:
    """The error, and the query split around the offending term so the page can mark it."""
    position, term = exc.position, exc.term or ""
    if position is None or not term or query[position : position + len(term)] != term:
        return {"message": str(exc), "query": query, "before": "", "term": "", "after": ""}
    return {
        "message": str(exc),
        "query": query,
        "before": query[:position],
        "term": term,
        "after": query[position + len(term) :],
    }


def _row(issue: dict[str, Any], series: EventSeries | None, now: int) -> dict[str, Any]:
    """A serialized issue plus what the templates show next to it."""
    first = _parse_iso(issue["firstSeen"])
    last = _parse_iso(issue["lastSeen"])
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


def _parse_iso(text: str) -> int:
    return from_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _activity(activity: issue_details.Activity) -> dict[str, Any]:
    data = activity.data
    label = ACTIVITY_LABELS.get(activity.type, f"Activity {activity.type}")
    detail = ""
    if activity.type == ActivityType.SET_RESOLVED_IN_RELEASE:
        version = data.get("version")
        if data.get("type") == "in_next_release":
            label = "Resolved in the next release"
            detail = f"after {version}" if version else ""
        else:
            detail = str(version or "")
    elif activity.type == ActivityType.SET_REGRESSION and data.get("version"):
        detail = f"in {data['version']}"
    elif activity.type == ActivityType.SET_PRIORITY:
        priority = data.get("priority")
        detail = " ".join(
            str(part) for part in (priority, f"({data['reason']})" if data.get("reason") else "") if part
        )
    return {"label": label, "detail": detail, "time": activity.time, "type": int(activity.type)}


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
