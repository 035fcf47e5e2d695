"""The duplicate memory: payload ids a key has taken in, with their message times (rule 2).

Rule: a message is a duplicate iff the memory holds an entry for its payload id
(occurrence id, or status-change id) whose time is at least ``message_time -
retention``. The decision reads only the entry, never the time the memory was
last pruned, so pruning cannot change a result as long as it removes only
entries that can no longer match (``prune`` with a horizon below every message
time still to come, minus the retention).

What enters the memory: every non-duplicate message the engine takes in
(applied, held, dropped by a gate, stale, ...), with its message time; an entry
that is taken in again past the retention keeps the later time. Dead-lettered
messages never enter it, so replaying a dead letter reprocesses it. Occurrences
waiting for their event are known through the waiting list instead (a
redelivery while waiting is a duplicate) and enter the memory when applied.

Past the retention: once an entry is pruned (or when a redelivery's message
time is more than the retention after the entry's), the redelivery is applied
again, as a new message: it counts once more and its occurrence row is
rewritten with the same key. The retention is therefore the longest redelivery
delay the pipeline absorbs without double counting; a backfill additionally
checks the occurrences already stored (``EngineContext.stored_occurrence_ids``).

Layout, chosen for small encoded state and no per-call rebuild: ``ids`` is the
concatenation of 16-byte hashed ids (``ids.occurrence_memory_id``) in insertion
order and ``times`` the matching little-endian int64 message times (24 bytes
per remembered message). The memory is scanned with ``bytes.find`` (C
speed, well-behaved because hashed ids are uniformly distributed); a large one
(more than ``INDEX_THRESHOLD`` entries) is indexed in a dict once a call has
scanned it ``SCANS_BEFORE_INDEX`` times (building the index costs a few hundred
scans: most calls, even of hot keys, look up fewer ids). Entries added during
one call live in a dict until ``freeze``.

In C where built (``_engine.c``, ``native``): the id scan, a stored time, ``freeze``, ``prune`` and the
hashed ids; each gives the Python's answer or None (not sure: another type, a size or number out of the
usual range), and then the Python below decides. Without the extension the Python runs alone.

Size: the memory grows with the key's rate times the retention. A key taking
one message per second keeps about 2 MiB; keys much hotter than that need a
shorter retention (``EngineConfig.duplicate_retention``).
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable
from sys import byteorder

from transforms.core.extensions import load_extension

_LOG = logging.getLogger(__name__)

# The C extension (``_engine.c``, built by setup.py where a compiler exists), or None.
native = load_extension("transforms.core.engine", "_engine", "Engine duplicate memory", _LOG)


def _unsure(*_args: object) -> None:
    """Where the extension is not built: no answer, so the Python decides."""
    return None


# Each answers as the Python it stands for, or None (see the module docstring).
memory_id: Callable[[bytes, str], bytes | None] = _unsure if native is None else native.memory_id
_find: Callable[[bytes, bytes], int | None] = _unsure if native is None else native.find
_time_at: Callable[[bytes, int], int | None] = _unsure if native is None else native.time_at
_freeze: Callable[[bytes, bytes, dict[bytes, int], dict[int, int]], tuple[bytes, bytes] | None] = (
    _unsure if native is None else native.freeze
)
_prune: Callable[[bytes, bytes, int], tuple[bytes, bytes] | None] = (
    _unsure if native is None else native.prune
)

_ID = 16
INDEX_THRESHOLD = 1024
SCANS_BEFORE_INDEX = 256
_LITTLE = byteorder == "little"


def _to_array(times: bytes) -> array[int]:
    values = array("q")
    values.frombytes(times)
    if not _LITTLE:
        values.byteswap()
    return values


def _to_bytes(values: array[int]) -> bytes:
    if not _LITTLE:
        values = array("q", values)
        values.byteswap()
    return values.tobytes()


class DuplicateMemory:
    """A mutable view of the memory for one ``apply`` call; ``freeze`` gives the new (ids, times)."""

    __slots__ = (
        "_added",
        "_ids",
        "_index_of",
        "_last_id",
        "_last_index",
        "_scans",
        "_times",
        "_times_view",
        "_updated",
    )

    def __init__(self, ids: bytes, times: bytes) -> None:
        self._ids = ids
        self._times = times
        self._times_view: memoryview | None = None
        self._index_of: dict[bytes, int] | None = None
        self._added: dict[bytes, int] = {}  # ids not in ``_ids``, in insertion order
        self._updated: dict[int, int] = {}  # index in ``_ids`` -> later time
        self._last_id = b""
        self._last_index = -1
        self._scans = 0  # of a large memory, until it is indexed

    def _index(self, memory_id: bytes) -> int:
        if memory_id == self._last_id:
            return self._last_index
        ids = self._ids
        index_of = self._index_of
        if index_of is None and len(ids) > INDEX_THRESHOLD * _ID:
            if self._scans < SCANS_BEFORE_INDEX:
                self._scans += 1
            else:
                index_of = self._index_of = {
                    ids[start : start + _ID]: start // _ID for start in range(0, len(ids), _ID)
                }
        if index_of is not None:
            index = index_of.get(memory_id, -1)
        else:
            found = _find(ids, memory_id)
            index = found if found is not None else find_python(ids, memory_id)
        self._last_id = memory_id
        self._last_index = index
        return index

    def _stored_time(self, index: int) -> int:
        time = self._updated.get(index)
        if time is not None:
            return time
        time = _time_at(self._times, index)
        if time is not None:
            return time
        view = self._times_view
        if view is None:
            view = self._times_view = memoryview(_to_array(self._times))
        return view[index]

    def entry_time(self, memory_id: bytes) -> int | None:
        """The time remembered for ``memory_id``, or None."""
        time = self._added.get(memory_id)
        if time is not None:
            return time
        index = self._index(memory_id)
        return self._stored_time(index) if index >= 0 else None

    def is_duplicate(self, memory_id: bytes, message_time: int, retention: int) -> bool:
        time = self._added.get(memory_id)  # entry_time, inlined: once for every message
        if time is None:
            ids = self._ids
            if len(ids) <= INDEX_THRESHOLD * _ID:  # _index, inlined for a small memory (never indexed)
                found = _find(ids, memory_id)
                index = found if found is not None else find_python(ids, memory_id)
                self._last_id = memory_id
                self._last_index = index
            else:
                index = self._index(memory_id)
            if index < 0:
                return False
            time = self._stored_time(index)
        return time >= message_time - retention

    def remember(self, memory_id: bytes, message_time: int) -> None:
        """Remember ``memory_id`` at ``message_time`` (an existing entry keeps the later time)."""
        added = self._added.get(memory_id)
        if added is not None:
            if added < message_time:
                self._added[memory_id] = message_time
            return
        # Mostly the id is_duplicate just looked up: its index without a call.
        index = self._last_index if memory_id == self._last_id else self._index(memory_id)
        if index < 0:
            self._added[memory_id] = message_time
        elif self._stored_time(index) < message_time:
            self._updated[index] = message_time

    def __len__(self) -> int:
        return len(self._ids) // _ID + len(self._added)

    def freeze(self) -> tuple[bytes, bytes]:
        if not self._added and not self._updated:
            return self._ids, self._times
        frozen = _freeze(self._ids, self._times, self._added, self._updated)
        return frozen if frozen is not None else self.freeze_python()

    def freeze_python(self) -> tuple[bytes, bytes]:
        times = _to_array(self._times)
        for index, time in self._updated.items():
            times[index] = time
        times.extend(self._added.values())
        return self._ids + b"".join(self._added), _to_bytes(times)


def remember_one(
    ids: bytes, times: bytes, memory_id: bytes, message_time: int, retention: int
) -> tuple[bytes, bytes] | None:
    """The memory ``(ids, times)`` after one message, or None when the message is a duplicate: what
    ``DuplicateMemory(ids, times)``'s ``is_duplicate``, ``remember`` and ``freeze`` give for it (one scan,
    whatever the memory's size: ``SCANS_BEFORE_INDEX``)."""
    found = _find(ids, memory_id)
    index = found if found is not None else find_python(ids, memory_id)
    if index < 0:
        frozen = _freeze(ids, times, {memory_id: message_time}, {})
        if frozen is not None:
            return frozen
        values = _to_array(times)
        values.append(message_time)
        return ids + memory_id, _to_bytes(values)
    time = _time_at(times, index)
    if time is None:
        time = _to_array(times)[index]
    if time >= message_time - retention:
        return None
    # not a duplicate, so older than the message (the retention is not negative: EngineConfig)
    frozen = _freeze(ids, times, {}, {index: message_time})
    if frozen is not None:
        return frozen
    values = _to_array(times)
    values[index] = message_time
    return ids, _to_bytes(values)


def find_python(ids: bytes, memory_id: bytes) -> int:
    """The index of the first 16-byte entry of ``ids`` equal to ``memory_id``, -1 if none."""
    position = ids.find(memory_id)
    while position > 0 and position % _ID:
        position = ids.find(memory_id, position + 1)
    return position // _ID if position >= 0 else -1


def prune(ids: bytes, times: bytes, horizon: int) -> tuple[bytes, bytes]:
    """Drop the entries whose time is below ``horizon``; the others keep their order (the same two objects
    when none is dropped)."""
    pruned = _prune(ids, times, horizon)
    return pruned if pruned is not None else prune_python(ids, times, horizon)


def prune_python(ids: bytes, times: bytes, horizon: int) -> tuple[bytes, bytes]:
    values = _to_array(times)
    if not values or min(values) >= horizon:
        return ids, times
    kept_ids: list[bytes] = []
    kept_times = array("q")
    for index, time in enumerate(values):
        if time >= horizon:
            kept_ids.append(ids[index * _ID : (index + 1) * _ID])
            kept_times.append(time)
    return b"".join(kept_ids), _to_bytes(kept_times)


def memory_size(ids: bytes) -> int:
    return len(ids) // _ID
