"""The event of an occurrence: three paths, and lookups that wait (rule 3.2, 3.3, E7, E13).

* ``event`` present and ``is_buffered_spans``: the payload's event is used and
  not stored.
* ``event`` present otherwise: the event is stored (``RecordEvent``) and used,
  before the noise gate, quota and category checks (so it is stored even when
  the occurrence is dropped there). Feature-gated occurrences store nothing,
  nor do occurrences older than the delete that ended their generation (rule
  6.4: their event would have gone with the deleted group's occurrence rows).
* ``event`` absent: the event is looked up among the stored events of the
  project (``EngineContext.events``, prefetched by the shell for
  ``needed_event_ids``) and the events stored earlier in the same call.

A lookup that misses, in streaming (``wait_for_events``), puts the occurrence
in the key's waiting list (first wait = ``context.now``) without holding up
later messages; every later call retries it first, applies it as a late
message once its event is there, and dead-letters it ``event_not_found``
(stage ``apply``, original bytes and attributes) once ``context.now`` reaches
its deadline (first wait + ``lookup_retry_window``). In a backfill a miss is a
dead letter at once. A waiting occurrence counts as known to the duplicate
memory; a dead-lettered one leaves no trace in the state (E13).
"""

from __future__ import annotations

from collections.abc import Iterable

from transforms.core import reasons
from transforms.core.engine.state import KeyState, WaitingLookup
from transforms.core.model import DeadLetter, Message, Occurrence


def waiting_lookup(message: Message, occurrence: Occurrence, now: int, window: int) -> WaitingLookup:
    return WaitingLookup(
        message_id=message.message_id,
        message_time=message.message_time,
        occurrence=occurrence,
        data=message.data,
        attributes=message.attributes,
        first_wait=now,
        deadline=now + window,
    )


def event_not_found(
    message_id: str,
    message_time: int,
    occurrence: Occurrence,
    data: bytes,
    attributes: dict[str, str],
    waited: bool,
) -> DeadLetter:
    detail = "within the lookup retry window" if waited else "(backfills do not wait for events)"
    return DeadLetter(
        message_id=message_id,
        message_time=message_time,
        data=data,
        attributes=attributes,
        reason=reasons.EVENT_NOT_FOUND,
        error=(
            f"event {occurrence.event_id} of project {occurrence.project_id} was not found {detail}; "
            "send the occurrence with its event, or store the event first and replay this message"
        ),
        stage=reasons.STAGE_APPLY,
        project_id=occurrence.project_id,
    )


def without_bytes(message: Message) -> Message:
    """The message without its delivered bytes, when no later stage can dead-letter it.

    After the project check, only an occurrence that looks its event up can still become a dead letter
    (``event_not_found``), which must carry the original bytes; every other message can travel and wait in
    state without them (they are most of its size).
    """
    payload = message.payload
    if payload.__class__ is Occurrence and payload.event is None:
        return message
    if not message.data and not message.attributes:
        return message
    return Message(message.message_id, message.message_time, payload)


def needed_event_ids(state: KeyState | None, messages: Iterable[Message]) -> set[str]:
    """The event ids the shell must prefetch before ``apply``: lookups in the batch and waiting ones."""
    needed = {
        payload.event_id
        for message in messages
        if (payload := message.payload).__class__ is Occurrence and payload.event is None
    }
    if state is not None:
        needed.update(waiting.occurrence.event_id for waiting in state.waiting)
    return needed


def next_lookup_deadline(state: KeyState) -> int | None:
    """The processing time at which a waiting lookup must be retried for the last time, or None."""
    if not state.waiting:
        return None
    return min(waiting.deadline for waiting in state.waiting)
