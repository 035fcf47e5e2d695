"""Planning a commit: the engine's ``KeyWrite``s netted into the rows one Spanner transaction writes (pure).

``plan_commit`` takes the writes of one commit and what the transaction read of the database
(``StoredVersions``) and returns the rows to write (``CommitPlan``); ``transforms.storage.spanner_writer`` does the
reads and the writes around it. The contract it implements is ``spanner_writer``'s:

* The seq guard is per row. A write whose ``seq`` is not greater than the KeyStates row's leaves that row,
  and everything of its groups, alone; one whose ``seq`` is not greater than a group row's leaves that
  group's row, deletion and activities alone (the write is *stale*). Its idempotent, append-only rows are
  still planned (occurrences, environments and hashes of groups that still exist, events, releases).
* An event of the event path is planned on the row of the occurrence that carried it when that occurrence
  is attached in the same write, and as an Events row otherwise.
* Rows are netted per primary key in write order (writes sorted by key, then ``seq``), so the commit's
  mutations never conflict.

Each intent type has one planner in ``PLANNERS`` (``intent class -> planner(planning, intent)``); a new
intent type needs one there (``plan_commit`` refuses a type it has no planner for). Where the C extension is
built, ``_planning.plan_writes`` plans the writes whose intents are all of the classes it is configured with
(below ``_plan_write``) as these planners and ``spanner_rows``' row builders do, and hands any other write to
``_plan_write``: a change to one of those planners or builders is a change to its C twin too
(``tests/test_commit_plan_native.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgspec
import orjson

from transforms.core import intents, model
from transforms.core.model import split_group_key
from transforms.storage import spanner_rows as rows

# The C extension ``_planning.c`` or None (``spanner_rows.planning``): ``mutation_groups``' pass over a table's
# rows in C, or None where the Python loop (``_group_rows``) must decide.
_native = rows.planning


@dataclass
class StoredVersions:
    """What the guard needs to know of the database: read inside the commit's transaction."""

    key_seq: dict[tuple[int, str], int] = field(default_factory=dict)
    group_seq: dict[int, int] = field(default_factory=dict)
    release_first_seen: dict[tuple[int, str], int] = field(default_factory=dict)


@dataclass
class CommitPlan:
    """The netted rows of one commit: table -> primary key -> (columns, values), and table -> deleted keys.

    Most rows are written once per commit and keep the tuples they came with; a row written twice (a group
    row and its state, an occurrence and its event) is merged column by column, the later write winning.
    """

    upserts: dict[str, dict[tuple, tuple[tuple[str, ...], tuple]]] = field(default_factory=dict)
    deletes: dict[str, dict[tuple, None]] = field(default_factory=dict)
    stale_writes: int = 0
    # (table, key) of rows known not to exist before this commit (keys new to the database): inserted, so a
    # concurrent writer that created them meanwhile makes the commit fail rather than be overwritten.
    inserts: set[tuple[str, tuple]] = field(default_factory=set)
    # Environment rows of stale writes: written only where they are earlier than the stored row.
    environment_checks: list[intents.RecordEnvironment] = field(default_factory=list)
    # Table -> keys of rows known to exist, written with only the columns that change (an update: the index
    # entries of the columns it leaves alone are not rewritten). Tag rows (transforms.storage.tag_writer).
    updates: dict[str, set[tuple]] = field(default_factory=dict)
    # The commit's IndexOccurrence intents, in the order the writes are planned (``tag_writer.index_intents``),
    # gathered by the same pass: the tag writer plans them after the rows.
    indexed: list[intents.IndexOccurrence] = field(default_factory=list)

    def upsert(self, table: str, key: tuple, columns: tuple[str, ...], values: tuple) -> None:
        deleted = self.deletes.get(table)
        if deleted:
            deleted.pop(key, None)
        planned = self.upserts.get(table)
        if planned is None:
            planned = self.upserts[table] = {}
        previous = planned.get(key)
        if previous is not None:
            columns, values = merged_row(previous, columns, values)
        planned[key] = (columns, values)

    def row(self, table: str, key: tuple) -> dict[str, Any]:
        """The planned columns of one row, by name (for tests and logs)."""
        columns, values = self.upserts[table][key]
        return dict(zip(columns, values))

    def delete(self, table: str, key: tuple) -> None:
        self.upserts.get(table, {}).pop(key, None)
        self.deletes.setdefault(table, {})[key] = None

    def drop_children(self, group_id: int) -> None:
        """A deleted group takes its interleaved rows with it (ON DELETE CASCADE)."""
        for table in ("Occurrences", "Activities", "GroupEnvironments", "GroupReleases"):
            planned = self.upserts.get(table)
            if planned:
                for key in [key for key in planned if key[0] == group_id]:
                    del planned[key]
            deleted = self.deletes.get(table)
            if deleted:
                for key in [key for key in deleted if key[0] == group_id]:
                    del deleted[key]

    @property
    def row_count(self) -> int:
        return sum(self.rows_by_table().values())

    def rows_by_table(self) -> dict[str, int]:
        counts = {table: len(keys) for table, keys in self.upserts.items() if keys}
        for table, keys in self.deletes.items():
            if keys:
                counts[table] = counts.get(table, 0) + len(keys)
        return counts

    def mutation_count(self) -> int:
        """Spanner's mutations of this plan: its cells, index entries included (``mutation_groups`` counts the
        same in its pass)."""
        return mutation_groups(self)[1]


