"""The internal message model: what decoding produces and everything downstream consumes.

Nothing downstream knows whether a message arrived as JSON or protobuf. All
times are integers: microseconds since the Unix epoch, UTC. All UUIDs are 32
lowercase hex characters. Fingerprint parts are kept raw and hashed
(``hashes[i]`` is the lowercase hex MD5 of ``fingerprint[i]``); the primary
hash ``hashes[0]`` selects the group.

Every struct here is frozen and holds only plain data, so none can be part of a reference cycle: they are
declared ``gc=False``, which keeps the many a running pipeline holds (buffered messages, cached events) out
of the garbage collector's scans (what that saved: docs/performance.md). The JSON values they hold (an
event's tags, sdk, user, request, contexts) are never changed once built either; where the C extension
``_payload`` is built, ``Event.__post_init__`` (run wherever an event is built or decoded) untracks those of an
event, which a process keeps longest (``_payload.untrack_fields``: tests/decode/test_untracked.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from transforms.core import reasons
from transforms.core.extensions import load_extension

# ``_payload.untrack_fields(struct)``: untracks the containers of the struct's fields that hold only JSON values.
_native = load_extension("transforms.core", "_payload", "Untracking decoded JSON trees")
_untrack_fields = None if _native is None else _native.untrack_fields


class EvidenceItem(msgspec.Struct, frozen=True, gc=False):
    name: str
    value: str
    important: bool


class Resolution(msgspec.Struct, frozen=True, gc=False):
    """A release-aware resolution carried by a resolve status change (rule 1.4, 5.3)."""

    type: str  # transforms.core.enums.ResolutionType
    version: str


class Event(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """The kept fields of an occurrence's event (rule 1.3). ``level`` is the occurrence's.

    A *carried* event (``carried_event``) is how an occurrence's event crosses the shuffle: its JSON trees
    (``tags``, ``sdk``, ``user``, ``request``, ``contexts``) are left out, and ``stored_json`` holds the whole
    event's JSON text instead (``msgspec.json.encode``'s, made where the event was decoded), which is what its
    rows store (``spanner_rows.event_payload``), so that a flush does not decode the trees again and the
    applier does not encode them. Whatever reads the trees (the tags, a dead letter's JSON) takes the whole
    event, ``full_event`` (the text decoded). ``stored_json`` is None in every other event (decoded, built,
    looked up), whose JSON and encodings are as without the field.
    """

    event_id: str
    project_id: int
    platform: str
    timestamp: int
    received: int | None = None
    tags: tuple[tuple[str, str], ...] = ()
    release: str | None = None
    environment: str | None = None
    dist: str | None = None
    transaction: str | None = None
    server_name: str | None = None
    sdk: dict[str, Any] | None = None
    user: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    contexts: dict[str, Any] | None = None
    trace_id: str | None = None
    stored_json: str | None = None

    if _untrack_fields is not None:  # msgspec calls it after __init__ and after decoding (see the docstring)
        __post_init__ = _untrack_fields  # type: ignore[misc]  # a C function of the struct, as a method is


# What encoding an event's JSON raises for a value JSON cannot hold (``carried_event``, the rows' payloads).
UNENCODABLE = (TypeError, ValueError, RecursionError, OverflowError)


def carried_event(event: Event) -> Event | None:
    """``event`` as it crosses the shuffle (see ``Event``), or None where its JSON cannot be made (left to its
    rows, whose error it is, as without carrying)."""
    try:
        text = _JSON_ENCODE(event).decode()
    except UNENCODABLE:
        return None
    # Positional, in the order of the fields (keywords cost more): the trees left at their defaults.
    return Event(
        event.event_id,
        event.project_id,
        event.platform,
        event.timestamp,
        event.received,
        (),
        event.release,
        event.environment,
        event.dist,
        event.transaction,
        event.server_name,
        None,
        None,
        None,
        None,
        event.trace_id,
        text,
    )


def full_event(event: Event) -> Event:
    """The whole event: ``event`` itself, or the one a carried event's JSON text holds (equal to the event it
    was made of: JSON gives back every value an event holds)."""
    text = event.stored_json
    return event if text is None else _JSON_DECODER.decode(text)


class EventTrees(msgspec.Struct, frozen=True, gc=False):
    """An event's JSON trees (``Event``'s fields of these names, of the same types): those a carried event's
    text holds (``event_trees``), for what reads only them (the tags, in ``engine/_tags.c``)."""

    tags: tuple[tuple[str, str], ...] = ()
    sdk: dict[str, Any] | None = None
    user: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    contexts: dict[str, Any] | None = None


_JSON_ENCODE = msgspec.json.encode
_JSON_DECODER = msgspec.json.Decoder(Event)
# ``event_trees(text)``: the trees of the whole event a carried event's JSON text holds (``full_event``'s), its
# other fields skipped (they are the carried event's own). The decoder's own method: no call in between.
event_trees: Callable[[str], EventTrees] = msgspec.json.Decoder(EventTrees).decode


def carried_message(message: Message) -> Message:
    """``message`` as it crosses the shuffle: its occurrence's event carried (``carried_event``: the event's JSON
    text, made while the event is in the CPU's caches, instead of its JSON trees); ``message`` itself where
    there is no whole event to carry or it cannot be encoded."""
    occurrence = message.payload
    if type(occurrence) is not Occurrence:
        return message
    event = occurrence.event
    if event is None or event.stored_json is not None:
        return message
    carried = carried_event(event)
    if carried is None:
        return message
    return Message(
        message.message_id,
        message.message_time,
        msgspec.structs.replace(occurrence, event=carried),
        message.data,
        message.attributes,
    )


# An occurrence's evidence as built (decoding a message) or, once msgpack-decoded (the shuffle, key states,
# local grouping), the msgpack bytes it was encoded as: only the rows and feedback groups read it, and most
# buffered messages never become rows. Read it through ``evidence_display``/``evidence_data`` below. Only
# msgpack decodes an Occurrence (a JSON decode of one would keep JSON text there, which they cannot read).
if TYPE_CHECKING:
    EvidenceDisplay = tuple[EvidenceItem, ...] | msgspec.Raw
    EvidenceData = dict[str, Any] | None | msgspec.Raw
else:  # what msgspec decodes these fields as: their bytes, whatever value they hold
    EvidenceDisplay = EvidenceData = msgspec.Raw


class Occurrence(
    msgspec.Struct, frozen=True, omit_defaults=True, tag_field="kind", tag="occurrence", gc=False
):
    """An issue occurrence (Sentry's payload, rule 1.2), normalised. Its evidence fields may hold their
    msgpack bytes (``EvidenceDisplay``): compare or read them through ``evidence_display``/``evidence_data``."""

    id: str
    project_id: int
    event_id: str
    fingerprint: tuple[str, ...]
    hashes: tuple[str, ...]
    issue_title: str
    subtitle: str
    type: int
    detection_time: int
    evidence_display: EvidenceDisplay = ()
    level: str = "info"
    culprit: str = ""
    resource_id: str | None = None
    evidence_data: EvidenceData = None
    # The explicit priority (``priority`` wins over ``initial_issue_priority``); None means the type's default.
    priority: int | None = None
    assignee: str | None = None
    is_buffered_spans: bool = False
    event: Event | None = None

    @property
    def primary_hash(self) -> str:
        return self.hashes[0]


# The evidence fields' own decoders: a msgpack-decoded occurrence's evidence read later is what decoding it
# with the occurrence would have given.
decode_evidence_display: Callable[[msgspec.Raw], tuple[EvidenceItem, ...]] = msgspec.msgpack.Decoder(
    tuple[EvidenceItem, ...]
).decode
decode_evidence_data: Callable[[msgspec.Raw], dict[str, Any] | None] = msgspec.msgpack.Decoder(
    dict[str, Any] | None
).decode


def evidence_display(occurrence: Occurrence) -> tuple[EvidenceItem, ...]:
    """The occurrence's ``evidence_display`` items, decoded if it holds their msgpack bytes."""
    value = occurrence.evidence_display
    return decode_evidence_display(value) if isinstance(value, msgspec.Raw) else value


def evidence_data(occurrence: Occurrence) -> dict[str, Any] | None:
    """The occurrence's ``evidence_data``, decoded if it holds its msgpack bytes."""
    value = occurrence.evidence_data
    return decode_evidence_data(value) if isinstance(value, msgspec.Raw) else value


def with_evidence(occurrence: Occurrence) -> Occurrence:
    """``occurrence`` with its evidence decoded: equal to the occurrence it was msgpack-encoded from."""
    display, data = occurrence.evidence_display, occurrence.evidence_data
    if not isinstance(display, msgspec.Raw) and not isinstance(data, msgspec.Raw):
        return occurrence
    return msgspec.structs.replace(
        occurrence, evidence_display=evidence_display(occurrence), evidence_data=evidence_data(occurrence)
    )


class StatusChange(
    msgspec.Struct, frozen=True, omit_defaults=True, tag_field="kind", tag="status_change", gc=False
):
    """A status change (rule 1.4). ``id`` is the payload's, or the message id when absent."""

    id: str
    project_id: int
    fingerprint: tuple[str, ...]
    hashes: tuple[str, ...]
    new_status: int
    new_substatus: int | None = None
    resolution: Resolution | None = None

    @property
    def primary_hash(self) -> str:
        return self.hashes[0]


Payload = Occurrence | StatusChange


class RawMessage(msgspec.Struct, frozen=True, gc=False):
    """A message as delivered, before decoding: from Pub/Sub, an archive, or a dead-letter file.

    ``message_time`` is the Pub/Sub publish time, the configured timestamp
    attribute, or the archive's time for the message.
    """

    message_id: str
    message_time: int
    data: bytes
    attributes: dict[str, str] = {}


class Message(msgspec.Struct, frozen=True, gc=False):
    """A decoded, valid message with its transport envelope.

    ``data`` and ``attributes`` are the message as delivered, kept so that a
    later stage (project check, event lookup) can still dead-letter it in a
    replayable form.
    """

    message_id: str
    message_time: int
    payload: Payload
    data: bytes = b""
    attributes: dict[str, str] = {}

    @property
    def project_id(self) -> int:
        return self.payload.project_id

    @property
    def key(self) -> str:
        return group_key(self.payload.project_id, self.payload.hashes[0])

    @property
    def order(self) -> tuple[int, str]:
        """The key order of rule 2 and E4: message time, then message id as a string."""
        return (self.message_time, self.message_id)


class DeadLetter(msgspec.Struct, frozen=True, gc=False):
    """A message that cannot be processed, with why and where (rule 1.5, E11).

    ``project_id`` is set when decoding got far enough to read it. A dead letter
    whose reason ranks after ``unknown_project`` (E1) must still pass the
    project check: if the project is not registered, the reason becomes
    ``unknown_project`` (see ``after_project_check``).
    """

    message_id: str
    message_time: int
    data: bytes
    attributes: dict[str, str]
    reason: str
    error: str
    stage: str
    project_id: int | None = None

    @property
    def after_project_check(self) -> bool:
        return self.reason in reasons.AFTER_PROJECT_CHECK


Decoded = Message | DeadLetter


def group_key(project_id: int, primary_hash: str) -> str:
    """The key of rule 2 as a string, so that every runner encodes it deterministically."""
    return f"{project_id}:{primary_hash}"


def split_group_key(key: str) -> tuple[int, str]:
    project, _, primary_hash = key.partition(":")
    return int(project), primary_hash


MICROS = 1_000_000


def to_datetime(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // MICROS, tz=UTC).replace(microsecond=micros % MICROS)


def from_datetime(value: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds


def to_rfc3339(micros: int) -> str:
    """``2026-05-28T20:26:42.123456Z`` (fraction only when non-zero)."""
    seconds, fraction = divmod(micros, MICROS)
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        moment = to_datetime(seconds * MICROS)
        # Four-digit years always (strftime's %Y writes year 999 as "999", which is not RFC 3339).
        prefix = _SECONDS[seconds] = (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        )
    return f"{prefix}.{fraction:06d}Z" if fraction else prefix + "Z"


def from_rfc3339(text: str) -> int:
    """The inverse of ``to_rfc3339`` (any RFC 3339 time with an offset or Z)."""
    return from_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))


# Formatted "YYYY-MM-DDTHH:MM:SS" by second since the epoch: the timestamps written at a time share few seconds.
_SECONDS: dict[int, str] = {}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ProjectInfo(msgspec.Struct, frozen=True, gc=False):
    """A registered project, as the pipeline sees it (its side input of the Projects table).

    ``features`` are the organization's: the union of the features given to
    any of its projects (E10).
    """

    project_id: int
    organization_id: int
    slug: str
    organization_slug: str = ""
    features: frozenset[str] = frozenset()
