"""The HTTP service: Sentry's organization and project issue index endpoints over ``IssueIndex``.

Routes (Sentry's paths; organizations and projects by id or slug):
  GET|PUT|DELETE /api/0/organizations/{organization}/issues/
  GET|PUT|DELETE /api/0/projects/{organization}/{project}/issues/
  GET /api/0/ (the token's scopes), GET /api/0/organizations/ (the token's organization),
  GET /api/0/organizations/{organization}/, GET /api/0/organizations/{organization}/projects/,
  GET /api/0/projects/{organization}/{project}/
  GET .../issues/{issue}/tags/, .../tags/{key}/, .../tags/{key}/values/ (``api.group_tags``)
  GET /openapi.json, GET /healthz (no authentication)

Every error is ``{"detail": "..."}`` with Sentry's status codes: 400 for a bad parameter, query, cursor or body
(naming it), 401 without a valid token, 403 for another organization or a read token that tries to change
something, 404 for an unknown project, 503 when status changes cannot be published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any

import orjson
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPBearer
from starlette.datastructures import URL
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import auth, group_tags, request_limits
from api.directory import Organization, Project
from api.errors import ApiError
from api.query import clip
from api.serializers import serialize_organization, serialize_project, serialize_project_detail
from api.service import MAX_HITS, IssueIndex, IssuePage, ListRequest, Mutation, Selection

# Sentry's project issue index applies this when `query` is absent (the organization index uses
# issue.priority as well: api.query.DEFAULT_QUERY).
PROJECT_DEFAULT_QUERY = "is:unresolved"

_UPDATE_BODY_DOC = (
    "Sentry's bulk update body: status (resolved, resolvedInNextRelease, unresolved, ignored; muted = "
    "ignored), substatus, statusDetails {inRelease: version, inNextRelease: true, ignore* conditions}, "
    "snoozeDuration (minutes; null = forever)."
)

# Query parameters (Sentry's names). Values are checked by IssueIndex, so that every error is a 400 naming it.
Projects = Annotated[
    list[str] | None, Query(description="Project ids or slugs (repeatable); -1 or none: all.")
]
Environments = Annotated[
    list[str] | None, Query(description="Only issues seen in one of these environments.")
]
Ids = Annotated[
    list[str] | None, Query(description="Issue ids (repeatable); other organizations' are ignored.")
]
OrganizationQuery = Annotated[
    str | None,
    Query(
        description="Search query. Absent: `is:unresolved issue.priority:[high, medium]`; empty: every status and priority (feedback stays hidden unless named)."
    ),
]
ProjectQuery = Annotated[
    str | None,
    Query(
        description="Search query. Absent: `is:unresolved`; empty: every status and priority (feedback stays hidden unless named)."
    ),
]
SelectionQuery = Annotated[
    str | None,
    Query(description="Without ids: act on the first 1000 matches (required when no ids are given)."),
]
StatusSelector = Annotated[
    str | None, Query(description="Without ids: act on the project's issues with this status (first 1000).")
]
SortParam = Annotated[str | None, Query(description="date (default), new, freq or priority.")]
StatsPeriod = Annotated[str | None, Query(description="Only issues seen in this period, e.g. 24h or 14d.")]
Start = Annotated[
    str | None, Query(description="With end: only issues seen between start and end (ISO 8601).")
]
End = Annotated[str | None, Query(description="See start.")]
Limit = Annotated[str | None, Query(description="Page size, 1 to 100 (default 100).")]
CursorParam = Annotated[str | None, Query(description="A cursor from the Link header.")]
GroupStatsPeriod = Annotated[str | None, Query(description="Accepted for compatibility; no stats are sent.")]
ShortIdLookup = Annotated[str | None, Query(description="1: a query that is a short id finds that issue.")]
UpdateBody = Annotated[Any, Body(description=_UPDATE_BODY_DOC)]


def _paging(
    sort: SortParam = None,
    statsPeriod: StatsPeriod = None,
    start: Start = None,
    end: End = None,
    limit: Limit = None,
    cursor: CursorParam = None,
    shortIdLookup: ShortIdLookup = None,
) -> ListRequest:
    """The list parameters both issue indexes take; each endpoint adds what it lists (projects, query...)."""
    return ListRequest(
        sort=sort,
        stats_period=statsPeriod,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
        short_id_lookup=shortIdLookup == "1",
    )


def _organization_selection(
    id: Ids = None, project: Projects = None, environment: Environments = None, query: SelectionQuery = None
) -> Selection:
    return Selection(id or (), project or (), environment or (), query)


def _project_selection(
    id: Ids = None,
    status: StatusSelector = None,
    query: SelectionQuery = None,
    environment: Environments = None,
) -> Selection:
    """The project endpoint's selection, within no project yet: the endpoint sets its project."""
    return Selection(id or (), (), environment or (), query, status)


