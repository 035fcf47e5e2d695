"""Backfill: apply each key's whole history through the group engine, in key order, in ordered chunks.

``KeyHistories`` does the work for any source of grouped histories; ``ApplyKeyHistories`` feeds it the
output of a ``GroupByKey`` of ``(key, Resolved)`` (the Dataflow path), ``transforms.local_grouping`` feeds
it spilled shards (the local path). Contract:

* **Order.** A key's messages are applied in (message time, message id) order. A key with more than
  ``chunk_size`` messages is applied in consecutive chunks of that order (the engine gives the same result
  for any split into consecutive batches), so a very hot key never has more than ``chunk_size`` decoded
  messages in memory: a first pass over the grouped values reads only their sort keys, then each chunk is
  picked from a new pass.
* **Continuity.** Keys are hydrated from Spanner in batches of ``hydrate_batch`` keys (one read for their
  states, one for the occurrences of their current groups that the archive carries again, one for events
  that lookups need and the archive does not carry), so a backfill can run into a live database, and running
  it twice changes nothing the second time.
* **Writes** are committed by the shared ``GroupApplier`` every ``flush_messages`` applied messages (on its
  writer thread, at most two flushes queued) and at the end of each bundle; a key's writes are committed in order, within one bundle.
  A key whose write Spanner refuses is applied again without the refused message (``GroupApplier.rebuild``)
  as soon as this thread next looks (after each chunk, and at the end of the bundle): the key's history goes
  on from the rebuilt state, and the message is a dead letter.

A grouped value is anything with ``order`` ((message time, message id)), ``occurrence_id`` (None for status
changes), ``lookup_event_id`` (the event id a lookup needs, else None), ``message`` and ``event`` (the
event found for a lookup by the archive join, else None): ``Resolved`` or a spilled record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from google.cloud import spanner

from transforms import progress
from transforms.applier import ApplierConfig, GroupApplier
from transforms.coders import typed
from transforms.core.engine import KeyState
from transforms.core.model import DeadLetter, Event, Message, ProjectInfo, split_group_key
from transforms.counting import CountingDoFn
from transforms.storage import state_store

DEAD_LETTER = "dead_letter"


class GroupedValue(Protocol):
    @property
    def order(self) -> tuple[int, str]: ...
    @property
    def occurrence_id(self) -> str | None: ...
    @property
    def lookup_event_id(self) -> str | None: ...
    @property
    def message(self) -> Message: ...
    @property
    def event(self) -> Event | None: ...


def ordered_chunks(values: Iterable[GroupedValue], chunk_size: int) -> Iterator[list[GroupedValue]]:
    """The values in key order, as consecutive chunks of at most ``chunk_size`` (re-iterates ``values``)."""
    orders = sorted(value.order for value in values)
    if len(orders) <= chunk_size:
        yield sorted(values, key=lambda value: value.order)
        return
    bounds = [orders[min(start + chunk_size, len(orders)) - 1] for start in range(0, len(orders), chunk_size)]
    lower = None
    for upper in bounds:
        chunk = [value for value in values if (lower is None or value.order > lower) and value.order <= upper]
        chunk.sort(key=lambda value: value.order)
        yield chunk
        lower = upper


class KeyHistories:
    """Applies grouped key histories in batches of keys (see the module docstring). One per bundle."""

    def __init__(
        self,
        config: ApplierConfig,
        count: Callable[[str, int], None],
        *,
        chunk_size: int = 5000,
        hydrate_batch: int = 200,
        flush_messages: int = 5000,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self._applier = GroupApplier(config, count)
        self._chunk_size = chunk_size
        self._hydrate_batch = hydrate_batch
        self._flush_messages = flush_messages
        self._waiting: list[tuple[str, Iterable[GroupedValue]]] = []

    def add(
        self, key: str, values: Iterable[GroupedValue], projects: Mapping[int, ProjectInfo]
    ) -> list[DeadLetter]:
        """Queue one key's history; applies a batch of keys (and returns its dead letters) when one is full."""
        self._waiting.append((key, values))
        if len(self._waiting) >= self._hydrate_batch:
            return self._apply_waiting(projects)
        return []

    def finish(self, projects: Mapping[int, ProjectInfo]) -> list[DeadLetter]:
        """Apply what is queued and commit everything; call at the end of the bundle."""
        dead_letters = self._apply_waiting(projects)
        self._applier.flush()
        while self._applier.refusals:
            dead_letters.extend(self._rebuild_refused({}))
            self._applier.flush()
        self._applier.close()
        return dead_letters

    def _rebuild_refused(self, states: dict[str, KeyState | None]) -> list[DeadLetter]:
        """Rebuild the keys whose write Spanner refused; ``states`` gets each rebuilt key's state."""
        dead_letters: list[DeadLetter] = []
        for key in self._applier.refusals.held_keys():
            state, dead = self._applier.rebuild(key)
            states[key] = state
            dead_letters.extend(dead)
        return dead_letters

    def _apply_waiting(self, projects: Mapping[int, ProjectInfo]) -> list[DeadLetter]:
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return []
        states = self._applier.hydrate(key for key, _ in waiting)
        stored = self._stored_occurrences(waiting, states)
        stored_events = self._stored_events(waiting)
        dead_letters: list[DeadLetter] = []
        for key, values in waiting:
            project_id = split_group_key(key)[0]
            project = projects.get(project_id)
            if project is None:  # unregistered since the project check: nothing can be applied
                continue
            state = states.get(key)
            for chunk in ordered_chunks(values, self._chunk_size):
                events: dict[str, Event] = {}
                for value in chunk:
                    event_id = value.lookup_event_id
                    if event_id is not None:
                        event = value.event or stored_events.get((project_id, event_id))
                        if event is not None:
                            events[event_id] = event
                state, dead = self._applier.apply(
                    key,
                    state,
                    [value.message for value in chunk],
                    project,
                    events=events,
                    stored_occurrence_ids=stored.get(key, frozenset()),
                )
                dead_letters.extend(dead)
                progress.add(progress.APPLIED, len(chunk))
                if self._applier.pending_messages >= self._flush_messages:
                    self._applier.flush(wait=False)
                if self._applier.refusals:  # a write Spanner refused: its key goes on without the message
                    rebuilt: dict[str, KeyState | None] = {}
                    dead_letters.extend(self._rebuild_refused(rebuilt))
                    if rebuilt.get(key) is not None:
                        state = rebuilt[key]
        return dead_letters

    def _stored_events(
        self, waiting: list[tuple[str, Iterable[GroupedValue]]]
    ) -> dict[tuple[int, str], Event]:
        """Events that lookups need and the archive does not carry: from the database (one read)."""
        wanted = {
            (split_group_key(key)[0], value.lookup_event_id)
            for key, values in waiting
            for value in values
            if value.lookup_event_id is not None and value.event is None
        }
        return state_store.read_events(self._applier.database, wanted) if wanted else {}

    def _stored_occurrences(
        self, waiting: list[tuple[str, Iterable[GroupedValue]]], states: Mapping[str, KeyState]
    ) -> dict[str, frozenset[str]]:
        """Occurrences of the keys' current groups that this archive carries again (E7: always duplicates)."""
        wanted: list[list[Any]] = []
        owner: dict[int, str] = {}
        for key, values in waiting:
            state = states.get(key)
            if state is None or state.group is None:
                continue
            group_id = state.group.group_id
            owner[group_id] = key
            wanted.extend(
                [group_id, value.occurrence_id] for value in values if value.occurrence_id is not None
            )
        found: dict[str, set[str]] = {}
        if wanted:
            with self._applier.database.snapshot(multi_use=True) as snapshot:
                for start in range(0, len(wanted), 1000):
                    keyset = spanner.KeySet(keys=wanted[start : start + 1000])
                    for group_id, occurrence_id in snapshot.read(
                        "Occurrences", ("GroupId", "OccurrenceId"), keyset
                    ):
                        found.setdefault(owner[group_id], set()).add(occurrence_id)
        return {key: frozenset(ids) for key, ids in found.items()}


