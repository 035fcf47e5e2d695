"""An in-memory ``GroupStore`` for tests: Spanner's rows as dictionaries, written by the product's own planning.

``MemoryRows`` holds the tables of ``schemas/spanner.sql`` (table -> primary key -> column -> value, values in
the wire form the writer builds: RFC 3339 text for TIMESTAMP, base64 text for BYTES, JSON text for JSON) and
applies a ``CommitPlan`` the way Spanner applies the commit's mutations (``commit_plan.mutations``): deletes
first (interleaved child rows go with their parent), then inserts (which fail if the row exists), updates
(which fail if it does not) and insert-or-updates, column by column.

``MemoryGroupStore.write`` commits with the writer's own code: chunks (``commit_in_chunks``), and for each
chunk ``CommitPlanner.plan`` (the guard's reads, ``plan_commit``, the environment and tag rows), whose reads
``MemoryReads`` answers from the rows (keys taken for new are not read, and are retried with their reads when
one exists); the plan is then applied to the rows instead of sent to Spanner.

It refuses what Spanner refuses, with the error Spanner answers (``tests/hostile/spanner_limits.py``: a key
over 8 KiB, a value over its column's size, a null in a NOT NULL column, JSON Spanner cannot hold, a commit over
80,000 mutations), and a refused commit is split to find the refused writes by the writer's own code
(``spanner_writer.commit_in_chunks``), so the refused-write handling runs without the emulator. Its
``database`` takes the rows the stateful step writes itself (``WaitingKeys``) through ``batch()``, and nothing
else.

``MemoryApplierFactory`` is a picklable ``GroupApplier`` factory over a store of the process, by name (a
runner pickles and re-creates DoFns, so the store cannot travel with them).
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.api_core import exceptions as api_exceptions

from tests.hostile import spanner_limits
from transforms.applier import ApplierConfig, GroupApplier, RefusedKeys
from transforms.core import intents
from transforms.core.engine import QuotaGate
from transforms.core.model import Event, from_datetime, from_rfc3339, split_group_key, to_datetime
from transforms.storage import spanner_rows
from transforms.storage.commit_plan import CommitPlan, mutations, new_keys
from transforms.storage.spanner_writer import (
    DEFAULT_MAX_MUTATIONS,
    CommitPlanner,
    CommitStats,
    commit_in_chunks,
)

SCHEMA = spanner_limits.schema()


def _check(table: str, columns: Sequence[str], values: Sequence[Any]) -> tuple:
    """The row's primary key; raises what Spanner raises for a row it refuses."""
    refused = spanner_limits.refusal(table, columns, values)
    if refused is not None:
        raise refused
    named = dict(zip(columns, values))
    return tuple(named[column] for column in SCHEMA[table].primary_key)


@dataclass
class MemoryRows:
    """Spanner's rows: table -> primary key -> {column: wire value}."""

    tables: dict[str, dict[tuple, dict[str, Any]]] = field(default_factory=dict)

    def table(self, name: str) -> dict[tuple, dict[str, Any]]:
        return self.tables.setdefault(name, {})

    def get(self, table: str, key: tuple) -> dict[str, Any] | None:
        return self.tables.get(table, {}).get(key)

    def apply(self, plan: CommitPlan) -> None:
        """Apply a commit's plan atomically (nothing changes if a mutation fails)."""
        refused = spanner_limits.commit_refusal(plan.mutation_count())
        if refused is not None:
            raise refused
        done = MemoryRows({name: {k: dict(v) for k, v in rows.items()} for name, rows in self.tables.items()})
        for kind, table, columns, values in mutations(plan):
            rows = done.table(table)
            if kind == "delete":
                for key in values:
                    done._delete(table, tuple(key))
                continue
            for row in values:
                key = _check(table, columns, row)
                named = dict(zip(columns, row))
                existing = rows.get(key)
                if kind == "insert" and existing is not None:
                    raise api_exceptions.AlreadyExists(f"{table} row {key} already exists")
                if kind == "update" and existing is None:
                    raise api_exceptions.NotFound(f"{table} row {key} not found")
                rows[key] = {**(existing or {}), **named}
        self.tables = done.tables

    def _delete(self, table: str, key: tuple) -> None:
        self.table(table).pop(key, None)
        for child in SCHEMA.values():
            if child.parent == table:
                for child_key in [k for k in self.table(child.name) if k[: len(key)] == key]:
                    self._delete(child.name, child_key)


