"""Committing the engine's ``KeyWrite``s to Spanner, guarded so a group never goes backwards.

Contract (the product's consistency promise):

* Every ``KeyWrite`` carries the key state's ``seq``. The Groups row and the KeyStates row each store the
  ``seq`` of the write that produced them. A write replaces them only with a greater ``seq``; so an older
  state never overwrites a newer one, whatever the retries, restarts or commit order, and re-applying a
  write is a no-op.
* The guard is per row. A write whose ``seq`` is not greater than the KeyStates row's leaves that row, and
  everything of its groups, alone; one whose ``seq`` is not greater than a group row's leaves that group's
  row, deletion and activities alone. Such a write is *stale* (a retry of a committed write, or an older
  write overtaken by a newer one): the newer state already accounts for it. Its idempotent, append-only
  rows are still written (occurrences, environments and hashes of groups that still exist, events,
  releases), so nothing it carried is lost whatever the commit order.
* An event of the event path is stored on the row of the occurrence that carried it when that occurrence is
  attached (one row instead of two), and in the Events table otherwise.
* An occurrence's tags are counted in the commit that writes its row for the first time
  (``transforms.storage.tag_writer``, which reads what it needs in the same transaction).
* Within one commit, the rows are netted per primary key in write order (a group deleted then re-created,
  hashes unlinked then linked again), so the commit's mutations never conflict.
* The reads (current ``seq`` of the keys and groups, release first-seen times) and the writes happen in one
  read-write transaction: on real Spanner the guard holds against concurrent writers too. Keys that were new
  to the database when the engine loaded them (``KeyWrite.base_seq`` 0) are not read: their rows are
  inserted, and if another writer created them meanwhile the commit fails and is redone with the reads.

Commits are chunked to stay under Spanner's 80,000-mutation limit (index cells included). An aborted commit
is retried by ``run_in_transaction`` (for ``ABORT_RETRY_SECONDS``; the emulator allows one read-write
transaction at a time); the service's transient errors, which it does not retry, are retried here with
backoff (``RETRIED_ERRORS``).

A commit refused for what it carries (``is_refusal``: a key or value Spanner cannot store, a value our rows
cannot be built from), which no retry can fix, is split to find the writes that cause it: first by keys (a
key's writes stay together), then one write at a time within the key, in ``seq`` order. Everything else is
committed; the refused write, and the later writes of its key (made from a state that includes it), come back
in ``CommitStats.refused`` for the caller to settle (``transforms.applier``: it finds the message that caused
it and applies the key again without it). Errors of the service or its configuration (unavailable, not
found, permission denied...) are raised as before.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import spanner

from transforms.core import intents
from transforms.core.model import from_datetime, from_rfc3339, split_group_key
from transforms.storage import mutation_buffer, tag_writer
from transforms.storage import spanner_rows as rows
from transforms.storage.commit_plan import (
    CommitPlan,
    StoredVersions,
    group_ids,
    guarded_keys,
    is_guarded,
    mutation_groups,
    new_keys,
    plan_commit,
    settle_environment_checks,
)

# ``plan_commit`` and its types are planned in ``transforms.storage.commit_plan``; importers of this module keep them.
__all__ = [
    "ABORT_RETRY_SECONDS",
    "DEFAULT_MAX_MUTATIONS",
    "REFUSALS",
    "RETRIED_ERRORS",
    "CommitPlan",
    "CommitPlanner",
    "CommitStats",
    "PlannedCommit",
    "SpannerWriter",
    "StoredVersions",
    "chunk_writes",
    "commit_in_chunks",
    "describe_refusal",
    "estimate_mutations",
    "guarded_keys",
    "is_refusal",
    "new_keys",
    "plan_commit",
]

_LOG = logging.getLogger(__name__)
# The C extension ``_planning.c`` or None (``spanner_rows.planning``): writes' estimates in C (``_write_costs``).
_native = rows.planning

# Real Spanner refuses commits over 80,000 mutations; stay well below it by default.
DEFAULT_MAX_MUTATIONS = 40_000
# How long ``run_in_transaction`` retries a commit that Spanner aborts (lock conflicts; on the emulator, any
# overlapping read-write transaction), with the backoff Spanner asks for, before it raises ``Aborted``. It
# retries aborts and nothing else (the client library's default deadline is 30 s); an ``Aborted`` it raises
# has used this whole budget, so the writer does not retry it again.
ABORT_RETRY_SECONDS = 120.0
# What the writer retries itself, because ``run_in_transaction`` re-raises it at once: errors of the service
# that a later attempt may not meet, whether raised by the reads of the unit of work or by the commit.
# Retrying a commit that may have been applied (``DeadlineExceeded``) is safe: the seq guard makes a second
# application a no-op, and the insert of a key taken for new comes back as ``AlreadyExists`` (retried once,
# with guard reads).
RETRIED_ERRORS = (
    api_exceptions.ServiceUnavailable,
    api_exceptions.DeadlineExceeded,
    api_exceptions.InternalServerError,
    api_exceptions.ResourceExhausted,
)


# What Spanner answers a commit that carries something it cannot store (a key over 8 KiB, a value over its
# column's limit, a row breaking a constraint): retrying cannot help, the write must go.
REFUSALS = (
    api_exceptions.InvalidArgument,
    api_exceptions.FailedPrecondition,
    api_exceptions.OutOfRange,
)
# What building a commit's rows from a write raises for a value our rows cannot hold (orjson refuses JSON
# nested deeper than 255 levels, numbers it cannot write...), or for a bug in the code that builds them.
_CONTENT_ERRORS = (TypeError, ValueError, RecursionError, OverflowError, LookupError, AttributeError)


def is_refusal(error: BaseException) -> bool:
    """Whether a commit failed for what it carries (see the module docstring), not for the service's state."""
    if isinstance(error, api_exceptions.GoogleAPICallError):
        return isinstance(error, REFUSALS)
    return isinstance(error, _CONTENT_ERRORS)


