"""The key state: everything the engine remembers about one key between ``apply`` calls.

One ``KeyState`` per key (project, primary hash). It holds the key's current
group (if any) with the bookkeeping its rules need, the noise count, the open
run of status changes, status changes held for a group that does not exist
yet, occurrences waiting for their event, the duplicate memory and the key's
release knowledge. A delete (rule 6.4) clears the group, the noise count
and the open run; it keeps the duplicate memory, the waiting lookups, the
release knowledge, the greatest order taken in and the numbers that must keep
increasing (``seq``, ``generation``, ``run``), and records its own key order
as the start of the new generation (``generation_start_*``): a message older
than that belongs to the deleted group, whenever it arrives.

The stored form is msgpack (msgspec), with every struct encoded as an array:
field names are not repeated, ids in the duplicate memory are 16 raw bytes.
The first element is ``STATE_VERSION``; ``decode_state`` refuses any other
version with ``StateVersionError`` (a changed layout needs a migration, not a
silent misread). Changing a struct here means bumping ``STATE_VERSION``. A
version that only appends fields with defaults to ``KeyState`` stays readable
(``_UPGRADABLE``): the older array decodes with those defaults.
"""

from __future__ import annotations

from typing import Any

import msgspec

from transforms.core.engine import dedup
from transforms.core.model import Occurrence, StatusChange

# 2: groups remember the releases they were seen in; 3: the key remembers where its generation started.
STATE_VERSION = 3
# Older versions whose stored form is the current one without trailing ``KeyState`` fields: read with defaults.
_UPGRADABLE = frozenset({2})


class _GroupFields(msgspec.Struct, array_like=True, gc=False):
    """The key's group: every column of its Groups row that is not derived, plus what its rules need.

    Derived at write time and not stored: organization id (the project's),
    category (the type's), the search message and the ``data`` JSON.
    """

    group_id: int
    fingerprint: str  # the raw fingerprint[0] whose MD5 is the key's primary hash
    type: int
    status: int
    substatus: int | None
    priority: int | None
    initial_priority: int | None  # data.metadata.initial_priority (E9)
    level: int
    title: str
    subtitle: str
    culprit: str
    platform: str | None
    first_seen: int
    last_seen: int
    active_at: int
    active_at_from_creation: bool  # no regression has moved active_at since creation
    resolved_at: int | None
    resolution_type: str | None
    resolution_version: str | None
    resolution_first_seen: int | None  # first-seen time of resolution_version when it was recorded
    times_seen: int
    first_release: str | None
    assignee: str | None
    last_received: int  # event time of the latest occurrence (data.last_received)
    feedback: dict[str, Any] | None  # feedback metadata of the latest occurrence (type 6001)
    latest_time: int  # (message time, message id) of the occurrence the latest fields come from
    latest_id: str
    creator_time: int  # (message time, message id) of the occurrence the creation fields come from
    creator_id: str
    last_status_change_time: int | None  # the stale rule's reference (E3)
    environments: dict[str, tuple[int, str]]  # environment -> first (message time, message id), bounded
    releases: dict[str, int]  # releases its attached occurrences named -> last message time, bounded


class GroupState(_GroupFields, frozen=True):
    """The stored, immutable form of the key's group."""


class MutableGroup(_GroupFields):
    """The working copy of the group inside one ``apply`` call."""


def thaw_group(group: GroupState) -> MutableGroup:
    mutable = MutableGroup(*msgspec.structs.astuple(group))
    mutable.environments = dict(group.environments)
    mutable.releases = dict(group.releases)
    return mutable


def freeze_group(group: MutableGroup) -> GroupState:
    return GroupState(*msgspec.structs.astuple(group))


