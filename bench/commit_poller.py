"""When did a published occurrence's row get committed? Polled from outside the pipeline, by key.

The pipeline stores no per-occurrence commit time, so a sample of the published occurrences is watched: every
``period`` seconds one strong read-only snapshot looks, by primary key or index key (cheap point reads, no
SQL), for the rows each still-unseen sample writes:

* attached occurrences: the ``OccurrencesByStoredEvent`` index entry ``(ProjectId, StoredEventId)`` (the
  occurrence's row carries its event), then ``Groups.UpdatedAt`` of its group in the same snapshot;
* occurrences that were not attached (noise gate, creation quota): their ``Events`` row ``(ProjectId,
  EventId)``.

A row first seen by the poll sent at ``s_k`` and answered at ``r_k`` was committed after ``s_{k-1}`` (the
previous strong read did not see it) and no later than ``r_k``. ``Groups.UpdatedAt`` is the commit timestamp
of the group's latest commit, which is at or after the occurrence's commit; when it falls in that interval
it is the tighter upper bound and is used (method ``updated_at``); otherwise, and for ``Events`` rows, the
answer time ``r_k`` is (method ``poll``, resolution: the poll period plus one poll's duration). Both are upper
bounds: latencies are never flattering. The emulator stamps commits with this machine's clock.

Latency = commit time - the wall time the Publish request carrying the message was sent.

Only samples whose rows are bound to appear are taken (``sampleable``): occurrences with their event
(not buffered spans), of a registered project, of a type the project may ingest, whose event id was not
published before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from google.cloud import spanner

from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import Message, Occurrence, ProjectInfo


@dataclass
class Sample:
    project_id: int
    event_id: str
    index: int  # position in the phase's message list
    phase: str
    sent_at: float | None = None  # when its Publish request was sent
    committed: float | None = None  # upper bound of its commit time
    lower: float | None = None  # lower bound of its commit time
    method: str = ""

    @property
    def latency(self) -> float | None:
        if self.committed is None or self.sent_at is None:
            return None
        return self.committed - self.sent_at


def sampleable(message: Message, projects: dict[int, ProjectInfo], seen_events: set[tuple[int, str]]) -> bool:
    """Will this decoded message leave an Occurrences or Events row of its own? (Updates ``seen_events``.)"""
    payload = message.payload
    if payload.__class__ is not Occurrence or payload.event is None:
        return False
    key = (payload.project_id, payload.event_id)
    first = key not in seen_events
    seen_events.add(key)
    project = projects.get(payload.project_id)
    if not first or project is None or payload.is_buffered_spans:
        return False
    group_type = GROUP_TYPES.get(payload.type)
    return group_type is not None and group_type.allow_ingest(project.features)


class CommitPoller:
    """Polls the database for ``samples`` in a background thread (``start``/``stop``)."""

    def __init__(self, database, period: float = 0.2) -> None:
        self._database = database
        self.period = period
        self._lock = threading.Lock()
        self._pending: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.poll_seconds = 0.0
        self.errors: list[str] = []

    def add(self, samples: Iterable[Sample]) -> None:
        with self._lock:
            self._pending.extend(samples)

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(1 for s in self._pending if s.sent_at is not None)

    def start(self, published_time: Callable[[Sample], float | None]) -> None:
        """``published_time(sample)``: when its message was sent, or None while it is not yet published."""
        self._published_time = published_time
        self._thread = threading.Thread(target=self._run, name="bench-commit-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        previous_send = time.time()
        while not self._stop.wait(self.period):
            with self._lock:
                for sample in self._pending:
                    if sample.sent_at is None:
                        sample.sent_at = self._published_time(sample)
                wanted = [s for s in self._pending if s.sent_at is not None]
            if not wanted:
                previous_send = time.time()
                continue
            send = time.time()
            try:
                found = self._poll(wanted)
            except Exception as error:  # a failed poll only costs resolution; keep the first few errors
                if len(self.errors) < 5:
                    self.errors.append(repr(error))
                continue
            answered = time.time()
            self.polls += 1
            self.poll_seconds += answered - send
            with self._lock:
                for sample in wanted:
                    key = (sample.project_id, sample.event_id)
                    if key not in found:
                        continue
                    updated_at = found[key]
                    sample.lower = max(previous_send, sample.sent_at)
                    if updated_at is not None and sample.lower < updated_at <= answered:
                        sample.committed, sample.method = updated_at, "updated_at"
                    else:
                        sample.committed, sample.method = answered, "poll"
                self._pending = [s for s in self._pending if s.committed is None]
            previous_send = send

    def _poll(self, wanted: list[Sample]) -> dict[tuple[int, str], float | None]:
        keys = sorted({(s.project_id, s.event_id) for s in wanted})
        found: dict[tuple[int, str], float | None] = {}
        with self._database.snapshot(multi_use=True) as snapshot:
            groups: dict[int, list[tuple[int, str]]] = {}
            for project_id, event_id, group_id in snapshot.read(
                "Occurrences",
                ("ProjectId", "StoredEventId", "GroupId"),
                spanner.KeySet(keys=[list(k) for k in keys]),
                index="OccurrencesByStoredEvent",
            ):
                groups.setdefault(group_id, []).append((project_id, event_id))
            if groups:
                for group_id, updated_at in snapshot.read(
                    "Groups", ("GroupId", "UpdatedAt"), spanner.KeySet(keys=[[g] for g in sorted(groups)])
                ):
                    for key in groups.pop(group_id):
                        found[key] = updated_at.timestamp()
                for rest in groups.values():  # the group went meanwhile (deleted): the row was seen
                    for key in rest:
                        found[key] = None
            missing = [k for k in keys if k not in found]
            if missing:
                for project_id, event_id in snapshot.read(
                    "Events", ("ProjectId", "EventId"), spanner.KeySet(keys=[list(k) for k in missing])
                ):
                    found[(project_id, event_id)] = None
        return found
