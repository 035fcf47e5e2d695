"""Demonstration rows for the web interface: groups, their occurrences (with events), tags and activities
written to Spanner as the pipeline writes them (``web.demo`` builds the demonstration organizations from them).

Rows follow ``schemas/spanner.sql`` and the pipeline's conventions (group ids spread over 63 bits, occurrence
and event ids as UUID hex, times in microseconds).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from transforms.core import intents
from transforms.core.engine.rows import search_message
from transforms.core.engine.tags import TEXT_KEY, text_terms
from transforms.core.enums import GroupStatus, GroupSubStatus, Priority
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import Event, EvidenceItem, Occurrence, ProjectInfo, to_datetime
from transforms.storage import registry, spanner_rows

# The Groups table as the pipeline writes it (rows built by ``spanner_rows.group_values``).
GROUP_COLUMNS = spanner_rows.GROUP_COLUMNS
# Occurrences with their event stored on the row (the event path), as the pipeline writes them.
OCCURRENCE_COLUMNS = spanner_rows.OCCURRENCE_COLUMNS + spanner_rows.EVENT_INLINE_COLUMNS
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "fatal": 50}


@dataclass
class DemoGroup:
    group_id: int
    project_id: int
    organization_id: int
    title: str
    culprit: str
    level: str = "error"
    type: int = 1
    status: int = GroupStatus.UNRESOLVED
    substatus: int | None = GroupSubStatus.ONGOING
    priority: int | None = Priority.HIGH
    event_times: list[int] = field(default_factory=list)
    releases: list[str] = field(default_factory=lambda: ["backend@1.4.0"])
    environments: list[str] = field(default_factory=lambda: ["production"])
    platform: str = "python"
    subtitle: str = ""
    resolution: tuple[str, str] | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return f"demo-{self.group_id}"

    def group_values(self) -> tuple[Any, ...]:
        """The Groups row as the pipeline's writer builds it."""
        times = sorted(self.event_times)
        first, last = times[0], times[-1]
        data = {
            "type": "generic",
            "title": self.title,
            "culprit": self.culprit,
            "metadata": {"title": self.title, "value": self.subtitle},
        }
        row = intents.GroupRow(
            group_id=self.group_id,
            project_id=self.project_id,
            organization_id=self.organization_id,
            primary_hash=hashlib.md5(self.fingerprint.encode()).hexdigest(),
            fingerprint=self.fingerprint,
            generation=0,
            type=self.type,
            category=int(GROUP_TYPES[self.type].category),
            status=int(self.status),
            substatus=None if self.substatus is None else int(self.substatus),
            priority=None if self.priority is None else int(self.priority),
            level=LEVELS[self.level],
            title=self.title,
            subtitle=self.subtitle,
            culprit=self.culprit,
            message=" ".join(part for part in (self.title, self.subtitle, self.culprit) if part),
            platform=self.platform,
            first_seen=first,
            last_seen=last,
            active_at=first,
            resolved_at=None,
            times_seen=len(times),
            first_release=self.releases[0] if self.releases else None,
            assignee=None,
            resolution_type=self.resolution[0] if self.resolution else None,
            resolution_version=self.resolution[1] if self.resolution else None,
            data=data,
        )
        return spanner_rows.group_values(row, seq=1, state=None)

    def occurrence_rows(self, rnd: random.Random) -> list[list[Any]]:
        rows = []
        times = sorted(self.event_times)
        for i, moment in enumerate(times):
            # releases advance over the group's life; the latest event has the newest
            release = self.releases[min(len(self.releases) - 1, i * len(self.releases) // len(times))]
            rows.append(
                occurrence_row(
                    self.group_id,
                    self.project_id,
                    moment,
                    title=self.title,
                    subtitle=self.subtitle,
                    culprit=self.culprit,
                    level=self.level,
                    type=self.type,
                    release=release if self.releases else None,
                    environment=rnd.choice(self.environments) if self.environments else None,
                    platform=self.platform,
                    evidence=self.evidence,
                    tags=(
                        ("browser", rnd.choice(["Chrome 131", "Firefox 133", "Safari 18.1"])),
                        ("os", rnd.choice(["Ubuntu 24.04", "macOS 15.1", "Windows 11"])),
                        ("server_name", rnd.choice(["web-1", "web-2", "worker-3"])),
                        ("url", f"https://shop.example.com{self.culprit.split(' ')[-1]}"),
                    ),
                )
            )
        return rows


def occurrence_row(
    group_id: int,
    project_id: int,
    event_time: int,
    *,
    title: str = "Issue",
    subtitle: str = "",
    culprit: str = "app.views in handler",
    level: str = "error",
    type: int = 1,
    release: str | None = None,
    environment: str | None = None,
    tags: Sequence[tuple[str, str]] = (),
    evidence: Sequence[dict[str, Any]] = (),
    platform: str = "python",
) -> list[Any]:
    """One attached occurrence with its event stored on the row (the event path), in ``OCCURRENCE_COLUMNS``,
    built by the pipeline's own row builders (``spanner_rows``)."""
    occurrence_id = uuid.uuid4().hex
    event_id = uuid.uuid4().hex
    fingerprint = f"demo-{group_id}"
    event = Event(
        event_id=event_id,
        project_id=project_id,
        platform=platform,
        timestamp=event_time,
        tags=tuple((str(key), str(value)) for key, value in tags),
        release=release or None,
        environment=environment or None,
        sdk={"name": "sentry.python", "version": "2.19.0"},
    )
    occurrence = Occurrence(
        id=occurrence_id,
        project_id=project_id,
        event_id=event_id,
        fingerprint=(fingerprint,),
        hashes=(hashlib.md5(fingerprint.encode()).hexdigest(),),
        issue_title=title,
        subtitle=subtitle,
        type=type,
        detection_time=event_time,
        evidence_display=tuple(msgspec.convert(item, EvidenceItem) for item in evidence),
        level=level,
        culprit=culprit,
    )
    insert = intents.InsertOccurrence(
        group_id=group_id,
        message_id=f"m-{occurrence_id}",
        message_time=event_time,
        event_time=event_time,
        occurrence=occurrence,
        release=release,
        environment=environment,
    )
    return [
        *spanner_rows.occurrence_values(insert),
        *spanner_rows.event_inline_values(intents.RecordEvent(event, level)),
    ]


def write_occurrences(database: Any, rows: Iterable[list[Any]], chunk: int = 2000) -> int:
    rows = list(rows)
    for start in range(0, len(rows), chunk):
        with database.batch() as batch:
            batch.insert_or_update("Occurrences", OCCURRENCE_COLUMNS, rows[start : start + chunk])
    return len(rows)


def write_groups(database: Any, groups: Sequence[DemoGroup], rnd: random.Random) -> int:
    """The groups with their occurrences, environments and releases; returns the occurrences written."""
    written = 0
    for start in range(0, len(groups), 500):
        part = groups[start : start + 500]
        with database.batch() as batch:
            batch.insert_or_update("Groups", GROUP_COLUMNS, [g.group_values() for g in part])
            batch.insert_or_update(
                "GroupEnvironments",
                spanner_rows.ENVIRONMENT_COLUMNS,
                [
                    spanner_rows.environment_values(
                        intents.RecordEnvironment(
                            g.group_id, env, g.releases[0] if g.releases else None, min(g.event_times)
                        )
                    )
                    for g in part
                    for env in g.environments
                ],
            )
            batch.insert_or_update(
                "GroupReleases",
                spanner_rows.GROUP_RELEASE_COLUMNS,
                [(g.group_id, r) for g in part for r in g.releases],
            )
        rows = [row for g in part for row in g.occurrence_rows(rnd)]
        written += write_occurrences(database, rows)
        write_tags(database, {g.group_id: g.organization_id for g in part}, rows)
    return written


_COLUMN = {name: position for position, name in enumerate(OCCURRENCE_COLUMNS)}


def write_tags(database: Any, organizations: dict[int, int], rows: Sequence[list[Any]]) -> None:
    """The tag storage of occurrences ``rows`` (``GroupTagValues``/``GroupTagKeys``, as the pipeline's tag writer
    keeps them): each occurrence's tags (its event's, then level, environment, release) counted with first and
    last seen, and the words of its title, subtitle and culprit. ``organizations``: group id -> organization."""
    counted: dict[tuple[int, str, str], list] = {}  # (group, key, value) -> [project, count, first, last]
    words: dict[int, tuple[int, set[str]]] = {}
    for row in rows:
        group_id, project_id = row[_COLUMN["GroupId"]], row[_COLUMN["ProjectId"]]
        event = spanner_rows.event_from_payload(row[_COLUMN["EventPayload"]])
        moment = to_datetime(event.timestamp)
        tags = dict(event.tags)
        tags["level"] = row[_COLUMN["Level"]]
        for key in ("environment", "release"):
            if row[_COLUMN[key.title()]]:
                tags[key] = row[_COLUMN[key.title()]]
        for key, value in tags.items():
            entry = counted.setdefault((group_id, key, value), [project_id, 0, moment, moment])
            entry[1] += 1
            entry[2], entry[3] = min(entry[2], moment), max(entry[3], moment)
        text = search_message(row[_COLUMN["IssueTitle"]], row[_COLUMN["Subtitle"]], row[_COLUMN["Culprit"]])
        words.setdefault(group_id, (project_id, set()))[1].update(text_terms(text))
    values, keys = [], {}
    for (group_id, key, value), (project_id, count, first, last) in counted.items():
        values.append([group_id, key, value, organizations[group_id], project_id, count, first, last])
        keys[(group_id, key)] = [group_id, key, organizations[group_id], project_id, 0, 0]
        keys[(group_id, key)][4] += 1
    for group_id, (project_id, terms) in words.items():
        for term in terms:
            values.append([group_id, TEXT_KEY, term, organizations[group_id], project_id, None, None, None])
        keys[(group_id, TEXT_KEY)] = [group_id, TEXT_KEY, organizations[group_id], project_id, len(terms), 0]
    for start in range(0, len(values), 5000):
        with database.batch() as batch:
            batch.insert_or_update("GroupTagValues", TAG_VALUE_COLUMNS, values[start : start + 5000])
    with database.batch() as batch:
        batch.insert_or_update("GroupTagKeys", TAG_KEY_COLUMNS, list(keys.values()))


# The tag tables as the pipeline writes them.
TAG_VALUE_COLUMNS = spanner_rows.TAG_VALUE_COLUMNS
TAG_KEY_COLUMNS = spanner_rows.TAG_KEY_COLUMNS


def write_activity(
    database: Any, group_id: int, project_id: int, kind: int, at: int, data: dict | None = None
) -> None:
    activity = intents.InsertActivity(group_id, project_id, uuid.uuid4().hex, int(kind), "m", at, data or {})
    with database.batch() as batch:
        batch.insert_or_update(
            "Activities", spanner_rows.ACTIVITY_COLUMNS, [spanner_rows.activity_values(activity)]
        )


def register(database: Any, organization_id: int, organization_slug: str, projects: dict[int, str]) -> None:
    registry.register_projects(
        database,
        (
            ProjectInfo(project_id, organization_id, slug, organization_slug)
            for project_id, slug in projects.items()
        ),
    )
