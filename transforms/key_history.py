"""Backfill: apply each key's whole history through the group engine, in key order, in ordered chunks.

``ApplyKeyHistories`` takes the output of a ``GroupByKey`` of ``(key, Resolved)`` and returns a
``DoOutputsTuple`` with the engine's dead letters on ``dead_letter``. Contract:

* **Order.** A key's messages are applied in (message time, message id) order. A key with more than
  ``chunk_size`` messages is applied in consecutive chunks of that order (the engine gives the same result
  for any split into consecutive batches), so a very hot key never has more than ``chunk_size`` decoded
  messages in memory: a first pass over the grouped values keeps only their sort keys, then each chunk is
  picked from a new pass.
* **Continuity.** Keys are hydrated from Spanner in batches of ``hydrate_batch`` keys (one read for their
  states, one for the occurrences of the current groups that the archive carries again), so a backfill can
  run into a live database, and running it twice changes nothing the second time.
* **Writes** are committed by the shared ``GroupApplier`` every ``flush_writes`` key writes and at the end of
  each bundle; a key's writes are committed in order, within one bundle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from google.cloud import spanner

from transforms import progress
from transforms.applier import ApplierConfig, GroupApplier
from transforms.core import metrics
from transforms.core.engine import KeyState
from transforms.core.model import DeadLetter, Message, Occurrence, ProjectInfo, split_group_key
from transforms.event_join import Resolved

DEAD_LETTER = "dead_letter"


def _order(message: Message) -> tuple[int, str]:
    return (message.message_time, message.message_id)


def ordered_chunks(values: Iterable[Resolved], chunk_size: int) -> Iterator[list[Resolved]]:
    """The values in key order, as consecutive chunks of at most ``chunk_size`` (re-iterates ``values``)."""
    orders = sorted(_order(value.message) for value in values)
    if len(orders) <= chunk_size:
        yield sorted(values, key=lambda value: _order(value.message))
        return
    bounds = [orders[min(start + chunk_size, len(orders)) - 1] for start in range(0, len(orders), chunk_size)]
    lower = None
    for upper in bounds:
        chunk = [
            value
            for value in values
            if (lower is None or _order(value.message) > lower) and _order(value.message) <= upper
        ]
        chunk.sort(key=lambda value: _order(value.message))
        yield chunk
        lower = upper


class ApplyKeyHistoriesFn(beam.DoFn):
    def __init__(
        self,
        config: ApplierConfig,
        *,
        chunk_size: int = 5000,
        hydrate_batch: int = 200,
        flush_writes: int = 2000,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self._config = config
        self._chunk_size = chunk_size
        self._hydrate_batch = hydrate_batch
        self._flush_writes = flush_writes

    def setup(self) -> None:
        self._counters: dict[str, Any] = {}

    def start_bundle(self) -> None:
        self._applier = GroupApplier(self._config, self._count)
        self._waiting: list[tuple[str, Iterable[Resolved]]] = []
        self._projects: Mapping[int, ProjectInfo] = {}

    def _count(self, name: str, amount: int) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(metrics.NAMESPACE, name)
        counter.inc(amount)
        progress.add(name, amount)

    def process(self, element, projects: Mapping[int, ProjectInfo]) -> Iterator[Any]:
        self._projects = projects
        self._waiting.append(element)
        if len(self._waiting) >= self._hydrate_batch:
            for dead_letter in self._apply_waiting():
                yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)

    def finish_bundle(self) -> Iterator[Any]:
        for dead_letter in self._apply_waiting():
            yield pvalue.TaggedOutput(
                DEAD_LETTER, WindowedValue(dead_letter, MIN_TIMESTAMP, [GlobalWindow()])
            )
        self._applier.flush()

    def _apply_waiting(self) -> list[DeadLetter]:
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return []
        states = self._applier.hydrate(key for key, _ in waiting)
        stored = self._stored_occurrences(waiting, states)
        dead_letters: list[DeadLetter] = []
        for key, values in waiting:
            project = self._projects.get(split_group_key(key)[0])
            state = states.get(key)
            for chunk in ordered_chunks(values, self._chunk_size):
                if project is None:  # unregistered since the project check: nothing can be applied
                    break
                events = {value.event.event_id: value.event for value in chunk if value.event is not None}
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
                if self._applier.pending_writes >= self._flush_writes:
                    self._applier.flush()
        return dead_letters

    def _stored_occurrences(
        self, waiting: list[tuple[str, Iterable[Resolved]]], states: Mapping[str, KeyState]
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
                [group_id, value.message.payload.id]
                for value in values
                if isinstance(value.message.payload, Occurrence)
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


class ApplyKeyHistories(beam.PTransform):
    """``(key, iterable of Resolved)`` → ``DoOutputsTuple`` with ``dead_letter`` (see the module docstring)."""

    def __init__(
        self, config: ApplierConfig, projects, *, chunk_size: int = 5000, label: str | None = None
    ) -> None:
        super().__init__(label)
        self._fn = ApplyKeyHistoriesFn(config, chunk_size=chunk_size)
        self._projects = projects

    def expand(self, grouped):
        return grouped | "ApplyEngine" >> beam.ParDo(self._fn, self._projects).with_outputs(
            DEAD_LETTER, main="applied"
        )