def describe_refusal(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass
class CommitStats:
    commits: int = 0
    mutations: int = 0
    rows: int = 0
    stale_writes: int = 0
    attempts: int = 0  # read-write transaction attempts: more than ``commits`` when commits were aborted
    rows_by_table: dict[str, int] = field(default_factory=dict)
    # Writes not committed, with why: refused (see the module docstring), or after a refused one of their key.
    refused: list[tuple[intents.KeyWrite, str]] = field(default_factory=list)

    def add(self, other: CommitStats) -> None:
        self.commits += other.commits
        self.mutations += other.mutations
        self.rows += other.rows
        self.stale_writes += other.stale_writes
        self.attempts += other.attempts
        for table, count in other.rows_by_table.items():
            self.rows_by_table[table] = self.rows_by_table.get(table, 0) + count
        self.refused.extend(other.refused)

    @classmethod
    def of_plan(cls, plan: CommitPlan, attempts: int, mutations: int | None = None) -> CommitStats:
        """The stats of one committed ``plan`` that took ``attempts`` transaction attempts; ``mutations``, its
        mutation count when known (``buffer_plan``'s)."""
        return cls(
            commits=1,
            mutations=plan.mutation_count() if mutations is None else mutations,
            rows=plan.row_count,
            stale_writes=plan.stale_writes,
            attempts=attempts,
            rows_by_table=plan.rows_by_table(),
        )


@functools.cache
def _fixed_costs() -> dict[type, int]:
    """Upper bounds of the mutations of the intents whose cost does not depend on their content."""
    return {
        intents.UpsertGroup: rows.mutation_cells("Groups", len(rows.GROUP_COLUMNS)),
        intents.SaveKeyState: rows.mutation_cells("KeyStates", len(rows.KEY_STATE_COLUMNS))
        + len(rows.GROUP_STATE_COLUMNS),
        intents.InsertOccurrence: rows.mutation_cells("Occurrences", len(rows.OCCURRENCE_COLUMNS)),
        intents.RecordGroupRelease: rows.mutation_cells("GroupReleases", len(rows.GROUP_RELEASE_COLUMNS)),
        intents.InsertActivity: rows.mutation_cells("Activities", len(rows.ACTIVITY_COLUMNS)),
        intents.RecordEvent: rows.mutation_cells("Events", len(rows.EVENT_COLUMNS)),
    }


def estimate_mutations(write: intents.KeyWrite, tag_cost: Callable[[Any], int] | None = None) -> int:
    """An upper bound of the mutations a write can cost, used to chunk commits before planning them.
    ``tag_cost`` bounds an ``IndexOccurrence`` with what the writer knows (``TagWriter.estimate``)."""
    fixed = _fixed_costs()
    total = 0
    for intent in write.intents:
        kind = intent.__class__
        cost = fixed.get(kind)
        if cost is not None:
            total += cost
        elif kind is intents.LinkHashes:
            total += len(intent.hashes) * rows.mutation_cells("GroupHashes", len(rows.HASH_COLUMNS))
        elif kind is intents.DeleteGroup:
            total += 2 + 2 * len(intent.hashes)
        elif kind is intents.IndexOccurrence:
            total += tag_writer.estimate_mutations(intent) if tag_cost is None else tag_cost(intent)
        else:
            total += 8
    return total


def _write_costs(writes: Sequence[intents.KeyWrite], tag_cost: Callable[[Any], int] | None) -> list[int]:
    """``estimate_mutations`` of each write: in C (``_planning.write_costs``) when ``tag_cost`` is None or a
    ``tag_writer.TagCost`` and the extension is built and sure, else in Python."""
    if _native is not None and (tag_cost is None or tag_cost.__class__ is tag_writer.TagCost):
        costs = _native.write_costs(
            writes if writes.__class__ is list else list(writes),
            _fixed_costs(),
            _special_costs(),
            None if tag_cost is None else tag_cost.known.rows,  # type: ignore[attr-defined]
            tag_writer.tag_cells(),
        )
        if costs is not None:
            return costs
    return [estimate_mutations(write, tag_cost) for write in writes]


@functools.cache
def _special_costs() -> tuple[type, int, type, type]:
    """What ``_planning.write_costs`` needs of ``estimate_mutations``' other intents."""
    hash_cells = rows.mutation_cells("GroupHashes", len(rows.HASH_COLUMNS))
    return (intents.LinkHashes, hash_cells, intents.DeleteGroup, intents.IndexOccurrence)


def chunk_writes(
    writes: Sequence[intents.KeyWrite], max_mutations: int, tag_cost: Callable[[Any], int] | None = None
) -> list[list[intents.KeyWrite]]:
    """Split writes into commits under ``max_mutations``, keeping every key's writes in one commit."""
    by_key: dict[str, list[intents.KeyWrite]] = {}
    key_costs: dict[str, int] = {}
    for write, write_cost in zip(writes, _write_costs(writes, tag_cost), strict=True):
        key = write.key
        if key in by_key:
            by_key[key].append(write)
            key_costs[key] += write_cost
        else:
            by_key[key] = [write]
            key_costs[key] = write_cost
    chunks: list[list[intents.KeyWrite]] = []
    current: list[intents.KeyWrite] = []
    current_cost = 0
    for key, key_writes in by_key.items():
        cost = key_costs[key]
        if current and current_cost + cost > max_mutations:
            chunks.append(current)
            current, current_cost = [], 0
        if cost > max_mutations:
            # A single hot key over the limit: its writes go one commit each, in seq order.
            for write in sorted(key_writes, key=lambda w: w.seq):
                chunks.append([write])
            continue
        current.extend(key_writes)
        current_cost += cost
    if current:
        chunks.append(current)
    return chunks


Commit = Callable[[list[intents.KeyWrite]], CommitStats]


def commit_in_chunks(
    writes: Iterable[intents.KeyWrite],
    max_mutations: int,
    commit: Commit,
    tag_cost: Callable[[Any], int] | None = None,
) -> CommitStats:
    """Commit ``writes`` in chunks (``chunk_writes``), each with ``commit`` (one transaction, all or nothing);
    a chunk refused for what it carries is split to find the refused writes (module docstring). The writer's
    way of committing, shared with any store that keeps its contract (the tests' in-memory one)."""
    writes = list(writes)
    stats = CommitStats()
    for chunk in chunk_writes(writes, max_mutations, tag_cost):
        stats.add(_commit_or_split(chunk, commit))
    return stats


def _commit_or_split(chunk: list[intents.KeyWrite], commit: Commit) -> CommitStats:
    try:
        return commit(chunk)
    except Exception as error:
        if not is_refusal(error):
            raise
        keys = list(dict.fromkeys(write.key for write in chunk))
        _LOG.warning(
            "Spanner commit of %d writes (%d keys) refused (%s); splitting it to find the refused writes",
            len(chunk),
            len(keys),
            describe_refusal(error)[:300],
        )
        return _split(chunk, keys, error, commit)


def _split(
    chunk: list[intents.KeyWrite], keys: list[str], error: BaseException, commit: Commit
) -> CommitStats:
    stats = CommitStats()
    if len(keys) > 1:  # halves of the keys, each key's writes together
        first = set(keys[: len(keys) // 2])
        for part in ([w for w in chunk if w.key in first], [w for w in chunk if w.key not in first]):
            stats.add(_commit_or_split(part, commit))
        return stats
    ordered = sorted(chunk, key=lambda write: write.seq)
    if len(ordered) > 1:  # one key: its writes one at a time, until one is refused
        for index, write in enumerate(ordered):
            try:
                stats.add(commit([write]))
            except Exception as refusal:
                if not is_refusal(refusal):
                    raise
                ordered, error = ordered[index:], refusal
                break
        else:
            return stats
    reason = describe_refusal(error)
    stats.refused.append((ordered[0], reason))
    stats.refused.extend(
        (later, f"not written after a refused write of its key ({reason})") for later in ordered[1:]
    )
    _LOG.error(
        "Spanner refused the write of key %s (seq %d): %s", ordered[0].key, ordered[0].seq, reason[:500]
    )
    return stats


def _read_stored(
    transaction,
    writes: Sequence[intents.KeyWrite],
    assumed_new: set[tuple[int, str]],
    known_releases: dict[tuple[int, str], int],
) -> StoredVersions:
    """Read what the guard needs. ``known_releases`` are upper bounds of stored release first-seen times
    (what this writer saw or wrote; they only ever decrease): a release named no earlier than that needs
    no read and no write. ``release_first_seen`` holds the releases the writes name (read, or their bound),
    not the whole of ``known_releases``: nothing else is looked up, and copying it cost a commit time in
    proportion to everything the writer knows."""
    stored = StoredVersions()
    keys: set[tuple[int, str]] = set()  # keys whose seq decides a row (``guarded_keys``), not assumed new
    groups: set[int] = set()
    named: set[tuple[int, str]] = set()  # releases the writes name
    release_keys: set[tuple[int, str]] = set()  # of those, the ones to read
    record_release = intents.RecordRelease
    for write in writes:
        key = split_group_key(write.key)
        if key not in assumed_new:
            groups.update(group_ids(write))
            if is_guarded(write):
                keys.add(key)
        if record_release in map(type, write.intents):
            for intent in write.intents:
                if intent.__class__ is record_release:
                    release_key = (intent.project_id, intent.version)
                    named.add(release_key)
                    bound = known_releases.get(release_key)
                    if bound is None or intent.first_seen < bound:
                        release_keys.add(release_key)
    if keys:
        for project_id, primary_hash, seq in transaction.read(
            "KeyStates",
            ("ProjectId", "PrimaryHash", "Seq"),
            spanner.KeySet(keys=[list(key) for key in sorted(keys)]),
        ):
            stored.key_seq[(project_id, primary_hash)] = seq
    if groups:
        for group_id, seq in transaction.read(
            "Groups", ("GroupId", "Seq"), spanner.KeySet(keys=[[group_id] for group_id in sorted(groups)])
        ):
            stored.group_seq[group_id] = seq
    for release_key in named - release_keys:
        stored.release_first_seen[release_key] = known_releases[release_key]
    if release_keys:
        for project_id, version, first_seen in transaction.read(
            "Releases",
            ("ProjectId", "Version", "FirstSeen"),
            spanner.KeySet(keys=[list(k) for k in sorted(release_keys)]),
        ):
            stored.release_first_seen[(project_id, version)] = from_datetime(first_seen)
    return stored


def _check_environments(transaction, plan: CommitPlan) -> None:
    """Keep the environment rows of stale writes that are earlier than (or missing from) the stored rows."""
    if not plan.environment_checks:
        return
    wanted = sorted({(intent.group_id, intent.environment) for intent in plan.environment_checks})
    stored = {
        (group_id, environment): from_datetime(first_seen)
        for group_id, environment, first_seen in transaction.read(
            "GroupEnvironments",
            ("GroupId", "Environment", "FirstSeen"),
            spanner.KeySet(keys=[list(key) for key in wanted]),
        )
    }
    settle_environment_checks(plan, stored)


def buffer_plan(transaction, plan: CommitPlan) -> int:
    """Hand ``plan``'s rows to ``transaction`` (or a batch): its deletions through the public API, its
    writes through ``mutation_buffer`` (encoded as they are grouped, once the buffer is known usable). Nothing is sent until the caller commits. Returns the plan's
    mutation count (``CommitPlan.mutation_count``, counted in the same pass over its rows)."""
    buffer = mutation_buffer.BUFFER
    found, count = mutation_groups(plan, buffer.takes_encoded)
    for kind, table, columns, values in found:
        if kind == "delete":
            transaction.delete(table, spanner.KeySet(keys=[list(key) for key in values]))
        elif values.__class__ is bytes:  # rows encoded as they were grouped (``takes_encoded``)
            buffer.add_encoded(transaction, kind, table, columns, values)
        else:
            buffer.add(transaction, kind, table, columns, values)
    return count


@dataclass
class PlannedCommit:
    """One attempt's plan of a chunk: its rows, its tag rows, the release first-seen times it went by, and its
    mutation count once handed to the transaction (``buffer_plan``)."""

    plan: CommitPlan
    tags: tag_writer.TagPlan
    releases: dict[tuple[int, str], int]
    mutations: int | None = None


class CommitPlanner:
    """What a commit reads in its read-write transaction and plans (the guard's reads, ``plan_commit``, the
    environment rows of stale writes, the tag rows), and what a writer keeps from one commit to the next: upper
    bounds of stored release first-seen times, and the tag rows known stored. ``SpannerWriter``'s, and any
    store's that keeps its contract (the tests' in-memory one, whose transaction reads its rows)."""

    def __init__(self) -> None:
        self._known_releases: dict[tuple[int, str], int] = {}
        self._tags = tag_writer.TagWriter()

    @property
    def estimate(self) -> tag_writer.TagCost:
        """The tag rows' part of ``estimate_mutations``, with what is known stored (a callable)."""
        return self._tags.estimate

    def plan(
        self, transaction: Any, chunk: list[intents.KeyWrite], assumed_new: set[tuple[int, str]]
    ) -> PlannedCommit:
        """Read (in ``transaction``) and plan ``chunk``; keys in ``assumed_new`` are not read (see
        ``new_keys``). Nothing is written: the caller hands ``plan`` to the transaction."""
        stored = _read_stored(transaction, chunk, assumed_new, self._known_releases)
        plan = plan_commit(chunk, stored, assumed_new)
        _check_environments(transaction, plan)
        tags = self._tags.add_to_commit(transaction, chunk, plan, set(stored.group_seq))
        return PlannedCommit(plan, tags, stored.release_first_seen)

    def committed(self, planned: PlannedCommit) -> None:
        """After the commit of ``planned``: remember what it stored."""
        self._tags.committed(planned.tags)
        known = self._known_releases
        if len(known) > 100_000:
            known.clear()
        written = planned.plan.upserts.get("Releases", {})
        # what the commit read of stored releases, then what it wrote (values[2]: FirstSeen)
        for release_key, first_seen in itertools.chain(
            planned.releases.items(),
            ((release_key, from_rfc3339(values[2])) for release_key, (_columns, values) in written.items()),
        ):
            if first_seen < known.get(release_key, first_seen + 1):
                known[release_key] = first_seen


class SpannerWriter:
    """Commits ``KeyWrite``s in guarded, chunked read-write transactions. Not thread-safe; one per DoFn."""

    def __init__(self, database, *, max_mutations: int = DEFAULT_MAX_MUTATIONS, max_attempts: int = 8):
        self._database = database
        self._max_mutations = max_mutations
        self._max_attempts = max_attempts
        self._planner = CommitPlanner()

    def write(self, writes: Iterable[intents.KeyWrite]) -> CommitStats:
        """Commit the writes (chunked); writes Spanner refuses are left out and listed in ``refused``."""
        return commit_in_chunks(writes, self._max_mutations, self._commit, self._planner.estimate)

    def _commit(self, chunk: list[intents.KeyWrite]) -> CommitStats:
        result: dict[str, PlannedCommit] = {}
        attempts = 0

        assumed = {"new": new_keys(chunk)}

        def unit_of_work(transaction) -> None:
            nonlocal attempts
            attempts += 1
            planned = self._planner.plan(transaction, chunk, assumed["new"])
            planned.mutations = buffer_plan(transaction, planned.plan)
            result["planned"] = planned

        delay = 0.05
        for attempt in range(1, self._max_attempts + 1):
            try:
                self._database.run_in_transaction(unit_of_work, timeout_secs=ABORT_RETRY_SECONDS)
                break
            except api_exceptions.AlreadyExists:
                # A key we took for new was written by someone else meanwhile: read everything this time.
                if not assumed["new"]:
                    raise
                _LOG.info("Spanner commit: keys were written concurrently; retrying with guard reads")
                assumed["new"] = set()
            except RETRIED_ERRORS as error:
                if attempt == self._max_attempts:
                    raise
                _LOG.warning("Spanner commit failed (%s), retry %d in %.2fs", error, attempt, delay)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 5.0)
        planned = result["planned"]
        self._planner.committed(planned)
        return CommitStats.of_plan(planned.plan, attempts, planned.mutations)
