"""Everything a decoded message goes through after decoding, without a server (the fast hostile layer).

``after_decoding(decoded)`` takes what ``decode`` returned and runs it through the steps that follow, with the
real code: the shuffle and buffer coders (``MessageCoder``, ``Routed``, ``Resolved``), the group engine (pure
core) in streaming and backfill configuration with the key state's encoder, the Spanner writer's mutation
planning and row builders (``plan_commit``, ``spanner_rows``), the protobuf mutations, and the dead-letter
encoders. Any exception escapes (the test fails); what real Spanner would refuse in a planned row is returned
as a list of problems (``spanner_limits``), since the emulator does not enforce every limit. A dead letter
must fit what Pub/Sub carries (``pubsub_problems``) once made into a Pub/Sub message, since the emulator does
not enforce Pub/Sub's limits either.

An occurrence is applied as often as its type's noise gate needs (copies with their own ids), so its group is
created and its rows are written; then once more as a later occurrence of the existing group, and as a
duplicate. A lookup occurrence first waits (its state is encoded with it), then finds its event. A status
change is applied to a group made for its key first.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from tests.hostile import spanner_limits
from transforms.apply_per_group import Routed, RoutedCoder, decode_message
from transforms.coders import DeadLetterCoder, MessageCoder
from transforms.core import limits, model, reasons
from transforms.core.engine import EngineConfig, EngineContext, apply
from transforms.core.engine.events import without_bytes
from transforms.core.engine.state import decode_state
from transforms.core.envelopes import dead_letter_to_line, dead_letter_to_pubsub
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.intents import KeyWrite, SaveKeyState
from transforms.core.model import (
    DeadLetter,
    Event,
    Message,
    Occurrence,
    ProjectInfo,
    StatusChange,
    carried_event,
    full_event,
)
from transforms.event_join import Resolved, ResolvedCoder
from transforms.storage.spanner_rows import write_mutation
from transforms.storage.spanner_writer import StoredVersions, new_keys, plan_commit

ALL_FEATURES = frozenset(group_type.ingest_feature for group_type in GROUP_TYPES.values())
MINUTE = 60_000_000
INJECTED_RELEASE = "r" * 9000  # longer than a Spanner key holds (8 KiB): decoding would have removed it


class _NoReleases:
    def first_seen(self, project_id: int, version: str) -> int | None:
        return None


def project_of(project_id: int) -> ProjectInfo:
    return ProjectInfo(project_id, 1, "hostile", "hostile-org", ALL_FEATURES)


def after_decoding(decoded: Message | DeadLetter) -> list[str]:
    """Problems real Spanner would have with what this message becomes (empty: none); raises on any error."""
    if isinstance(decoded, DeadLetter):
        _dead_letter(decoded)
        return []
    shuffled = _coders(decoded)
    problems: list[str] = []
    for streaming in (True, False):
        # streaming applies the message as its flush decodes it (its event carried), a backfill as decoded
        for write, dead_letters in _applied(shuffled if streaming else decoded, streaming):
            problems.extend(_write_problems(write))
            for dead_letter in dead_letters:
                _dead_letter(dead_letter)
    return problems


def injected_release(decoded: Message | DeadLetter) -> Message | DeadLetter:
    """The message with its event's release replaced by ``INJECTED_RELEASE``: a write Spanner refuses. A
    carried event (``model.carried_event``: decoding carries it for the shuffle) is carried again from the
    changed whole event, so that its JSON text says what its fields say, as decoding makes it."""
    payload = getattr(decoded, "payload", None)
    if not isinstance(payload, Occurrence) or payload.event is None:
        return decoded
    event = msgspec.structs.replace(full_event(payload.event), release=INJECTED_RELEASE)
    if payload.event.stored_json is not None:
        event = carried_event(event) or event
    return msgspec.structs.replace(decoded, payload=msgspec.structs.replace(payload, event=event))


def pubsub_problems(data: bytes, attributes: dict[str, str]) -> list[str]:
    """What real Pub/Sub would refuse in a message it is asked to publish (empty: nothing)."""
    problems = []
    if len(attributes) > limits.PUBSUB_MAX_ATTRIBUTES:
        problems.append(f"{len(attributes)} attributes, more than {limits.PUBSUB_MAX_ATTRIBUTES}")
    for key, value in attributes.items():
        if not 0 < len(key.encode()) <= limits.PUBSUB_MAX_ATTRIBUTE_KEY_BYTES:
            problems.append(f"an attribute key of {len(key.encode())} bytes")
        if len(value.encode()) > limits.PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES:
            problems.append(f"attribute {key[:20]!r} has a value of {len(value.encode())} bytes")
    if len(data) > limits.PUBSUB_MAX_MESSAGE_BYTES:
        problems.append(f"{len(data)} bytes of data")
    return problems


def _dead_letter(dead_letter: DeadLetter) -> None:
    assert dead_letter.reason in reasons.ALL_REASONS, dead_letter.reason
    assert dead_letter.error, "a dead letter must say what is wrong"
    coder = DeadLetterCoder()
    assert coder.decode(coder.encode(dead_letter)) == dead_letter
    dead_letter_to_line(dead_letter)
    assert pubsub_problems(*dead_letter_to_pubsub(dead_letter)) == []


def _with_evidence(message: Message) -> Message:
    """``message`` with its occurrence's evidence decoded (msgpack keeps it as its bytes: model.EvidenceData)."""
    payload = message.payload
    if not isinstance(payload, Occurrence):
        return message
    return msgspec.structs.replace(message, payload=model.with_evidence(payload))


