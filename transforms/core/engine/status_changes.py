"""The status transitions of rule 5.1 (Sentry's ``update_status``, ref c.4), on one group.

``transition`` applies one valid status change to the group and returns the
activities it causes; an empty list means "no effect" (same as current, or
ESCALATING on a group that is not IGNORED, E3). The pair was validated before
the engine (``VALID_STATUS_CHANGES``); PENDING_DELETION is the engine's
business (``engine``), not a transition. Status changes never touch
``active_at``, ``last_seen`` or ``times_seen``.
"""

from __future__ import annotations

from typing import Any

from transforms.core.engine.state import MutableGroup
from transforms.core.enums import (
    PRIORITY_NAMES,
    VALID_STATUS_CHANGES,
    ActivityType,
    GroupStatus,
    GroupSubStatus,
    Priority,
)
from transforms.core.model import StatusChange

Activity = tuple[int, dict[str, Any] | None]

# Plain ints: the group's fields are stored and compared as numbers, never as enum members.
_RESOLVED = int(GroupStatus.RESOLVED)
_IGNORED = int(GroupStatus.IGNORED)
_UNRESOLVED = int(GroupStatus.UNRESOLVED)
_ESCALATING = int(GroupSubStatus.ESCALATING)
_REGRESSED = int(GroupSubStatus.REGRESSED)
_ONGOING = int(GroupSubStatus.ONGOING)
_LOW = int(Priority.LOW)
_MEDIUM = int(Priority.MEDIUM)
_HIGH = int(Priority.HIGH)
# The pairs ``transition`` handles: the valid ones of the contract but the delete.
_TRANSITIONS = VALID_STATUS_CHANGES - {(GroupStatus.PENDING_DELETION, None)}


class InvalidTransition(ValueError):
    """A status/substatus pair outside 5.1 reached the engine (decoding should have dead-lettered it)."""


def transition(
    group: MutableGroup, change: StatusChange, message_time: int, resolution_first_seen: int | None
) -> list[Activity]:
    """Apply ``change`` at ``message_time``; the activities to record, [] when it has no effect.

    ``resolution_first_seen`` is the first-seen time of the change's
    resolution version (unused without a resolution).
    """
    status = change.new_status
    substatus = change.new_substatus
    if (status, substatus) not in _TRANSITIONS:
        raise InvalidTransition(f"status change to ({status}, {substatus}) is not a transition")
    if status == _RESOLVED:
        return _resolve(group, change, message_time, resolution_first_seen)
    if status == group.status and substatus == group.substatus:
        return []
    if status == _IGNORED:
        _leave_resolved(group)
        group.status = _IGNORED
        group.substatus = int(substatus) if substatus is not None else None
        return [(ActivityType.SET_IGNORED, None)]
    if substatus == _ESCALATING:
        return _escalate(group)
    if substatus == _REGRESSED:
        _leave_resolved(group)
        group.status = _UNRESOLVED
        group.substatus = _REGRESSED
        return [(ActivityType.SET_REGRESSION, None)]
    return _ongoing(group)


def _resolve(
    group: MutableGroup, change: StatusChange, message_time: int, resolution_first_seen: int | None
) -> list[Activity]:
    """RESOLVED: ``resolved_at`` = message time; a resolution records a release-aware resolution (E3)."""
    resolution = change.resolution
    if group.status == _RESOLVED:
        if resolution is None or (
            resolution.type == group.resolution_type and resolution.version == group.resolution_version
        ):
            return []
    else:
        group.status = _RESOLVED
        group.substatus = None
        group.resolved_at = message_time
    if resolution is None:
        return [(ActivityType.SET_RESOLVED, None)]
    group.resolution_type = resolution.type
    group.resolution_version = resolution.version
    group.resolution_first_seen = resolution_first_seen
    return [(ActivityType.SET_RESOLVED_IN_RELEASE, {"version": resolution.version, "type": resolution.type})]


def _escalate(group: MutableGroup) -> list[Activity]:
    """UNRESOLVED/ESCALATING: only from IGNORED; priority LOW -> MEDIUM, anything else -> HIGH."""
    if group.status != _IGNORED:
        return []
    group.status = _UNRESOLVED
    group.substatus = _ESCALATING
    activities: list[Activity] = [(ActivityType.SET_ESCALATING, None)]
    priority = _MEDIUM if group.priority == _LOW else _HIGH
    if priority != group.priority:
        group.priority = priority
        activities.append(_priority_activity(priority, "escalating"))
    return activities


def _ongoing(group: MutableGroup) -> list[Activity]:
    """UNRESOLVED/ONGOING: from ESCALATING the priority goes back to the initial priority (E9)."""
    from_escalating = group.status == _UNRESOLVED and group.substatus == _ESCALATING
    _leave_resolved(group)
    group.status = _UNRESOLVED
    group.substatus = _ONGOING
    if not from_escalating:
        return [(ActivityType.SET_UNRESOLVED, None)]
    activities: list[Activity] = [(ActivityType.AUTO_SET_ONGOING, None)]
    if group.initial_priority is not None and group.priority != group.initial_priority:
        group.priority = group.initial_priority
        activities.append(_priority_activity(group.initial_priority, "ongoing"))
    return activities


def _leave_resolved(group: MutableGroup) -> None:
    """Leaving RESOLVED clears ``resolved_at`` and the resolution (5.1)."""
    group.resolved_at = None
    group.resolution_type = None
    group.resolution_version = None
    group.resolution_first_seen = None


def _priority_activity(priority: int, reason: str) -> Activity:
    return (ActivityType.SET_PRIORITY, {"priority": PRIORITY_NAMES[priority], "reason": reason})
