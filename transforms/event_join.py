"""Backfill: resolve event lookups before keying (SEMANTICS E7).

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

from transforms import clients, state_store
from transforms.applier import SpannerTarget
from transforms.coders import MsgspecCoder
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import Event, Message, Occurrence, ProjectInfo


class Resolved(msgspec.Struct, frozen=True):
    """A message on its way to its key, with the stored event its lookup needs (None otherwise)."""

    message: Message
    event: Event | None = None


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


class _SplitFn(beam.DoFn):
    LOOKUPS = "lookups"
    EVENTS = "events"

    def process(self, message: Message, projects: Mapping[int, ProjectInfo]) -> Iterator:
        if is_lookup(message):
            yield beam.pvalue.TaggedOutput(
                self.LOOKUPS, ((message.project_id, message.payload.event_id), message)
            )
            return
        event = stored_event(message, projects)
        if event is not None:
            yield beam.pvalue.TaggedOutput(self.EVENTS, ((event.project_id, event.event_id), event))
        yield Resolved(message)


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
    """Lookups whose event the archive carries are resolved; the others go on to the Events table."""

    FROM_TABLE = "from_table"

    def process(self, joined) -> Iterator:
        _key, groups = joined
        lookups = list(groups["lookups"])
        if not lookups:
            return
        event = _pick(groups["events"])
        for message in lookups:
            if event is None:
                yield beam.pvalue.TaggedOutput(self.FROM_TABLE, message)
            else:
                yield Resolved(message, event)


class _ReadStoredEventsFn(beam.DoFn):
    """Resolves a batch of lookups against the Events table with one multi-key read."""

    def __init__(self, target: SpannerTarget) -> None:
        self._target = target

    def process(self, batch: list[Message]) -> Iterator[Resolved]:
        database = clients.spanner_database(
            self._target.project, self._target.instance, self._target.database
        )
        found = state_store.read_events(database, {(m.project_id, m.payload.event_id) for m in batch})
        for message in batch:
            yield Resolved(message, found.get((message.project_id, message.payload.event_id)))


class ResolveLookups(beam.PTransform):
    """``Message`` → ``Resolved`` (see the module docstring). ``projects`` is the registry side input."""

    def __init__(self, target: SpannerTarget, projects, label: str | None = None) -> None:
        super().__init__(label)
        self._target = target
        self._projects = projects

    def expand(self, messages):
        split = messages | "SplitLookups" >> beam.ParDo(_SplitFn(), self._projects).with_outputs(
            _SplitFn.LOOKUPS, _SplitFn.EVENTS, main="others"
        )
        joined = (
            {"lookups": split[_SplitFn.LOOKUPS], "events": split[_SplitFn.EVENTS]}
            | "JoinCarriedEvents" >> beam.CoGroupByKey()
            | "ResolveFromArchive" >> beam.ParDo(_JoinFn()).with_outputs(_JoinFn.FROM_TABLE, main="resolved")
        )
        from_table = (
            joined[_JoinFn.FROM_TABLE]
            | "BatchForEventsTable" >> beam.BatchElements(min_batch_size=1, max_batch_size=500)
            | "ResolveFromEventsTable" >> beam.ParDo(_ReadStoredEventsFn(self._target))
        )
        return (split["others"], joined["resolved"], from_table) | "AllResolved" >> beam.Flatten()