def _coders(message: Message) -> Message:
    """Asserts the coders give the message back; returns it as a flush decodes it (its event carried)."""
    coder = MessageCoder()
    assert _with_evidence(coder.decode(coder.encode(message))) == message
    keyed = without_bytes(message)
    routed = Routed.of(keyed, project_of(message.project_id))
    routed_coder = RoutedCoder()
    shuffled = decode_message(routed_coder.decode(routed_coder.encode(routed)).encoded)
    payload = shuffled.payload
    if isinstance(payload, Occurrence) and payload.event is not None:  # carried: its whole event is the same
        whole = msgspec.structs.replace(model.with_evidence(payload), event=full_event(payload.event))
        assert msgspec.structs.replace(shuffled, payload=whole) == keyed
    else:
        assert _with_evidence(shuffled) == keyed
    resolved = Resolved(keyed, _event_of(message))
    resolved_coder = ResolvedCoder()
    again = resolved_coder.decode(resolved_coder.encode(resolved))
    assert msgspec.structs.replace(again, message=_with_evidence(again.message)) == resolved
    return shuffled


def _event_of(message: Message) -> Event | None:
    payload = message.payload
    if isinstance(payload, Occurrence):
        return payload.event or Event(payload.event_id, payload.project_id, "python", message.message_time)
    return None


def _copy(message: Message, index: int, later: int = 0) -> Message:
    """The message as another occurrence of its key: its own occurrence id and message id."""
    payload = message.payload
    if isinstance(payload, Occurrence):
        payload = msgspec.structs.replace(payload, id=f"{index:032x}")
    return msgspec.structs.replace(
        message,
        message_id=f"{message.message_id}#{index}",
        message_time=message.message_time + later,
        payload=payload,
    )


def _context(message: Message, streaming: bool, events: dict[str, Event] | None = None) -> EngineContext:
    return EngineContext(
        project=project_of(message.project_id),
        config=EngineConfig(wait_for_events=streaming),
        now=0,
        quota=None,
        events=events or {},
        releases=_NoReleases(),
    )


def _applied(message: Message, streaming: bool) -> Iterator[tuple[KeyWrite, list[DeadLetter]]]:
    payload = message.payload
    state = None
    if isinstance(payload, StatusChange):
        creator = _group_creator(payload, message.message_time - MINUTE)
        state, outputs = apply(None, [creator], _context(message, streaming))
        if outputs.write is not None:
            yield outputs.write, list(outputs.dead_letters)
        batches = [[message], [message]]
        events: dict[str, Event] = {}
    else:
        group_type = GROUP_TYPES[payload.type]
        copies = group_type.noise_config.ignore_limit if group_type.noise_config else 1
        batches = [
            [message, *(_copy(message, index) for index in range(1, copies))],
            [_copy(message, copies, later=MINUTE)],
            [message],
        ]
        event = _event_of(message)
        events = {event.event_id: event} if payload.event is None and event is not None else {}
    for batch in batches:
        state, outputs = apply(state, batch, _context(message, streaming))
        if outputs.write is not None:
            yield outputs.write, list(outputs.dead_letters)
        if events:  # a lookup that waited: its event is there now
            state, outputs = apply(state, [], _context(message, streaming, events))
            if outputs.write is not None:
                yield outputs.write, list(outputs.dead_letters)


def _group_creator(change: StatusChange, message_time: int) -> Message:
    """An ordinary occurrence of the status change's key, so it has a group to change."""
    event = Event("e" * 32, change.project_id, "python", message_time)
    occurrence = Occurrence(
        id="c" * 32,
        project_id=change.project_id,
        event_id=event.event_id,
        fingerprint=change.fingerprint,
        hashes=change.hashes,
        issue_title="creator",
        subtitle="",
        type=1,
        detection_time=message_time,
        event=event,
    )
    return Message("creator", message_time, occurrence)


def _write_problems(write: KeyWrite) -> list[str]:
    for intent in write.intents:
        if isinstance(intent, SaveKeyState) and intent.state is not None:
            decode_state(intent.state)
    plan = plan_commit([write], StoredVersions(), new_keys([write]))
    problems = []
    for table, planned in plan.upserts.items():
        for columns, values in planned.values():
            problems.extend(spanner_limits.violations(table, columns, values))
            write_mutation("insert_or_update", table, columns, [values])
    return problems