def merged_row(
    previous: tuple[tuple[str, ...], tuple], columns: tuple[str, ...], values: tuple
) -> tuple[tuple[str, ...], tuple]:
    """The ``previous`` row (columns, values) with ``columns`` set to ``values`` (the later write wins), its
    columns in the previous row's order then the new ones. The previous row's column tuple is kept when it
    holds every column (``mutation_groups`` groups rows by that tuple), and the usual merges, a row written
    again whole or a group's state after its row (``rows.GROUP_STATE_COLUMNS``: its key and its last
    columns), take no dictionary."""
    old_columns, old_values = previous
    if columns == old_columns:
        return old_columns, values
    cut = len(old_columns) - len(columns) + 1
    if cut > 0 and old_columns[0] == columns[0] and old_columns[cut:] == columns[1:]:
        return old_columns, (values[0], *old_values[1:cut], *values[1:])
    merged = dict(zip(old_columns, old_values))
    merged.update(zip(columns, values))
    return (old_columns if len(merged) == len(old_columns) else tuple(merged)), tuple(merged.values())


# The intent types are a closed set of final classes (``intents``; ``plan_commit`` refuses any other), so the
# functions below, which run for every intent of every commit, dispatch on the exact class: a set or dict
# lookup, or an identity test, instead of a chain of ``isinstance`` calls.

# Intents that name their group in ``group_id``.
_WITH_GROUP_ID = frozenset(
    {
        intents.DeleteGroup,
        intents.InsertOccurrence,
        intents.InsertActivity,
        intents.DeleteActivity,
        intents.RecordEnvironment,
        intents.RecordGroupRelease,
        intents.LinkHashes,
    }
)


def group_ids(write: intents.KeyWrite) -> set[int]:
    ids: set[int] = set()
    for intent in write.intents:
        kind = intent.__class__
        if kind in _WITH_GROUP_ID:
            ids.add(intent.group_id)
        elif kind is intents.UpsertGroup:
            ids.add(intent.row.group_id)
        elif kind is intents.SaveKeyState and intent.group_id is not None:
            ids.add(intent.group_id)
    return ids


# Intents whose row is decided by the key's stored seq (directly, or through its groups' guard).
_KEY_GUARDED = frozenset(
    {
        intents.UpsertGroup,
        intents.SaveKeyState,
        intents.DeleteGroup,
        intents.InsertActivity,
        intents.DeleteActivity,
        intents.RecordEnvironment,
    }
)


def is_guarded(write: intents.KeyWrite) -> bool:
    """Whether the key's stored ``seq`` decides a row of ``write`` (it carries a guarded intent)."""
    return not _KEY_GUARDED.isdisjoint(map(type, write.intents))


def guarded_keys(writes: Sequence[intents.KeyWrite]) -> set[tuple[int, str]]:
    """Keys whose stored ``seq`` decides a row of these writes: those with a guarded write. The other writes
    carry only rows written whatever the guard says (events, occurrences, hashes and releases of groups that
    exist, releases): their key's seq is not read (most flushes are of keys without a group, whose writes
    carry only events)."""
    return {split_group_key(write.key) for write in writes if is_guarded(write)}


def new_keys(writes: Sequence[intents.KeyWrite]) -> set[tuple[int, str]]:
    """Keys whose earliest write here started from no stored state (``base_seq`` 0): nothing to read for them."""
    earliest: dict[str, intents.KeyWrite] = {}
    for write in writes:
        if write.key not in earliest or write.seq < earliest[write.key].seq:
            earliest[write.key] = write
    return {split_group_key(key) for key, write in earliest.items() if write.base_seq == 0}


