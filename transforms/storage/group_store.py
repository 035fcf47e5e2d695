"""The ports ``GroupApplier`` stores through, their Spanner implementation, and the factories that build them
from the pipeline's configuration.

``GroupStore`` is everything the applier reads and writes: key states (hydration), stored events (lookups),
release first-seen times (the engine's ``ReleaseBook``), and the commit of ``KeyWrite``s, which must keep
``transforms.storage.spanner_writer``'s contract (the seq guard per row, netting within a commit, refused writes
listed in ``CommitStats.refused`` rather than raised). ``SpannerGroupStore`` is the product's; tests use an
in-memory one (``tests/memory_store.py``) with the same planning (``commit_plan.plan_commit``).

The creation quota is the engine's ``QuotaGate`` port (``transforms.core.engine.context``);
``creation_quota`` builds the Redis one. Both factories run where the applier is built (on the worker, from
a picklable ``ApplierConfig``), never at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from transforms.core import metrics
from transforms.core.engine import QuotaGate, ReleaseBook
from transforms.core.intents import KeyWrite
from transforms.core.model import Event
from transforms.storage import clients, state_store
from transforms.storage.redis_quota import RedisCreationQuota
from transforms.storage.spanner_writer import DEFAULT_MAX_MUTATIONS, CommitStats, SpannerWriter

Counter = Callable[[str, int], None]


class CommitWriter(Protocol):
    """Commits ``KeyWrite``s (chunked, guarded); refused writes are listed in the stats, not raised."""

    def write(self, writes: Iterable[KeyWrite]) -> CommitStats: ...


class GroupStore(CommitWriter, Protocol):
    """What ``GroupApplier`` reads and writes. One per applier (not thread-safe, like the writer: the local
    runs' commit thread is the only other user, and commits are handed to it one at a time)."""

    @property
    def name(self) -> str:
        """Names the stored data (the database), for caches shared by the process's stores."""
        ...

    @property
    def database(self) -> Any:
        """The Spanner database handle, for what the stateful step writes itself (``WaitingKeys`` rows) and the
        backfill's own reads; an in-memory store gives a stand-in for the first."""
        ...

    @property
    def releases(self) -> ReleaseBook: ...

    def read_key_states(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The encoded stored states of ``keys`` (group keys); keys new to the store are absent."""
        ...

    def read_events(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], Event]:
        """The stored events of ``keys`` ((project, event id)); those not stored are absent."""
        ...


@dataclass(frozen=True)
class SpannerTarget:
    """Where the pipeline writes (picklable, kept on DoFns)."""

    project: str
    instance: str
    database: str
    max_mutations: int = DEFAULT_MAX_MUTATIONS

    def database_handle(self):
        return clients.spanner_database(self.project, self.instance, self.database)


class SpannerGroupStore:
    """``GroupStore`` over a Spanner database: ``state_store``'s reads, ``SpannerWriter``'s commits, and a
    ``SpannerReleaseBook``. The database handle is the process's (``transforms.storage.clients``), so one store per
    applier is cheap; the writer's caches (release times, stored tag rows) live as long as the store."""

    def __init__(self, database: Any, *, max_mutations: int = DEFAULT_MAX_MUTATIONS) -> None:
        self._database = database
        self._writer = SpannerWriter(database, max_mutations=max_mutations)
        self._releases = state_store.SpannerReleaseBook(database)

    @property
    def name(self) -> str:
        return self._database.name

    @property
    def database(self) -> Any:
        return self._database

    @property
    def releases(self) -> ReleaseBook:
        return self._releases

    @property
    def writer(self) -> SpannerWriter:
        return self._writer

    def write(self, writes: Iterable[KeyWrite]) -> CommitStats:
        return self._writer.write(writes)

    def read_key_states(self, keys: Iterable[str]) -> dict[str, bytes]:
        return state_store.read_key_states(self._database, keys)

    def read_events(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], Event]:
        return state_store.read_events(self._database, keys)


def spanner_store(target: SpannerTarget) -> SpannerGroupStore:
    """The store of ``target`` (the product's default)."""
    return SpannerGroupStore(target.database_handle(), max_mutations=target.max_mutations)


def creation_quota(redis_url: str | None, prefix: str, count: Counter) -> QuotaGate | None:
    """The Redis creation quota at ``redis_url`` under ``prefix`` (None: the quota is off); its fail-open
    answers are counted with ``count``."""
    if not redis_url:
        return None
    return RedisCreationQuota(
        clients.redis_client(redis_url),
        prefix=prefix,
        fail_open=lambda: count(metrics.QUOTA_FAIL_OPEN, 1),
    )
