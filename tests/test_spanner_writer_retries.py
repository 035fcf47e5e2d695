"""What the writer retries around ``run_in_transaction`` (which retries aborts itself), on the real emulator."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as api_exceptions

from tests.test_spanner_writer_emulator import context, occurrence, rows
from transforms.core import engine
from transforms.storage.spanner_writer import ABORT_RETRY_SECONDS, SpannerWriter


class Flaky:
    """The emulator's database, whose ``run_in_transaction`` first raises the given errors (one per call)."""

    def __init__(self, database, *errors: Exception) -> None:
        self._database = database
        self._errors = list(errors)
        self.calls: list[dict] = []

    @property
    def name(self) -> str:
        return self._database.name

    def run_in_transaction(self, unit_of_work, **kwargs):
        self.calls.append(kwargs)
        if self._errors:
            raise self._errors.pop(0)
        return self._database.run_in_transaction(unit_of_work, **kwargs)


def _write():
    _state, outputs = engine.apply(None, [occurrence(1)], context())
    return outputs.write


def test_a_service_error_run_in_transaction_does_not_retry_is_retried(spanner_db):
    database = Flaky(spanner_db.database, api_exceptions.ServiceUnavailable("down"))
    stats = SpannerWriter(database).write([_write()])
    assert len(database.calls) == 2
    assert stats.commits == 1
    assert rows(spanner_db.database, "SELECT COUNT(*) FROM `Groups`") == [[1]]


def test_an_abort_is_left_to_run_in_transaction_with_a_longer_deadline(spanner_db):
    database = Flaky(spanner_db.database, api_exceptions.Aborted("aborted for 120 s"))
    with pytest.raises(api_exceptions.Aborted):
        SpannerWriter(database).write([_write()])
    assert database.calls == [{"timeout_secs": ABORT_RETRY_SECONDS}]  # not retried again here


def test_a_key_taken_for_new_but_written_meanwhile_is_committed_again_with_guard_reads(spanner_db):
    write = _write()
    SpannerWriter(spanner_db.database).write([write])  # another writer stored the key first
    database = Flaky(spanner_db.database)
    stats = SpannerWriter(database).write([write])  # its base_seq 0: planned as inserts, which fail
    assert len(database.calls) == 2
    assert stats.stale_writes == 1  # the second attempt read the key's seq
    assert rows(spanner_db.database, "SELECT COUNT(*) FROM `Groups`") == [[1]]