# The query parameters an endpoint takes through one of the functions above (FastAPI lists them in its
# OpenAPI document as the endpoint's own).
Paging = Annotated[ListRequest, Depends(_paging)]
OrganizationSelection = Annotated[Selection, Depends(_organization_selection)]
ProjectSelection = Annotated[Selection, Depends(_project_selection)]


class JSONBody(Response):
    """A JSON response encoded with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer sntryu_...`")


def create_app(index: IssueIndex) -> FastAPI:
    """The ASGI application serving ``index``."""
    app = FastAPI(
        title="occurrence-pipeline issue index",
        version="1",
        description=(
            "List, search, bulk update and bulk delete issues, in the shape of Sentry's issue index API. "
            "Bulk changes are published as status-change messages and take effect when the pipeline applies "
            "them (answer 202)."
        ),
        default_response_class=JSONBody,
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONBody:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONBody({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONBody:
        # routing errors (no such path, method not allowed) in Sentry's words, naming what was asked for
        if exc.status_code == 404:
            detail = f"The requested resource does not exist ({request.method} {clip(request.url.path, 100)})"
        else:
            detail = f"{exc.detail} ({request.method} {clip(request.url.path, 100)})"
        return JSONBody({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONBody:
        return JSONBody({"detail": validation_detail(exc.errors())}, status_code=400)

    app.add_middleware(BodyLimit, max_bytes=request_limits.MAX_BODY_BYTES)

    def organization_for(request: Request, organization: str) -> Organization:
        token = auth.authenticate(index.directory, request.headers.get("authorization"))
        return auth.authorize(index.directory, token, organization, request.method)

    def project_for(request: Request, organization: str, project: str) -> tuple[Organization, Project]:
        org = organization_for(request, organization)
        return org, index.project(org, project)

    security = [Depends(_bearer)]

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # ---- the API index, organizations and projects (what sentry-cli's info, organizations list and projects
    # list call): the token's own organization only

    @app.get("/api/0/", summary="The API index: the token's scopes (sentry-cli info)")
    def api_index(request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization")
        if not header:
            return {"version": "0", "auth": None, "user": None}
        token = auth.authenticate(index.directory, header)
        return {"version": "0", "auth": {"scopes": list(auth.SCOPES[token.scope])}, "user": None}

    @app.get("/api/0/organizations/", summary="The token's organization")
    def list_organizations(request: Request, cursor: CursorParam = None) -> Response:
        token = auth.authenticate(index.directory, request.headers.get("authorization"))
        organization = index.directory.organization(token.organization_id)
        found = [] if organization is None or cursor else [organization]
        body = [serialize_organization(org, index.directory.features(org.id)) for org in found]
        return JSONBody(body, headers={"Link": single_page_link(request.url)})

    @app.get("/api/0/organizations/{organization}/", summary="An organization")
    def get_organization(request: Request, organization: str) -> Response:
        org = organization_for(request, organization)
        return JSONBody(serialize_organization(org, index.directory.features(org.id)))

    @app.get("/api/0/organizations/{organization}/projects/", summary="An organization's projects")
    def list_projects(request: Request, organization: str, cursor: CursorParam = None) -> Response:
        org = organization_for(request, organization)
        projects = [] if cursor else list(index.directory.projects(org.id).values())
        body = [serialize_project(project) for project in projects]
        return JSONBody(body, headers={"Link": single_page_link(request.url)})

    @app.get("/api/0/projects/{organization}/{project}/", summary="A project")
    def get_project(request: Request, organization: str, project: str) -> Response:
        org, proj = project_for(request, organization, project)
        return JSONBody(serialize_project_detail(proj, org, index.directory.features(org.id)))

    # ---- organization endpoint

    org_path = "/api/0/organizations/{organization}/issues/"

    @app.get(org_path, dependencies=security, summary="List an organization's issues")
    def list_organization_issues(
        request: Request,
        organization: str,
        paging: Paging,
        project: Projects = None,
        environment: Environments = None,
        query: OrganizationQuery = None,
        groupStatsPeriod: GroupStatsPeriod = None,
    ) -> Response:
        org = organization_for(request, organization)
        asked = replace(
            paging,
            projects=project or (),
            environments=environment or (),
            query=query,
            group_stats_period=groupStatsPeriod,
        )
        return _page_response(request, index.list_issues(org, asked))

    @app.put(org_path, dependencies=security, status_code=202, summary="Bulk update an organization's issues")
    def update_organization_issues(
        request: Request, organization: str, selection: OrganizationSelection, body: UpdateBody = None
    ) -> Response:
        org = organization_for(request, organization)
        return _mutation_response(index.update_issues(org, selection, body))

    @app.delete(
        org_path, dependencies=security, status_code=202, summary="Bulk delete an organization's issues"
    )
    def delete_organization_issues(
        request: Request, organization: str, selection: OrganizationSelection
    ) -> Response:
        org = organization_for(request, organization)
        return _mutation_response(index.delete_issues(org, selection))

    # ---- project endpoint

    project_path = "/api/0/projects/{organization}/{project}/issues/"

    @app.get(project_path, dependencies=security, summary="List a project's issues")
    def list_project_issues(
        request: Request,
        organization: str,
        project: str,
        paging: Paging,
        environment: Environments = None,
        query: ProjectQuery = None,
    ) -> Response:
        org, proj = project_for(request, organization, project)
        asked = replace(
            paging,
            projects=(str(proj.id),),
            environments=environment or (),
            query=PROJECT_DEFAULT_QUERY if query is None else query,
        )
        return _page_response(request, index.list_issues(org, asked))

    @app.put(project_path, dependencies=security, status_code=202, summary="Bulk update a project's issues")
    def update_project_issues(
        request: Request,
        organization: str,
        project: str,
        selection: ProjectSelection,
        body: UpdateBody = None,
    ) -> Response:
        org, proj = project_for(request, organization, project)
        return _mutation_response(
            index.update_issues(org, replace(selection, projects=(str(proj.id),)), body)
        )

    @app.delete(
        project_path, dependencies=security, status_code=202, summary="Bulk delete a project's issues"
    )
    def delete_project_issues(
        request: Request, organization: str, project: str, selection: ProjectSelection
    ) -> Response:
        org, proj = project_for(request, organization, project)
        return _mutation_response(index.delete_issues(org, replace(selection, projects=(str(proj.id),))))

    group_tags.mount(app, index)  # an issue's tags: GET .../issues/{id}/tags/ and .../tags/{key}/values/
    return app


def validation_detail(errors: Sequence[Any]) -> str:
    """The 400 message for a request FastAPI could not parse: a body that is not JSON says so and where."""
    first = errors[0] if errors else {}
    location = [part for part in first.get("loc", ()) if part != "body"]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error") or "JSON decode error"
        where = f" at position {location[0]}" if location else ""
        return f"Invalid request body: not valid JSON ({reason}{where})."
    where = ".".join(str(part) for part in location) or "request"
    return f"Invalid {where}: {first.get('msg', 'invalid request')}"


class BodyLimit:
    """ASGI middleware: a request body larger than ``max_bytes`` is answered with a 400 naming the limit, without
    being read past it (a declared Content-Length over the limit is refused before reading anything); a body
    within the limit is handed on whole."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not (declared.isdigit() and len(declared) <= 19):
                await self._refuse(send, "Invalid Content-Length header.")
                return
            if int(declared) > self.max_bytes:
                await self._refuse(send, self._too_large())
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: the app sees an empty body and its own disconnect
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(send, self._too_large())
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."

    @staticmethod
    async def _refuse(send: Any, detail: str) -> None:
        body = orjson.dumps({"detail": detail})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _page_response(request: Request, page: IssuePage) -> Response:
    headers = {"Link": link_header(request.url, page)}
    if page.hits is not None:
        headers["X-Hits"] = str(page.hits.value)
        headers["X-Max-Hits"] = str(MAX_HITS)
    if page.direct_hit:
        headers["X-Sentry-Direct-Hit"] = "1"
    return JSONBody(page.issues, headers=headers)


def link_header(url: URL, page: IssuePage) -> str:
    """Sentry's pagination header: previous and next links with ``results`` and ``cursor`` attributes."""
    return _links(
        url,
        (
            ("previous", page.previous.encode(), page.has_previous),
            ("next", page.next.encode(), page.has_next),
        ),
    )


def single_page_link(url: URL) -> str:
    """The Link header of a list that fits one page: no previous, no next (Sentry's cursor strings)."""
    return _links(url, (("previous", "0:0:1", False), ("next", "0:0:0", False)))


def _links(url: URL, links: Sequence[tuple[str, str, bool]]) -> str:
    base = url.remove_query_params("cursor")
    parts = []
    for rel, cursor, has_results in links:
        target = base.include_query_params(cursor=cursor)
        parts.append(f'<{target}>; rel="{rel}"; results="{str(has_results).lower()}"; cursor="{cursor}"')
    return ", ".join(parts)


def _mutation_response(mutation: Mutation | None) -> Response:
    if mutation is None:
        return Response(status_code=204)
    return JSONBody(mutation.body, status_code=202)
