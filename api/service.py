"""The issue index's operations (list, bulk update, bulk delete), shared by the HTTP service and the CLI.

Callers resolve and authorize the organization first; everything here stays inside it: project references
are checked against the organization's projects, every row read is tested for the organization, and ids of
other organizations' groups are dropped silently (as Sentry does).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from google.cloud.spanner_v1 import KeyRange, KeySet

from api import bulk, request_limits
from api.bulk import SelectedGroup, StatusChangePublisher
from api.cursor import Cursor, CursorError, decode, first_page
from api.directory import Directory, Organization, Project
from api.errors import ApiError, bad_request, forbidden
from api.query import (
    IssueFilter,
    QueryContext,
    QueryError,
    clip,
    normalize_event_id,
    parse_query,
    parse_relative_period,
    parse_timestamp,
)
from api.search import (
    DEFAULT_SORT,
    INDEX_COLUMNS,
    SORTS,
    GroupRow,
    HitCount,
    ReadStats,
    Scope,
    Searcher,
    plan_search,
)
from api.serializers import parse_short_id, serialize_group, short_id
from api.tag_search import TagSearcher
from transforms.core.engine.releases import parse_semver
from transforms.core.enums import GroupStatus
from transforms.core.model import from_datetime

DEFAULT_LIMIT = 100
MAX_LIMIT = 100
# Sentry's BULK_MUTATION_LIMIT: a bulk operation selected by query acts on the first this many matches.
BULK_LIMIT = 1000
# X-Hits: counted up to this many (Sentry's X-Max-Hits), reading at most HITS_BUDGET index rows, or
# HITS_LOOKUP_BUDGET when conditions need key lookups per candidate (environments, releases, free text).
MAX_HITS = 1000
HITS_BUDGET = 10_000
HITS_LOOKUP_BUDGET = 2_000
ALL_PROJECTS = "-1"
GROUP_STATS_PERIODS = ("", "24h", "14d", "auto")
# The project endpoint's `status=` selector (Sentry's legacy names included).
STATUS_SELECTORS = {
    "unresolved": GroupStatus.UNRESOLVED,
    "resolved": GroupStatus.RESOLVED,
    "ignored": GroupStatus.IGNORED,
    "muted": GroupStatus.IGNORED,
}
_SELECT_COLUMNS = ("GroupId", "OrganizationId", "ProjectId", "Fingerprint", "Status")


@dataclass(frozen=True, slots=True)
class ListRequest:
    """A list request as the HTTP query string or the CLI flags give it (unvalidated strings)."""

    projects: Sequence[str] = ()
    environments: Sequence[str] = ()
    query: str | None = None
    sort: str | None = None
    stats_period: str | None = None
    start: str | None = None
    end: str | None = None
    limit: str | int | None = None
    cursor: str | None = None
    group_stats_period: str | None = None
    short_id_lookup: bool = False


@dataclass(frozen=True, slots=True)
class Selection:
    """Which groups a bulk operation acts on: ``ids``, or the first ``BULK_LIMIT`` matches of an explicit
    ``query`` and/or ``status`` (the project endpoint's selector), within ``projects`` (None: all)."""

    ids: Sequence[str] = ()
    projects: Sequence[str] = ()
    environments: Sequence[str] = ()
    query: str | None = None
    status: str | None = None


@dataclass(slots=True)
class IssuePage:
    issues: list[dict[str, Any]]
    cursor: Cursor
    next: Cursor
    has_next: bool
    previous: Cursor
    has_previous: bool
    hits: HitCount | None
    stats: ReadStats
    direct_hit: bool = False


@dataclass(frozen=True, slots=True)
class Mutation:
    """An accepted bulk operation: the affected ids and the body to answer with."""

    ids: list[str]
    body: dict[str, Any] = field(default_factory=dict)


class IssueIndex:
    """List, bulk update and bulk delete over one Spanner database and one status-change topic."""

    def __init__(
        self,
        database: Any,
        directory: Directory | None = None,
        publisher: StatusChangePublisher | None = None,
        *,
        permalink_base: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.directory = directory or Directory(database)
        self.publisher = publisher
        self.permalink_base = permalink_base.rstrip("/") if permalink_base else None
        self._clock = clock

    def _now(self) -> int:
        return from_datetime(datetime.fromtimestamp(self._clock(), UTC))

    # ---- resolution of references

    def organization(self, ref: str | int) -> Organization:
        """The organization named ``ref`` (id or slug); 404 when there is none (the CLI's lookup)."""
        organization = self.directory.organization(ref)
        if organization is None:
            raise ApiError(404, f'Organization "{clip(str(ref))}" does not exist.')
        return organization

    def project(self, organization: Organization, ref: str | int) -> Project:
        project = self.directory.project(organization.id, ref)
        if project is None:
            raise ApiError(404, "The requested resource does not exist")
        return project

    def _projects(self, organization: Organization, refs: Sequence[str]) -> frozenset[int] | None:
        """The project ids named by ``refs`` (ids or slugs); None for all (no refs, or -1)."""
        refs = [ref for ref in refs if ref != ""]
        if not refs or ALL_PROJECTS in refs:
            return None
        ids = set()
        for ref in refs:
            project = self.directory.project(organization.id, ref)
            if project is None:
                raise forbidden(f'You do not have access to project "{clip(ref)}" (or it does not exist).')
            ids.add(project.id)
        return frozenset(ids)

    # ---- list

    def list_issues(
        self, organization: Organization, request: ListRequest, *, count_hits: bool = True
    ) -> IssuePage:
        check_count("project", request.projects, request_limits.MAX_PROJECTS)
        check_count("environment", request.environments, request_limits.MAX_ENVIRONMENTS)
        sort = request.sort or DEFAULT_SORT
        if sort not in SORTS:
            raise bad_request(f'Invalid sort "{clip(sort)}" (expected one of: {", ".join(SORTS)}).')
        limit = _limit(request.limit)
        if request.group_stats_period is not None and request.group_stats_period not in GROUP_STATS_PERIODS:
            raise bad_request("Invalid stats_period. Valid choices are '', '24h', '14d', and 'auto'")
        try:
            cursor = decode(request.cursor, sort) if request.cursor else first_page(sort)
        except CursorError as exc:
            raise bad_request(str(exc)) from None
        now = self._now()
        projects = self._projects(organization, request.projects)
        org_projects = self.directory.projects(organization.id)
        window = _window(request, now)

        with self.database.snapshot(multi_use=True) as snapshot:
            searcher = TagSearcher(snapshot)
            query = (request.query or "").strip()
            if query and cursor.after is None:
                # Sentry's shortcuts before searching: an event id, then a short id (shortIdLookup=1)
                direct = self._event_id_hits(searcher, organization, projects, org_projects, query)
                if direct is None and request.short_id_lookup:
                    hit = self._short_id_hit(searcher, organization, projects, query)
                    direct = [(hit, None)] if hit is not None else None
                if direct:
                    searcher.attach_details([row for row, _ in direct])
                    issues = []
                    for row, event_id in direct:
                        issue = self._serialize(row, organization, org_projects)
                        if event_id is not None:
                            issue["matchingEventId"] = event_id
                        issues.append(issue)
                    page = IssuePage(
                        issues, cursor, cursor, False, cursor, False, HitCount(len(issues)), searcher.stats
                    )
                    page.direct_hit = len(issues) == 1
                    return page
            flt = self._filter(organization, request.query, now, request.environments, projects, searcher)
            flt = flt.with_window(*window)
            plan = plan_search(Scope(organization.id, projects), flt, sort, org_projects)
            self._check_short_ids(searcher, organization, flt)
            found = searcher.page(plan, limit, cursor.after)
            rows, more = found.rows, found.more
            searcher.attach_details(rows)
            hits = None
            if count_hits:
                if cursor.after is None and not more:
                    hits = HitCount(len(rows))
                else:
                    hits = searcher.count(plan, MAX_HITS, HITS_BUDGET, HITS_LOOKUP_BUDGET)
        issues = [self._serialize(row, organization, org_projects) for row in rows]
        following = cursor.next(found.resume) if found.resume is not None else cursor
        previous = cursor.previous()
        return IssuePage(
            issues,
            cursor,
            following,
            more,
            previous or first_page(sort),
            previous is not None,
            hits,
            searcher.stats,
        )

    def _filter(
        self,
        organization: Organization,
        query: str | None,
        now: int,
        environments: Sequence[str],
        projects: frozenset[int] | None,
        searcher: Searcher,
    ) -> IssueFilter:
        """The request's filter: its query (with what some terms need to know: the organization's projects,
        the latest releases of the projects searched, the environment parameters) and its environments."""
        for environment in environments:
            if len(environment.encode("utf-8", "surrogatepass")) > request_limits.MAX_VALUE_BYTES:
                raise bad_request(
                    f'Invalid environment "{clip(environment)}": longer than {request_limits.MAX_VALUE_BYTES} bytes.'
                )
        environments = [e for e in environments if e]
        org_projects = self.directory.projects(organization.id)
        searched = sorted(projects if projects is not None else org_projects)
        context = QueryContext(
            projects={project.slug: project.id for project in org_projects.values()},
            latest_releases=lambda: latest_releases(searcher, searched),
            environments=tuple(environments),
        )
        try:
            flt = parse_query(query, now=now, context=context)
        except QueryError as exc:
            raise bad_request(str(exc)) from None
        flt = flt.with_environments(environments)
        looked_up = flt.lookup_values()
        if looked_up > request_limits.MAX_LOOKUP_VALUES:
            raise bad_request(
                f"Too many releases and environments to look up: {looked_up} (at most "
                f"{request_limits.MAX_LOOKUP_VALUES} across the query and the environment parameters)."
            )
        return flt

    def _check_short_ids(self, searcher: Searcher, organization: Organization, flt: IssueFilter) -> None:
        """``issue:SHORT-ID`` names an existing issue of that project, or the query is refused (Sentry)."""
        if not flt.group_projects:
            return
        found = {
            group_id: (org_id, project_id)
            for group_id, org_id, project_id in searcher.by_ids(
                [group_id for group_id, _ in flt.group_projects], ("GroupId", "OrganizationId", "ProjectId")
            )
        }
        projects = self.directory.projects(organization.id)
        for group_id, project_id in flt.group_projects:
            if found.get(group_id) != (organization.id, project_id):
                project = projects.get(project_id)
                name = short_id(project.slug, group_id) if project else str(group_id)
                raise bad_request(f"Invalid search query: Invalid value '{name}' for 'issue:' filter")

    def _event_id_hits(
        self,
        searcher: Searcher,
        organization: Organization,
        projects: frozenset[int] | None,
        org_projects: dict[int, Project],
        query: str,
    ) -> list[tuple[GroupRow, str]] | None:
        """The groups holding the event a query that is an event id names (Sentry's lookup before searching),
        through ``OccurrencesByEvent``; None when the query is not an event id or no group holds it."""
        event_id = normalize_event_id(query)
        if event_id is None:
            return None
        searched = sorted(projects if projects is not None else org_projects)
        group_ids = {
            group_id
            for _, _, group_id in searcher.read_index(
                "Occurrences",
                ("ProjectId", "EventId", "GroupId"),
                [[project_id, event_id] for project_id in searched],
                "OccurrencesByEvent",
            )
        }
        rows = [GroupRow.from_index(values) for values in searcher.by_ids(sorted(group_ids), INDEX_COLUMNS)]
        rows = [
            row for row in rows if row.organization_id == organization.id and row.project_id in org_projects
        ]
        if not rows:
            return None
        rows.sort(key=lambda row: (row.last_seen, row.group_id), reverse=True)
        return [(row, event_id) for row in rows]

    def _serialize(self, row: GroupRow, organization: Organization, projects: dict[int, Project]) -> dict:
        project = projects.get(row.project_id) or Project(
            row.project_id, organization.id, str(row.project_id)
        )
        permalink = None
        if self.permalink_base:
            permalink = f"{self.permalink_base}/organizations/{organization.slug}/issues/{row.group_id}/"
        return serialize_group(row, project, permalink)

    def _short_id_hit(
        self, searcher: Searcher, organization: Organization, projects: frozenset[int] | None, query: str
    ) -> GroupRow | None:
        parsed = parse_short_id(query)
        if parsed is None:
            return None
        slug, group_id = parsed
        rows = searcher.by_ids([group_id], INDEX_COLUMNS)
        if not rows:
            return None
        row = GroupRow.from_index(rows[0])
        project = self.directory.projects(organization.id).get(row.project_id)
        if (
            row.organization_id != organization.id
            or project is None
            or project.slug.upper() != slug
            or (projects is not None and row.project_id not in projects)
        ):
            return None
        return row

    # ---- bulk operations

    def update_issues(self, organization: Organization, selection: Selection, body: Any) -> Mutation | None:
        """Publish a status change per selected group; None when nothing matched (HTTP 204)."""
        update = bulk.parse_update(body)
        groups = self.select(organization, selection)
        if not groups:
            return None
        latest: dict[int, str] = {}
        if update.resolution_type == bulk.ResolutionType.IN_NEXT_RELEASE:
            latest = self._latest_releases({group.project_id for group in groups})
        payloads = bulk.update_payloads(groups, update, latest)
        self._publish(payloads)
        ids = [str(group.group_id) for group in groups]
        return Mutation(ids, {"ids": ids, **update.echo})

    def delete_issues(self, organization: Organization, selection: Selection) -> Mutation | None:
        """Publish a delete status change per selected group; None when nothing matched (HTTP 204)."""
        groups = self.select(organization, selection)
        if not groups:
            return None
        self._publish(bulk.delete_payloads(groups))
        ids = [str(group.group_id) for group in groups]
        return Mutation(ids, {"ids": ids})

    def _publish(self, payloads: list[dict[str, Any]]) -> None:
        if self.publisher is None:
            raise ApiError(503, "Bulk operations are disabled: the service has no --status_change_topic.")
        try:
            self.publisher.publish(payloads)
        except bulk.PublishError as exc:
            raise ApiError(503, str(exc)) from None

    def select(self, organization: Organization, selection: Selection) -> list[SelectedGroup]:
        """The groups a bulk operation acts on (see ``Selection``); other organizations' ids are dropped."""
        check_count("id", selection.ids, request_limits.MAX_IDS)
        check_count("project", selection.projects, request_limits.MAX_PROJECTS)
        check_count("environment", selection.environments, request_limits.MAX_ENVIRONMENTS)
        projects = self._projects(organization, selection.projects)
        status = None
        if selection.status is not None:
            if selection.status not in STATUS_SELECTORS:
                raise bad_request(
                    f'Invalid status "{clip(selection.status)}" (expected one of: {", ".join(STATUS_SELECTORS)}).'
                )
            status = STATUS_SELECTORS[selection.status]
        ids = [ref for ref in selection.ids if ref != ""]
        if ids:
            return self._select_ids(organization, projects, ids, status)
        if selection.query is None and selection.status is None:
            raise bad_request(
                "You must specify a list of IDs (id=...) or an explicit query (query=...) for this operation."
            )
        with self.database.snapshot(multi_use=True) as snapshot:
            searcher = TagSearcher(snapshot)
            flt = self._filter(
                organization,
                selection.query if selection.query is not None else "",
                self._now(),
                selection.environments,
                projects,
                searcher,
            )
            if status is not None:
                flt = replace(flt, status_pairs=frozenset(p for p in flt.status_pairs if p[0] == status))
            plan = plan_search(
                Scope(organization.id, projects), flt, DEFAULT_SORT, self.directory.projects(organization.id)
            )
            self._check_short_ids(searcher, organization, flt)
            rows = searcher.page(plan, BULK_LIMIT, bounded=False).rows
            found = {
                values[0]: values
                for values in searcher.by_ids([row.group_id for row in rows], _SELECT_COLUMNS)
            }
        return [
            SelectedGroup(row.group_id, row.project_id, found[row.group_id][3])
            for row in rows
            if row.group_id in found
        ]

    def _select_ids(
        self,
        organization: Organization,
        projects: frozenset[int] | None,
        refs: Sequence[str],
        status: int | None,
    ) -> list[SelectedGroup]:
        ids = [parse_issue_id(ref) for ref in refs]
        with self.database.snapshot() as snapshot:
            rows = Searcher(snapshot).by_ids(ids, _SELECT_COLUMNS)
        by_id = {}
        for group_id, org_id, project_id, fingerprint, group_status in rows:
            if org_id != organization.id or (projects is not None and project_id not in projects):
                continue
            if status is not None and group_status != status:
                continue
            by_id[group_id] = SelectedGroup(group_id, project_id, fingerprint)
        return [by_id[group_id] for group_id in dict.fromkeys(ids) if group_id in by_id]

    def _latest_releases(self, project_ids: set[int]) -> dict[int, str]:
        """Each project's latest release (by first seen); 400 when a project has none (as Sentry)."""
        latest = {}
        with self.database.snapshot(multi_use=True) as snapshot:
            for project_id in sorted(project_ids):
                rows = list(
                    snapshot.read(
                        "Releases",
                        ["ProjectId", "Version"],
                        KeySet(ranges=[KeyRange(start_closed=[project_id], end_closed=[project_id])]),
                        index="ReleasesByProjectFirstSeen",
                        limit=1,
                    )
                )
                if not rows:
                    raise bad_request(
                        "No release data present in the system to form a basis for 'Next Release' "
                        f"(project {project_id} has no release)."
                    )
                latest[project_id] = rows[0][1]
        return latest


# ``latest``: each project's latest release among its most recently first-seen ones (one Read per project).
LATEST_RELEASE_SCAN = 100


def latest_releases(searcher: Searcher, project_ids: Sequence[int]) -> frozenset[str]:
    """Each project's latest release, as Sentry's ``release:latest`` resolves it: by semantic version in a
    project whose recent releases are semver (Sentry's follows_semver_versioning_scheme: of its 10 most
    recent, the latest when it has at most 2, one of the latest 3 when it has fewer than 10, else at least 3
    of the 10 and one of the latest 3), otherwise the one first seen last. Releases are looked at among each
    project's ``LATEST_RELEASE_SCAN`` most recently first-seen ones (``ReleasesByProjectFirstSeen``)."""
    versions = set()
    for project_id in project_ids:
        rows = searcher.read_range(
            "Releases",
            ("ProjectId", "Version"),
            [project_id],
            "ReleasesByProjectFirstSeen",
            LATEST_RELEASE_SCAN,
        )
        if not rows:
            continue
        recent = [version for _, version in rows]
        if _follows_semver(recent[:10]):
            semver = [(parsed[1], version) for version in recent if (parsed := parse_semver(version))]
            if semver:
                versions.add(max(semver)[1])
                continue
        versions.add(recent[0])
    return frozenset(versions)


def _follows_semver(recent: list[str]) -> bool:
    flags = [parse_semver(version) is not None for version in recent]
    if len(flags) <= 2:
        return flags[0]
    if len(flags) < 10:
        return any(flags[:3])
    return sum(flags) >= 3 and any(flags[:3])


def check_count(name: str, values: Sequence[str], maximum: int) -> None:
    """400 when a repeated parameter is given more than ``maximum`` times."""
    if len(values) > maximum:
        raise bad_request(f"Too many {name} parameters: {len(values)} (at most {maximum}).")


def parse_issue_id(ref: str) -> int:
    """An issue id parameter as an int; 400 for anything that cannot be an issue id (Sentry's answer to an id
    outside its id range), so that no value reaches Spanner as a key it cannot parse."""
    if ref.isascii() and ref.isdigit() and len(ref) <= 19 and 1 <= int(ref) <= request_limits.MAX_ISSUE_ID:
        return int(ref)
    raise bad_request(
        f'Invalid id "{clip(ref)}": not a valid issue id (a whole number from 1 to {request_limits.MAX_ISSUE_ID}).'
    )


def _limit(value: str | int | None) -> int:
    """Sentry's paginator: default 100, at most 100 (larger values are capped), at least 1."""
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise bad_request(
            f'Invalid limit "{clip(str(value))}": a whole number from 1 to {MAX_LIMIT} is expected.'
        ) from None
    if limit < 1:
        raise bad_request(
            f'Invalid limit "{clip(str(value))}": a whole number from 1 to {MAX_LIMIT} is expected.'
        )
    return min(limit, MAX_LIMIT)


def _window(request: ListRequest, now: int) -> tuple[int | None, int | None]:
    """(start, end) of the time window: statsPeriod (which wins, as in Sentry), or start and end together."""
    try:
        if request.stats_period:
            return now - parse_relative_period(request.stats_period), None
        if request.start or request.end:
            if not (request.start and request.end):
                raise bad_request("start and end are both required (or use statsPeriod).")
            start = parse_timestamp(request.start, "start")
            end = parse_timestamp(request.end, "end")
            if start > end:
                raise bad_request("start must be before end.")
            return start, end
    except QueryError as exc:
        raise bad_request(exc.message) from None
    return None, None
