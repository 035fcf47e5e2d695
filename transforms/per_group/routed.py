"""What the stateful step receives: a message routed to its key (``Routed``), encoded once for the shuffle.

``AttachProject`` (stateless, before the shuffle) looks each message's project up in the registry side input
and wraps it in a ``Routed``; the stateful step buffers ``Routed.encoded`` as it came and decodes it
(``decode_message``) only when it applies the message. ``Routed.encoded`` travels as a msgpack bin, so that
the shuffle's decoding gives the bytes the buffer keeps (a copy made in C) instead of a view that the step
copied; ``RoutedCoder`` still reads the layout before (the message embedded as a msgpack value), which an
updated job may find in flight. A ``Routed.wake`` carries no message: it wakes a key
named in ``WaitingKeys`` (``transforms.waiting_keys``).

An occurrence's event crosses carried (``model.Event``, ``carried_message``): its JSON text, which its rows
store, instead of its JSON trees, which a flush then need not decode (nor the applier encode); the tags, read
only for an occurrence that attaches, take the whole event from the text (``engine.tags.index_tags``). A
message encoded before carrying (its event whole) is decoded and applied as it is.

The project travels encoded too (``Routed.project``, and so ``KeyMeta.project`` in the key's ``meta``): its
msgpack bytes, the same as the ``ProjectInfo`` field they replace, so the stored forms did not change. Only a
flush reads it (``project_info``); the callbacks that decode and encode the key's ``meta`` once or more per
message, and the shuffle's decoding, copy those bytes instead of building a ``ProjectInfo`` with its set of
features each time (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import apache_beam as beam
import msgspec
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from transforms import coders, internal_errors
from transforms.core import metrics, reasons
from transforms.core.model import Message, Occurrence, ProjectInfo, carried_message

DEAD_LETTER = "dead_letter"

_MESSAGE_ENCODER = msgspec.msgpack.Encoder()

# ``decode_message(encoded)``: a message as ``Routed.of`` encoded it (msgpack; the buffer keeps messages in
# this form). The decoder's own method, so that a flush decodes each message without a Python call.
decode_message: Callable[[bytes | msgspec.Raw], Message] = msgspec.msgpack.Decoder(Message).decode


# ``Routed.project`` and ``KeyMeta.project`` of a project the registry does not have: msgpack's nil (None).
NO_PROJECT = msgspec.Raw(b"\xc0")

_PROJECT_DECODER = msgspec.msgpack.Decoder(ProjectInfo)
_MAX_CACHED_PROJECTS = 10_000
# The registry's ProjectInfo objects by id, with their encoding (the object is kept, so its id is not reused).
_ENCODED_PROJECTS: dict[int, tuple[ProjectInfo, msgspec.Raw]] = {}
# ProjectInfo by encoding (a project's encoding is the same bytes in every message routed to it).
_DECODED_PROJECTS: dict[bytes, ProjectInfo] = {}


def encode_project(project: ProjectInfo | None) -> msgspec.Raw:
    """``project`` msgpack-encoded (``NO_PROJECT`` for None), once per registry object."""
    if project is None:
        return NO_PROJECT
    found = _ENCODED_PROJECTS.get(id(project))
    if found is not None and found[0] is project:
        return found[1]
    if len(_ENCODED_PROJECTS) >= _MAX_CACHED_PROJECTS:  # a registry read again keeps making new objects
        _ENCODED_PROJECTS.clear()
    encoded = msgspec.Raw(_MESSAGE_ENCODER.encode(project))
    _ENCODED_PROJECTS[id(project)] = (project, encoded)
    return encoded


def project_info(encoded: msgspec.Raw) -> ProjectInfo | None:
    """The project ``encode_project`` encoded (None for ``NO_PROJECT``), decoded once per distinct encoding."""
    data = bytes(encoded)
    project = _DECODED_PROJECTS.get(data)
    if project is None:
        if data == b"\xc0":
            return None
        if len(_DECODED_PROJECTS) >= _MAX_CACHED_PROJECTS:
            _DECODED_PROJECTS.clear()
        project = _DECODED_PROJECTS[data] = _PROJECT_DECODER.decode(data)
    return project


class Routed(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A message on its way to its key's state, encoded once (the stateful step buffers those bytes as they
    are and decodes them when it applies the message), with what that step reads before then: the message
    time, the event an occurrence without its event looks up, and the project as the registry had it (encoded,
    ``NO_PROJECT``: unknown). Build with ``Routed.of``. Not tracked by the collector (``gc=False``): its
    fields (bytes, int, a tuple of int and str, msgpack bytes) can be part of no reference cycle, and one is
    built a message at ingestion and again by the shuffle's decoding."""

    encoded: bytes  # the message, msgpack (decode_message)
    message_time: int  # µs
    lookup: tuple[int, str] | None = None  # (project id, event id)
    project: msgspec.Raw = NO_PROJECT  # encode_project's bytes (read with project_info)

    @classmethod
    def wake(cls, project: ProjectInfo | None) -> Routed:
        """A wake-up of a key named in ``WaitingKeys`` (``transforms.waiting_keys``): no message."""
        return cls(b"\xc0", WAKE_TIME, None, encode_project(project))

    @classmethod
    def of(cls, message: Message, project: ProjectInfo | None = None) -> Routed:
        payload = message.payload
        lookup = None
        if payload.__class__ is Occurrence:
            event = payload.event
            if event is None:
                lookup = (payload.project_id, payload.event_id)
            elif event.stored_json is None:  # decoded whole (decode's carry not asked, or its Python path)
                message = carried_message(message)
        found = _ENCODED_PROJECTS.get(id(project))  # encode_project's cache, looked up here first
        return cls(
            _MESSAGE_ENCODER.encode(message),
            message.message_time,
            lookup,
            found[1] if found is not None and found[0] is project else encode_project(project),
        )


