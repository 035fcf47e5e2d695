"""Sentry's enums, with Sentry's numbers (``sentry.types.group``, ``sentry.types.activity``)."""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class GroupStatus(IntEnum):
    UNRESOLVED = 0
    RESOLVED = 1
    IGNORED = 2
    PENDING_DELETION = 3
    DELETION_IN_PROGRESS = 4
    PENDING_MERGE = 5
    REPROCESSING = 6


class GroupSubStatus(IntEnum):
    UNTIL_ESCALATING = 1
    ESCALATING = 2
    ONGOING = 3
    UNTIL_CONDITION_MET = 4
    FOREVER = 5
    REGRESSED = 6
    NEW = 7


class Priority(IntEnum):
    LOW = 25
    MEDIUM = 50
    HIGH = 75


class GroupCategory(IntEnum):
    ERROR = 1
    PERFORMANCE = 2
    PROFILE = 3  # deprecated by Sentry, merged into PERFORMANCE
    CRON = 4
    REPLAY = 5
    FEEDBACK = 6
    UPTIME = 7
    METRIC_ALERT = 8


class ActivityType(IntEnum):
    SET_RESOLVED = 1
    SET_UNRESOLVED = 2
    SET_IGNORED = 3
    SET_REGRESSION = 6
    SET_RESOLVED_IN_RELEASE = 13
    AUTO_SET_ONGOING = 24
    SET_ESCALATING = 25
    SET_PRIORITY = 26


# The (new_status, new_substatus) pairs a status change may carry (rule 5.1); anything else is
# dead-lettered as invalid_status_change before any group is looked at. UNRESOLVED/NEW is never valid.
VALID_STATUS_CHANGES: frozenset[tuple[int, int | None]] = frozenset(
    {
        (GroupStatus.RESOLVED, None),
        (GroupStatus.IGNORED, GroupSubStatus.UNTIL_ESCALATING),
        (GroupStatus.IGNORED, GroupSubStatus.UNTIL_CONDITION_MET),
        (GroupStatus.IGNORED, GroupSubStatus.FOREVER),
        (GroupStatus.UNRESOLVED, GroupSubStatus.ESCALATING),
        (GroupStatus.UNRESOLVED, GroupSubStatus.REGRESSED),
        (GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING),
        (GroupStatus.PENDING_DELETION, None),
    }
)


class ResolutionType:
    """Values of a status change's ``resolution.type`` (our extension, rule 1.4)."""

    IN_RELEASE: Final = "in_release"
    IN_NEXT_RELEASE: Final = "in_next_release"
    ALL: Final = (IN_RELEASE, IN_NEXT_RELEASE)


# Sentry's LOG_LEVELS_MAP: level name -> number stored on the group.
LOG_LEVELS: dict[str, int] = {
    "sample": 0,
    "debug": 10,
    "info": 20,
    "warning": 30,
    "error": 40,
    "fatal": 50,
}
LOG_LEVEL_NAMES: dict[int, str] = {number: name for name, number in LOG_LEVELS.items()}
DEFAULT_LEVEL = "info"

# Names the issue index uses for statuses and substatuses (``is:`` terms and response fields).
STATUS_NAMES: dict[int, str] = {
    GroupStatus.UNRESOLVED: "unresolved",
    GroupStatus.RESOLVED: "resolved",
    GroupStatus.IGNORED: "ignored",
    GroupStatus.PENDING_DELETION: "pending_deletion",
    GroupStatus.DELETION_IN_PROGRESS: "deletion_in_progress",
    GroupStatus.PENDING_MERGE: "pending_merge",
    GroupStatus.REPROCESSING: "reprocessing",
}
SUBSTATUS_NAMES: dict[int, str] = {
    GroupSubStatus.UNTIL_ESCALATING: "archived_until_escalating",
    GroupSubStatus.ESCALATING: "escalating",
    GroupSubStatus.ONGOING: "ongoing",
    GroupSubStatus.UNTIL_CONDITION_MET: "archived_until_condition_met",
    GroupSubStatus.FOREVER: "archived_forever",
    GroupSubStatus.REGRESSED: "regressed",
    GroupSubStatus.NEW: "new",
}
PRIORITY_NAMES: dict[int, str] = {Priority.LOW: "low", Priority.MEDIUM: "medium", Priority.HIGH: "high"}
CATEGORY_NAMES: dict[int, str] = {
    GroupCategory.ERROR: "error",
    GroupCategory.PERFORMANCE: "performance",
    GroupCategory.PROFILE: "profile",
    GroupCategory.CRON: "cron",
    GroupCategory.REPLAY: "replay",
    GroupCategory.FEEDBACK: "feedback",
    GroupCategory.UPTIME: "uptime",
    GroupCategory.METRIC_ALERT: "metric_alert",
}
