"""Settling the range reads a page left in flight (api.search.searcher.Searcher.settle): every read is
settled even when one fails, and a page that fails keeps its own error."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from api.search.searcher import Searcher, _ChunkRead, _RangeRows


def _read(searcher: Searcher, result: list | None = None, error: Exception | None = None) -> _ChunkRead:
    future: Future = Future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result or [])
    read = _ChunkRead(searcher, rng=None, chunk=10, known=_RangeRows(), future=future)  # type: ignore[arg-type]
    searcher._in_flight.append(read)
    return read


def test_settle_waits_for_every_read_and_then_raises_the_first_failure():
    searcher = Searcher(snapshot=None, parallel=False)
    _read(searcher, error=RuntimeError("first"))
    _read(searcher, error=RuntimeError("second"))
    last = _read(searcher, result=[[1], [2]])
    with pytest.raises(RuntimeError, match="first"):
        searcher.settle()
    assert last.taken and last.known.rows == [[1], [2]]
    assert searcher.stats.reads == 1 and searcher.stats.rows == 2
    assert searcher._in_flight == []


def test_a_failing_page_keeps_its_own_error():
    searcher = Searcher(snapshot=None, parallel=False)
    _read(searcher, error=RuntimeError("a read in flight"))
    searcher.settle(failing=True)  # the page's error is the one raised, by the caller
    assert searcher._in_flight == []