def dead_letter_in_finish_bundle(dead_letter: DeadLetter) -> pvalue.TaggedOutput:
    return pvalue.TaggedOutput(DEAD_LETTER, WindowedValue(dead_letter, MIN_TIMESTAMP, [GlobalWindow()]))


class ApplyKeyHistoriesFn(CountingDoFn):
    def __init__(self, config: ApplierConfig, *, chunk_size: int = 5000) -> None:
        self._config = config
        self._chunk_size = chunk_size

    def start_bundle(self) -> None:
        self._histories = KeyHistories(self._config, self._count, chunk_size=self._chunk_size)
        self._projects: Mapping[int, ProjectInfo] = {}

    def process(self, element, projects: Mapping[int, ProjectInfo]) -> Iterator[Any]:
        self._projects = projects
        key, values = element
        for dead_letter in self._histories.add(key, values, projects):
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)

    def finish_bundle(self) -> Iterator[Any]:
        for dead_letter in self._histories.finish(self._projects):
            yield dead_letter_in_finish_bundle(dead_letter)


class ApplyKeyHistories(beam.PTransform):
    """``(key, iterable of Resolved)`` → ``DoOutputsTuple`` with ``dead_letter`` (see the module docstring)."""

    def __init__(
        self, config: ApplierConfig, projects, *, chunk_size: int = 5000, label: str | None = None
    ) -> None:
        super().__init__(label)
        self._fn = ApplyKeyHistoriesFn(config, chunk_size=chunk_size)
        self._projects = projects

    def expand(self, grouped):
        outputs = grouped | "ApplyEngine" >> beam.ParDo(self._fn, self._projects).with_outputs(
            DEAD_LETTER, main="applied"
        )
        return typed(outputs, **{DEAD_LETTER: DeadLetter})