_OCCURRENCE_WITH_EVENT_COLUMNS = rows.OCCURRENCE_COLUMNS + rows.EVENT_INLINE_COLUMNS


class Planning:
    """The state of one ``plan_commit`` call as its planners see it: the commit's (the plan, what is stored
    so far as the writes are applied in order) and the current write's (its key, ``seq`` and guard)."""

    __slots__ = (
        "alive",
        "assumed_new",
        "events",
        "group_ok",
        "group_seq",
        "key",
        "key_ok",
        "key_seq",
        "plan",
        "releases",
        "seq",
    )

    def __init__(self, stored: StoredVersions, assumed_new: set[tuple[int, str]] | frozenset) -> None:
        self.plan = CommitPlan()
        self.key_seq = dict(stored.key_seq)
        self.group_seq = dict(stored.group_seq)
        self.alive = set(stored.group_seq)  # groups that exist at this point of the commit
        self.releases = dict(stored.release_first_seen)
        self.assumed_new = assumed_new
        self.key: tuple[int, str] = (0, "")
        self.seq = 0
        self.key_ok = False  # the write's seq is greater than its key's stored one
        self.group_ok: dict[int, bool] = {}  # by group the write touches: its seq is greater than the group's
        # The write's RecordEvent intents not yet planned on their occurrence's row, by event id.
        self.events: dict[str, intents.RecordEvent] = {}


def _record_event(p: Planning, intent: intents.RecordEvent) -> None:
    p.events[intent.event.event_id] = intent  # planned with its occurrence, or alone after the write


def _upsert_group(p: Planning, intent: intents.UpsertGroup) -> None:
    row = intent.row
    if not p.group_ok[row.group_id]:
        return
    p.plan.upsert("Groups", (row.group_id,), rows.GROUP_COLUMNS, rows.group_values(row, p.seq, None))
    if p.key in p.assumed_new:
        p.plan.inserts.add(("Groups", (row.group_id,)))
    p.group_seq[row.group_id] = p.seq
    p.alive.add(row.group_id)


def _save_key_state(p: Planning, intent: intents.SaveKeyState) -> None:
    key = p.key
    if p.key_ok and (intent.group_id is None or intent.relink):
        p.plan.upsert("KeyStates", key, rows.KEY_STATE_COLUMNS, rows.key_state_values(intent, p.seq))
        if key in p.assumed_new:
            p.plan.inserts.add(("KeyStates", key))
        p.key_seq[key] = p.seq
    group_id = intent.group_id
    if group_id is not None and p.group_ok[group_id] and group_id in p.alive:
        p.plan.upsert(
            "Groups",
            (group_id,),
            rows.GROUP_STATE_COLUMNS,
            (group_id, p.seq, rows.spanner_bytes(intent.state), rows.COMMIT_TIMESTAMP),
        )
        p.group_seq[group_id] = p.seq


def _delete_group(p: Planning, intent: intents.DeleteGroup) -> None:
    if not p.group_ok[intent.group_id]:
        return
    plan = p.plan
    plan.delete("Groups", (intent.group_id,))
    plan.drop_children(intent.group_id)
    for hash_ in intent.hashes:
        plan.delete("GroupHashes", (intent.project_id, hash_))
    p.alive.discard(intent.group_id)
    p.group_seq.pop(intent.group_id, None)


def _insert_occurrence(p: Planning, intent: intents.InsertOccurrence) -> None:
    if intent.group_id not in p.alive:
        return
    row_key = (intent.group_id, intent.occurrence.id)
    values = rows.occurrence_values(intent)
    event = p.events.pop(intent.occurrence.event_id, None)
    if event is None:
        p.plan.upsert("Occurrences", row_key, rows.OCCURRENCE_COLUMNS, values)
    else:  # the event on its occurrence's row, in the same upsert (no merge of two)
        values += rows.event_inline_values(event)
        p.plan.upsert("Occurrences", row_key, _OCCURRENCE_WITH_EVENT_COLUMNS, values)


def _insert_activity(p: Planning, intent: intents.InsertActivity) -> None:
    if p.group_ok[intent.group_id] and intent.group_id in p.alive:
        p.plan.upsert(
            "Activities",
            (intent.group_id, intent.activity_id),
            rows.ACTIVITY_COLUMNS,
            rows.activity_values(intent),
        )


