"""Sentry's group tags endpoints over what ``api.tag_index.TagIndex`` reads: an issue's tag keys with their totals
and top values, one key, and a key's values, paginated (docs/issue-index.md "The tags endpoints").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from google.cloud.spanner_v1 import KeySet

from api import auth
from api.errors import bad_request, not_found
from api.serializers import iso_time, parse_short_id
from api.tag_index import TagIndex, TagKey, TagValue
from transforms.core.engine.tags import valid_tag
from transforms.core.limits import TAG_VALUES_PER_KEY

# ---------------------------------------------------------------------------------------------------------------
# Sentry's group tags endpoints:
#   GET /api/0/organizations/{org}/issues/{issue}/tags/            keys with totals and top values
#   GET /api/0/organizations/{org}/issues/{issue}/tags/{key}/      one key
#   GET /api/0/organizations/{org}/issues/{issue}/tags/{key}/values/   a key's values, paginated
# and the same under /api/0/issues/{issue}/ (the token's organization), ``groups`` as well as ``issues``.

# Sentry's labels of tag keys (sentry.constants.TAG_LABELS); other keys are title-cased with spaces.
TAG_LABELS = {
    "exc_type": "Exception Type",
    "user": "User",
    "release": "Release",
    "dist": "Distribution",
    "os": "OS",
    "url": "URL",
    "server_name": "Server",
}
_USER_PREFIXES = ("id", "email", "username", "ip")
VALUE_SORTS = {"date": "-last_seen", "age": "-first_seen", "count": "-times_seen"}
MAX_PER_PAGE = 100
# Parameters Sentry's tags endpoints take that these cannot honour: counts are kept per group over all time
# and environments, so an answer for a window or an environment would be a wrong answer, not an approximate one.
UNSUPPORTED_PARAMS = {
    "environment": "tag counts are kept per issue over all environments, not per environment",
    "statsPeriod": "tag counts are kept per issue over all time, not per period",
    "start": "tag counts are kept per issue over all time, not per period",
    "end": "tag counts are kept per issue over all time, not per period",
}


def key_label(key: str) -> str:
    """Sentry's ``get_tag_key_label``."""
    return TAG_LABELS.get(key) or key.replace("_", " ").title()


def value_label(key: str, value: str) -> str:
    """Sentry's ``get_tag_value_label``: a user tag shows its identifier without the ``id:`` (...) prefix."""
    if key == "user":
        for prefix in _USER_PREFIXES:
            if value.startswith(prefix + ":"):
                return value[len(prefix) + 1 :]
    return value


def user_query(key: str, value: str) -> str | None:
    """Sentry's ``convert_user_tag_to_query``: ``user.id:"42"`` for the user tag ``id:42``."""
    if key != "user" or ":" not in value:
        return None
    sub_key, _, ident = value.partition(":")
    if sub_key not in _USER_PREFIXES:
        return None
    escaped = ident.replace('"', '\\"')
    return f'user.{sub_key}:"{escaped}"'


def serialize_value(value: TagValue) -> dict[str, Any]:
    """Sentry's ``TagValueSerializer``."""
    out: dict[str, Any] = {
        "key": value.key,
        "name": value_label(value.key, value.value),
        "value": value.value,
        "count": value.times_seen,
        "lastSeen": iso_time(value.last_seen),
        "firstSeen": iso_time(value.first_seen),
    }
    query = user_query(value.key, value.value)
    if query is not None:
        out["query"] = query
    return out


def top_order(value: TagValue) -> tuple:
    """Most frequent first; ties: seen last most recently, then by value."""
    return (-value.times_seen, -value.last_seen, value.value)