class MemoryReads:
    """A read-write transaction's reads over ``MemoryRows``, answered as the Spanner client answers them (the
    columns asked for, in order; TIMESTAMP as ``datetime``): what ``CommitPlanner.plan`` reads through. Keys,
    and ranges of one key prefix (``start_closed`` = ``end_closed``), are what the writer reads."""

    def __init__(self, rows: MemoryRows) -> None:
        self._rows = rows

    def read(
        self, table: str, columns: Sequence[str], keyset: Any, index: str | None = None
    ) -> Iterator[list]:
        if index is not None or keyset.all_:
            raise NotImplementedError(
                f"MemoryReads reads by primary key only (index {index}, all {keyset.all_})"
            )
        rows = self._rows.table(table)
        found = [rows[tuple(key)] for key in keyset.keys if tuple(key) in rows]
        for key_range in keyset.ranges:
            prefix = tuple(key_range.start_closed)
            if key_range.end_closed is None or tuple(key_range.end_closed) != prefix:
                raise NotImplementedError("MemoryReads reads ranges of one key prefix only")
            found += [row for key, row in sorted(rows.items()) if key[: len(prefix)] == prefix]
        declared = SCHEMA[table].columns
        for row in found:
            yield [_as_read(declared[column].type, row.get(column)) for column in columns]


def _as_read(kind: str, value: Any) -> Any:
    if kind == "TIMESTAMP" and isinstance(value, str) and value != spanner_rows.COMMIT_TIMESTAMP:
        return to_datetime(from_rfc3339(value))
    return value


class _Releases:
    """The engine's ``ReleaseBook`` over the Releases rows."""

    def __init__(self, store: MemoryGroupStore) -> None:
        self._store = store

    def first_seen(self, project_id: int, version: str) -> int | None:
        row = self._store.rows.get("Releases", (project_id, version))
        return None if row is None else from_rfc3339(row["FirstSeen"])


class _Batch:
    """Blind writes of rows, as ``Database.batch()`` takes them (no seq guard, no planning)."""

    def __init__(self, rows: MemoryRows) -> None:
        self._rows = rows

    def insert_or_update(self, table: str, columns: Sequence[str], values: Iterable[Sequence[Any]]) -> None:
        rows = self._rows.table(table)
        for value in values:
            key = _check(table, columns, value)
            rows[key] = {**rows.get(key, {}), **dict(zip(columns, value))}

    def delete(self, table: str, keyset: Any) -> None:
        for key in keyset.keys:
            self._rows._delete(table, tuple(key))


class MemoryDatabase:
    """The store's stand-in for the Spanner database handle (``GroupStore.database``): the rows the stateful
    step writes itself besides the store's commits (``waiting_keys.mark``/``unmark``) go to the same rows."""

    def __init__(self, store: MemoryGroupStore) -> None:
        self._store = store

    @property
    def name(self) -> str:
        return self._store.name

    @contextlib.contextmanager
    def batch(self) -> Iterator[_Batch]:
        with self._store._lock:
            yield _Batch(self._store.rows)


class MemoryGroupStore:
    """``transforms.storage.group_store.GroupStore`` over ``MemoryRows`` (see the module docstring). Thread-safe (the
    local runs commit on a thread of their own)."""

    def __init__(self, name: str = "memory", *, max_mutations: int = DEFAULT_MAX_MUTATIONS) -> None:
        self.rows = MemoryRows()
        self._name = name
        self._max_mutations = max_mutations
        self._lock = threading.RLock()
        self._releases = _Releases(self)
        self._database = MemoryDatabase(self)
        self._planner = CommitPlanner()
        self.commits: list[list[intents.KeyWrite]] = []  # every committed chunk, in commit order

    @property
    def name(self) -> str:
        return self._name

    @property
    def database(self) -> MemoryDatabase:
        return self._database

    @property
    def releases(self) -> _Releases:
        return self._releases

    def write(self, writes: Iterable[intents.KeyWrite]) -> CommitStats:
        with self._lock:
            return commit_in_chunks(writes, self._max_mutations, self._commit, self._planner.estimate)

    def _commit(self, chunk: list[intents.KeyWrite]) -> CommitStats:
        assumed = new_keys(chunk)
        attempts = 0
        while True:
            attempts += 1
            planned = self._planner.plan(MemoryReads(self.rows), chunk, assumed)
            try:
                self.rows.apply(planned.plan)
            except api_exceptions.AlreadyExists:
                if not assumed:
                    raise
                assumed = set()  # written meanwhile: read everything this time
                continue
            self._planner.committed(planned)
            self.commits.append(list(chunk))
            return CommitStats.of_plan(planned.plan, attempts)

    def read_key_states(self, keys: Iterable[str]) -> dict[str, bytes]:
        """As ``state_store.read_key_states``: the KeyStates row's state, or its group's when newer."""
        found = {}
        with self._lock:
            for key in sorted(set(keys)):
                row = self.rows.get("KeyStates", split_group_key(key))
                if row is None:
                    continue
                state = spanner_rows.from_spanner_bytes(row["State"])
                if row["GroupId"] is not None:
                    group = self.rows.get("Groups", (row["GroupId"],))
                    if group is not None and group.get("State") is not None and group["Seq"] >= row["Seq"]:
                        state = spanner_rows.from_spanner_bytes(group["State"])
                if state is not None:
                    found[key] = state
        return found

    def read_events(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], Event]:
        """As ``state_store.read_events``: the Events row, else the occurrence row that stored the event."""
        found = {}
        wanted = set(keys)
        with self._lock:
            for key in sorted(wanted):
                row = self.rows.get("Events", key)
                if row is not None:
                    found[key] = spanner_rows.event_from_payload(row["Payload"])
            for row in self.rows.table("Occurrences").values():
                key = (row["ProjectId"], row.get("StoredEventId"))
                if key in wanted and key not in found:
                    found[key] = spanner_rows.event_from_payload(row["EventPayload"])
        return found


