"""Issue search: a filter and a sort become index range reads on Spanner (one implementation, used by the HTTP
service, the command line and the bulk operations).

Plan. The six issue-index indexes of ``schemas/spanner.sql`` are keyed
``(scope, Status, Priority DESC, <sort column> DESC, GroupId DESC)`` where scope is the organization or the
project. A query becomes one key range per (scope value, status, priority) it allows, each already in the
page's order; a firstSeen/lastSeen/timesSeen bound on the sort column narrows each range, and a cursor starts
each range just after the previous page's last key. Every other condition is tested on the index row
(``STORING`` columns) or, for environments, releases and free text, by key lookups on the page's candidates.

Execution. Each range is read with Spanner's Read API (``index=``, a key range, ``limit=``), which can only seek
into the index and return its rows in key order: a range read is an index range scan by construction, on the
emulator and on real Spanner alike. Ranges are merged in sort order, reading each in chunks (the first of
``limit + 1`` rows, then doubling) only as far as the merge consumes it, so a page reads at most
``ranges x (limit + 1)`` index rows when every condition is served by the ranges, plus what residual filters
reject; the ranges' first chunks are read concurrently. All reads of one request share one read-only snapshot,
so a page is consistent, and counting (X-Hits) starts from what its page read.

Modules: ``plan`` (filters and sorts to ranges), ``searcher`` (reads, pages, counts, lookups), ``index_rows``
(the rows read). This package re-exports what the rest of the code uses, but not the limits: code and tests
that read or change one name the module that reads it (``api.search.plan.MAX_PROJECT_SCOPES``,
``api.search.searcher.PAGE_ROW_BUDGET``).
"""

from __future__ import annotations

from api.search.index_rows import (
    DETAIL_COLUMNS,
    INDEX_COLUMNS,
    GroupDetail,
    GroupRow,
    json_object,
    priority_rank,
    sort_key,
)
from api.search.plan import (
    DEFAULT_SORT,
    INDEXES,
    ORGANIZATION,
    PROJECT,
    SCOPE_COLUMN,
    SORT_COLUMN,
    SORTS,
    RangePlan,
    Scope,
    SearchPlan,
    plan_search,
)
from api.search.searcher import (
    HitCount,
    Page,
    ReadStats,
    Searcher,
)

__all__ = [
    "DEFAULT_SORT",
    "DETAIL_COLUMNS",
    "INDEXES",
    "INDEX_COLUMNS",
    "ORGANIZATION",
    "PROJECT",
    "SCOPE_COLUMN",
    "SORTS",
    "SORT_COLUMN",
    "GroupDetail",
    "GroupRow",
    "HitCount",
    "Page",
    "RangePlan",
    "ReadStats",
    "Scope",
    "SearchPlan",
    "Searcher",
    "json_object",
    "plan_search",
    "priority_rank",
    "sort_key",
]
