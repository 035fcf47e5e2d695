"""Runs search plans on one read-only snapshot (``Searcher``): pages, counts, and the membership lookups
(environments, releases, regressions, text) of a page's candidates.

Each range is read with Spanner's Read API (``index=``, a key range, ``limit=``), which can only seek into the
index and return its rows in key order: a range read is an index range scan by construction, on the emulator
and on real Spanner alike. Ranges are merged in sort order, reading each in chunks (the first of
``limit + 1`` rows, then doubling) only as far as the merge consumes it. The ranges' reads are independent: a
merge of several ranges sends their first chunks at once from a small thread pool (``read_pool``), so a query
without a status term (12 ranges) waits for about one round of Read calls instead of twelve, and reads the rows
the sequential merge would. (Asking for a range's next chunk in the background as well was measured: more Read
calls, no faster on the emulator.)
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from google.cloud.spanner_v1 import KeyRange, KeySet

from api.cursor import SortKey
from api.query import (
    ENVIRONMENT_FIRST_RELEASES,
    ENVIRONMENTS,
    REGRESSIONS,
    RELEASES,
    SET_REGRESSION,
    IssueFilter,
    Related,
)
from api.search.index_rows import DETAIL_COLUMNS, INDEX_COLUMNS, GroupDetail, GroupRow, json_object, sort_key
from api.search.plan import SORT_COLUMN, RangePlan, SearchPlan, prefix_order

MAX_CHUNK = 1000
MIN_FIRST_CHUNK = 16
# Membership lookups: up to this many named values are looked up as full keys per candidate, more by reading
# the candidates' rows; a Read carries at most MAX_KEYS_PER_READ keys.
MAX_POINT_VALUES = 2
# Index rows one page may examine (fewer when each needs lookups): see Searcher.page.
PAGE_ROW_BUDGET = 10_000
PAGE_LOOKUP_BUDGET = 2_000
MAX_KEYS_PER_READ = 5000
# Threads of the process-wide pool that reads the ranges of a merge concurrently (see read_pool); 0: none, the
# ranges are read one after another. Each waits on the database, not the CPU: 12 covers a query without a
# status term (3 statuses x 4 priorities) in one round.
READ_THREADS = 12

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def read_pool() -> ThreadPoolExecutor:
    """The process-wide pool of range-read threads, made on first use (threads that only wait on Spanner)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="search-read")
        return _pool


@dataclass(slots=True)
class ReadStats:
    """What a request cost Spanner: Read calls and rows returned (each row returned was a row read)."""

    reads: int = 0
    rows: int = 0
    index_rows: int = 0
    ranges: int = 0


@dataclass(frozen=True, slots=True)
class HitCount:
    """``value`` matches, exact unless ``capped`` (there are more) or ``partial`` (the scan budget ran out)."""

    value: int
    capped: bool = False
    partial: bool = False


