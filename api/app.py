"""The HTTP service: Sentry's organization and project issue index endpoints over ``IssueIndex``.

Routes (Sentry's paths; organizations and projects by id or slug):
  GET|PUT|DELETE /api/0/organizations/{organization}/issues/
  GET|PUT|DELETE /api/0/projects/{organization}/{project}/issues/
  GET .../issues/{issue}/tags/, .../tags/{key}/, .../tags/{key}/values/ (``api.tags``)
  GET /openapi.json, GET /healthz (no authentication)

Every error is ``{"detail": "..."}`` with Sentry's status codes: 400 for a bad parameter, query, cursor or body
(naming it), 401 without a valid token, 403 for another organization or a read token that tries to change
something, 404 for an unknown project, 503 when status changes cannot be published.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPBearer
from starlette.datastructures import URL

from api import auth, tags
from api.directory import Organization, Project
from api.errors import ApiError
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
        description="Search query. Absent: `is:unresolved issue.priority:[high, medium]`; empty: everything."
    ),
]
ProjectQuery = Annotated[
    str | None, Query(description="Search query. Absent: `is:unresolved`; empty: everything.")
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

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONBody:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
        message = first.get("msg", "invalid request")
        return JSONBody({"detail": f"Invalid {where}: {message}"}, status_code=400)

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

    # ---- organization endpoint

    org_path = "/api/0/organizations/{organization}/issues/"

    @app.get(org_path, dependencies=security, summary="List an organization's issues")
    def list_organization_issues(
        request: Request,
        organization: str,
        project: Projects = None,
        environment: Environments = None,
        query: OrganizationQuery = None,
        sort: SortParam = None,
        statsPeriod: StatsPeriod = None,
        start: Start = None,
        end: End = None,
        limit: Limit = None,
        cursor: CursorParam = None,
        groupStatsPeriod: GroupStatsPeriod = None,
        shortIdLookup: ShortIdLookup = None,
    ) -> Response:
        org = organization_for(request, organization)
        page = index.list_issues(
            org,
            ListRequest(
                project or (),
                environment or (),
                query,
                sort,
                statsPeriod,
                start,
                end,
                limit,
                cursor,
                groupStatsPeriod,
                shortIdLookup == "1",
            ),
        )
        return _page_response(request, page)

    @app.put(org_path, dependencies=security, status_code=202, summary="Bulk update an organization's issues")
    def update_organization_issues(
        request: Request,
        organization: str,
        id: Ids = None,
        project: Projects = None,
        environment: Environments = None,
        query: SelectionQuery = None,
        body: UpdateBody = None,
    ) -> Response:
        org = organization_for(request, organization)
        selection = Selection(id or (), project or (), environment or (), query)
        return _mutation_response(index.update_issues(org, selection, body))

    @app.delete(
        org_path, dependencies=security, status_code=202, summary="Bulk delete an organization's issues"
    )
    def delete_organization_issues(
        request: Request,
        organization: str,
        id: Ids = None,
        project: Projects = None,
        environment: Environments = None,
        query: SelectionQuery = None,
    ) -> Response:
        org = organization_for(request, organization)
        selection = Selection(id or (), project or (), environment or (), query)
        return _mutation_response(index.delete_issues(org, selection))

    # ---- project endpoint

    project_path = "/api/0/projects/{organization}/{project}/issues/"

    @app.get(project_path, dependencies=security, summary="List a project's issues")
    def list_project_issues(
        request: Request,
        organization: str,
        project: str,
        environment: Environments = None,
        query: ProjectQuery = None,
        sort: SortParam = None,
        statsPeriod: StatsPeriod = None,
        start: Start = None,
        end: End = None,
        limit: Limit = None,
        cursor: CursorParam = None,
        shortIdLookup: ShortIdLookup = None,
    ) -> Response:
        org, proj = project_for(request, organization, project)
        page = index.list_issues(
            org,
            ListRequest(
                (str(proj.id),),
                environment or (),
                PROJECT_DEFAULT_QUERY if query is None else query,
                sort,
                statsPeriod,
                start,
                end,
                limit,
                cursor,
                None,
                shortIdLookup == "1",
            ),
        )
        return _page_response(request, page)

    @app.put(project_path, dependencies=security, status_code=202, summary="Bulk update a project's issues")
    def update_project_issues(
        request: Request,
        organization: str,
        project: str,
        id: Ids = None,
        status: StatusSelector = None,
        query: SelectionQuery = None,
        environment: Environments = None,
        body: UpdateBody = None,
    ) -> Response:
        org, proj = project_for(request, organization, project)
        selection = Selection(id or (), (str(proj.id),), environment or (), query, status)
        return _mutation_response(index.update_issues(org, selection, body))

    @app.delete(
        project_path, dependencies=security, status_code=202, summary="Bulk delete a project's issues"
    )
    def delete_project_issues(
        request: Request,
        organization: str,
        project: str,
        id: Ids = None,
        status: StatusSelector = None,
        query: SelectionQuery = None,
        environment: Environments = None,
    ) -> Response:
        org, proj = project_for(request, organization, project)
        selection = Selection(id or (), (str(proj.id),), environment or (), query, status)
        return _mutation_response(index.delete_issues(org, selection))

    tags.mount(app, index)  # an issue's tags: GET .../issues/{id}/tags/ and .../tags/{key}/values/
    return app


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
    base = url.remove_query_params("cursor")
    parts = []
    for rel, cursor, has_results in (
        ("previous", page.previous, page.has_previous),
        ("next", page.next, page.has_next),
    ):
        encoded = cursor.encode()
        target = base.include_query_params(cursor=encoded)
        parts.append(f'<{target}>; rel="{rel}"; results="{str(has_results).lower()}"; cursor="{encoded}"')
    return ", ".join(parts)


def _mutation_response(mutation: Mutation | None) -> Response:
    if mutation is None:
        return Response(status_code=204)
    return JSONBody(mutation.body, status_code=202)