def _delete_activity(p: Planning, intent: intents.DeleteActivity) -> None:
    if p.group_ok[intent.group_id]:
        p.plan.delete("Activities", (intent.group_id, intent.activity_id))


def _record_environment(p: Planning, intent: intents.RecordEnvironment) -> None:
    if intent.group_id not in p.alive:
        return
    if not p.group_ok[intent.group_id]:
        # An older write than the stored group: its environment row may be newer news than what is stored,
        # or older. Decided against the stored row (``spanner_writer``, which reads it).
        p.plan.environment_checks.append(intent)
    else:
        p.plan.upsert(
            "GroupEnvironments",
            (intent.group_id, intent.environment),
            rows.ENVIRONMENT_COLUMNS,
            rows.environment_values(intent),
        )


def _record_group_release(p: Planning, intent: intents.RecordGroupRelease) -> None:
    if intent.group_id in p.alive:
        # The issue index's release: filter reads this relation (one row per group and release).
        p.plan.upsert(
            "GroupReleases",
            (intent.group_id, intent.release),
            rows.GROUP_RELEASE_COLUMNS,
            (intent.group_id, intent.release),
        )


def _link_hashes(p: Planning, intent: intents.LinkHashes) -> None:
    if intent.group_id in p.alive:
        for hash_ in intent.hashes:
            p.plan.upsert(
                "GroupHashes",
                (intent.project_id, hash_),
                rows.HASH_COLUMNS,
                (intent.project_id, hash_, intent.group_id),
            )


def _index_occurrence(p: Planning, intent: intents.IndexOccurrence) -> None:
    # Planned after the writes, with what the commit reads (transforms.storage.tag_writer).
    p.plan.indexed.append(intent)


def _record_release(p: Planning, intent: intents.RecordRelease) -> None:
    release_key = (intent.project_id, intent.version)
    known = p.releases.get(release_key)
    if known is None or intent.first_seen < known:
        p.releases[release_key] = intent.first_seen
        p.plan.upsert(
            "Releases",
            release_key,
            rows.RELEASE_COLUMNS,
            rows.release_values(intent.project_id, intent.version, intent.first_seen),
        )


Planner = Callable[[Planning, Any], None]

# One planner per intent type (exact classes: see above ``group_ids``).
PLANNERS: dict[type, Planner] = {
    intents.RecordEvent: _record_event,
    intents.UpsertGroup: _upsert_group,
    intents.SaveKeyState: _save_key_state,
    intents.DeleteGroup: _delete_group,
    intents.InsertOccurrence: _insert_occurrence,
    intents.InsertActivity: _insert_activity,
    intents.DeleteActivity: _delete_activity,
    intents.RecordEnvironment: _record_environment,
    intents.RecordGroupRelease: _record_group_release,
    intents.LinkHashes: _link_hashes,
    intents.IndexOccurrence: _index_occurrence,
    intents.RecordRelease: _record_release,
}


_WRITE_ORDER = attrgetter("key", "seq")  # writes in key order, then seq
_KEY_ORDER = attrgetter("key")


def _in_plan_order(writes: Sequence[intents.KeyWrite]) -> list[intents.KeyWrite]:
    """``sorted(writes, key=_WRITE_ORDER)``, the same list: sorted by key alone (str keys compare faster than
    tuples), which keeps each key's writes in their order, so that is the list when each key's writes came in
    seq order (as the applier's do); otherwise sorted again by key and seq (the sort is stable either way)."""
    ordered = sorted(writes, key=_KEY_ORDER)
    key, seq = None, 0
    for write in ordered:
        if write.key == key:
            if write.seq < seq:
                ordered.sort(key=_WRITE_ORDER)
                break
            seq = write.seq
        else:
            key, seq = write.key, write.seq
    return ordered


def plan_commit(
    writes: Sequence[intents.KeyWrite],
    stored: StoredVersions,
    assumed_new: set[tuple[int, str]] | frozenset = frozenset(),
) -> CommitPlan:
    """Net the writes of one commit into rows, applying the seq guard (see the module docstring).

    Keys in ``assumed_new`` were not read: their KeyStates and group rows are planned as inserts.
    """
    p = Planning(stored, assumed_new)
    ordered = _in_plan_order(writes)
    # In C (``_planning.plan_writes``) the writes of the commonest intents, each other one by ``_plan_write``.
    if _native is None or _native.plan_writes(p, ordered) is None:
        for write in ordered:
            _plan_write(p, write)
    return p.plan


