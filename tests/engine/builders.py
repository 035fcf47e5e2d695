"""Message, event and context builders for the engine tests (the project's own fixtures)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import md5

from tests.engine.tables import Tables
from transforms.core.engine import EngineConfig, EngineContext, KeyState, apply
from transforms.core.enums import GroupStatus
from transforms.core.grouptypes import GroupType
from transforms.core.intents import KeyWrite, Outputs, RecordEvent, UpsertGroup
from transforms.core.model import (
    DeadLetter,
    Event,
    Message,
    Occurrence,
    ProjectInfo,
    Resolution,
    StatusChange,
)

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_717_243_200 * SECOND  # 2024-06-01T12:00:00Z

PROJECT = ProjectInfo(project_id=1, organization_id=10, slug="backend", organization_slug="acme")
FINGERPRINT = "slow-endpoint:/api/0/checkout"

# Types used throughout: 1018 has no noise config, 1006 needs 3 occurrences, 1001 needs 100;
# 2011 shares 1018's category; 1 (error) and 6001 (feedback) are other categories; 1016 is unreleased.
NO_NOISE = 1018
NO_NOISE_OTHER = 2011
NOISY = 1006
ERROR = 1
FEEDBACK = 6001
UNRELEASED = 1016

# The statuses the tests set and check, by their Sentry names (DELETE: a delete's pending status).
RESOLVED, IGNORED, UNRESOLVED, DELETE = (
    GroupStatus.RESOLVED,
    GroupStatus.IGNORED,
    GroupStatus.UNRESOLVED,
    GroupStatus.PENDING_DELETION,
)


def md5_hex(text: str) -> str:
    return md5(text.encode()).hexdigest()


class Ids:
    """Deterministic ids: message ids sort in creation order, UUIDs are 32 lowercase hex."""

    def __init__(self, start: int = 1) -> None:
        self.next = start

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value

    def message_id(self) -> str:
        return f"m{self.take():08d}"

    def uuid(self) -> str:
        return f"{self.take():032x}"


IDS = Ids()
_LOOKUP_EVENTS: dict[str, Event] = {}


def event(
    event_id: str | None = None,
    *,
    timestamp: int = T0,
    release: str | None = None,
    environment: str | None = None,
    platform: str = "python",
    project_id: int = PROJECT.project_id,
    tags: tuple[tuple[str, str], ...] = (),
    user: dict | None = None,
) -> Event:
    return Event(
        event_id=event_id or IDS.uuid(),
        project_id=project_id,
        platform=platform,
        timestamp=timestamp,
        release=release,
        environment=environment,
        tags=tags,
        user=user,
    )


def occurrence(
    time: int = T0,
    *,
    type: int = NO_NOISE,
    occurrence_id: str | None = None,
    message_id: str | None = None,
    event_time: int | None = None,
    release: str | None = None,
    environment: str | None = None,
    title: str = "Endpoint regression",
    subtitle: str = "p95 went from 120ms to 900ms",
    culprit: str = "GET /api/0/checkout",
    level: str = "warning",
    priority: int | None = None,
    assignee: str | None = None,
    evidence_data: dict | None = None,
    lookup: bool = False,
    buffered: bool = False,
    with_event: Event | None = None,
    fingerprint: Sequence[str] = (FINGERPRINT,),
    project_id: int = PROJECT.project_id,
    platform: str = "python",
    tags: tuple[tuple[str, str], ...] = (),
    user: dict | None = None,
) -> Message:
    """An occurrence message; ``lookup`` leaves the event out of the payload (``event_of`` still finds it)."""
    the_event = with_event or event(
        timestamp=event_time if event_time is not None else time,
        release=release,
        environment=environment,
        platform=platform,
        project_id=project_id,
        tags=tags,
        user=user,
    )
    payload = Occurrence(
        id=occurrence_id or IDS.uuid(),
        project_id=project_id,
        event_id=the_event.event_id,
        fingerprint=tuple(fingerprint),
        hashes=tuple(md5_hex(part) for part in fingerprint),
        issue_title=title,
        subtitle=subtitle,
        type=type,
        detection_time=time,
        level=level,
        culprit=culprit,
        evidence_data=evidence_data,
        priority=priority,
        assignee=assignee,
        is_buffered_spans=buffered,
        event=None if lookup else the_event,
    )
    if lookup:
        _LOOKUP_EVENTS[the_event.event_id] = the_event
    data = f'{{"id": "{payload.id}"}}'.encode()
    return Message(
        message_id=message_id or IDS.message_id(),
        message_time=time,
        payload=payload,
        data=data,
        attributes={"content_type": "application/json"},
    )


def event_of(message: Message) -> Event:
    """The event an occurrence built by ``occurrence`` refers to (also for lookups: kept in a side table)."""
    payload = message.payload
    assert isinstance(payload, Occurrence)
    if payload.event is not None:
        return payload.event
    return _LOOKUP_EVENTS[payload.event_id]


def status_change(
    time: int,
    status: int,
    substatus: int | None = None,
    *,
    resolution: tuple[str, str] | None = None,
    change_id: str | None = None,
    message_id: str | None = None,
    fingerprint: Sequence[str] = (FINGERPRINT,),
    project_id: int = PROJECT.project_id,
) -> Message:
    message_id = message_id or IDS.message_id()
    payload = StatusChange(
        id=change_id or IDS.uuid(),
        project_id=project_id,
        fingerprint=tuple(fingerprint),
        hashes=tuple(md5_hex(part) for part in fingerprint),
        new_status=status,
        new_substatus=substatus,
        resolution=Resolution(type=resolution[0], version=resolution[1]) if resolution else None,
    )
    return Message(message_id=message_id, message_time=time, payload=payload, data=b"{}", attributes={})


class MemoryQuota:
    """An in-memory creation quota with the Redis quota's rule (E6, E15): 60 s buckets, and a creation is
    granted only if every window containing its bucket has room, whatever order creations are asked in."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.granted: dict[tuple[int, str], list[int]] = {}
        self.calls: list[tuple[int, int, int]] = []
        self.creations: set[str] = set()

    def try_acquire(
        self, project_id: int, group_type: GroupType, message_time: int, creation_id: str = ""
    ) -> bool:
        self.calls.append((project_id, group_type.type_id, message_time))
        if creation_id and creation_id in self.creations:
            return True
        quota = group_type.creation_quota
        limit = quota.limit if self.limit is None else self.limit
        granularity = quota.granularity_seconds * SECOND
        bucket = message_time // granularity
        buckets = quota.window_seconds * SECOND // granularity
        granted = self.granted.setdefault((project_id, group_type.slug), [])
        near = [other for other in granted if bucket - buckets < other < bucket + buckets]
        if len(near) >= limit:
            for end in range(bucket, bucket + buckets):  # every window (end - buckets, end] containing bucket
                if sum(1 for other in near if end - buckets < other <= end) >= limit:
                    return False
        granted.append(bucket)
        if creation_id:
            self.creations.add(creation_id)
        return True


