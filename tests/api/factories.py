"""Rows as the pipeline and ``pipeline.admin`` write them, for issue-index tests (written directly to Spanner)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from google.cloud.spanner_v1 import COMMIT_TIMESTAMP
from google.cloud.spanner_v1.data_types import JsonObject

from transforms.core.enums import GroupStatus, GroupSubStatus, Priority
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import MICROS, to_datetime

# 2026-01-01T00:00:00Z: test times are offsets from here.
T0 = 1_767_225_600 * MICROS
HOUR = 3600 * MICROS
DAY = 24 * HOUR

GROUP_COLUMNS = (
    "GroupId",
    "ProjectId",
    "OrganizationId",
    "PrimaryHash",
    "Fingerprint",
    "Generation",
    "Type",
    "Category",
    "Status",
    "Substatus",
    "Priority",
    "Level",
    "Title",
    "Subtitle",
    "Culprit",
    "Message",
    "Platform",
    "FirstSeen",
    "LastSeen",
    "ActiveAt",
    "TimesSeen",
    "FirstRelease",
    "Assignee",
    "ResolutionType",
    "ResolutionVersion",
    "Data",
    "Seq",
    "UpdatedAt",
)


@dataclass
class G:
    """A group row with test defaults: unresolved/ongoing, high priority, error level, type error."""

    group_id: int
    project_id: int
    organization_id: int
    last_seen: int = T0
    first_seen: int | None = None
    times_seen: int = 1
    status: int = GroupStatus.UNRESOLVED
    substatus: int | None = GroupSubStatus.ONGOING
    priority: int | None = Priority.HIGH
    type: int = 1
    level: int = 40
    title: str | None = None
    message: str | None = None
    culprit: str = "app.views in handler"
    fingerprint: str | None = None
    first_release: str | None = None
    assignee: str | None = None
    resolution_type: str | None = None
    resolution_version: str | None = None
    data: dict[str, Any] | None = None

    def row(self) -> list[Any]:
        first_seen = self.last_seen if self.first_seen is None else self.first_seen
        group_type = GROUP_TYPES[self.type]
        title = self.title if self.title is not None else f"Issue {self.group_id}"
        fingerprint = self.fingerprint or f"fp-{self.group_id}"
        data = self.data if self.data is not None else {"type": "generic", "metadata": {"title": title}}
        return [
            self.group_id,
            self.project_id,
            self.organization_id,
            hashlib.md5(fingerprint.encode()).hexdigest(),
            fingerprint,
            0,
            self.type,
            int(group_type.category),
            int(self.status),
            None if self.substatus is None else int(self.substatus),
            None if self.priority is None else int(self.priority),
            self.level,
            title,
            "subtitle",
            self.culprit,
            self.message if self.message is not None else title,
            "python",
            to_datetime(first_seen),
            to_datetime(self.last_seen),
            to_datetime(self.last_seen),
            self.times_seen,
            self.first_release,
            self.assignee,
            self.resolution_type,
            self.resolution_version,
            JsonObject(data),
            1,
            COMMIT_TIMESTAMP,
        ]


def write_groups(database: Any, groups: list[G]) -> None:
    for start in range(0, len(groups), 2000):
        with database.batch() as batch:
            batch.insert_or_update("Groups", GROUP_COLUMNS, [g.row() for g in groups[start : start + 2000]])


def add_organization(database: Any, organization_id: int, slug: str) -> None:
    with database.batch() as batch:
        batch.insert_or_update(
            "Organizations",
            ["OrganizationId", "Slug", "CreatedAt"],
            [[organization_id, slug, COMMIT_TIMESTAMP]],
        )


def add_project(database: Any, project_id: int, organization_id: int, slug: str) -> None:
    with database.batch() as batch:
        batch.insert_or_update(
            "Projects",
            ["ProjectId", "OrganizationId", "Slug", "Features", "CreatedAt"],
            [[project_id, organization_id, slug, [], COMMIT_TIMESTAMP]],
        )


def add_token(database: Any, organization_id: int, scope: str = "read") -> str:
    """A token stored as ``pipeline.admin create-token`` stores it (SHA-256 hex); returns the token."""
    token = "sntryu_" + secrets.token_hex(32)
    with database.batch() as batch:
        batch.insert(
            "ApiTokens",
            ["TokenHash", "OrganizationId", "Scope", "Name", "CreatedAt"],
            [[hashlib.sha256(token.encode()).hexdigest(), organization_id, scope, "test", COMMIT_TIMESTAMP]],
        )
    return token


def add_environments(database: Any, pairs: list[tuple[int, str]]) -> None:
    with database.batch() as batch:
        batch.insert_or_update(
            "GroupEnvironments",
            ["GroupId", "Environment", "FirstRelease", "FirstSeen"],
            [[group_id, env, None, to_datetime(T0)] for group_id, env in pairs],
        )


def add_group_releases(database: Any, pairs: list[tuple[int, str]]) -> None:
    with database.batch() as batch:
        batch.insert_or_update("GroupReleases", ["GroupId", "Release"], [list(pair) for pair in pairs])


def add_release(database: Any, project_id: int, version: str, first_seen: int) -> None:
    with database.batch() as batch:
        batch.insert_or_update(
            "Releases",
            ["ProjectId", "Version", "FirstSeen"],
            [[project_id, version, to_datetime(first_seen)]],
        )