_STORES: dict[str, MemoryGroupStore] = {}
_STORES_LOCK = threading.Lock()


def memory_store(name: str) -> MemoryGroupStore:
    """The process's memory store named ``name`` (made on first use)."""
    with _STORES_LOCK:
        store = _STORES.get(name)
        if store is None:
            store = _STORES[name] = MemoryGroupStore(name)
        return store


@dataclass(frozen=True)
class MemoryApplierFactory:
    """Builds ``GroupApplier``s over the process's memory store ``store_name`` (picklable: the stateful step's
    ``applier_factory``), with the quota ``quota()`` makes (None: the config's)."""

    store_name: str
    quota: Callable[[], QuotaGate | None] | None = None

    def __call__(
        self,
        config: ApplierConfig,
        count: Callable[[str, int], None],
        clock: Callable[[], float] = time.time,
        refusals: RefusedKeys | None = None,
    ) -> GroupApplier:
        quota = self.quota() if self.quota is not None else None
        return GroupApplier(config, count, clock, refusals, store=memory_store(self.store_name), quota=quota)


# --- Comparing with the emulator -------------------------------------------------------------------------------


_COMMIT_TIME_COLUMNS = frozenset({"UpdatedAt", "Since", "CreatedAt"})


def normalized(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row (wire values from the memory store, or the Spanner client's values) in one comparable form:
    every column of the table (NULL when never written), TIMESTAMP as µs, BYTES as bytes, JSON parsed, arrays
    as lists; commit timestamps left out."""
    columns = SCHEMA[table].columns
    out = {}
    for column, declared in columns.items():
        kind = declared.type
        value = row.get(column)  # a column never written is NULL
        if value == spanner_rows.COMMIT_TIMESTAMP or column in _COMMIT_TIME_COLUMNS:
            continue
        if value is None:
            out[column] = None
        elif kind == "TIMESTAMP":
            out[column] = from_rfc3339(value) if isinstance(value, str) else from_datetime(value)
        elif kind.startswith("BYTES"):
            out[column] = base64.b64decode(value)
        elif kind == "JSON":
            out[column] = orjson.loads(value) if isinstance(value, str) else orjson.loads(value.serialize())
        elif isinstance(value, tuple | list):
            out[column] = list(value)
        else:
            out[column] = value
    return out


def memory_tables(store: MemoryGroupStore) -> dict[str, dict[tuple, dict[str, Any]]]:
    """Every non-empty table of the store, normalized."""
    return {
        table: {key: normalized(table, row) for key, row in rows.items()}
        for table, rows in store.rows.tables.items()
        if rows
    }


def emulator_tables(database, tables: Iterable[str]) -> dict[str, dict[tuple, dict[str, Any]]]:
    """The same tables read from a Spanner database, normalized."""
    found = {}
    for table in tables:
        with database.snapshot() as snapshot:
            result = snapshot.execute_sql(f"SELECT * FROM `{table}`")
            rows = list(result)
            names = [column.name for column in result.fields]
        key_columns = SCHEMA[table].primary_key
        by_key = {}
        for values in rows:
            named = dict(zip(names, values))
            by_key[tuple(named[column] for column in key_columns)] = normalized(table, named)
        if by_key:
            found[table] = by_key
    return found