def _plan_write(p: Planning, write: intents.KeyWrite) -> None:
    """Plan one write, the next in plan order, with its intents' planners."""
    plan = p.plan
    key = p.key = split_group_key(write.key)
    seq = p.seq = write.seq
    if _KEY_GUARDED.isdisjoint(map(type, write.intents)):
        # No guarded row (most writes: the events of keys without a group): nothing to decide, and never
        # stale (its key's seq is not even read, see ``guarded_keys``). Only guarded planners read these.
        p.key_ok, p.group_ok = False, {}
    else:
        # Each guarded row is decided once per write, against what is stored before the write: the key's
        # KeyStates row, and the row of each group the write touches.
        key_ok = p.key_ok = seq > p.key_seq.get(key, 0)
        group_seq = p.group_seq
        group_ok = p.group_ok = {gid: key_ok and seq > group_seq.get(gid, 0) for gid in group_ids(write)}
        if not key_ok or not all(group_ok.values()):
            plan.stale_writes += 1  # a row of it is left alone
    events = p.events = {}
    planners = PLANNERS
    for intent in write.intents:
        planner = planners.get(intent.__class__)
        if planner is None:
            raise TypeError(f"unknown write intent {type(intent).__name__}")
        planner(p, intent)
    # Events whose occurrence was not attached (noise gate, quota, category mismatch) get their own row.
    for record in events.values():
        event = record.event
        plan.upsert(
            "Events", (event.project_id, event.event_id), rows.EVENT_COLUMNS, rows.event_values(record)
        )


if _native is not None:
    # What ``_planning.plan_writes`` plans in C, as the planners above and ``spanner_rows``' row builders do.
    _native.configure_commit(
        (
            intents.RecordEvent,
            intents.IndexOccurrence,
            intents.InsertOccurrence,
            intents.UpsertGroup,
            intents.SaveKeyState,
            intents.RecordRelease,
            intents.RecordEnvironment,
            intents.RecordGroupRelease,
            intents.LinkHashes,
            intents.InsertActivity,
        ),
        _KEY_GUARDED,
        (
            rows.GROUP_COLUMNS,
            rows.GROUP_STATE_COLUMNS,
            rows.KEY_STATE_COLUMNS,
            rows.OCCURRENCE_COLUMNS,
            _OCCURRENCE_WITH_EVENT_COLUMNS,
            rows.EVENT_COLUMNS,
            rows.RELEASE_COLUMNS,
            rows.ENVIRONMENT_COLUMNS,
            rows.GROUP_RELEASE_COLUMNS,
            rows.HASH_COLUMNS,
            rows.ACTIVITY_COLUMNS,
        ),
        (
            "Groups",
            "KeyStates",
            "Occurrences",
            "Events",
            "Releases",
            "GroupEnvironments",
            "GroupReleases",
            "GroupHashes",
            "Activities",
        ),
        (
            _plan_write,
            split_group_key,
            merged_row,
            rows.rfc3339,
            msgspec.json.encode,
            orjson.dumps,
            rows.spanner_bytes,
            msgspec.Raw,  # evidence kept as msgpack bytes (model.EvidenceData), decoded with these two
            model.decode_evidence_data,
            model.decode_evidence_display,
        ),
        rows.COMMIT_TIMESTAMP,
    )
    _native.configure_payloads(rows.event_payload)  # an event's JSON text, made ahead or now


def settle_environment_checks(plan: CommitPlan, stored: Mapping[tuple[int, str], int]) -> None:
    """Plan the environment rows of stale writes (``CommitPlan.environment_checks``) that are earlier than the
    stored rows ``stored`` ((group, environment) -> first seen, µs; those read) or missing from them."""
    stored = dict(stored)
    for intent in plan.environment_checks:
        key = (intent.group_id, intent.environment)
        if key in plan.upserts.get("GroupEnvironments", {}):
            continue  # a newer write of this commit has decided
        if key not in stored or intent.first_seen < stored[key]:
            plan.upsert("GroupEnvironments", key, rows.ENVIRONMENT_COLUMNS, rows.environment_values(intent))
            stored[key] = intent.first_seen


Mutation = tuple[str, str, tuple[str, ...], list | bytes]


def mutations(plan: CommitPlan) -> Iterator[Mutation]:
    """The plan as the mutations a transaction is given (``mutation_groups``)."""
    return iter(mutation_groups(plan)[0])


