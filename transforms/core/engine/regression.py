"""Regressions: when an occurrence reopens a resolved group (rule 5.3, ref c.7).

An occurrence regresses its group when all hold: the group is RESOLVED (an
IGNORED group never regresses from an occurrence); the occurrence's message
time is later than ``resolved_at`` [ours: replaces Sentry's 5-second
``active_at`` guard]; and the group's resolution, if any, does not cover the
event's release (``releases.resolution_covers``). Because the guard is the
message time, a late occurrence from before the resolve never regresses.
"""

from __future__ import annotations

from typing import Any

from transforms.core.engine.releases import FirstSeen, follows_semver, resolution_covers
from transforms.core.engine.state import MutableGroup
from transforms.core.enums import GroupStatus, GroupSubStatus

_RESOLVED = int(GroupStatus.RESOLVED)
_UNRESOLVED = int(GroupStatus.UNRESOLVED)
_REGRESSED = int(GroupSubStatus.REGRESSED)


def should_regress(
    group: MutableGroup, message_time: int, release: str | None, first_seen: FirstSeen
) -> bool:
    if group.status != _RESOLVED:
        return False
    if group.resolved_at is not None and message_time <= group.resolved_at:
        return False
    if group.resolution_type is None or group.resolution_version is None:
        return True
    return not resolution_covers(group.resolution_type, group.resolution_version, release, first_seen)


def regress(group: MutableGroup, message_time: int, event_id: str, release: str | None) -> dict[str, Any]:
    """Reopen the group; returns the SET_REGRESSION activity's data.

    Status UNRESOLVED/REGRESSED, ``active_at`` = message time, ``resolved_at``
    and the resolution cleared (the resolution is consumed).
    """
    data: dict[str, Any] = {"event_id": event_id, "version": release or ""}
    if group.resolution_version is not None:
        data["resolved_in_version"] = group.resolution_version
        data["follows_semver"] = follows_semver(release, group.resolution_version)
    group.status = _UNRESOLVED
    group.substatus = _REGRESSED
    group.active_at = message_time
    group.active_at_from_creation = False
    group.resolved_at = None
    group.resolution_type = None
    group.resolution_version = None
    group.resolution_first_seen = None
    return data
