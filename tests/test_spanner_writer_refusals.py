"""A commit Spanner refuses for what it carries is split to find the refused write; the rest commits.

The refusals are real: the emulator refuses a key over 8 KiB ("Number of bytes for key of table Releases is
9008 which exceeds the maximum of 8192"), and the rows of an occurrence whose ``evidence_data`` is nested 300
levels deep cannot be built (orjson stops at 255). Such values are refused at decoding; these writes are made
by the engine directly, past decoding. Each scenario runs on the emulator (``SpannerWriter``) and on the
in-memory store (``tests/memory_store.py``), which refuses the same rows with the same errors.
"""

from __future__ import annotations

import msgspec
import pytest
from google.api_core import exceptions

from tests.memory_store import MemoryGroupStore, emulator_tables, memory_tables
from tests.test_spanner_writer_emulator import PROJECT, context, occurrence
from transforms.core import engine
from transforms.core.engine import EngineConfig, EngineContext
from transforms.core.model import Message
from transforms.storage.spanner_writer import SpannerWriter, is_refusal

SECOND = 1_000_000


class Store:
    """Where a scenario writes: ``write`` commits like ``SpannerWriter.write``; ``tables`` reads the rows back
    (normalized, ``tests/memory_store.py``)."""

    def __init__(self, writer, tables) -> None:
        self.write = writer.write
        self.tables = tables

    def column(self, table: str, column: str) -> list:
        return sorted(row[column] for row in self.tables([table]).get(table, {}).values())


@pytest.fixture(params=["emulator", "memory"])
def store(request) -> Store:
    if request.param == "emulator":
        database = request.getfixturevalue("spanner_db").database
        return Store(SpannerWriter(database), lambda tables: emulator_tables(database, tables))
    memory = MemoryGroupStore()
    return Store(memory, lambda tables: memory_tables(memory))


def deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"a": value}
    return value


def on_key(message: Message, name: str) -> Message:
    """The message moved to key ``name`` (its own fingerprint)."""
    from hashlib import md5

    payload = msgspec.structs.replace(
        message.payload, fingerprint=(name,), hashes=(md5(name.encode()).hexdigest(),)
    )
    return msgspec.structs.replace(message, payload=payload)


def with_evidence(message: Message, evidence: dict) -> Message:
    return msgspec.structs.replace(
        message, payload=msgspec.structs.replace(message.payload, evidence_data=evidence)
    )


def test_refusals_are_told_apart_from_what_retries_fix() -> None:
    assert is_refusal(exceptions.InvalidArgument("key too large"))
    assert is_refusal(exceptions.FailedPrecondition("constraint"))
    assert is_refusal(exceptions.OutOfRange("value"))
    assert is_refusal(TypeError("Recursion limit reached"))
    for error in (
        exceptions.Aborted("retry"),
        exceptions.ServiceUnavailable("down"),
        exceptions.DeadlineExceeded("slow"),
        exceptions.NotFound("no database"),
        exceptions.PermissionDenied("no role"),
        ConnectionError("reset"),
    ):
        assert not is_refusal(error), error


@pytest.mark.parametrize("bad", ["long release", "deep evidence"])
def test_a_refused_write_is_found_and_every_other_write_commits(store: Store, bad: str) -> None:
    writes = []
    for n in range(12):
        message = on_key(occurrence(n), f"key-{n}")
        if n == 7:
            message = (
                on_key(occurrence(n, release="r" * 9000), "key-7")
                if bad == "long release"
                else with_evidence(message, deep(300))
            )
        _state, outputs = engine.apply(None, [message], context())
        writes.append(outputs.write)
    stats = store.write(writes)
    assert [write.key for write, _reason in stats.refused] == [writes[7].key]
    reason = stats.refused[0][1]
    if bad == "long release":
        assert reason.startswith("InvalidArgument: ") and "exceeds the maximum of 8192" in reason
    else:
        assert "Recursion" in reason
    assert len(store.column("Groups", "GroupId")) == 11
    assert len(store.column("Occurrences", "OccurrenceId")) == 11
    assert stats.commits >= 2  # the first was refused, the halves without the write committed


def test_a_keys_writes_after_its_refused_one_are_not_written(store: Store) -> None:
    ctx = EngineContext(project=PROJECT, config=EngineConfig(), events={})
    state, first = engine.apply(None, [occurrence(1)], ctx)
    state, second = engine.apply(state, [occurrence(2, release="r" * 9000)], ctx)
    state, third = engine.apply(state, [occurrence(3)], ctx)
    _other_state, other = engine.apply(None, [on_key(occurrence(4), "other")], ctx)
    stats = store.write([first.write, second.write, third.write, other.write])
    assert [
        (write.seq, "after" if why.startswith("not written") else "refused") for write, why in stats.refused
    ] == [
        (second.write.seq, "refused"),
        (third.write.seq, "after"),
    ]
    assert store.column("Groups", "TimesSeen") == [1, 1]  # first, other
    key_states = store.tables(["KeyStates"])["KeyStates"].values()
    assert sorted(row["Seq"] for row in key_states if row["GroupId"] is not None) == sorted(
        [first.write.seq, other.write.seq]
    )


def test_errors_that_are_not_refusals_still_fail_the_commit(spanner_db) -> None:
    missing = spanner_db.database._instance.database("no-such-database")
    _state, outputs = engine.apply(None, [occurrence(1)], context())
    with pytest.raises(exceptions.NotFound):
        SpannerWriter(missing).write([outputs.write])


def test_a_commit_over_spanners_mutation_limit_is_refused_and_split() -> None:
    """Planned past ``max_mutations`` (set above Spanner's limit here), a commit over 80,000 mutations is
    refused like any write Spanner cannot take, and split by keys until every part fits. In-memory only:
    the emulator does not count mutations, real Spanner does."""
    memory = MemoryGroupStore(max_mutations=10_000_000)
    writes = []
    for n in range(1500):
        _state, outputs = engine.apply(None, [on_key(occurrence(n), f"key-{n}")], context())
        writes.append(outputs.write)
    stats = memory.write(writes)
    assert stats.mutations > 80_000
    assert stats.refused == []
    assert stats.commits == len(memory.commits) >= 2
    assert len(memory.rows.table("Groups")) == 1500
    with pytest.raises(exceptions.InvalidArgument, match="too many mutations"):
        MemoryGroupStore(max_mutations=10_000_000)._commit(writes)
