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
    # Positional, in the order of GroupRow's fields (a call of more than 15 keywords is slow:
    # application._finish).
    return GroupRow(
        group.group_id,
        project.project_id,
        project.organization_id,
        primary_hash,
        group.fingerprint,
        generation,
        group.type,
        int(GROUP_TYPES[group.type].category),  # category
        group.status,
        group.substatus,
        group.priority,
        group.level,
        group.title,
        group.subtitle,
        group.culprit,
        search_message(group.title, group.subtitle, group.culprit),  # message
        group.platform,
        group.first_seen,
        group.last_seen,
        group.active_at,
        group.resolved_at,
        group.times_seen,
        group.first_release,
        group.assignee,
        group.resolution_type,
        group.resolution_version,
        group_data(group),  # data
    )