# The message time of a wake-up: outside the years 1 to 9999 that every message time is within.
WAKE_TIME = -(1 << 62)


class _EmbeddedRouted(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """``Routed``'s layout before ``encoded`` was a msgpack bin: the message embedded as a msgpack value."""

    encoded: msgspec.Raw
    message_time: int
    lookup: tuple[int, str] | None = None
    project: msgspec.Raw = NO_PROJECT


class RoutedCoder(coders.MsgspecCoder):
    """``Routed`` as msgpack; reads the earlier layout too (``_EmbeddedRouted``), as a ``Routed``."""

    def __init__(self, type_: type = Routed) -> None:
        super().__init__(type_)
        self._embedded = msgspec.msgpack.Decoder(_EmbeddedRouted)

    def decode(self, encoded: bytes) -> Any:
        try:
            return self._decoder.decode(encoded)
        except msgspec.ValidationError:  # the earlier layout: its first field is not a bin
            earlier = self._embedded.decode(encoded)
            return Routed(bytes(earlier.encoded), earlier.message_time, earlier.lookup, earlier.project)


beam.coders.registry.register_coder(Routed, RoutedCoder)


class AttachProject(beam.DoFn):
    """``(key, Message)`` → ``(key, Routed)``: the registry side input read outside the stateful step. A
    message that cannot be encoded for the shuffle (``Routed.of``) becomes a dead letter ``internal_error``
    (stage ``key``)."""

    def process(self, element: tuple[str, Message], projects: Mapping[int, ProjectInfo]) -> Iterable[Any]:
        # A tuple, not a generator: Beam iterates whatever process returns (one output a message here).
        key, message = element
        try:
            return ((key, Routed.of(message, projects.get(message.payload.project_id))),)
        except Exception as error:  # the last line of defence: the message, not the pipeline
            Metrics.counter(metrics.NAMESPACE, metrics.dead_letter_counter(reasons.INTERNAL_ERROR)).inc()
            return (
                pvalue.TaggedOutput(
                    DEAD_LETTER, internal_errors.for_message(message, reasons.STAGE_KEY, error)
                ),
            )
