"""Spanner rows for the engine's write intents: column lists and value conversion, no I/O.

Values are in their wire form, ready for a mutation: TIMESTAMP as RFC 3339 text, JSON as JSON text, BYTES
as base64 text, INT64 as int (see ``transforms.storage.spanner_writer`` for why mutations are built directly).

One place maps ``transforms.core.intents`` to the tables of ``schemas/spanner.sql``;
``transforms.storage.spanner_writer`` decides which of these rows a commit may write.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import msgspec
import orjson
from google.cloud.spanner_v1 import Mutation
from google.protobuf import struct_pb2

from transforms.core import intents
from transforms.core.extensions import load_extension
from transforms.core.model import UNENCODABLE, Event, evidence_data, evidence_display, to_rfc3339

_LOG = logging.getLogger(__name__)


def load_native(name: str, purpose: str) -> Any:
    """The C extension ``transforms.storage.<name>``, if it is built from the source beside it (``<name>.c``:
    a build of an older source is not used); one log line says which path ``purpose`` takes."""
    return load_extension(__package__, name, purpose, _LOG)


def _load_native() -> Any:
    return load_native("_mutations", "Spanner mutations")


# The C extension (``_mutations.c``, built by setup.py where a compiler exists) or None: the mutations'
# values and the times' text in C, with the same results as the Python they replace (see "Mutations" below).
_native = _load_native()
if _native is not None:
    _native.set_rfc3339_fallback(to_rfc3339)
# The C extension ``_planning.c`` (built as ``_mutations``) or None: the hot loops of a commit's planning, in
# ``commit_plan`` and ``tag_writer`` (each keeps its Python loop for when it is absent or not sure).
planning = load_native("_planning", "Commit planning")
# ``to_rfc3339``'s text, for a time cell of a row (the C one hands to_rfc3339 what it does not format itself:
# other years, other types), in C where the extension is built: about 0.5 µs a call less.
rfc3339 = to_rfc3339 if _native is None else _native.rfc3339

COMMIT_TIMESTAMP = "spanner.commit_timestamp()"

GROUP_COLUMNS: tuple[str, ...] = (
    "GroupId",
    "ProjectId",
    "OrganizationId",
    "PrimaryHash",
    "Fingerprint",
    "Generation",
    "Type",
    "Category",
    "Status",
    "Substatus",
    "Priority",
    "Level",
    "Title",
    "Subtitle",
    "Culprit",
    "Message",
    "Platform",
    "FirstSeen",
    "LastSeen",
    "ActiveAt",
    "ResolvedAt",
    "TimesSeen",
    "FirstRelease",
    "Assignee",
    "ResolutionType",
    "ResolutionVersion",
    "Data",
    "Seq",
    "State",
    "UpdatedAt",
)
GROUP_STATE_COLUMNS: tuple[str, ...] = ("GroupId", "Seq", "State", "UpdatedAt")
KEY_STATE_COLUMNS: tuple[str, ...] = (
    "ProjectId",
    "PrimaryHash",
    "Generation",
    "Seq",
    "GroupId",
    "State",
    "UpdatedAt",
)
OCCURRENCE_COLUMNS: tuple[str, ...] = (
    "GroupId",
    "OccurrenceId",
    "ProjectId",
    "EventId",
    "MessageId",
    "MessageTime",
    "Fingerprint",
    "Hashes",
    "Type",
    "IssueTitle",
    "Subtitle",
    "Culprit",
    "Level",
    "DetectionTime",
    "EventTime",
    "ResourceId",
    "EvidenceData",
    "EvidenceDisplay",
    "Priority",
    "Assignee",
    "Release",
    "Environment",
)
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "GroupId",
    "ActivityId",
    "ProjectId",
    "Type",
    "MessageId",
    "ActivityTime",
    "Data",
)
ENVIRONMENT_COLUMNS: tuple[str, ...] = ("GroupId", "Environment", "FirstRelease", "FirstSeen")
GROUP_RELEASE_COLUMNS: tuple[str, ...] = ("GroupId", "Release")
HASH_COLUMNS: tuple[str, ...] = ("ProjectId", "Hash", "GroupId")
EVENT_COLUMNS: tuple[str, ...] = (
    "ProjectId",
    "EventId",
    "Platform",
    "EventTime",
    "Received",
    "Level",
    "Release",
    "Environment",
    "Payload",
)
RELEASE_COLUMNS: tuple[str, ...] = ("ProjectId", "Version", "FirstSeen")
# Tags and terms (IndexOccurrence, transforms.storage.tag_writer). A row that exists is updated with only the columns
# that change (the *_UPDATE_COLUMNS), which rewrites none of its index entries.
TAG_KEY_COLUMNS: tuple[str, ...] = (
    "GroupId",
    "TagKey",
    "OrganizationId",
    "ProjectId",
    "ValuesSeen",
    "OtherCount",
)
TAG_KEY_UPDATE_COLUMNS: tuple[str, ...] = ("GroupId", "TagKey", "ValuesSeen", "OtherCount")
TAG_VALUE_COLUMNS: tuple[str, ...] = (
    "GroupId",
    "TagKey",
    "TagValue",
    "OrganizationId",
    "ProjectId",
    "TimesSeen",
    "FirstSeen",
    "LastSeen",
)
TAG_VALUE_UPDATE_COLUMNS: tuple[str, ...] = (
    "GroupId",
    "TagKey",
    "TagValue",
    "TimesSeen",
    "FirstSeen",
    "LastSeen",
)
TAG_VALUE_COUNT_COLUMNS: tuple[str, ...] = ("GroupId", "TagKey", "TagValue", "TimesSeen", "LastSeen")


def _ts(micros: int | None) -> str | None:
    return None if micros is None else rfc3339(micros)


def spanner_bytes(value: bytes | None) -> str | None:
    """BYTES values travel base64-encoded."""
    return None if value is None else base64.b64encode(value).decode("ascii")


def from_spanner_bytes(value: bytes | None) -> bytes | None:
    """BYTES values come back from the Spanner client base64-encoded too."""
    return None if value is None else base64.b64decode(value)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def group_values(row: intents.GroupRow, seq: int, state: bytes | None) -> tuple[Any, ...]:
    return (
        row.group_id,
        row.project_id,
        row.organization_id,
        row.primary_hash,
        row.fingerprint,
        row.generation,
        row.type,
        row.category,
        row.status,
        row.substatus,
        row.priority,
        row.level,
        row.title,
        row.subtitle,
        row.culprit,
        row.message,
        row.platform,
        _ts(row.first_seen),
        _ts(row.last_seen),
        _ts(row.active_at),
        _ts(row.resolved_at),
        row.times_seen,
        row.first_release,
        row.assignee,
        row.resolution_type,
        row.resolution_version,
        _json(row.data),
        seq,
        spanner_bytes(state),
        COMMIT_TIMESTAMP,
    )


def key_state_values(save: intents.SaveKeyState, seq: int) -> tuple[Any, ...]:
    """KeyStates row: the state itself while there is no group, else only the pointer to it."""
    state = spanner_bytes(save.state) if save.group_id is None else None
    return (save.project_id, save.primary_hash, save.generation, seq, save.group_id, state, COMMIT_TIMESTAMP)


def occurrence_values(insert: intents.InsertOccurrence) -> tuple[Any, ...]:
    occurrence = insert.occurrence
    return (
        insert.group_id,
        occurrence.id,
        occurrence.project_id,
        occurrence.event_id,
        insert.message_id,
        rfc3339(insert.message_time),  # (times that cannot be None without ``_ts``'s call)
        list(occurrence.fingerprint),
        list(occurrence.hashes),
        occurrence.type,
        occurrence.issue_title,
        occurrence.subtitle,
        occurrence.culprit,
        occurrence.level,
        rfc3339(occurrence.detection_time),
        rfc3339(insert.event_time),
        occurrence.resource_id,
        _json(evidence_data(occurrence)),
        # The items as JSON objects of their fields, in their order (as orjson writes their dicts).
        msgspec.json.encode(evidence_display(occurrence)).decode(),
        occurrence.priority,
        occurrence.assignee,
        insert.release,
        insert.environment,
    )


def activity_values(insert: intents.InsertActivity) -> tuple[Any, ...]:
    return (
        insert.group_id,
        insert.activity_id,
        insert.project_id,
        insert.type,
        insert.message_id,
        _ts(insert.activity_time),
        _json(insert.data),
    )


def environment_values(record: intents.RecordEnvironment) -> tuple[Any, ...]:
    return (record.group_id, record.environment, record.first_release, _ts(record.first_seen))


# Events' JSON text made ahead (``keep_payloads``), by event id, with the event it was made of.
_PAYLOADS: dict[str, tuple[Event, str]] = {}
# Bound of ``_PAYLOADS`` (emptied when past it): a bundle's events, whose writes take theirs; the events of
# writes never planned (a bundle that failed) stay until then.
MAX_KEPT_PAYLOADS = 20_000


def keep_payloads(events: Iterable[Event]) -> None:
    """Make the JSON text of ``events`` (``event_payload``'s) now, for the rows that will store them: called
    where the events were just decoded and used (the applier, after the engine's call), when their fields are
    still in the CPU's caches; encoded when their writes are planned, at the end of a bundle, they are not.
    Only the same event object takes it (``event_payload``), so what a row stores is that event's text. An
    event it cannot encode is left to its row, whose error is the commit's (``spanner_writer``: a refusal), as
    without this. A carried event (``model.Event``) has its text already, made where it was decoded."""
    payloads = _PAYLOADS
    if len(payloads) > MAX_KEPT_PAYLOADS:
        payloads.clear()
    encode = msgspec.json.encode
    for event in events:
        if event.stored_json is not None:
            continue
        try:
            payloads[event.event_id] = (event, encode(event).decode())
        except UNENCODABLE:
            continue


def event_payload(event: Event) -> str:
    """The event's JSON text (Events.Payload, Occurrences.EventPayload): a carried event's own
    (``model.Event.stored_json``), else the one ``keep_payloads`` made of this very event object, taken (each
    is used once), else encoded now."""
    text = event.stored_json
    if text is not None:
        return text
    kept = _PAYLOADS.pop(event.event_id, None)
    if kept is not None and kept[0] is event:
        return kept[1]
    return msgspec.json.encode(event).decode()


def event_values(record: intents.RecordEvent) -> tuple[Any, ...]:
    event = record.event
    return (
        event.project_id,
        event.event_id,
        event.platform,
        rfc3339(event.timestamp),
        _ts(event.received),
        record.level,
        event.release,
        event.environment,
        event_payload(event),
    )


def event_from_payload(payload: dict[str, Any] | str) -> Event:
    """The stored Events.Payload back into an ``Event`` (for lookups)."""
    if isinstance(payload, str):
        return msgspec.json.decode(payload, type=Event)
    return msgspec.convert(dict(payload), type=Event)


EVENT_INLINE_COLUMNS: tuple[str, ...] = ("StoredEventId", "EventPayload")


def event_inline_values(record: intents.RecordEvent) -> tuple[Any, ...]:
    """The event stored on its own occurrence's row (Occurrences.StoredEventId and EventPayload)."""
    return (record.event.event_id, event_payload(record.event))


def release_values(project_id: int, version: str, first_seen: int) -> tuple[Any, ...]:
    return (project_id, version, _ts(first_seen))


# --- Mutation accounting -------------------------------------------------------------------------
# Spanner counts a mutation per column written, plus the cells of every secondary index the row touches,
# and refuses commits over 80,000 (real Spanner; the emulator does not enforce it). The index shapes come
# from the DDL shipped with the package, so adding an index keeps the accounting right.

_INDEX_RE = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?(?:NULL_FILTERED\s+)?INDEX\s+\w+\s+ON\s+`?(\w+)`?\s*\(([^)]*)\)"
    r"(?:\s*STORING\s*\(([^)]*)\))?",
    re.IGNORECASE,
)


