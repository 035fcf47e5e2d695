"""Backfill: resolve event lookups before keying (E7).

An occurrence without ``event`` (the lookup path) is joined on (project, event id) with the events carried
by the archive's other occurrences, and, for those the archive does not carry, with the Events table. Only
events that the pipeline would store can be found: event path, not buffered spans, not feature-gated (E13).
Every message comes out as a ``Resolved`` (the message and the event found for it, if it is a lookup);
a lookup whose event exists nowhere gets ``event=None`` and the engine dead-letters it (no waiting in a
backfill).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import apache_beam as beam
import msgspec
from apache_beam import coders as beam_coders
from apache_beam import typehints

from transforms.coders import MsgspecCoder, typed
from transforms.core.engine.events import without_bytes
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import Event, Message, Occurrence, ProjectInfo


class Resolved(msgspec.Struct, frozen=True):
    """A message on its way to its key, with the stored event its lookup needs (None otherwise)."""

    message: Message
    event: Event | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (self.message.message_time, self.message.message_id)

    @property
    def occurrence_id(self) -> str | None:
        payload = self.message.payload
        return payload.id if isinstance(payload, Occurrence) else None

    @property
    def lookup_event_id(self) -> str | None:
        return self.message.payload.event_id if is_lookup(self.message) else None


class ResolvedCoder(MsgspecCoder):
    def __init__(self, type_: type = Resolved) -> None:
        super().__init__(type_)


beam_coders.registry.register_coder(Resolved, ResolvedCoder)


def is_lookup(message: Message) -> bool:
    payload = message.payload
    return isinstance(payload, Occurrence) and payload.event is None


def stored_event(message: Message, projects: Mapping[int, ProjectInfo]) -> Event | None:
    """The event this message stores, if the engine would store it (E7, E13)."""
    payload = message.payload
    if not isinstance(payload, Occurrence) or payload.event is None or payload.is_buffered_spans:
        return None
    project = projects.get(payload.project_id)
    group_type = GROUP_TYPES.get(payload.type)
    if project is None or group_type is None or not group_type.allow_ingest(project.features):
        return None
    return payload.event


class JoinItem(msgspec.Struct, frozen=True):
    """One side of the join on (project, event id): a lookup occurrence, or an event the archive carries."""

    lookup: Message | None = None
    event: Event | None = None


class JoinItemCoder(MsgspecCoder):
    def __init__(self, type_: type = JoinItem) -> None:
        super().__init__(type_)


beam_coders.registry.register_coder(JoinItem, JoinItemCoder)


def join_key(project_id: int, event_id: str) -> str:
    return f"{project_id}:{event_id}"


class _SplitFn(beam.DoFn):
    """Lookups go to the join; every other message is resolved as it is (without its delivered bytes)."""

    LOOKUPS = "lookups"

    def process(self, message: Message) -> Iterator:
        if is_lookup(message):
            yield beam.pvalue.TaggedOutput(
                self.LOOKUPS,
                (join_key(message.project_id, message.payload.event_id), JoinItem(lookup=message)),
            )
            return
        yield Resolved(without_bytes(message))


class _CarriedEventsFn(beam.DoFn):
    """The stored events that some lookup of the archive needs (most events are never looked up)."""

    def process(
        self, message: Message, projects: Mapping[int, ProjectInfo], needed: Mapping[str, bool]
    ) -> Iterator:
        event = stored_event(message, projects)
        if event is None:
            return
        key = join_key(event.project_id, event.event_id)
        if key in needed:
            yield key, JoinItem(event=event)


def _pick(events: Iterable[Event]) -> Event | None:
    """One of the copies of an event: the same one whatever the order (they should all be equal)."""
    chosen = None
    chosen_bytes = b""
    for event in events:
        encoded = msgspec.msgpack.encode(event)
        if chosen is None or encoded < chosen_bytes:
            chosen, chosen_bytes = event, encoded
    return chosen


class _JoinFn(beam.DoFn):
    """Lookups get the event the archive carries, if any (the others are looked up in the database later)."""

    def process(self, joined) -> Iterator[Resolved]:
        _key, items = joined
        lookups: list[Message] = []
        events: list[Event] = []
        for item in items:
            if item.lookup is not None:
                lookups.append(item.lookup)
            elif item.event is not None:
                events.append(item.event)
        event = _pick(events)
        for message in lookups:
            yield Resolved(message, event)


_KEYED_ITEM = typehints.Tuple[str, JoinItem]


def _needed(keyed: tuple[str, JoinItem]) -> tuple[str, bool]:
    return keyed[0], True


class ResolveLookups(beam.PTransform):
    """``Message`` → ``Resolved`` (see the module docstring). ``projects`` is the registry side input."""

    def __init__(self, projects, label: str | None = None) -> None:
        super().__init__(label)
        self._projects = projects

    def expand(self, messages):
        split = typed(
            messages | "SplitLookups" >> beam.ParDo(_SplitFn()).with_outputs(_SplitFn.LOOKUPS, main="others"),
            others=Resolved,
            **{_SplitFn.LOOKUPS: _KEYED_ITEM},
        )
        needed = split[_SplitFn.LOOKUPS] | "NeededEventIds" >> beam.Map(_needed).with_output_types(
            typehints.Tuple[str, bool]
        )
        carried = messages | "CarriedEvents" >> beam.ParDo(
            _CarriedEventsFn(), self._projects, beam.pvalue.AsDict(needed)
        ).with_output_types(_KEYED_ITEM)
        joined = (
            (split[_SplitFn.LOOKUPS], carried)
            | "MergeJoinSides" >> beam.Flatten().with_output_types(_KEYED_ITEM)
            | "JoinCarriedEvents" >> beam.GroupByKey()
            | "ResolveFromArchive" >> beam.ParDo(_JoinFn()).with_output_types(Resolved)
        )
        return (split["others"], joined) | "AllResolved" >> beam.Flatten().with_output_types(Resolved)
