"""Attaching an occurrence to the key's existing group (rule 3.4, 2 "late" rules, E9).

``times_seen`` +1; ``last_seen`` is a maximum and ``first_seen`` a minimum of
event times; the "latest" fields (level, title, subtitle, culprit, hence the
search message, and ``data.last_received`` / feedback metadata) follow the
occurrence with the greatest (message time, message id), so a late occurrence
never overwrites newer ones. Priority is not changed by occurrences.

Late convergence: the group remembers which occurrence created it. An attached
occurrence that is older (key order) than the creator takes over the
creation-time fields: type, platform, first release, assignee, ``active_at``
(while no regression has moved it) and the initial priority (and the priority,
while it still equals the initial priority). For occurrence-only sequences of
types without a noise gate this makes late arrivals converge to the in-order
group. With a noise gate the creator itself can differ (see ``noise``).
"""

from __future__ import annotations

from transforms.core.engine.creation import feedback_metadata, initial_priority
from transforms.core.engine.state import MutableGroup
from transforms.core.enums import LOG_LEVELS
from transforms.core.grouptypes import GroupType
from transforms.core.model import Event, Occurrence


def attach(
    group: MutableGroup,
    occurrence: Occurrence,
    event: Event,
    group_type: GroupType,
    message_time: int,
    message_id: str,
) -> None:
    group.times_seen += 1
    event_time = event.timestamp
    if event_time > group.last_seen:
        group.last_seen = event_time
    if event_time < group.first_seen:
        group.first_seen = event_time
    latest_time = group.latest_time
    if message_time > latest_time or (message_time == latest_time and message_id > group.latest_id):
        group.latest_time = message_time
        group.latest_id = message_id
        group.level = LOG_LEVELS[occurrence.level]
        group.title = occurrence.issue_title
        group.subtitle = occurrence.subtitle
        group.culprit = occurrence.culprit
        group.last_received = event_time
        if group.feedback is not None:
            group.feedback = feedback_metadata(occurrence, group_type)
    creator_time = group.creator_time
    if message_time < creator_time or (message_time == creator_time and message_id < group.creator_id):
        take_over_creation(group, occurrence, event, group_type, message_time, message_id)


def take_over_creation(
    group: MutableGroup,
    occurrence: Occurrence,
    event: Event,
    group_type: GroupType,
    message_time: int,
    message_id: str,
) -> None:
    """A late occurrence older than the creator becomes the creator (the in-order result)."""
    group.creator_time = message_time
    group.creator_id = message_id
    group.type = occurrence.type
    group.platform = event.platform
    group.first_release = event.release
    group.assignee = occurrence.assignee
    if group.active_at_from_creation:
        group.active_at = message_time
    priority = initial_priority(occurrence, group_type)
    if group.priority == group.initial_priority:
        group.priority = priority
    group.initial_priority = priority
