"""Write intents: what one application of the group engine to one key wants done.

The engine returns these as plain values; the Beam shell turns them into
Spanner mutations (``transforms.storage.spanner_writer``), dead-letter records and
counter increments. Every intent of one ``apply`` call belongs to one
``KeyWrite`` that carries the key state's new ``seq``: writers apply a
``KeyWrite`` only if its ``seq`` is greater than the one stored for the key
and its group, so an older state never overwrites a newer one, and
re-applying the same ``KeyWrite`` is a no-op.

All times are microseconds since the epoch (UTC). The frozen intents hold only plain data and are
``gc=False``, like the message model.
"""

from __future__ import annotations

from typing import Any

import msgspec

from transforms.core.model import DeadLetter, Event, Occurrence


class GroupRow(msgspec.Struct, frozen=True, gc=False):
    """A Groups row, column for column (``schemas/spanner.sql``), minus Seq, State and UpdatedAt."""

    group_id: int
    project_id: int
    organization_id: int
    primary_hash: str
    # The raw fingerprint[0] whose MD5 is primary_hash: the issue index sends it back in status changes.
    fingerprint: str
    generation: int
    type: int
    category: int
    status: int
    substatus: int | None
    priority: int | None
    level: int
    title: str
    subtitle: str
    culprit: str
    message: str
    platform: str | None
    first_seen: int
    last_seen: int
    active_at: int
    resolved_at: int | None
    times_seen: int
    first_release: str | None
    assignee: str | None  # "user:<id>" / "team:<id>", set only when the group is created
    resolution_type: str | None
    resolution_version: str | None
    data: dict[str, Any]


class UpsertGroup(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    row: GroupRow


class DeleteGroup(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """Remove the group, its interleaved rows, and unlink its hashes (rule 6.4)."""

    group_id: int
    project_id: int
    hashes: tuple[str, ...]


class InsertOccurrence(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    group_id: int
    message_id: str
    message_time: int
    event_time: int
    occurrence: Occurrence
    release: str | None
    environment: str | None


class InsertActivity(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """``activity_id`` is derived from the message that caused it, so a replay writes the same row."""

    group_id: int
    project_id: int
    activity_id: str
    type: int
    message_id: str
    activity_time: int
    data: dict[str, Any] | None


class DeleteActivity(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """Take back an activity written earlier (a status change pruned after the fact, rule 5.2)."""

    group_id: int
    activity_id: str


class RecordEvent(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """Store an event of the event path (not buffered spans), so lookups can find it."""

    event: Event
    level: str


class RecordRelease(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """The release was named at ``first_seen``; writers keep the minimum (E8)."""

    project_id: int
    version: str
    first_seen: int


class RecordEnvironment(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """The group was seen in ``environment`` at ``first_seen`` (message time) with ``first_release``.

    Writers keep the row with the smallest ``first_seen``; on equal times the
    later write wins (the engine writes again on a tie only for an occurrence
    earlier in key order, so the row converges to the in-order one).
    """

    group_id: int
    environment: str
    first_release: str | None
    first_seen: int


class RecordGroupRelease(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """The group was seen in this release (GroupReleases, for the issue index's ``release:`` filter)."""

    group_id: int
    release: str


class IndexOccurrence(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """Count an attached occurrence's tags for its group and index its search values and words
    (GroupTagKeys, GroupTagValues; ``transforms.storage.tag_writer``).

    Written in the commit that writes the occurrence's row for the first time, and only then: the counts are
    the number of the group's occurrence rows carrying each tag, whatever the retries, replays and commit
    order. ``tags`` are counted (``engine.tags.occurrence_tags``); ``search_tags`` (``@`` keys) and ``terms``
    only record that the group has them, and are left empty when the same ``apply`` call already gave them
    for the group. ``seen`` is the event time.
    """

    group_id: int
    organization_id: int
    project_id: int
    occurrence_id: str
    seen: int
    tags: tuple[tuple[str, str], ...]
    search_tags: tuple[tuple[str, str], ...] = ()
    terms: tuple[str, ...] = ()


class LinkHashes(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """Point these (project, hash) pairs at the group (GroupHashes)."""

    project_id: int
    group_id: int
    hashes: tuple[str, ...]


class SaveKeyState(msgspec.Struct, frozen=True, tag=True, tag_field="intent", gc=False):
    """Persist the key's encoded engine state so a new pipeline can continue where this one stopped.

    While ``group_id`` is None the state is stored in KeyStates; otherwise on
    the group's row. ``relink`` is true when the key's group or generation
    changed in this application (creation, deletion): KeyStates must then be
    rewritten too.
    """

    project_id: int
    primary_hash: str
    generation: int
    group_id: int | None
    state: bytes
    relink: bool


Intent = (
    UpsertGroup
    | DeleteGroup
    | InsertOccurrence
    | InsertActivity
    | DeleteActivity
    | RecordEvent
    | RecordRelease
    | RecordEnvironment
    | RecordGroupRelease
    | IndexOccurrence
    | LinkHashes
    | SaveKeyState
)


class KeyWrite(msgspec.Struct, frozen=True, gc=False):
    """Everything one engine application wants written for one key, guarded by ``seq``.

    ``base_seq`` is the ``seq`` of the state the engine started from: 0 for a key new to the database when
    its state was loaded, which lets a writer insert its rows without reading first (an insert fails if a
    concurrent writer created them meanwhile, and the writer then falls back to the guarded path).
    """

    key: str
    seq: int
    intents: tuple[Intent, ...]
    base_seq: int = 0


class Outputs(msgspec.Struct):
    """What ``apply`` returns besides the new state.

    ``write`` is None when nothing needs writing (e.g. only duplicates).
    ``counters`` maps names from ``transforms.core.metrics`` to increments.
    ``events`` are the events the write's ``RecordEvent``s store, by event id, and ``group_updates`` the number
    of its ``UpsertGroup``s: the engine tallies them as it makes the intents, so that the shell need not scan
    them again.
    """

    write: KeyWrite | None = None
    dead_letters: list[DeadLetter] = []
    counters: dict[str, int] = {}
    events: dict[str, Event] = {}
    group_updates: int = 0
