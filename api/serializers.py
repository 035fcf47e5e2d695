"""Groups as Sentry's issue API serializes them (``StreamGroupSerializer`` shape), field for field.

Fields Sentry derives from data this product does not keep (comments, bookmarks, subscriptions, seen-by, user
counts, share ids, stats) carry Sentry's neutral values (0, false, null, []), so clients that read them keep
working. Times are ISO 8601 UTC with milliseconds and ``Z``.
"""

from __future__ import annotations

from typing import Any

from api.directory import Organization, Project
from api.query import parse_short_id  # noqa: F401  (short ids are parsed where queries are)
from api.search import GroupRow
from transforms.core.enums import (
    CATEGORY_NAMES,
    LOG_LEVEL_NAMES,
    PRIORITY_NAMES,
    STATUS_NAMES,
    SUBSTATUS_NAMES,
    GroupStatus,
    ResolutionType,
)
from transforms.core.grouptypes import get_group_type
from transforms.core.model import MICROS, to_datetime

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def base36(number: int) -> str:
    if number < 0:
        raise ValueError("group ids are positive")
    digits = []
    while True:
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
        if number == 0:
            return "".join(reversed(digits))


def short_id(project_slug: str, group_id: int) -> str:
    """E12: the project slug in upper case, a dash, the group id in base 36 upper case."""
    return f"{project_slug.upper()}-{base36(group_id)}"


def iso_time(micros: int) -> str:
    """``2024-05-01T12:00:00.123Z``."""
    moment = to_datetime(micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{(micros % MICROS) // 1000:03d}Z"


def status_details(row: GroupRow) -> dict[str, Any]:
    detail = row.detail
    if row.status != GroupStatus.RESOLVED or detail is None or not detail.resolution_type:
        return {}
    if detail.resolution_type == ResolutionType.IN_NEXT_RELEASE:
        return {"inNextRelease": True}
    if detail.resolution_type == ResolutionType.IN_RELEASE and detail.resolution_version:
        return {"inRelease": detail.resolution_version}
    return {}


def assigned_to(assignee: str | None) -> dict[str, Any] | None:
    if not assignee:
        return None
    kind, _, ident = assignee.partition(":")
    return {"type": kind, "id": ident, "name": None}


def serialize_group(row: GroupRow, project: Project, permalink: str | None = None) -> dict[str, Any]:
    """One issue as Sentry's list endpoints return it. ``row.detail`` must be attached."""
    detail = row.detail
    data = detail.data if detail is not None else {}
    title = detail.title if detail is not None else ""
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {"title": title}
    group_type = get_group_type(row.type)
    return {
        "id": str(row.group_id),
        "shareId": None,
        "shortId": short_id(project.slug, row.group_id),
        "title": title,
        "culprit": detail.culprit if detail is not None else "",
        "permalink": permalink,
        "logger": None,
        "level": LOG_LEVEL_NAMES.get(row.level, str(row.level)),
        "status": STATUS_NAMES.get(row.status, str(row.status)),
        "statusDetails": status_details(row),
        "substatus": SUBSTATUS_NAMES.get(row.substatus) if row.substatus is not None else None,
        "isPublic": False,
        "platform": detail.platform if detail is not None else None,
        "project": {"id": str(project.id), "name": project.name, "slug": project.slug, "platform": None},
        "type": data.get("type") or "generic",
        "metadata": metadata,
        "numComments": 0,
        "assignedTo": assigned_to(row.assignee),
        "isBookmarked": False,
        "isSubscribed": False,
        "subscriptionDetails": None,
        "hasSeen": False,
        "annotations": [],
        "issueType": group_type.slug if group_type is not None else str(row.type),
        "issueCategory": CATEGORY_NAMES.get(row.category, str(row.category)),
        "priority": PRIORITY_NAMES.get(row.priority) if row.priority is not None else None,
        "priorityLockedAt": None,
        "isUnhandled": False,
        "count": str(row.times_seen),
        "userCount": 0,
        "firstSeen": iso_time(row.first_seen),
        "lastSeen": iso_time(row.last_seen),
    }


# ---- organizations and projects (sentry-cli's info, organizations list and projects list read these)


def serialize_organization(organization: Organization, features: tuple[str, ...]) -> dict[str, Any]:
    """An organization as Sentry's OrganizationSerializer shows it (what this product keeps; Sentry's
    neutral values for the rest). Organizations have no display name here: the name is the slug."""
    return {
        "id": str(organization.id),
        "slug": organization.slug,
        "status": {"id": "active", "name": "active"},
        "name": organization.slug,
        "dateCreated": iso_time(organization.created_at or 0),
        "isEarlyAdopter": False,
        "require2FA": False,
        "requireEmailVerification": False,
        "avatar": {"avatarType": "letter_avatar", "avatarUuid": None, "avatarUrl": None},
        "allowMemberInvite": False,
        "allowMemberProjectCreation": False,
        "allowSuperuserAccess": False,
        "hasAuthProvider": False,
        "features": list(features),
        "links": {"organizationUrl": None, "regionUrl": None},
    }


def serialize_project(project: Project) -> dict[str, Any]:
    """A project as Sentry's ProjectSummarySerializer shows it (no teams, platform or first event here)."""
    return {
        "id": str(project.id),
        "slug": project.slug,
        "name": project.name,
        "platform": None,
        "dateCreated": iso_time(project.created_at or 0),
        "isBookmarked": False,
        "isMember": True,
        "hasAccess": True,
        "access": [],
        "features": list(project.features),
        "firstEvent": None,
        "firstTransactionEvent": False,
        "isPublic": False,
        "isInternal": False,
        "avatar": {"avatarType": "letter_avatar", "avatarUuid": None, "avatarUrl": None},
        "color": "#3f70b3",
        "status": "active",
        "team": None,
        "teams": [],
        "environments": [],
        "latestRelease": None,
        "latestDeploys": None,
    }


def serialize_project_detail(project: Project, organization: Organization, features: tuple[str, ...]) -> dict:
    """A project as Sentry's project details endpoint shows it: the summary and its organization."""
    return {**serialize_project(project), "organization": serialize_organization(organization, features)}