class Releases:
    """A fixed ReleaseBook."""

    def __init__(self, first_seen: dict[str, int] | None = None) -> None:
        self.known = dict(first_seen or {})

    def first_seen(self, project_id: int, version: str) -> int | None:
        return self.known.get(version)


def context(
    *,
    project: ProjectInfo = PROJECT,
    events: Iterable[Event] = (),
    now: int = T0,
    quota: object | None = None,
    releases: object | None = None,
    wait_for_events: bool = True,
    stored_occurrence_ids: Iterable[str] = (),
    **config: int,
) -> EngineContext:
    return EngineContext(
        project=project,
        config=EngineConfig(wait_for_events=wait_for_events, **config),
        now=now,
        quota=quota,  # type: ignore[arg-type]
        events={the_event.event_id: the_event for the_event in events},
        releases=releases,  # type: ignore[arg-type]
        stored_occurrence_ids=frozenset(stored_occurrence_ids),
    )


@dataclass
class Run:
    """The result of applying batches one after another, as a shell would, with the table model."""

    state: KeyState | None = None
    tables: Tables = field(default_factory=Tables)
    counters: dict[str, int] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    writes: list[KeyWrite] = field(default_factory=list)

    def apply(self, messages: Sequence[Message], ctx: EngineContext | None = None) -> Run:
        self.state, outputs = apply(self.state, list(messages), ctx or context())
        for name, amount in outputs.counters.items():
            self.counters[name] = self.counters.get(name, 0) + amount
        self.dead_letters.extend(outputs.dead_letters)
        assert_tallies(outputs)
        if outputs.write is not None:
            self.writes.append(outputs.write)
            self.tables.apply(outputs.write)
        return self

    @property
    def group(self):
        """The key's one group row in the tables (asserts there is exactly one)."""
        rows = list(self.tables.groups.values())
        assert len(rows) == 1, f"expected one group, found {len(rows)}"
        return rows[0]

    def count(self, name: str) -> int:
        return self.counters.get(name, 0)


def assert_tallies(outputs: Outputs) -> None:
    """``Outputs.events`` and ``group_updates`` are what the write's intents say (the applier reads those)."""
    intents = outputs.write.intents if outputs.write is not None else ()
    recorded = {intent.event.event_id: intent.event for intent in intents if isinstance(intent, RecordEvent)}
    assert outputs.events == recorded
    assert list(outputs.events) == list(recorded)  # and in the order they were recorded
    assert outputs.group_updates == sum(isinstance(intent, UpsertGroup) for intent in intents)


def run(*batches: Sequence[Message], ctx: EngineContext | None = None) -> Run:
    result = Run()
    for batch in batches:
        result.apply(batch, ctx)
    return result
