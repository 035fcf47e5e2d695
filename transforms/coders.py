"""Beam coders for the message model: msgpack through msgspec, typed, compact and fast.

Registered for ``Message``, ``DeadLetter`` and ``RawMessage`` when this module is imported, so every
PCollection of those types (and the buffers of the stateful DoFn) uses them instead of pickle.
"""

from __future__ import annotations

from typing import Any

import msgspec
from apache_beam import coders

from transforms.core.model import DeadLetter, Event, Message, RawMessage


class MsgspecCoder(coders.Coder):
    """Encodes one msgspec type as msgpack. Deterministic for our frozen structs of plain values."""

    def __init__(self, type_: type) -> None:
        self._type = type_
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(type_)

    def encode(self, value: Any) -> bytes:
        return self._encoder.encode(value)

    def decode(self, encoded: bytes) -> Any:
        return self._decoder.decode(encoded)

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self):
        return self._type

    def __reduce__(self):
        return (type(self), (self._type,))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._type is other._type

    def __hash__(self) -> int:
        return hash((type(self), self._type))


class MessageCoder(MsgspecCoder):
    def __init__(self, type_: type = Message) -> None:
        super().__init__(type_)


class DeadLetterCoder(MsgspecCoder):
    def __init__(self, type_: type = DeadLetter) -> None:
        super().__init__(type_)


class EventCoder(MsgspecCoder):
    def __init__(self, type_: type = Event) -> None:
        super().__init__(type_)


class RawMessageCoder(MsgspecCoder):
    def __init__(self, type_: type = RawMessage) -> None:
        super().__init__(type_)


coders.registry.register_coder(Message, MessageCoder)
coders.registry.register_coder(DeadLetter, DeadLetterCoder)
coders.registry.register_coder(RawMessage, RawMessageCoder)
coders.registry.register_coder(Event, EventCoder)


def typed(outputs, **element_types: Any):
    """Declare the element types of a multi-output ParDo's outputs, so Beam picks our coders for them.

    Beam reads return annotations as strings here (``from __future__ import annotations``) and leaves tagged
    outputs untyped: without this, their elements would be pickled between stages.
    """
    for tag, element_type in element_types.items():
        outputs[tag].element_type = element_type
    return outputs
