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
from transforms.core.model import Event, Occurrence, evidence_data

FEEDBACK_FIELDS = ("contact_email", "message", "name", "source")
_UNRESOLVED = int(GroupStatus.UNRESOLVED)
_NEW = int(GroupSubStatus.NEW)


def initial_priority(occurrence: Occurrence, group_type: GroupType) -> int:
    """The message's priority, else the type's default (rule 1.2, E9)."""
    priority = occurrence.priority
    return int(group_type.default_priority) if priority is None else priority


def feedback_metadata(occurrence: Occurrence, group_type: GroupType) -> dict[str, Any] | None:
    """Feedback groups carry the feedback fields of ``evidence_data`` in their metadata (as Sentry's do)."""
    if group_type.category != GroupCategory.FEEDBACK:
        return None
    evidence = evidence_data(occurrence) or {}
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
    # Positional, in the order of the group's fields (a call of more than 15 keywords is slow:
    # application._finish).
    return MutableGroup(
        group_id,
        occurrence.fingerprint[0],  # fingerprint
        occurrence.type,
        _UNRESOLVED,  # status
        _NEW,  # substatus
        priority,
        priority,  # initial_priority
        LOG_LEVELS[occurrence.level],  # level
        occurrence.issue_title,  # title
        occurrence.subtitle,
        occurrence.culprit,
        event.platform,
        event_time,  # first_seen
        event_time,  # last_seen
        message_time,  # active_at
        True,  # active_at_from_creation
        None,  # resolved_at
        None,  # resolution_type
        None,  # resolution_version
        None,  # resolution_first_seen
        1,  # times_seen
        event.release,  # first_release
        occurrence.assignee,
        event_time,  # last_received
        feedback_metadata(occurrence, group_type),  # feedback
        message_time,  # latest_time
        message_id,  # latest_id
        message_time,  # creator_time
        message_id,  # creator_id
        None,  # last_status_change_time
        {},  # environments
        {},  # releases
    )
