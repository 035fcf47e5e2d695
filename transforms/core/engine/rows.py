"""The Groups row the engine writes, derived from the key's group (rule 6.1, ref b).

``data`` follows Sentry's issue-platform groups: ``{"type": "generic", "title",
"culprit", "last_received" (RFC 3339 event time), "metadata": {"title",
"value" (subtitle), "initial_priority"}}`` plus the feedback fields for
feedback groups. ``message`` is the search text: title, subtitle and culprit
joined with spaces, skipping empty parts and parts already contained (Sentry's
``_augment_message_with_occurrence``). The row is built once per ``apply``
call, never per message.
"""

from __future__ import annotations

from typing import Any

from transforms.core.engine.state import GroupState, MutableGroup
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.intents import GroupRow
from transforms.core.model import ProjectInfo, to_rfc3339


def search_message(title: str, subtitle: str, culprit: str) -> str:
    message = ""
    for part in (title, subtitle, culprit):
        if part and part not in message:
            message = f"{message} {part}" if message else part
    return message


def group_data(group: GroupState | MutableGroup) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "title": group.title,
        "value": group.subtitle,
        "initial_priority": group.initial_priority,
    }
    if group.feedback is not None:
        metadata.update(group.feedback)
    return {
        "type": "generic",
        "title": group.title,
        "culprit": group.culprit,
        "last_received": to_rfc3339(group.last_received),
        "metadata": metadata,
    }


def group_row(
    group: GroupState | MutableGroup, project: ProjectInfo, primary_hash: str, generation: int
) -> GroupRow:
    return GroupRow(
        group_id=group.group_id,
        project_id=project.project_id,
        organization_id=project.organization_id,
        primary_hash=primary_hash,
        fingerprint=group.fingerprint,
        generation=generation,
        type=group.type,
        category=int(GROUP_TYPES[group.type].category),
        status=group.status,
        substatus=group.substatus,
        priority=group.priority,
        level=group.level,
        title=group.title,
        subtitle=group.subtitle,
        culprit=group.culprit,
        message=search_message(group.title, group.subtitle, group.culprit),
        platform=group.platform,
        first_seen=group.first_seen,
        last_seen=group.last_seen,
        active_at=group.active_at,
        resolved_at=group.resolved_at,
        times_seen=group.times_seen,
        first_release=group.first_release,
        assignee=group.assignee,
        resolution_type=group.resolution_type,
        resolution_version=group.resolution_version,
        data=group_data(group),
    )