@functools.cache
def index_cells_per_row() -> dict[str, int]:
    """Table -> cells one row adds across its secondary indexes (key columns + stored columns)."""
    ddl = resources.files("schemas").joinpath("spanner.sql").read_text()
    ddl = "\n".join(line.split("--", 1)[0] for line in ddl.splitlines())
    cells: dict[str, int] = {}
    for table, keys, storing in _INDEX_RE.findall(ddl):
        count = len([c for c in keys.split(",") if c.strip()]) + len(
            [c for c in storing.split(",") if c.strip()]
        )
        cells[table] = cells.get(table, 0) + count
    return cells


def mutation_cells(table: str, columns: int) -> int:
    """Mutations one written row costs: its columns plus its index entries."""
    return columns + index_cells_per_row().get(table, 0)


# --- Mutations, built directly as protobuf messages ------------------------------------------------------
# The client library converts every value through several Python layers; building the protobuf in place
# costs a fraction of that (docs/performance.md). Values must already be in wire form (see above).
# Two paths give the same mutations: the C extension ``_mutations`` (built by setup.py where a compiler
# exists) encodes a write's values to wire bytes that upb parses once; the pure-Python path sets them cell by
# cell. ``write_mutation`` is whichever runs in this process; one INFO line says which.


def _set_value(value: Any, out) -> None:
    if value is None:
        out.null_value = _NULL
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.string_value = str(value)
    elif isinstance(value, float):
        out.number_value = value
    elif isinstance(value, list | tuple):
        values = out.list_value.values
        for item in value:
            _set_value(item, values.add())
        if not values:
            out.list_value.SetInParent()  # an empty list is a list_value, as the client library writes it
    else:
        raise TypeError(f"no Spanner wire form for {type(value).__name__}: {value!r}")


