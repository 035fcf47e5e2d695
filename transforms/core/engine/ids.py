"""Identifiers the engine derives, so that retries and replays write the same rows.

Group ids and activity ids are hashes of what caused them, never counters or
random values: applying the same messages again (a retry, a restart, a backfill
over data streaming already wrote) produces the same ids and so rewrites the
same rows. Duplicate-memory ids are 16 raw bytes, to keep the key state small.
"""

from __future__ import annotations

from hashlib import md5

from transforms.core.engine.dedup import memory_id as native_memory_id

_MAX_INT63 = (1 << 63) - 1


def group_id(project_id: int, primary_hash: str, generation: int) -> int:
    """The group of a key's ``generation``: a positive 63-bit integer (rule 3.5, E16), never 0."""
    digest = md5(f"{project_id}:{primary_hash}:{generation}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") & _MAX_INT63) or 1


def creation_id(primary_hash: str, generation: int) -> str:
    """What the creation quota is asked for (``QuotaGate.try_acquire``): the group a key's ``generation``
    would create, so that asking again for the same creation (a retry, a replay) is free."""
    return f"{primary_hash}:{generation}"


def activity_id(group: int, payload_id: str, activity_type: int) -> str:
    """32 hex characters from (group, the payload that caused the activity, the activity type)."""
    return md5(f"{group}:{payload_id}:{int(activity_type)}".encode()).hexdigest()


def occurrence_memory_id(occurrence_id: str) -> bytes:
    """The duplicate-memory id of an occurrence (16 bytes).

    Ids are hashed rather than stored raw so that the memory's bytes are
    uniformly distributed whatever ids producers choose (sequential or
    time-ordered UUIDs would otherwise make scans slow), and so that
    occurrence and status-change ids never collide. In C where built
    (``dedup.memory_id``; the hot path calls that first itself).
    """
    return (
        native_memory_id(b"occurrence:", occurrence_id)
        or md5(b"occurrence:" + occurrence_id.encode()).digest()
    )


def status_change_memory_id(change_id: str) -> bytes:
    """The duplicate-memory id of a status change (its ``id``: the payload's, or the message id)."""
    return (
        native_memory_id(b"status_change:", change_id) or md5(b"status_change:" + change_id.encode()).digest()
    )
