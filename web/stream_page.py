"""The issue stream's routes: the stream (search, sort, filters, range, cursor pages), its count and
environment suggestions (fragments the page asks for afterwards), and the bulk actions on the selected issues
(CSRF-checked; published as the API's bulk updates and deletes)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api import issue_details
from api.errors import ApiError
from api.query import DEFAULT_QUERY, QueryError, parse_query
from api.search import SORTS
from api.service import IssuePage, ListRequest, Selection
from web import session
from web.pages import (
    ACTIONS,
    IGNORE_DURATIONS,
    SORT_LABELS,
    Notice,
    Pages,
    Refused,
    Timings,
    Viewer,
    flash,
    issue_row,
    read_form,
)
from web.timerange import PRESET_LABELS, RangeError, TimeRange, parse_range

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
# Index entries the stream's sparklines may read per page (about 40 ms on the emulator); an issue whose
# range holds more than its share shows a dash and its page has the exact chart.
SPARKLINE_BUDGET = 20_000


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


def add_stream_routes(router: APIRouter, pages: Pages) -> None:
    index, now, render = pages.index, pages.now, pages.render
    viewer_for, guarded = pages.viewer_for, pages.guarded
    stream_path, fragment = pages.stream_path, pages.fragment

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
            issues=[issue_row(issue, series.get(int(issue["id"])), moment) for issue in page.issues],
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

    def matching(
        request: Request, organization: str, *, count_hits: bool = True, **changes: Any
    ) -> IssuePage | None:
        """The page of issues the stream's filters (in ``request``'s query) match, with ``changes`` to its
        request; None when the filters or the time range are refused."""
        viewer = viewer_for(request, organization)
        state = StreamState.from_params(request.query_params)
        try:
            window = parse_range(state.period, state.start, state.end, now())
            return index.list_issues(
                viewer.organization, list_request(state, window, **changes), count_hits=count_hits
            )
        except (ApiError, RangeError):
            return None

    @router.get("/organizations/{organization}/issues/count")
    def stream_count(request: Request, organization: str) -> Response:
        """How many issues match the stream's filters (the API's X-Hits), for the page's summary line."""

        def build() -> Response:
            page = matching(request, organization, limit=1, cursor=None)
            hits = None if page is None else page.hits
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
            page = matching(
                request, organization, count_hits=False, environments=(), limit=MAX_PAGE_SIZE, cursor=None
            )
            if page is None:
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
            notice = flash(request)
            response = stream_response(request, viewer, StreamState.from_params(request.query_params), notice)
            if notice is not None:
                response.delete_cookie(session.FLASH_COOKIE)
            return response

        return guarded(request, build)

    @router.post("/organizations/{organization}/issues/actions")
    async def actions(request: Request, organization: str) -> Response:
        form = await read_form(request, multi=True)
        return await run_in_threadpool(guarded, request, lambda: act(request, organization, form))

    def act(request: Request, organization: str, form: dict[str, list[str]]) -> Response:
        viewer = viewer_for(request, organization)
        first = {name: values[0] for name, values in form.items() if values}
        back = session.safe_next(first.get("return_to"), stream_path(viewer.organization))
        if not session.same_origin(request) or not session.csrf_ok(viewer.token, first.get("csrf_token")):
            raise Refused(
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