def write_mutation_python(kind: str, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]):
    """A ``Mutation`` (``insert_or_update`` or ``update``) of ``rows``, built in place, cell by cell."""
    pb = _MUTATION_PB()
    write = getattr(pb, kind)
    write.table = table
    write.columns.extend(columns)
    add_row = write.values.add
    for row in rows:
        add = add_row().values.add
        for value in row:
            # The usual wire forms inline (text and NULL are most cells), in ``_set_value``'s order of
            # decision: bool is a subclass of int, so exact classes are compared.
            kind = value.__class__
            if kind is str:
                add().string_value = value
            elif value is None:
                add().null_value = _NULL
            elif kind is int:
                add().string_value = str(value)
            else:
                _set_value(value, add())
    return Mutation.wrap(pb)


def write_mutation_native(kind: str, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]):
    """``write_mutation_python``'s mutation, its values encoded by the C extension and parsed once by upb."""
    pb = _MUTATION_PB()
    write = getattr(pb, kind)
    write.table = table
    write.columns.extend(columns)
    write.MergeFromString(_native.encode_values(rows))
    return Mutation.wrap(pb)


def write_mutation_encoded(kind: str, table: str, columns: Sequence[str], values: bytes):
    """``write_mutation``'s mutation of rows already encoded (``encode_values``' bytes, or ``encode_table``'s)."""
    pb = _MUTATION_PB()
    write = getattr(pb, kind)
    write.table = table
    write.columns.extend(columns)
    write.MergeFromString(values)
    return Mutation.wrap(pb)


_MUTATION_PB = Mutation.pb()
_NULL = struct_pb2.NULL_VALUE
write_mutation = write_mutation_python if _native is None else write_mutation_native
# ``_mutations.encode_table`` (``commit_plan.mutation_groups``' rows grouped and encoded in one pass), or None.
encode_table = None if _native is None else _native.encode_table
