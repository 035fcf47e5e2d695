"""Creating a key's group from the occurrence that passed the noise gate and the quota (rule 3.5 step 3).

Status UNRESOLVED, substatus NEW, ``times_seen`` 1, ``first_seen`` =
``last_seen`` = event time, ``active_at`` = message time, priority from the
message or the type's default (also kept as ``data.metadata.initial_priority``),
``first_release`` = the event's release, title/subtitle/culprit/level/platform
from the occurrence and its event, the assignee of the message. The group id
comes from (project, primary hash, generation) (``ids.group_id``).
"""

from __future__ import annotations

from typing import Any

from transforms.core.engine.state import MutableGroup
from transforms.core.enums import LOG_LEVELS, GroupCategory, GroupStatus, GroupSubStatus
from transforms.core.grouptypes import GroupType
from transforms.core.model import Event, Occurrence

FEEDBACK_FIELDS = ("contact_email", "message", "name", "source")


def initial_priority(occurrence: Occurrence, group_type: GroupType) -> int:
    """The message's priority, else the type's default (rule 1.2, E9)."""
    priority = occurrence.priority
    return int(group_type.default_priority) if priority is None else priority


def feedback_metadata(occurrence: Occurrence, group_type: GroupType) -> dict[str, Any] | None:
    """Feedback groups carry the feedback fields of ``evidence_data`` in their metadata (as Sentry's do)."""
    if group_type.category != GroupCategory.FEEDBACK:
        return None
    evidence = occurrence.evidence_data or {}
    return {name: evidence.get(name) for name in FEEDBACK_FIELDS}


def create_group(
    group_id: int,
    occurrence: Occurrence,
    event: Event,
    group_type: GroupType,
    message_time: int,
    message_id: str,
) -> MutableGroup:
    priority = initial_priority(occurrence, group_type)
    event_time = event.timestamp
    return MutableGroup(
        group_id=group_id,
        fingerprint=occurrence.fingerprint[0],
        type=occurrence.type,
        status=int(GroupStatus.UNRESOLVED),
        substatus=int(GroupSubStatus.NEW),
        priority=priority,
        initial_priority=priority,
        level=LOG_LEVELS[occurrence.level],
        title=occurrence.issue_title,
        subtitle=occurrence.subtitle,
        culprit=occurrence.culprit,
        platform=event.platform,
        first_seen=event_time,
        last_seen=event_time,
        active_at=message_time,
        active_at_from_creation=True,
        resolved_at=None,
        resolution_type=None,
        resolution_version=None,
        resolution_first_seen=None,
        times_seen=1,
        first_release=event.release,
        assignee=occurrence.assignee,
        last_received=event_time,
        feedback=feedback_metadata(occurrence, group_type),
        latest_time=message_time,
        latest_id=message_id,
        creator_time=message_time,
        creator_id=message_id,
        last_status_change_time=None,
        environments={},
        releases={},
    )
