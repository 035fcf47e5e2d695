"""Writes Spanner refuses, in the stateful step: the commit is split, the message whose write is refused is
dead-lettered (``internal_error`` at stage ``write``), its key is applied again without it (the key's state
in Beam and in Spanner both as if it had never come), and everything else is written.

The refusal is real: a release over Spanner's 8 KiB key limit ("Number of bytes for key of table Releases is
9008 which exceeds the maximum of 8192"), which decoding refuses, so the messages here are built past it. Every
scenario runs on the emulator and on the in-memory store (``tests/memory_store.py``), which refuses the same
rows with the same errors.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import wait
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.utils.windowed_value import WindowedValue

from tests.engine import builders as b
from tests.memory_store import MemoryApplierFactory, emulator_tables, memory_store, memory_tables
from tests.stream import test_flush_timers
from tests.stream.test_apply_per_group import HOLD, _stream, _timestamped, run_step
from tests.stream.test_flush_timers import Driver
from transforms.applier import ApplierConfig, GroupApplier, SpannerTarget
from transforms.apply_per_group import (
    DEAD_LETTER,
    step_committer,
    stopped_dead_letters,
    uncounted_counts,
    wait_for_commits,
)
from transforms.core import engine, metrics, reasons
from transforms.core.engine.ids import group_id
from transforms.core.model import MICROS, Message
from transforms.per_group import local_commits
from transforms.per_group.local_commits import ApplierFactory, Committer

SECOND = MICROS
LONG = "r" * 9000
GROUP = group_id(b.PROJECT.project_id, b.md5_hex(b.FINGERPRINT), 0)


def _rows(tables: Callable[[Iterable[str]], dict[str, dict[tuple, dict[str, Any]]]]) -> dict:
    """What a scenario checks of the rows ``tables`` reads back (``Driver.tables``)."""
    found = tables(["Groups", "Occurrences", "Releases"])
    rows = {table: list(found.get(table, {}).values()) for table in ("Groups", "Occurrences", "Releases")}
    return {
        "times_seen": [row["TimesSeen"] for row in rows["Groups"]],
        "occurrences": sorted(row["OccurrenceId"] for row in rows["Occurrences"]),
        "releases": sorted(row["Version"] for row in rows["Releases"]),
    }


# Drivers over the emulator or the in-memory store (a fixture of the timer tests).
make_driver = test_flush_timers.make_driver


def _ids(*messages: Message) -> list[str]:
    return sorted(message.payload.id for message in messages)


def _dead(outputs) -> list:
    """The dead letters among a flush's or a bundle end's outputs (the latter's are windowed)."""
    values = [output.value for output in outputs or () if getattr(output, "tag", None) == DEAD_LETTER]
    return [value.value if isinstance(value, WindowedValue) else value for value in values]


# ------------------------------------------------------------------------------------------------------
# Local runs: the commit runs after its bundle (overlap_commits); the key is rebuilt when next touched


def _flush(driver: Driver, *messages: Message) -> list:
    """The dead letters of a flush of the messages (``Driver.flush``)."""
    return _dead(driver.flush(*messages))


@contextlib.contextmanager
def _commits_after_the_bundle() -> Iterator[None]:
    """The commits handed over inside run only after it (the commit thread is held): a refusal is then found
    after the bundle's end, as when the pipeline goes on faster than Spanner answers. Without it, a bundle
    whose commit was already refused when it ended rebuilds the key itself (``Bundle.finish``), which
    scenarios of the later paths cannot let happen."""
    gate = threading.Event()
    held = local_commits._commit_thread().submit(gate.wait)
    try:
        yield
    finally:
        gate.set()
        held.result(timeout=30)


def _commits_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every commit handed over is done before the bundle goes on: its refusal is found by the bundle's end."""
    submit = Committer.submit

    def at_once(self, write, writes, counts):
        future = submit(self, write, writes, counts)
        wait([future])
        return future

    monkeypatch.setattr(Committer, "submit", at_once)


def test_overlapped_a_refused_message_is_dead_lettered_when_its_key_is_next_touched(make_driver) -> None:
    driver = make_driver(overlap=True)
    first = b.occurrence(b.T0, release="1.0")
    bad = b.occurrence(b.T0 + SECOND, release=LONG)
    third = b.occurrence(b.T0 + 2 * SECOND, release="1.0")
    assert _flush(driver, first, bad, third) == []
    with _commits_after_the_bundle():  # its commit is refused later: the key is held until it is touched
        assert _dead(driver.finish()) == []
    assert step_committer(driver.fn.settings.step).wait(30) == 0
    fourth = b.occurrence(b.T0 + 3 * SECOND, release="1.1")
    dead = _flush(driver, fourth)
    assert [(d.message_id, d.reason, d.stage) for d in dead] == [
        (bad.message_id, reasons.INTERNAL_ERROR, reasons.STAGE_WRITE)
    ]
    assert "exceeds the maximum of 8192" in dead[0].error
    driver.finish()
    assert wait_for_commits(timeout=30) == 0
    assert uncounted_counts()[metrics.dead_letter_counter(reasons.INTERNAL_ERROR)] == 1  # with its bundle
    assert _rows(driver.tables) == {
        "times_seen": [3],
        "occurrences": _ids(first, third, fourth),
        "releases": ["1.0", "1.1"],
    }
    # The key's state in Beam is what the engine gives without the refused message.
    expected, _ = engine.apply(None, [first, third], b.context())
    expected, _ = engine.apply(expected, [fourth], b.context())
    kept = engine.decode_state(driver.key_state.read())
    assert (kept.seq, kept.group) == (expected.seq, expected.group)


def test_overlapped_a_refused_message_is_counted_as_a_dead_letter_only(
    make_driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the flush counted for the refused message (taken in, its group created and updated) is taken back
    when its key is rebuilt without it: every message is counted once, as taken in or as a dead letter. (The
    counts are those the step hands to Beam, and those it hands over when the run stops.)"""
    from transforms.counting import CountingDoFn

    uncounted_counts()  # (what earlier tests left)
    counted: dict[str, int] = {}

    def record(fn, name: str, amount: int) -> None:
        counted[name] = counted.get(name, 0) + amount

    monkeypatch.setattr(CountingDoFn, "_count", record)
    driver = make_driver(overlap=True)
    bad = b.occurrence(b.T0, release=LONG)
    second = b.occurrence(b.T0 + SECOND, release="5.0")
    _flush(driver, bad, second)
    driver.finish()
    assert step_committer(driver.fn.settings.step).wait(30) == 0
    third = b.occurrence(b.T0 + 2 * SECOND, release="5.0")
    _flush(driver, third)
    driver.finish()
    assert wait_for_commits(timeout=30) == 0
    counts = dict(counted)
    for name, amount in uncounted_counts().items():
        counts[name] = counts.get(name, 0) + amount
    assert _rows(driver.tables)["times_seen"] == [2]
    assert {
        name: counts.get(name, 0)
        for name in (
            metrics.OCCURRENCE_MESSAGES,
            metrics.GROUP_CREATED,
            metrics.OCCURRENCES_ATTACHED,
            metrics.dead_letter_counter(reasons.INTERNAL_ERROR),
        )
    } == {
        metrics.OCCURRENCE_MESSAGES: 2,
        metrics.GROUP_CREATED: 1,
        metrics.OCCURRENCES_ATTACHED: 2,
        metrics.dead_letter_counter(reasons.INTERNAL_ERROR): 1,
    }


def test_overlapped_a_refused_key_nobody_touches_again_is_rebuilt_when_the_run_stops(make_driver) -> None:
    uncounted_counts()  # (what earlier tests left)
    driver = make_driver(overlap=True)
    first, bad = b.occurrence(b.T0, release="2.0"), b.occurrence(b.T0 + SECOND, release=LONG)
    assert _flush(driver, first, bad) == []
    with _commits_after_the_bundle():
        assert _dead(driver.finish()) == []  # the last bundle: its commit is refused after it
    assert wait_for_commits(timeout=30) == 0
    dead = stopped_dead_letters()
    assert [(d.message_id, d.stage) for d in dead] == [(bad.message_id, reasons.STAGE_WRITE)]
    assert uncounted_counts().get(metrics.dead_letter_counter(reasons.INTERNAL_ERROR)) == 1
    assert _rows(driver.tables) == {"times_seen": [1], "occurrences": _ids(first), "releases": ["2.0"]}


def test_overlapped_a_commit_refused_before_its_bundle_ends_is_rebuilt_by_that_bundle(
    make_driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order of the scenario above: the refusal is known when the bundle ends, so the bundle's end
    outputs the dead letter, and the stop has none left to make (made once, in one place or the other)."""
    uncounted_counts()  # (what earlier tests left)
    _commits_at_once(monkeypatch)
    driver = make_driver(overlap=True)
    first, bad = b.occurrence(b.T0, release="2.0"), b.occurrence(b.T0 + SECOND, release=LONG)
    assert _flush(driver, first, bad) == []
    dead = _dead(driver.finish())
    assert [(d.message_id, d.stage) for d in dead] == [(bad.message_id, reasons.STAGE_WRITE)]
    assert wait_for_commits(timeout=30) == 0
    assert stopped_dead_letters() == []
    # Counted with its bundle, not at the stop.
    assert uncounted_counts().get(metrics.dead_letter_counter(reasons.INTERNAL_ERROR)) is None
    assert driver.counts.get(metrics.dead_letter_counter(reasons.INTERNAL_ERROR)) == 1
    assert _rows(driver.tables) == {"times_seen": [1], "occurrences": _ids(first), "releases": ["2.0"]}


# ------------------------------------------------------------------------------------------------------
# Dataflow-shaped: the commit ends the bundle; a refused write fails it and Beam retries it without the message

_SEEN: list = []


class _Collect(beam.DoFn):
    def process(self, dead_letter):
        _SEEN.append(dead_letter)


@pytest.fixture(params=["emulator", "memory"])
def target(request) -> tuple[ApplierConfig, ApplierFactory, Callable]:
    """The step's config, the factory of its appliers, and a reader of the rows they write: the emulator's, or
    an in-memory store's."""
    if request.param == "emulator":
        database = request.getfixturevalue("spanner_db")
        spanner = SpannerTarget(database.project, database.instance, database.database_id)
        return (
            ApplierConfig(spanner=spanner),
            GroupApplier,
            lambda names: emulator_tables(database.database, names),
        )
    name = f"refused-writes-{uuid.uuid4().hex[:12]}"
    store = memory_store(name)
    return (
        ApplierConfig(spanner=SpannerTarget("memory", "memory", name)),
        MemoryApplierFactory(name),
        lambda names: memory_tables(store),
    )


@pytest.mark.timeout(180)
def test_a_refused_write_fails_its_bundle_once_and_the_retry_sets_the_message_aside(target) -> None:
    config, applier_factory, tables = target
    _SEEN.clear()
    first = b.occurrence(b.T0, release="3.0")
    bad = b.occurrence(b.T0 + SECOND, release=LONG)
    third = b.occurrence(b.T0 + 2 * SECOND, release="3.1")
    stream = (
        _stream()
        .add_elements(_timestamped([first, bad, third]))
        .advance_watermark_to((b.T0 + 30 * SECOND) / MICROS)
        .advance_processing_time(HOLD + 1)
        .advance_watermark_to((b.T0 + 60 * SECOND) / MICROS)
        .advance_processing_time(HOLD + 1)
    )
    counters = run_step(config, stream, applier_factory=applier_factory, dead_letters=_Collect())
    assert [(d.message_id, d.reason, d.stage) for d in _SEEN] == [
        (bad.message_id, reasons.INTERNAL_ERROR, reasons.STAGE_WRITE)
    ]
    assert counters[metrics.dead_letter_counter(reasons.INTERNAL_ERROR)] == 1
    assert _rows(tables) == {
        "times_seen": [2],
        "occurrences": _ids(first, third),
        "releases": ["3.0", "3.1"],
    }
