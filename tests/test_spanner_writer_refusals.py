"""A commit Spanner refuses for what it carries is split to find the refused write; the rest commits.

The refusals are real: the emulator refuses a key over 8 KiB ("Number of bytes for key of table Releases is
9008 which exceeds the maximum of 8192"), and the rows of an occurrence whose ``evidence_data`` is nested 300
levels deep cannot be built (orjson stops at 255). Such values are refused at decoding; these writes are made
by the engine directly, past decoding.
"""

from __future__ import annotations

import msgspec
import pytest
from google.api_core import exceptions

from tests.test_spanner_writer_emulator import PROJECT, context, occurrence, rows
from transforms.core import engine
from transforms.core.engine import EngineConfig, EngineContext
from transforms.core.model import Message
from transforms.storage.spanner_writer import SpannerWriter, is_refusal

SECOND = 1_000_000


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
def test_a_refused_write_is_found_and_every_other_write_commits(spanner_db, bad: str) -> None:
    database = spanner_db.database
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
    stats = SpannerWriter(database).write(writes)
    assert [write.key for write, _reason in stats.refused] == [writes[7].key]
    reason = stats.refused[0][1]
    assert ("exceeds the maximum of 8192" in reason) if bad == "long release" else ("Recursion" in reason)
    assert len(rows(database, "SELECT GroupId FROM `Groups`")) == 11
    assert len(rows(database, "SELECT OccurrenceId FROM Occurrences")) == 11
    assert stats.commits >= 2  # the first was refused, the halves without the write committed


def test_a_keys_writes_after_its_refused_one_are_not_written(spanner_db) -> None:
    database = spanner_db.database
    ctx = EngineContext(project=PROJECT, config=EngineConfig(), events={})
    state, first = engine.apply(None, [occurrence(1)], ctx)
    state, second = engine.apply(state, [occurrence(2, release="r" * 9000)], ctx)
    state, third = engine.apply(state, [occurrence(3)], ctx)
    _other_state, other = engine.apply(None, [on_key(occurrence(4), "other")], ctx)
    stats = SpannerWriter(database).write([first.write, second.write, third.write, other.write])
    assert [
        (write.seq, "after" if why.startswith("not written") else "refused") for write, why in stats.refused
    ] == [
        (second.write.seq, "refused"),
        (third.write.seq, "after"),
    ]
    assert sorted(r[0] for r in rows(database, "SELECT TimesSeen FROM `Groups`")) == [1, 1]  # first, other
    assert rows(database, "SELECT Seq FROM KeyStates WHERE GroupId IS NOT NULL ORDER BY Seq") == sorted(
        [[first.write.seq], [other.write.seq]]
    )


def test_errors_that_are_not_refusals_still_fail_the_commit(spanner_db) -> None:
    missing = spanner_db.database._instance.database("no-such-database")
    _state, outputs = engine.apply(None, [occurrence(1)], context())
    with pytest.raises(exceptions.NotFound):
        SpannerWriter(missing).write([outputs.write])
