"""What the stateful step receives: a message routed to its key (``Routed``), encoded once for the shuffle.

``AttachProject`` (stateless, before the shuffle) looks each message's project up in the registry side input
and wraps it in a ``Routed``; the stateful step buffers ``Routed.encoded`` as it came and decodes it
(``decode_message``) only when it applies the message. A ``Routed.wake`` carries no message: it wakes a key
named in ``WaitingKeys`` (``transforms.waiting_keys``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import apache_beam as beam
import msgspec
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from transforms import coders, internal_errors
from transforms.core import metrics, reasons
from transforms.core.model import Message, Occurrence, ProjectInfo

DEAD_LETTER = "dead_letter"

_MESSAGE_ENCODER = msgspec.msgpack.Encoder()

# ``decode_message(encoded)``: a message as ``Routed.of`` encoded it (msgpack; the buffer keeps messages in
# this form). The decoder's own method, so that a flush decodes each message without a Python call.
decode_message: Callable[[bytes | msgspec.Raw], Message] = msgspec.msgpack.Decoder(Message).decode


class Routed(msgspec.Struct, frozen=True, array_like=True):
    """A message on its way to its key's state, encoded once (the stateful step buffers those bytes as they
    are and decodes them when it applies the message), with what that step reads before then: the message
    time, the event an occurrence without its event looks up, and the project as the registry had it (None:
    unknown). Build with ``Routed.of``."""

    encoded: msgspec.Raw
    message_time: int  # µs
    lookup: tuple[int, str] | None = None  # (project id, event id)
    project: ProjectInfo | None = None

    @classmethod
    def wake(cls, project: ProjectInfo | None) -> Routed:
        """A wake-up of a key named in ``WaitingKeys`` (``transforms.waiting_keys``): no message."""
        return cls(msgspec.Raw(b"\xc0"), WAKE_TIME, None, project)

    @classmethod
    def of(cls, message: Message, project: ProjectInfo | None = None) -> Routed:
        payload = message.payload
        lookup = None
        if payload.__class__ is Occurrence and payload.event is None:
            lookup = (payload.project_id, payload.event_id)
        return cls(msgspec.Raw(_MESSAGE_ENCODER.encode(message)), message.message_time, lookup, project)


# The message time of a wake-up: outside the years 1 to 9999 that every message time is within.
WAKE_TIME = -(1 << 62)


class RoutedCoder(coders.MsgspecCoder):
    def __init__(self, type_: type = Routed) -> None:
        super().__init__(type_)


beam.coders.registry.register_coder(Routed, RoutedCoder)


class AttachProject(beam.DoFn):
    """``(key, Message)`` → ``(key, Routed)``: the registry side input read outside the stateful step. A
    message that cannot be encoded for the shuffle (``Routed.of``) becomes a dead letter ``internal_error``
    (stage ``key``)."""

    def process(self, element: tuple[str, Message], projects: Mapping[int, ProjectInfo]) -> Iterator[Any]:
        key, message = element
        try:
            routed = key, Routed.of(message, projects.get(message.project_id))
        except Exception as error:  # the last line of defence: the message, not the pipeline
            Metrics.counter(metrics.NAMESPACE, metrics.dead_letter_counter(reasons.INTERNAL_ERROR)).inc()
            routed = pvalue.TaggedOutput(
                DEAD_LETTER, internal_errors.for_message(message, reasons.STAGE_KEY, error)
            )
        yield routed
