"""Rows reach a Spanner transaction through its private buffer only once the client showed it keeps them there.

``transforms.storage.mutation_buffer`` puts the writer's prebuilt mutations into ``Transaction._mutations`` (the
client's private list) after checking, on the first rows written, that the public ``insert``/``update`` put
the same mutation there; otherwise it uses the public methods. Both ways give the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.stream.harness import read_tables
from tests.test_spanner_writer_emulator import context, occurrence, resolve
from transforms.core import engine
from transforms.storage import mutation_buffer
from transforms.storage.spanner_writer import SpannerWriter


@pytest.fixture
def buffering() -> Iterator[mutation_buffer.MutationBuffer]:
    before = mutation_buffer.BUFFER.private
    yield mutation_buffer.BUFFER
    mutation_buffer.BUFFER.private = before


def _write(database) -> None:
    """Creations with events and releases, an update, a resolve then a regression, over two commits."""
    writer = SpannerWriter(database)
    state, first = engine.apply(None, [occurrence(1), occurrence(2, release="1.1.0")], context())
    state, second = engine.apply(state, [resolve(3), occurrence(4, release="2.0.0")], context())
    writer.write([first.write])
    writer.write([second.write])


def _rows(database) -> dict[str, list[dict]]:
    return {
        table: [{column: value for column, value in row.items() if column != "UpdatedAt"} for row in rows]
        for table, rows in read_tables(database).items()
    }


class _ElsewhereTransaction:
    """A transaction of a client that keeps its mutations somewhere else than ``_mutations``."""

    def __init__(self, transaction) -> None:
        self._transaction = transaction

    def __getattr__(self, name: str):
        if name == "_mutations":
            raise AttributeError(name)
        return getattr(self._transaction, name)


class _ElsewhereDatabase:
    def __init__(self, database) -> None:
        self._database = database

    def run_in_transaction(self, unit_of_work, *args, **kwargs):
        return self._database.run_in_transaction(
            lambda transaction, *a, **k: unit_of_work(_ElsewhereTransaction(transaction), *a, **k),
            *args,
            **kwargs,
        )

    def __getattr__(self, name: str):
        return getattr(self._database, name)


def test_the_first_rows_show_that_the_client_keeps_mutations_in_the_buffer(spanner_db, buffering) -> None:
    buffering.private = None
    _write(spanner_db.database)
    assert buffering.private is True
    assert len(_rows(spanner_db.database)["Occurrences"]) == 3


def test_the_buffer_and_the_public_methods_write_the_same_rows(spanner_db_factory, buffering) -> None:
    written = []
    for private in (True, False):
        database = spanner_db_factory().database
        buffering.private = private
        _write(database)
        written.append(_rows(database))
    assert written[0] == written[1]
    assert len(written[0]["Groups"]) == 1 and len(written[0]["Activities"]) == 2


def test_a_client_that_keeps_mutations_elsewhere_gets_rows_through_its_public_methods(
    spanner_db_factory, buffering, caplog: pytest.LogCaptureFixture
) -> None:
    reference = spanner_db_factory().database
    buffering.private = True
    _write(reference)
    database = spanner_db_factory().database
    buffering.private = None
    with caplog.at_level(logging.WARNING, logger=mutation_buffer.__name__):
        _write(_ElsewhereDatabase(database))
    assert buffering.private is False
    assert any("public insert/update methods" in record.getMessage() for record in caplog.records)
    assert _rows(database) == _rows(reference)
