"""What an issue page shows beyond the issue index: events over time, the latest event, the group's
environments and its activity history, each read on an index with a bounded key range.

Counts come from the stored occurrences themselves (one index entry per attached occurrence, by event time:
``OccurrencesByGroupEventTime``), never sampled: a window's count is the number of the group's occurrences whose
event time falls in it, the same occurrences ``times_seen`` counts. A read costs one index entry per occurrence
in the window, so every call takes a row budget; groups whose window holds more than the budget allows are
reported as not counted (``EventSeries.complete`` false) rather than counted short.

Every function takes a read-only snapshot (``database.snapshot(multi_use=True)``), so the reads of one page are
consistent with each other, and checks nothing about organizations: callers pass groups they have already
scoped (``group_row`` returns the organization for them to check).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.cloud.spanner_v1 import KeyRange, KeySet

from api.search import DETAIL_COLUMNS, INDEX_COLUMNS, GroupDetail, GroupRow
from api.search import json_object as _json_object
from transforms.core.model import MICROS, from_datetime, to_datetime

OCCURRENCES_BY_TIME = "OccurrencesByGroupEventTime"
ACTIVITIES_BY_TIME = "ActivitiesByGroupTime"
HOUR = 3600 * MICROS
DAY = 24 * HOUR
# Index entries one Read returns at most; a window with more is read in several.
READ_CHUNK = 20_000
_OCCURRENCE_COLUMNS = (
    "GroupId",
    "OccurrenceId",
    "EventId",
    "MessageTime",
    "EventTime",
    "IssueTitle",
    "Subtitle",
    "Culprit",
    "Level",
    "EvidenceData",
    "EvidenceDisplay",
    "Release",
    "Environment",
    "EventPayload",
    "ProjectId",
)


@dataclass(frozen=True, slots=True)
class Buckets:
    """``count`` consecutive buckets of ``size`` microseconds from ``start`` (UTC-aligned)."""

    start: int
    size: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.size * self.count

    def starts(self) -> list[int]:
        return [self.start + i * self.size for i in range(self.count)]

    @classmethod
    def covering(cls, start: int, end: int, size: int) -> Buckets:
        """The aligned buckets that cover [start, end): the first starts at or before ``start``."""
        first = (start // size) * size
        last = -(-end // size) * size
        return cls(first, size, max(1, (last - first) // size))


@dataclass(slots=True)
class EventSeries:
    """A group's events per bucket; ``complete`` is false when the row budget ran out before the group's
    window was read to its end (then ``counts`` is not to be shown)."""

    buckets: Buckets
    counts: list[int]
    complete: bool = True

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(slots=True)
class ReadCost:
    """Read calls and index or table rows a page's extra reads took (next to ``api.search.ReadStats``)."""

    reads: int = 0
    rows: int = 0


@dataclass(frozen=True, slots=True)
class LatestEvent:
    """The group's latest occurrence (by event time) and its event, as stored."""

    occurrence_id: str
    event_id: str
    project_id: int
    message_time: int
    event_time: int
    title: str
    subtitle: str
    culprit: str
    level: str
    release: str | None
    environment: str | None
    evidence_display: list[dict[str, Any]]
    evidence_data: dict[str, Any]
    event: dict[str, Any] | None  # the stored event (platform, tags, sdk, request, ...), when it is stored


@dataclass(frozen=True, slots=True)
class Activity:
    activity_id: str
    type: int
    time: int
    data: dict[str, Any] = field(default_factory=dict)


def _index_range(group_id: int, buckets: Buckets) -> KeyRange:
    # The index holds EventTime DESC: a group's window runs from its end (exclusive) down to its start.
    return KeyRange(
        start_open=[group_id, to_datetime(buckets.end)], end_closed=[group_id, to_datetime(buckets.start)]
    )


def event_counts(
    snapshot: Any,
    group_ids: Sequence[int],
    buckets: Buckets,
    budget: int,
    cost: ReadCost | None = None,
) -> dict[int, EventSeries]:
    """Events per bucket for each group, from its occurrences in ``buckets``' window.

    All groups' ranges go in one Read (in key order: group id, then newest first); when a Read is full the
    next resumes after its last entry. At most ``budget`` entries are read in all: groups not read to the
    end of their window by then come back with ``complete`` false.
    """
    cost = cost if cost is not None else ReadCost()
    wanted = sorted(set(group_ids))
    series = {gid: EventSeries(buckets, [0] * buckets.count) for gid in wanted}
    ranges = {gid: _index_range(gid, buckets) for gid in wanted}
    pending = wanted
    remaining = budget
    while pending:
        if remaining <= 0:
            for gid in pending:
                series[gid].complete = False
            break
        chunk = min(READ_CHUNK, remaining)
        rows = list(
            snapshot.read(
                "Occurrences",
                ("GroupId", "EventTime", "OccurrenceId"),
                KeySet(ranges=[ranges[gid] for gid in pending]),
                index=OCCURRENCES_BY_TIME,
                limit=chunk,
            )
        )
        cost.reads += 1
        cost.rows += len(rows)
        remaining -= len(rows)
        for group_id, event_time, _ in rows:
            position = (from_datetime(event_time) - buckets.start) // buckets.size
            if 0 <= position < buckets.count:
                series[group_id].counts[position] += 1
        if len(rows) < chunk:
            break
        last_group, last_time, last_occurrence = rows[-1]
        ranges[last_group] = KeyRange(
            start_open=[last_group, last_time, last_occurrence],
            end_closed=[last_group, to_datetime(buckets.start)],
        )
        pending = [gid for gid in pending if gid >= last_group]
    return series


