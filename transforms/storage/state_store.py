"""Reads the group engine needs from Spanner: key states, events, release first-seen times.

Everything here is a multi-key ``read`` in one snapshot (the emulator executes SQL by scanning whole tables,
and a ``read`` by keys is also what real Spanner serves cheapest). Callers batch keys; nothing here reads one
key at a time unless asked for one key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from google.cloud import spanner

from transforms.core.model import Event, from_datetime, split_group_key
from transforms.storage import spanner_rows

# Keys per read call: large enough to amortise a round trip, small enough for one response.
READ_BATCH = 1000


def _read(
    snapshot, table: str, columns: Sequence[str], keys: Sequence[Sequence], index: str = ""
) -> Iterator:
    """The rows of ``table`` (through ``index`` when named) at ``keys``, ``READ_BATCH`` keys a read call."""
    for start in range(0, len(keys), READ_BATCH):
        batch = keys[start : start + READ_BATCH]
        yield from snapshot.read(
            table, columns, spanner.KeySet(keys=[list(key) for key in batch]), index=index
        )


def read_key_states(database, keys: Iterable[str]) -> dict[str, bytes]:
    """The latest encoded engine state of each key that has one (missing keys are new to the database).

    The state lives in KeyStates while a key has no group and on the group's row once it has one; of the
    two, the one written by the greater ``Seq`` is current.
    """
    wanted = sorted({split_group_key(key) for key in keys})
    found: dict[str, bytes] = {}
    if not wanted:
        return found
    with database.snapshot(multi_use=True) as snapshot:
        pointers: dict[int, tuple[str, int, bytes | None]] = {}
        for project_id, primary_hash, seq, group_id, state in _read(
            snapshot, "KeyStates", ("ProjectId", "PrimaryHash", "Seq", "GroupId", "State"), wanted
        ):
            key = f"{project_id}:{primary_hash}"
            state = spanner_rows.from_spanner_bytes(state)
            if group_id is None:
                if state is not None:
                    found[key] = state
            else:
                pointers[group_id] = (key, seq, state)
        group_ids = [[group_id] for group_id in sorted(pointers)]
        for group_id, seq, state in _read(snapshot, "Groups", ("GroupId", "Seq", "State"), group_ids):
            key, key_seq, key_state = pointers.pop(group_id)
            state = spanner_rows.from_spanner_bytes(state)
            if state is not None and seq >= key_seq:
                found[key] = state
            elif key_state is not None:
                found[key] = key_state
        for key, _seq, key_state in pointers.values():
            if key_state is not None:
                found[key] = key_state
    return found


def read_events(database, wanted: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Event]:
    """Stored events by (project id, event id): from the Events table, else from the occurrence that stored it.

    Events of attached occurrences live on their occurrence's row (Occurrences.EventPayload), found through
    the OccurrencesByStoredEvent index; events of occurrences that were not attached live in Events.
    """
    keys = sorted(set(wanted))
    found: dict[tuple[int, str], Event] = {}
    if not keys:
        return found
    with database.snapshot(multi_use=True) as snapshot:
        for project_id, event_id, payload in _read(
            snapshot, "Events", ("ProjectId", "EventId", "Payload"), keys
        ):
            found[(project_id, event_id)] = spanner_rows.event_from_payload(payload)
        missing = [key for key in keys if key not in found]
        holders = [
            [group_id, occurrence_id]
            for _project_id, _event_id, group_id, occurrence_id in _read(
                snapshot,
                "Occurrences",
                ("ProjectId", "StoredEventId", "GroupId", "OccurrenceId"),
                missing,
                index="OccurrencesByStoredEvent",
            )
        ]
        for project_id, event_id, payload in _read(
            snapshot, "Occurrences", ("ProjectId", "StoredEventId", "EventPayload"), holders
        ):
            found.setdefault((project_id, event_id), spanner_rows.event_from_payload(payload))
    return found


def read_release_first_seen(database, wanted: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Release first-seen times (microseconds) by (project id, version)."""
    keys = sorted(set(wanted))
    found: dict[tuple[int, str], int] = {}
    if not keys:
        return found
    with database.snapshot(multi_use=True) as snapshot:
        for project_id, version, first_seen in _read(
            snapshot, "Releases", ("ProjectId", "Version", "FirstSeen"), keys
        ):
            found[(project_id, version)] = from_datetime(first_seen)
    return found


class SpannerReleaseBook:
    """The engine's ``ReleaseBook`` backed by the Releases table, with a per-process cache.

    The first question about a project reads all of its releases at once (one key-range read; a project has
    few releases), and they are read again after ``ttl_seconds``. First-seen times only ever decrease, and a
    stale (larger) cached value can only make an old release look newer than it is for a short while.
    """

    def __init__(self, database, *, clock=None, ttl_seconds: float = 60.0):
        import time

        self._database = database
        self._clock = clock or time.monotonic
        self._ttl = ttl_seconds
        self._projects: dict[int, tuple[float, dict[str, int]]] = {}

    def first_seen(self, project_id: int, version: str) -> int | None:
        now = self._clock()
        cached = self._projects.get(project_id)
        if cached is None or now - cached[0] >= self._ttl:
            cached = self._projects[project_id] = (now, read_project_releases(self._database, project_id))
        return cached[1].get(version)


def read_project_releases(database, project_id: int) -> dict[str, int]:
    """Every release of a project: version -> first-seen time (microseconds)."""
    keyset = spanner.KeySet(ranges=[spanner.KeyRange(start_closed=[project_id], end_closed=[project_id])])
    with database.snapshot() as snapshot:
        return {
            version: from_datetime(first_seen)
            for version, first_seen in snapshot.read("Releases", ("Version", "FirstSeen"), keyset)
        }