@dataclass(slots=True)
class Searcher:
    """Runs plans on one read-only snapshot (``database.snapshot(multi_use=True)``)."""

    snapshot: Any
    stats: ReadStats = field(default_factory=ReadStats)
    # Read the ranges of a merge concurrently (see the module docstring); False (or READ_THREADS = 0) reads them
    # one after another.
    parallel: bool = field(default_factory=lambda: READ_THREADS > 0)
    _in_flight: list[_ChunkRead] = field(default_factory=list)
    _text_cache: dict[int, dict[str, str]] = field(default_factory=dict)
    _known: dict[RangePlan, _RangeRows] = field(default_factory=dict)

    # ---- reads

    def _read(self, table: str, columns: Iterable[str], keyset: KeySet, **kwargs: Any) -> list[list]:
        rows = list(self.snapshot.read(table, list(columns), keyset, **kwargs))
        self.stats.reads += 1
        self.stats.rows += len(rows)
        return rows

    def _stream(self, rng: RangePlan, first_chunk: int) -> Iterator[GroupRow]:
        """The rows of one range in index order, read in chunks of ``first_chunk`` rows, then doubling. The
        first chunk is asked for now (in the background when ``parallel``), not when the rows are wanted. What
        is read is kept for the request (``_known``), so that counting does not read it again."""
        self.stats.ranges += 1
        chunk = max(1, min(first_chunk, MAX_CHUNK))
        known = self._known.setdefault(rng, _RangeRows())
        return self._chunks(rng, self._request(rng, chunk, known, ahead=True))

    def _request(self, rng: RangePlan, chunk: int, known: _RangeRows, ahead: bool = False) -> _ChunkRead:
        """A Read of the first ``chunk`` rows of ``rng``: sent now on the read pool when ``ahead`` (a range's
        first chunk, when ``parallel``), or when its rows are taken."""
        read = _ChunkRead(self, rng, chunk, known)
        if ahead and self.parallel:
            read.future = read_pool().submit(read.fetch)
            self._in_flight.append(read)
        return read

    def _chunks(self, rng: RangePlan, pending: _ChunkRead) -> Iterator[GroupRow]:
        while True:
            rows = pending.take()
            if len(rows) < pending.chunk:
                yield from map(GroupRow.from_index, rows)
                return
            last = rows[-1]
            following = replace(
                rng, start=(last[INDEX_COLUMNS.index(rng.sort_column)], last[0]), start_open=True
            )
            yield from map(GroupRow.from_index, rows)
            rng = following
            pending = self._request(rng, min(pending.chunk * 2, MAX_CHUNK), pending.known)

    def settle(self, failing: bool = False) -> None:
        """Finish the range reads still in flight (first chunks of ranges a page never got to), so that none
        outlives the request's snapshot: those not started are cancelled, the others are waited for, counted
        and kept for counting like any other rows read. Every one is settled even when one fails; the first
        failure is then raised, unless ``failing`` (the page is already failing: its own error is the one the
        caller must see)."""
        in_flight, self._in_flight = self._in_flight, []
        error: BaseException | None = None
        for read in in_flight:
            if not read.taken and read.future is not None and not read.future.cancel():
                try:
                    read.take()
                except Exception as failed:  # settled first, raised below
                    error = error or failed
        if error is not None and not failing:
            raise error

    def _scan(self, plan: SearchPlan, chunk: int) -> Iterator[GroupRow]:
        """The rows of all of the plan's ranges, with only the columns counting needs: first what this request
        already read of them (its page), then the rest in index key order, each chunk one Read of every range
        left, so counting takes as few calls as it can and reads no row twice."""
        columns = plan.count_columns()
        organization_id = plan.scope.organization_id
        sort_position = columns.index(SORT_COLUMN[plan.sort])
        pending = []
        for rng in sorted(plan.ranges, key=lambda rng: prefix_order(rng.prefix)):
            known = self._known.get(rng)  # what this request's page read of the range, from its start
            if known is None or not known.rows:
                pending.append(rng)
                continue
            for values in known.rows:
                yield GroupRow.from_index(values)
            if not known.complete:
                last = known.rows[-1]
                pending.append(rng.resume_after(last[INDEX_COLUMNS.index(rng.sort_column)], last[0]))
        while pending:
            self.stats.ranges += len(pending)
            rows = self._read(
                "Groups",
                columns,
                KeySet(ranges=[rng.key_range() for rng in pending]),
                index=pending[0].index,
                limit=chunk,
            )
            self.stats.index_rows += len(rows)
            for values in rows:
                yield GroupRow.from_columns(columns, values, organization_id)
            if len(rows) < chunk:
                return
            group_id, scope_value, status, priority = rows[-1][:4]
            position = next(
                i for i, rng in enumerate(pending) if rng.prefix == (scope_value, status, priority)
            )
            current = pending[position]
            resumed = replace(current, start=(rows[-1][sort_position], group_id), start_open=True)
            pending = [resumed, *pending[position + 1 :]]
            chunk = min(chunk * 2, MAX_CHUNK)

    def _merged(self, plan: SearchPlan, need: int) -> Iterator[GroupRow]:
        """All ranges' rows in sort order (descending sort key), for a page of ``need`` rows.

        One range is read ``need`` rows at a time. With several, each first reads a share of the page (twice
        its even share, at least ``MIN_FIRST_CHUNK``), then doubles as the merge consumes it: a page costs
        about ``2 x need`` index rows plus what the ranges that supply it need, instead of ``ranges x need``.
        """
        count = len(plan.ranges)
        first_chunk = need if count <= 1 else min(need, max(MIN_FIRST_CHUNK, 2 * -(-need // count)))
        streams = [self._stream(rng, first_chunk) for rng in plan.ranges]
        if len(streams) == 1:
            yield from streams[0]
            return
        heap: list[tuple[tuple[int, ...], int, GroupRow]] = []
        for number, stream in enumerate(streams):
            row = next(stream, None)
            if row is not None:
                heap.append((_descending(sort_key(row, plan.sort)), number, row))
        heapq.heapify(heap)
        while heap:
            _, number, row = heap[0]
            yield row
            following = next(streams[number], None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (_descending(sort_key(following, plan.sort)), number, following))

    def _filtered(self, plan: SearchPlan, rows: Iterator[GroupRow], need: int) -> Iterator[GroupRow]:
        """The rows that match the whole filter, in the order given, for a consumer that wants ``need`` of
        them. Lookups are batched: the first batch is ``need`` candidates, each next one sized by the share
        of candidates accepted so far, so that a selective condition does not cost one round trip per page
        fraction, and a loose one does not read far past the page."""
        candidates = (row for row in rows if plan.accepts(row))
        if not plan.needs_lookups:
            yield from candidates
            return
        batch = max(1, min(need, MAX_CHUNK))
        examined = accepted_total = 0
        while True:
            chunk = list(itertools.islice(candidates, batch))
            if not chunk:
                return
            accepted = self._lookup(plan.filter, chunk)
            examined += len(chunk)
            accepted_total += len(accepted)
            yield from accepted
            # enough candidates for the rest at the acceptance rate seen so far, with a quarter to spare
            remaining = max(1, need - accepted_total)
            estimate = remaining * examined * 5 // (4 * max(accepted_total, 1))
            batch = max(MIN_FIRST_CHUNK, min(MAX_CHUNK, estimate))

    def _lookup(self, flt: IssueFilter, rows: list[GroupRow]) -> list[GroupRow]:
        """The candidates that meet the conditions needing lookups, each source read once for all of them:
        text (title and message), environments (and their first releases), releases, regressions."""
        if flt.texts:
            texts = self._texts(rows)
            rows = [
                r for r in rows if r.group_id in texts and all(t.holds(texts[r.group_id]) for t in flt.texts)
            ]
        for sources, read in (
            ((ENVIRONMENTS, ENVIRONMENT_FIRST_RELEASES), self._environments),
            ((RELEASES,), self._releases),
            ((REGRESSIONS,), self._regressions),
        ):
            conditions = [r for r in flt.related if r.source in sources]
            if conditions and rows:
                present = read(rows, conditions)
                rows = [
                    r
                    for r in rows
                    if all(c.holds(present.get((c.source, r.group_id), ())) for c in conditions)
                ]
        return rows

    def _texts(self, rows: list[GroupRow]) -> dict[int, dict[str, str]]:
        """{group id: {"title", "message"}} for text matching: only those two columns are read for candidates
        (the display columns are read later, for the page's rows only). What a request has read is kept for
        the rest of it (same snapshot): X-Hits then reads only the candidates its page did not."""
        texts = self._text_cache
        missing = [[row.group_id] for row in rows if row.group_id not in texts]
        if missing:
            for group_id, title, message in self._read(
                "Groups", ("GroupId", "Title", "Message"), KeySet(keys=missing)
            ):
                texts[group_id] = {"title": title, "message": message}
        return {row.group_id: texts[row.group_id] for row in rows if row.group_id in texts}

    def _environments(self, rows: list[GroupRow], conditions: list[Related]) -> dict[tuple[str, int], list]:
        """{(source, group id): environments, or (environment, first release) pairs} of the candidates."""
        present: dict[tuple[str, int], list] = {}
        if all(c.point_values is not None for c in conditions):
            for group_id, environment in self._related("GroupEnvironments", rows, conditions):
                present.setdefault((ENVIRONMENTS, group_id), []).append(environment)
            return present
        columns = ("GroupId", "Environment", "FirstRelease")
        for group_id, environment, first_release in self.related_rows(
            "GroupEnvironments", columns, [row.group_id for row in rows]
        ):
            present.setdefault((ENVIRONMENTS, group_id), []).append(environment)
            present.setdefault((ENVIRONMENT_FIRST_RELEASES, group_id), []).append(
                (environment, first_release)
            )
        return present

    def _releases(self, rows: list[GroupRow], conditions: list[Related]) -> dict[tuple[str, int], list]:
        """{(source, group id): the releases the candidates were seen in} (all of them, or the named ones)."""
        present: dict[tuple[str, int], list] = {}
        if all(c.point_values is not None for c in conditions):
            found = self._related("GroupReleases", rows, conditions)
        else:
            found = self.related_rows("GroupReleases", ("GroupId", "Release"), [row.group_id for row in rows])
        for group_id, release in found:
            present.setdefault((RELEASES, group_id), []).append(release)
        return present

    def _regressions(self, rows: list[GroupRow], conditions: list[Related]) -> dict[tuple[str, int], list]:
        """{(source, group id): the releases the candidates regressed in}: their regression activities, found
        through ``ActivitiesByGroupType`` (GroupId, Type), whose data names the version."""
        present: dict[tuple[str, int], list] = {}
        ranges = [
            KeyRange(start_closed=[gid, SET_REGRESSION], end_closed=[gid, SET_REGRESSION])
            for gid in sorted({row.group_id for row in rows})
        ]
        for start in range(0, len(ranges), MAX_KEYS_PER_READ):
            for group_id, data in self._read(
                "Activities",
                ("GroupId", "Data"),
                KeySet(ranges=ranges[start : start + MAX_KEYS_PER_READ]),
                index="ActivitiesByGroupType",
            ):
                version = json_object(data).get("version")
                if isinstance(version, str) and version:
                    present.setdefault((REGRESSIONS, group_id), []).append(version)
        return present

    def _related(self, table: str, rows: list[GroupRow], conditions: list[Related]) -> list[list]:
        """(group id, value) rows of an interleaved (GroupId, value) table for the values the conditions name.

        With one or two named values, each candidate is looked up by its full keys; with more, every row of
        each candidate is read (a range per group id: a group has few environments and releases), so that a
        long list costs the candidates' own rows, not candidates x values key lookups (measured on the
        emulator: 100 values over 1,000 candidates took 12-14 s as keys)."""
        values = sorted(set().union(*(c.point_values or () for c in conditions)))
        if not values:
            return []
        column = _VALUE_COLUMN[table]
        if len(values) > MAX_POINT_VALUES:
            wanted = set(values)
            rows_read = self.related_rows(table, ("GroupId", column), [row.group_id for row in rows])
            return [pair for pair in rows_read if pair[1] in wanted]
        keys = [[row.group_id, value] for row in rows for value in values]
        return [
            pair
            for start in range(0, len(keys), MAX_KEYS_PER_READ)
            for pair in self._read(
                table, ("GroupId", column), KeySet(keys=keys[start : start + MAX_KEYS_PER_READ])
            )
        ]

    def related_rows(self, table: str, columns: tuple[str, ...], group_ids: Iterable[int]) -> Iterator[list]:
        """Every row of an interleaved table whose key starts with one of ``group_ids`` (``columns`` start with
        its primary key), in key order: one Read of a range per group, in chunks of ``MAX_CHUNK`` rows, each
        next chunk resuming after the last row read."""
        pending = sorted(set(group_ids))
        key_width = _KEY_WIDTH[table]
        after: list | None = None
        while pending:
            ranges = [KeyRange(start_closed=[group_id], end_closed=[group_id]) for group_id in pending]
            if after is not None:
                ranges[0] = KeyRange(start_open=after, end_closed=[pending[0]])
            rows = self._read(table, columns, KeySet(ranges=ranges), limit=MAX_CHUNK)
            yield from rows
            if len(rows) < MAX_CHUNK:
                return
            last = rows[-1]
            after = list(last[:key_width])
            pending = [group_id for group_id in pending if group_id >= last[0]]

    def attach_details(self, rows: list[GroupRow]) -> None:
        """Fill ``detail`` of the rows that lack it, with one primary-key read."""
        missing = [row for row in rows if row.detail is None]
        if not missing:
            return
        found = {
            values[0]: values
            for values in self._read(
                "Groups", DETAIL_COLUMNS, KeySet(keys=[[row.group_id] for row in missing])
            )
        }
        for row in missing:
            values = found.get(row.group_id)
            if values is None:  # deleted since the index row was read: cannot happen within one snapshot
                row.detail = GroupDetail("", "", "", None, {}, None, None)
                continue
            _, title, culprit, message, platform, data, resolution_type, resolution_version = values
            row.detail = GroupDetail(
                title, culprit, message, platform, json_object(data), resolution_type, resolution_version
            )

    # ---- operations

    def page(
        self, plan: SearchPlan, limit: int, after: SortKey | None = None, *, bounded: bool = True
    ) -> Page:
        """Up to ``limit`` matching rows after ``after`` in sort order, whether more may follow, and where the
        next page starts.

        ``bounded``: a page examines at most ``PAGE_ROW_BUDGET`` index rows (``PAGE_LOOKUP_BUDGET`` when
        conditions need lookups); past that it ends early, possibly empty, and the next page resumes after the
        last row examined, so one request costs a bounded number of reads however selective the filter is,
        and following the pages still finds every match."""
        need = limit + 1
        if plan.group_ids is not None:
            rows = [row for row in self._id_rows(plan) if after is None or sort_key(row, plan.sort) < after]
            rows = list(itertools.islice(self._filtered(plan, iter(rows), need), need))
            if len(rows) > limit:
                return Page(rows[:limit], True, sort_key(rows[limit - 1], plan.sort))
            return Page(rows, False, sort_key(rows[-1], plan.sort) if rows else None)
        plan = plan.after(after)
        budget = None
        if bounded:
            budget = PAGE_LOOKUP_BUDGET if plan.needs_lookups else PAGE_ROW_BUDGET
        source = _Budgeted(self._merged(plan, need), budget, plan.sort)
        try:
            rows = list(itertools.islice(self._filtered(plan, iter(source), need), need))
        except BaseException:
            self.settle(failing=True)
            raise
        self.settle()
        if len(rows) > limit:
            return Page(rows[:limit], True, sort_key(rows[limit - 1], plan.sort))
        if source.stopped:
            return Page(rows, True, source.last_key)
        return Page(rows, False, sort_key(rows[-1], plan.sort) if rows else None)

    def count(self, plan: SearchPlan, cap: int, budget: int, lookup_budget: int | None = None) -> HitCount:
        """How many rows match, counting up to ``cap`` and reading at most ``budget`` index rows, or
        ``lookup_budget`` when conditions need lookups (environments, releases, free text)."""
        if plan.group_ids is not None:
            found = sum(1 for _ in self._filtered(plan, iter(self._id_rows(plan)), cap + 1))
            return HitCount(min(found, cap), capped=found > cap)
        if plan.needs_lookups and lookup_budget is not None:
            budget = min(budget, lookup_budget)
        examined = 0

        def bounded(rows: Iterator[GroupRow]) -> Iterator[GroupRow]:
            nonlocal examined
            for row in rows:
                if examined >= budget:
                    return
                examined += 1
                yield row

        found = 0
        for _ in self._filtered(plan, bounded(self._scan(plan, min(cap + 1, budget))), cap + 1):
            found += 1
            if found > cap:
                return HitCount(cap, capped=True)
        return HitCount(found, partial=examined >= budget)

    def _id_rows(self, plan: SearchPlan) -> list[GroupRow]:
        """The groups ``plan.group_ids`` names (``issue:``), read by key, that pass the index-row conditions,
        in sort order."""
        assert plan.group_ids is not None
        rows = [GroupRow.from_index(values) for values in self.by_ids(plan.group_ids, INDEX_COLUMNS)]
        self.stats.index_rows += len(rows)
        rows = [row for row in rows if plan.accepts(row)]
        rows.sort(key=lambda row: sort_key(row, plan.sort), reverse=True)
        return rows

    def read_index(self, table: str, columns: tuple[str, ...], keys: list[list], index: str) -> list[list]:
        """Rows of ``index`` whose index key starts with one of ``keys`` (a range per key)."""
        if not keys:
            return []
        ranges = [KeyRange(start_closed=key, end_closed=key) for key in keys]
        return [
            row
            for start in range(0, len(ranges), MAX_KEYS_PER_READ)
            for row in self._read(
                table, columns, KeySet(ranges=ranges[start : start + MAX_KEYS_PER_READ]), index=index
            )
        ]

    def read_range(
        self, table: str, columns: tuple[str, ...], prefix: list, index: str, limit: int
    ) -> list[list]:
        """The first ``limit`` rows of ``index`` under the key ``prefix``, in index order."""
        keyset = KeySet(ranges=[KeyRange(start_closed=prefix, end_closed=prefix)])
        return self._read(table, columns, keyset, index=index, limit=limit)

    def by_ids(self, ids: Iterable[int], columns: tuple[str, ...]) -> list[list]:
        """Groups rows by primary key (bulk operations' selection by id)."""
        keys = [[group_id] for group_id in dict.fromkeys(ids)]
        if not keys:
            return []
        return self._read("Groups", columns, KeySet(keys=keys))


@dataclass(slots=True)
class Page:
    """One page of matching rows; ``resume`` is the sort key the next page starts after (None: nothing read)."""

    rows: list[GroupRow]
    more: bool
    resume: SortKey | None


@dataclass(slots=True)
class _ChunkRead:
    """One Read of the first ``chunk`` rows of a range, sent on the read pool (``future``) or, sequentially,
    when taken. Only the request's thread takes it: it counts the read and keeps its rows in ``known``."""

    searcher: Searcher
    rng: RangePlan
    chunk: int
    known: _RangeRows
    future: Future | None = None
    taken: bool = False

    def fetch(self) -> list[list]:
        keyset = KeySet(ranges=[self.rng.key_range()])
        return list(
            self.searcher.snapshot.read(
                "Groups", list(INDEX_COLUMNS), keyset, index=self.rng.index, limit=self.chunk
            )
        )

    def take(self) -> list[list]:
        rows = self.future.result() if self.future is not None else self.fetch()
        self.taken = True
        stats = self.searcher.stats
        stats.reads += 1
        stats.rows += len(rows)
        stats.index_rows += len(rows)
        self.known.rows += rows
        self.known.complete = len(rows) < self.chunk
        return rows


@dataclass(slots=True)
class _RangeRows:
    """The index rows one request has read of a range, from its start, in index order; ``complete``: all."""

    rows: list[list] = field(default_factory=list)
    complete: bool = False


class _Budgeted:
    """Rows of ``source`` until ``budget`` of them have been handed out (None: all); ``stopped`` tells whether
    rows were left unread, and ``last_key`` is the sort key of the last row handed out."""

    def __init__(self, source: Iterator[GroupRow], budget: int | None, sort: str) -> None:
        self.source = source
        self.budget = budget
        self.sort = sort
        self.stopped = False
        self.last_key: SortKey | None = None

    def __iter__(self) -> Iterator[GroupRow]:
        for handed, row in enumerate(self.source):
            if self.budget is not None and handed >= self.budget:
                self.stopped = True  # a row past the budget exists; it is read again by the next page
                return
            self.last_key = sort_key(row, self.sort)
            yield row


_VALUE_COLUMN = {"GroupEnvironments": "Environment", "GroupReleases": "Release"}
_KEY_WIDTH = {"GroupEnvironments": 2, "GroupReleases": 2}


def _descending(key: SortKey) -> tuple[int, ...]:
    return tuple(-part for part in key)