def group_row(snapshot: Any, group_id: int) -> GroupRow | None:
    """The group as the issue index serializes it (index columns and display details), or None."""
    rows = list(snapshot.read("Groups", INDEX_COLUMNS, KeySet(keys=[[group_id]])))
    if not rows:
        return None
    row = GroupRow.from_index(rows[0])
    details = list(snapshot.read("Groups", DETAIL_COLUMNS, KeySet(keys=[[group_id]])))
    if details:
        _, title, culprit, message, platform, data, resolution_type, resolution_version = details[0]
        row.detail = GroupDetail(
            title, culprit, message, platform, _json_object(data), resolution_type, resolution_version
        )
    return row


def latest_event(snapshot: Any, group_id: int) -> LatestEvent | None:
    """The group's occurrence with the latest event time (the first entry of its index range) and, when the
    occurrence carried it, its stored event; None for a group without occurrences."""
    newest = list(
        snapshot.read(
            "Occurrences",
            ("GroupId", "EventTime", "OccurrenceId"),
            KeySet(ranges=[KeyRange(start_closed=[group_id], end_closed=[group_id])]),
            index=OCCURRENCES_BY_TIME,
            limit=1,
        )
    )
    if not newest:
        return None
    occurrence_id = newest[0][2]
    rows = list(snapshot.read("Occurrences", _OCCURRENCE_COLUMNS, KeySet(keys=[[group_id, occurrence_id]])))
    if not rows:
        return None
    values = dict(zip(_OCCURRENCE_COLUMNS, rows[0]))
    display = values["EvidenceDisplay"]
    return LatestEvent(
        occurrence_id=values["OccurrenceId"],
        event_id=values["EventId"],
        project_id=values["ProjectId"],
        message_time=from_datetime(values["MessageTime"]),
        event_time=from_datetime(values["EventTime"]),
        title=values["IssueTitle"],
        subtitle=values["Subtitle"],
        culprit=values["Culprit"],
        level=values["Level"],
        release=values["Release"],
        environment=values["Environment"],
        evidence_display=[dict(item) for item in display if isinstance(item, dict)]
        if isinstance(display, list)
        else [],
        evidence_data=_json_object(values["EvidenceData"]),
        event=_json_object(values["EventPayload"]) if values["EventPayload"] is not None else None,
    )


def stored_event(snapshot: Any, project_id: int, event_id: str) -> dict[str, Any] | None:
    """An event stored apart from its occurrence (the lookup path): the Events table, by primary key, else
    the occurrence row that stored it (``OccurrencesByStoredEvent``)."""
    rows = list(snapshot.read("Events", ("Payload",), KeySet(keys=[[project_id, event_id]])))
    if rows:
        return _json_object(rows[0][0])
    holders = list(
        snapshot.read(
            "Occurrences",
            ("GroupId", "OccurrenceId"),
            KeySet(keys=[[project_id, event_id]]),
            index="OccurrencesByStoredEvent",
            limit=1,
        )
    )
    if not holders:
        return None
    rows = list(snapshot.read("Occurrences", ("EventPayload",), KeySet(keys=[list(holders[0])])))
    return _json_object(rows[0][0]) if rows and rows[0][0] is not None else None


def activities(snapshot: Any, group_id: int, limit: int) -> tuple[list[Activity], bool]:
    """The group's newest ``limit`` activities, newest first, and whether older ones exist."""
    rows = list(
        snapshot.read(
            "Activities",
            ("GroupId", "ActivityTime", "ActivityId", "Type", "Data"),
            KeySet(ranges=[KeyRange(start_closed=[group_id], end_closed=[group_id])]),
            index=ACTIVITIES_BY_TIME,
            limit=limit + 1,
        )
    )
    found = [
        Activity(activity_id, kind, from_datetime(moment), _json_object(data))
        for _, moment, activity_id, kind, data in rows[:limit]
    ]
    return found, len(rows) > limit


def environments(snapshot: Any, group_ids: Iterable[int]) -> dict[int, list[str]]:
    """{group id: the environments it was seen in, sorted} from GroupEnvironments (key-prefix ranges)."""
    ranges = [KeyRange(start_closed=[gid], end_closed=[gid]) for gid in sorted(set(group_ids))]
    found: dict[int, list[str]] = {}
    if not ranges:
        return found
    for group_id, environment in snapshot.read(
        "GroupEnvironments", ("GroupId", "Environment"), KeySet(ranges=ranges)
    ):
        found.setdefault(group_id, []).append(environment)
    return {gid: sorted(envs) for gid, envs in found.items()}
