"""A group as the issue-index indexes hold it (``GroupRow``, ``INDEX_COLUMNS``), its display columns
(``GroupDetail``, ``DETAIL_COLUMNS``), and its place in each sort order (``sort_key``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.cursor import SortKey
from transforms.core.model import from_datetime

# Columns every issue-index index holds (key or STORING), in GroupRow order.
INDEX_COLUMNS: tuple[str, ...] = (
    "GroupId",
    "OrganizationId",
    "ProjectId",
    "Status",
    "Substatus",
    "Priority",
    "Type",
    "Category",
    "Level",
    "FirstSeen",
    "LastSeen",
    "TimesSeen",
    "FirstRelease",
    "Assignee",
)
# Display columns read from the base table by primary key, for a page's rows only.
DETAIL_COLUMNS: tuple[str, ...] = (
    "GroupId",
    "Title",
    "Culprit",
    "Message",
    "Platform",
    "Data",
    "ResolutionType",
    "ResolutionVersion",
)


@dataclass(frozen=True, slots=True)
class GroupDetail:
    title: str
    culprit: str
    message: str
    platform: str | None
    data: dict[str, Any]
    resolution_type: str | None
    resolution_version: str | None


@dataclass(slots=True)
class GroupRow:
    """A group as an issue-index index holds it (times in microseconds); ``detail`` is filled for a page."""

    group_id: int
    organization_id: int
    project_id: int
    status: int
    substatus: int | None
    priority: int | None
    type: int
    category: int
    level: int
    first_seen: int
    last_seen: int
    times_seen: int
    first_release: str | None
    assignee: str | None
    detail: GroupDetail | None = None

    @classmethod
    def from_index(cls, values: list) -> GroupRow:
        """A row read with ``INDEX_COLUMNS``."""
        return cls.from_columns(INDEX_COLUMNS, values, 0)

    @classmethod
    def from_columns(cls, columns: tuple[str, ...], values: list, organization_id: int) -> GroupRow:
        """A row read with some of ``INDEX_COLUMNS``; the others get placeholder values (counting reads only
        the columns its conditions test, and never looks at the rest)."""
        fields: dict[str, Any] = dict(_PLACEHOLDERS, organization_id=organization_id)
        for column, value in zip(columns, values):
            if column in _TIME_COLUMNS:
                value = from_datetime(value)
            fields[_FIELDS[column]] = value
        return cls(**fields)


_FIELDS = {
    "GroupId": "group_id",
    "OrganizationId": "organization_id",
    "ProjectId": "project_id",
    "Status": "status",
    "Substatus": "substatus",
    "Priority": "priority",
    "Type": "type",
    "Category": "category",
    "Level": "level",
    "FirstSeen": "first_seen",
    "LastSeen": "last_seen",
    "TimesSeen": "times_seen",
    "FirstRelease": "first_release",
    "Assignee": "assignee",
}
_TIME_COLUMNS = frozenset({"FirstSeen", "LastSeen"})
_PLACEHOLDERS: dict[str, Any] = {
    "group_id": 0,
    "project_id": 0,
    "status": 0,
    "substatus": None,
    "priority": None,
    "type": 0,
    "category": 0,
    "level": 0,
    "first_seen": 0,
    "last_seen": 0,
    "times_seen": 0,
    "first_release": None,
    "assignee": None,
}


def sort_key(row: GroupRow, sort: str) -> SortKey:
    """The row's position in ``sort`` order (descending): what a cursor stores."""
    if sort == "date":
        return (row.last_seen, row.group_id)
    if sort == "new":
        return (row.first_seen, row.group_id)
    if sort == "freq":
        return (row.times_seen, row.group_id)
    return (priority_rank(row.priority), row.last_seen, row.group_id)


def priority_rank(priority: int | None) -> int:
    """Priority as it orders in the index (DESC, NULL last)."""
    return -1 if priority is None else priority


def json_object(value: Any) -> dict[str, Any]:
    """A JSON column as a plain dict (the client returns a ``JsonObject``; anything but an object is {})."""
    if value is None or not isinstance(value, dict):
        return {}
    return dict(value)