def mutation_groups(plan: CommitPlan, encoded: bool = False) -> tuple[list[Mutation], int]:
    """The plan as the mutations a transaction is given, in order, and what Spanner counts of them.

    Mutations: ``("delete", table, (), keys)`` first, then ``(kind, table, columns, rows)`` with ``kind``
    ``insert`` (rows known to be new), ``update`` (rows known to exist) or ``insert_or_update``, rows grouped
    by kind and columns in the order of their first row. The count: a row's columns plus, unless it is in
    ``updates`` (which writes no indexed column), its index entries (``rows.index_cells_per_row``); a deleted
    row and its index entry. Counted in the pass that groups the rows, by group of rows, not row by row.
    With ``encoded``, a table's rows may come as the bytes ``_mutations.encode_values`` makes of them
    (``rows.write_mutation_encoded`` takes them), grouped and encoded in one pass where the extension is built
    (``_mutations.encode_table``); else, and for a table it declines, as the rows themselves."""
    index_cells = rows.index_cells_per_row()
    encode = rows.encode_table if encoded else None
    found: list[Mutation] = []
    total = 0
    for table, deleted in plan.deletes.items():
        if deleted:
            found.append(("delete", table, (), list(deleted)))
            total += len(deleted) * (2 if index_cells.get(table) else 1)  # the row, and its index entry
    inserted: dict[str, set[tuple]] = {}  # (few: the rows of keys new to the database) by table
    for table, row_key in plan.inserts:
        inserted.setdefault(table, set()).add(row_key)
    for table, planned in plan.upserts.items():
        if not planned:
            continue
        updated = plan.updates.get(table) or ()
        new = inserted.get(table) or ()
        groups = table == "Groups"
        if encode is not None:
            done = encode(table, planned, new, updated, groups)
            if done is not None:
                order, not_updated, cells = done
                if len({(kind, columns) for kind, _table, columns, _data in order}) < len(order):
                    # equal columns in distinct tuples: one mutation each kind and columns (a Write's rows are
                    # repeated, so their bytes join)
                    joined: dict[tuple[str, tuple[str, ...]], bytes] = {}
                    for kind, _table, columns, data in order:
                        joined[(kind, columns)] = joined.get((kind, columns), b"") + data
                    order = [(kind, table, columns, data) for (kind, columns), data in joined.items()]
                found.extend(order)
                total += cells + not_updated * index_cells.get(table, 0)
                continue
        grouped = None if _native is None else _native.group_rows(table, planned, new, updated, groups)
        if grouped is None:
            order, not_updated = _group_rows(table, planned, new, updated, groups)
        else:
            order, not_updated = grouped
        if len({(kind, columns) for kind, _table, columns, _rows in order}) < len(order):
            # equal columns in distinct tuples (rows merged in the plan): one mutation each kind and columns
            merged: dict[tuple[str, tuple[str, ...]], list[tuple]] = {}
            for kind, _table, columns, values in order:
                merged.setdefault((kind, columns), []).extend(values)
            order = [(kind, table, columns, values) for (kind, columns), values in merged.items()]
        found.extend(order)
        total += sum(len(columns) * len(values) for _kind, _table, columns, values in order)
        total += not_updated * index_cells.get(table, 0)
    return found, total


def _group_rows(
    table: str, planned: dict[tuple, tuple[tuple[str, ...], tuple]], new: Any, updated: Any, groups: bool
) -> tuple[list[Mutation], int]:
    """One table's rows of ``mutation_groups`` grouped by kind and columns object, in the order of their first
    row, and how many are not in ``updated`` (``_planning.group_rows`` in C)."""
    # Rows grouped by kind and columns *object*: a table's rows share a few column tuples (the
    # ``spanner_rows`` constants), so the lookup hashes no tuple of names.
    by_columns: dict[tuple[str, int], list[tuple]] = {}
    order: list[Mutation] = []
    for row_key, (columns, values) in planned.items():
        if row_key in new:
            kind = "insert"
        elif row_key in updated:
            kind = "update"
        elif groups and "Type" not in columns:
            kind = "update"  # a Groups row written without its Type is a state-only update
        else:
            kind = "insert_or_update"
        same = by_columns.get((kind, id(columns)))
        if same is None:
            same = by_columns[(kind, id(columns))] = []
            order.append((kind, table, columns, same))
        same.append(values)
    return order, len(planned) - (len(planned.keys() & updated) if updated else 0)