def serialize_key(key: TagKey, values: list[TagValue], top: int | None) -> dict[str, Any]:
    """Sentry's ``TagKeySerializer`` (key, name, uniqueValues, totalValues, topValues), plus ``otherValues``:
    the occurrences counted in ``totalValues`` whose value came after the key was full (not listed)."""
    out: dict[str, Any] = {
        "key": key.key,
        "name": key_label(key.key),
        "uniqueValues": key.values_seen,
        "totalValues": sum(value.times_seen for value in values) + key.other,
    }
    if top is not None:
        out["topValues"] = [serialize_value(value) for value in sorted(values, key=top_order)[:top]]
    out["otherValues"] = key.other
    return out


def _reject_unsupported(params: Any) -> None:
    for name, why in UNSUPPORTED_PARAMS.items():
        if params.get(name):
            raise bad_request(f"Invalid {name}: {why}.")


def _int_param(params: Any, name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise bad_request(f"Invalid {name}: {text!r} (expected an integer from {low} to {high}).")
    return int(text)


@dataclass(frozen=True, slots=True)
class IssueRef:
    group_id: int
    project_id: int


class GroupTags:
    """The tags endpoints' operations over one database; callers authorize the organization first."""

    def __init__(self, database: Any, directory: Any) -> None:
        self.database = database
        self.directory = directory

    def issue(self, snapshot: Any, organization: Any, ref: str) -> IssueRef:
        """The organization's group named ``ref`` (an id, or a short id like ``BACKEND-1A``); 404 otherwise."""
        slug = None
        if ref.isascii() and ref.isdigit() and len(ref) <= 19:
            group_id = int(ref)
        else:
            parsed = parse_short_id(ref)
            if parsed is None:
                raise not_found()
            slug, group_id = parsed
        rows = list(
            snapshot.read("Groups", ["GroupId", "OrganizationId", "ProjectId"], KeySet(keys=[[group_id]]))
        )
        if not rows or rows[0][1] != organization.id:
            raise not_found()
        project_id = rows[0][2]
        if slug is not None:
            project = self.directory.project(organization.id, project_id)
            if project is None or project.slug.upper() != slug:
                raise not_found()
        return IssueRef(group_id, project_id)

    def tags(self, organization: Any, ref: str, params: Any) -> list[dict[str, Any]]:
        """``GET .../tags/``: every key (or the ``key`` parameters) with totals and top values (``limit``:
        10 by default, 9 when keys are named, as Sentry)."""
        _reject_unsupported(params)
        named = [key for key in params.getlist("key") if key] or None
        limit = _int_param(params, "limit", 9 if named else 10, 0, TAG_VALUES_PER_KEY)
        with self.database.snapshot(multi_use=True) as snapshot:
            issue = self.issue(snapshot, organization, ref)
            index = TagIndex(snapshot)
            keys = index.group_keys(issue.group_id, named)
            values = index.group_values(issue.group_id, [key.key for key in keys])
        out = [serialize_key(key, values[key.key], limit) for key in keys]
        out.sort(key=lambda item: (-item["totalValues"], item["key"]))
        return out

    def tag(self, organization: Any, ref: str, key: str, params: Any) -> dict[str, Any]:
        """``GET .../tags/{key}/``: one key with its totals and top 9 values; 404 when the issue lacks it."""
        _reject_unsupported(params)
        with self.database.snapshot(multi_use=True) as snapshot:
            issue = self.issue(snapshot, organization, ref)
            index = TagIndex(snapshot)
            keys = index.group_keys(issue.group_id, [key]) if valid_tag(key, "v") else []
            if not keys:
                raise not_found()
            values = index.group_values(issue.group_id, [key])[key]
        return serialize_key(keys[0], values, 9)

    def values(
        self, organization: Any, ref: str, key: str, params: Any
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """``GET .../tags/{key}/values/``: the key's values, ``sort`` = ``date`` (last seen), ``age`` (first
        seen), ``count``, or by default the newest first (first seen, latest first); ``per_page`` (at most
        100) from the offset of ``cursor`` (Sentry's ``value:offset:is_prev``). Returns the page, its offset
        and whether more follow."""
        _reject_unsupported(params)
        sort = params.get("sort") or ""
        if sort and sort not in VALUE_SORTS:
            raise bad_request(f"Invalid sort: {sort!r} (expected date, age or count).")
        per_page = _int_param(params, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        offset = _cursor_offset(params.get("cursor"))
        with self.database.snapshot(multi_use=True) as snapshot:
            issue = self.issue(snapshot, organization, ref)
            index = TagIndex(snapshot)
            if not valid_tag(key, "v") or not index.group_keys(issue.group_id, [key]):
                raise not_found()
            values = index.group_values(issue.group_id, [key])[key]
        if sort == "date":
            values.sort(key=lambda v: (-v.last_seen, v.value))
        elif sort == "count":
            values.sort(key=top_order)
        else:
            values.sort(key=lambda v: (-v.first_seen, v.value))
        page = values[offset : offset + per_page]
        return [serialize_value(value) for value in page], offset, offset + per_page < len(values)


def _cursor_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    parts = cursor.split(":")
    if len(parts) != 3 or not all(part.isascii() and part.lstrip("-").isdigit() for part in parts):
        raise bad_request(f"Invalid cursor: {cursor!r}.")
    return max(0, int(parts[1]))


def _values_link(url: Any, offset: int, per_page: int, has_next: bool) -> str:
    """Sentry's Link header for an offset-paginated list."""
    base = url.remove_query_params("cursor")
    previous = f"0:{max(0, offset - per_page)}:1"
    following = f"0:{offset + per_page}:0"
    return ", ".join(
        f'<{base.include_query_params(cursor=cursor)}>; rel="{rel}"; results="{str(results).lower()}"; '
        f'cursor="{cursor}"'
        for rel, cursor, results in (("previous", previous, offset > 0), ("next", following, has_next))
    )


def mount(app: FastAPI, index: Any) -> None:
    """Add the tags endpoints to the service's ``app`` (``api.app.create_app``), over ``index``'s database,
    with the same authentication and organization scoping as the issue index (``api.auth``)."""
    service = GroupTags(index.database, index.directory)

    def organization_for(request: Request, organization: str | None) -> Any:
        token = auth.authenticate(index.directory, request.headers.get("authorization"))
        ref = str(token.organization_id) if organization is None else organization
        return auth.authorize(index.directory, token, ref, request.method)

    def json(content: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(content), media_type="application/json", headers=headers)

    for prefix in (
        "/api/0/organizations/{organization}/issues/{issue_id}",
        "/api/0/organizations/{organization}/groups/{issue_id}",
        "/api/0/issues/{issue_id}",
        "/api/0/groups/{issue_id}",
    ):
        scoped = "{organization}" in prefix

        def list_tags(request: Request, issue_id: str, organization: str | None = None) -> Response:
            org = organization_for(request, organization)
            return json(service.tags(org, issue_id, request.query_params))

        def tag_details(
            request: Request, issue_id: str, key: str, organization: str | None = None
        ) -> Response:
            org = organization_for(request, organization)
            return json(service.tag(org, issue_id, key, request.query_params))

        def tag_values(
            request: Request, issue_id: str, key: str, organization: str | None = None
        ) -> Response:
            org = organization_for(request, organization)
            page, offset, has_next = service.values(org, issue_id, key, request.query_params)
            per_page = _int_param(request.query_params, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
            return json(page, {"Link": _values_link(request.url, offset, per_page, has_next)})

        include = scoped  # the unscoped forms work the same; the schema lists the organization ones
        app.get(f"{prefix}/tags/", summary="List an issue's tags", include_in_schema=include)(list_tags)
        app.get(f"{prefix}/tags/{{key}}/", summary="An issue's tag", include_in_schema=include)(tag_details)
        app.get(f"{prefix}/tags/{{key}}/values/", summary="An issue's tag values", include_in_schema=include)(
            tag_values
        )