class RunMember(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The last status change applied in the open run, and the group's status fields from before the run.

    A later status change of the same run reverts it: the snapshot is restored
    and its activities are taken back (rule 5.2).
    """

    run: int
    group_id: int
    payload_id: str
    activity_ids: tuple[str, ...]
    status: int
    substatus: int | None
    priority: int | None
    resolved_at: int | None
    resolution_type: str | None
    resolution_version: str | None
    resolution_first_seen: int | None


class HeldChange(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A status change taken in while the key had no group, held for the pending window (rule 5.2)."""

    message_id: str
    message_time: int
    run: int
    change: StatusChange


class WaitingLookup(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """An occurrence waiting for its event (rule 3.3), kept whole so it can still be dead-lettered."""

    message_id: str
    message_time: int
    occurrence: Occurrence
    data: bytes
    attributes: dict[str, str]
    first_wait: int  # processing time
    deadline: int  # processing time after which it is dead-lettered


class KeyState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    version: int
    project_id: int
    primary_hash: str
    seq: int  # the version of this state and of the key's KeyWrites
    generation: int  # increases with every delete; selects the group id
    last_time: int | None  # greatest (message time, message id) taken in
    last_id: str
    group: GroupState | None
    noise_count: int
    noise_last: int
    run: int  # number of the current (or last) run of status changes
    run_open: bool  # the last thing taken in was a status change of run ``run``
    member: RunMember | None
    held: tuple[HeldChange, ...]
    waiting: tuple[WaitingLookup, ...]
    seen_ids: bytes
    seen_times: bytes
    releases: dict[str, int]  # version -> first-seen message time, as recorded by this key (bounded)
    # (message time, message id) of the delete that ended the previous generation; None: no delete known (a
    # key never deleted, or deleted under state version 2). Older messages belong to a deleted group.
    generation_start_time: int | None = None
    generation_start_id: str = ""


class StateVersionError(ValueError):
    """Stored key state written by an incompatible version of the engine."""


def new_state(project_id: int, primary_hash: str) -> KeyState:
    """The state of a key the engine has never seen."""
    # Positional, in the order of the fields (a call of more than 15 keywords is slow: application._finish).
    return KeyState(
        STATE_VERSION,  # version
        project_id,
        primary_hash,
        0,  # seq
        0,  # generation
        None,  # last_time
        "",  # last_id
        None,  # group
        0,  # noise_count
        0,  # noise_last
        0,  # run
        False,  # run_open
        None,  # member
        (),  # held
        (),  # waiting
        b"",  # seen_ids
        b"",  # seen_times
        {},  # releases
    )


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(KeyState)


def encode_state(state: KeyState) -> bytes:
    return _ENCODER.encode(state)


def decode_state(data: bytes) -> KeyState:
    """The state stored by ``encode_state``; raises ``StateVersionError`` for another layout version."""
    try:
        state = _DECODER.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        version = _stored_version(data)
        if version is not None and version != STATE_VERSION:
            raise StateVersionError(
                f"key state has layout version {version}; this engine reads version {STATE_VERSION}"
            ) from error
        raise StateVersionError(f"key state cannot be decoded as version {STATE_VERSION}: {error}") from error
    if state.version != STATE_VERSION:
        if state.version in _UPGRADABLE:
            return msgspec.structs.replace(state, version=STATE_VERSION)
        raise StateVersionError(
            f"key state has layout version {state.version}; this engine reads version {STATE_VERSION}"
        )
    return state


def _stored_version(data: bytes) -> int | None:
    try:
        raw = msgspec.msgpack.decode(data)
    except msgspec.DecodeError:
        return None
    if isinstance(raw, list) and raw and isinstance(raw[0], int):
        return raw[0]
    return None


def compact(state: KeyState, horizon: int) -> KeyState:
    """Drop what can no longer matter before message time ``horizon``.

    ``horizon`` is a message time below which no duplicate can still be
    recognised: the shell passes (the earliest message time it can still
    receive, e.g. its watermark) minus ``EngineConfig.duplicate_retention``.
    Removes duplicate-memory entries older than ``horizon`` and the key's
    release first-seen times older than ``horizon`` (a forgotten release costs
    one more ``RecordRelease`` if it is named again, and its order then comes
    from the ``ReleaseBook``), and the group's releases last named before
    ``horizon`` (one more ``RecordGroupRelease``, rewriting the same row, if
    named again). Never changes ``seq``: compaction writes nothing.
    """
    seen_ids, seen_times = dedup.prune(state.seen_ids, state.seen_times, horizon)
    releases = state.releases
    # min() rather than any() over a generator: the common call drops nothing, and min is one C call.
    if releases and min(releases.values()) < horizon:
        releases = {version: first_seen for version, first_seen in releases.items() if first_seen >= horizon}
    group = state.group
    if group is not None and group.releases and min(group.releases.values()) < horizon:
        recent = {version: last for version, last in group.releases.items() if last >= horizon}
        group = msgspec.structs.replace(group, releases=recent)
    if seen_ids is state.seen_ids and releases is state.releases and group is state.group:
        return state
    return msgspec.structs.replace(
        state, seen_ids=seen_ids, seen_times=seen_times, releases=releases, group=group
    )
