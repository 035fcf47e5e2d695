"""What the engine is given besides state and messages: configuration and the shell's lookups.

The engine has no clock and does no I/O. Everything it needs from outside
(the project, the stored events, the creation quota, release first-seen times,
the current processing time) arrives in an ``EngineContext`` built by the
streaming or backfill shell for one ``apply`` call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import msgspec

from transforms.core.grouptypes import GroupType
from transforms.core.model import Event, ProjectInfo

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Processing knobs, all durations in microseconds.

    ``duplicate_retention``: how long (message time) a payload id is remembered
    (rule 2). ``pending_status_window``: how long (message time) a status
    change for a key without a group is held (5.2). ``lookup_retry_window``:
    how long (processing time) an occurrence waits for its event (3.3).
    ``wait_for_events``: True in streaming; False in a backfill, where a missing
    event is dead-lettered at once (E7).
    """

    duplicate_retention: int = 24 * HOUR
    pending_status_window: int = HOUR
    lookup_retry_window: int = 10 * MINUTE
    wait_for_events: bool = True

    def __post_init__(self) -> None:
        for name in ("duplicate_retention", "pending_status_window", "lookup_retry_window"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"EngineConfig.{name} must not be negative (microseconds), got {getattr(self, name)}"
                )


class QuotaGate(Protocol):
    """The creation quota shared by all keys (rule 3.5 step 2, E6, E15).

    ``try_acquire`` consumes one creation for (project, the type's slug) at
    ``message_time`` and says whether it was granted: only if every window of
    the type's quota that contains ``message_time`` has room, so the limit
    holds in every window whatever order keys ask in. ``creation_id`` names
    the group that would be created (primary hash and generation): asking
    again for a creation already granted (a retried bundle, a replay) must
    answer True without consuming more quota. Implementations that cannot
    reach their store fail open (return True) and count it themselves.
    """

    def try_acquire(
        self, project_id: int, group_type: GroupType, message_time: int, creation_id: str
    ) -> bool: ...


class ReleaseBook(Protocol):
    """First-seen times of a project's releases as stored (the Releases table), or None if unknown."""

    def first_seen(self, project_id: int, version: str) -> int | None: ...


class EngineContext(msgspec.Struct):
    """Everything one ``apply`` call may consult.

    ``now`` is processing time (µs) and is used only for event-lookup waits.
    ``quota`` None switches the creation quota off. ``events`` maps event ids
    to stored events of this project (prefetched by the shell, see
    ``needed_event_ids``). ``stored_occurrence_ids`` (backfill) are occurrence
    ids already stored for this key's group: they count as duplicates.

    A struct (never encoded), not a dataclass: the shell makes one for every ``apply`` call, and a struct's
    construction runs in C.
    """

    project: ProjectInfo
    config: EngineConfig = msgspec.field(default_factory=EngineConfig)
    now: int = 0
    quota: QuotaGate | None = None
    events: Mapping[str, Event] = msgspec.field(default_factory=dict)
    releases: ReleaseBook | None = None
    stored_occurrence_ids: frozenset[str] = frozenset()
