"""Keys whose saved state holds occurrences waiting for their event, so that a new pipeline takes them up.

An occurrence that looks its event up waits for it in its key's state (``--lookup_retry_window``), retried by a
processing-time timer. When the pipeline stops (a local stop or a Dataflow drain: the state is saved in
Spanner; a crash or a cancel: the state as last saved), that timer is gone, and a new pipeline reads a key's
state only when the key gets a message: an occurrence waiting on a key that gets no other message would wait
for ever, neither applied nor dead-lettered.

The ``WaitingKeys`` table names those keys. The stateful step writes a key's row when the key starts waiting
(before the commit of the state it waits in, so a saved waiting state always has its row) and deletes it once
nothing waits any more (after the commit that settles the last one). It is a hint, not a state: a row whose
key no longer waits (a delete lost with its process) costs the next pipeline one wasted wake-up and is then
deleted. When a streaming pipeline starts, ``WakeWaitingKeys`` reads every row and sends its key a wake-up
(``Routed.wake``): the stateful step reads the key's state and retries its lookups at once, so each waiting
occurrence is applied, or dead-lettered ``event_not_found`` once its window has passed, by the next pipeline
within its lookup retry window, whether or not its key gets another message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from transforms.core import metrics
from transforms.core.model import ProjectInfo, split_group_key

if TYPE_CHECKING:
    from transforms.applier import SpannerTarget

_LOG = logging.getLogger(__name__)

TABLE = "WaitingKeys"
COLUMNS = ("ProjectId", "PrimaryHash", "Since")


def read_waiting_keys(database) -> list[str]:
    """Every key named in ``WaitingKeys`` (``project:hash``)."""
    with database.snapshot() as snapshot:
        rows = snapshot.execute_sql(f"SELECT ProjectId, PrimaryHash FROM {TABLE}")
        return [f"{project_id}:{primary_hash}" for project_id, primary_hash in rows]


def mark(database, keys: Iterable[str]) -> None:
    """Name ``keys`` in ``WaitingKeys`` (one blind commit; a key named already keeps its row)."""
    from google.cloud.spanner_v1 import COMMIT_TIMESTAMP

    values = [(*split_group_key(key), COMMIT_TIMESTAMP) for key in sorted(set(keys))]
    if values:
        with database.batch() as batch:
            batch.insert_or_update(TABLE, COLUMNS, values)


def unmark(database, keys: Iterable[str]) -> None:
    """Delete the rows of ``keys`` from ``WaitingKeys`` (one blind commit)."""
    from google.cloud import spanner

    wanted = [list(split_group_key(key)) for key in sorted(set(keys))]
    if wanted:
        with database.batch() as batch:
            batch.delete(TABLE, spanner.KeySet(keys=wanted))


class _ReadWaitingKeysFn(beam.DoFn):
    """Impulse → every key of ``WaitingKeys``, read once when the pipeline starts."""

    def __init__(self, target: SpannerTarget) -> None:
        self._target = target

    def process(self, _impulse: Any) -> Iterator[str]:
        keys = read_waiting_keys(self._target.database_handle())
        if keys:
            _LOG.info(
                "taking up %d keys whose saved state has occurrences waiting for their event (%s)",
                len(keys),
                TABLE,
            )
        yield from keys


class _WakeFn(beam.DoFn):
    """key → ``(key, Routed.wake(project))``, timestamped now (the project from the registry side input)."""

    def setup(self) -> None:
        self._woken = Metrics.counter(metrics.NAMESPACE, metrics.KEYS_WOKEN)

    def process(self, key: str, projects: Mapping[int, ProjectInfo]) -> Iterator[Any]:
        from transforms.apply_per_group import Routed

        self._woken.inc()
        project_id, _hash = split_group_key(key)
        yield TimestampedValue((key, Routed.wake(projects.get(project_id))), Timestamp.now())


class WakeWaitingKeys(beam.PTransform):
    """``PBegin`` → ``(key, Routed)`` wake-ups of the keys ``WaitingKeys`` names (see the module docstring)."""

    def __init__(self, target: SpannerTarget, projects, label: str | None = None) -> None:
        super().__init__(label)
        self._target = target
        self._projects = projects

    def expand(self, pbegin):
        from transforms.apply_per_group import Routed

        wakes = (
            pbegin
            | "Start" >> beam.Impulse()
            | "ReadWaitingKeys" >> beam.ParDo(_ReadWaitingKeysFn(self._target))
            | "Wake" >> beam.ParDo(_WakeFn(), self._projects)
        )
        wakes.element_type = beam.typehints.Tuple[str, Routed]
        return wakes
