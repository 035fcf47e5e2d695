"""The stateful DoFn's timer logic, step by step: its methods called directly with in-memory state and timers.

A runner decides when timers fire; here the test does, so each step of the buffering contract (module
docstring of ``transforms.apply_per_group``) is checked in isolation and in a known order. The engine and
the Spanner writes are the real ones (emulator); the tests of the buffering alone also run on the in-memory
store (``tests/memory_store.py``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from apache_beam.internal import pickler
from apache_beam.utils.timestamp import Timestamp

from tests.engine import builders as b
from tests.memory_store import MemoryApplierFactory, emulator_tables, memory_store, memory_tables
from transforms import progress
from transforms.applier import ApplierConfig, GroupApplier, SpannerTarget
from transforms.apply_per_group import (
    ApplyPerGroupFn,
    CommitFailed,
    Routed,
    decode_message,
    step_committer,
    uncounted_counts,
    wait_for_commits,
)
from transforms.core import engine, metrics
from transforms.core.engine import EngineConfig
from transforms.core.model import MICROS, Message
from transforms.per_group.local_commits import ApplierFactory
from transforms.storage import state_store
from transforms.storage.spanner_writer import SpannerWriter

SECOND = MICROS
HOLD = 2.0
IDLE = 30.0
T0 = b.T0


class Bag:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        self.items.append(item)

    def read(self) -> Iterable[Any]:
        return list(self.items)

    def clear(self) -> None:
        self.items = []


class Value:
    def __init__(self) -> None:
        self.value: Any = None

    def read(self) -> Any:
        return self.value

    def write(self, value: Any) -> None:
        self.value = value

    def clear(self) -> None:
        self.value = None


class Timer:
    def __init__(self) -> None:
        self.at: Timestamp | None = None

    def set(self, at: Timestamp) -> None:
        self.at = at

    def clear(self) -> None:
        self.at = None

    def take(self) -> Timestamp:
        assert self.at is not None, "the timer is not set"
        at, self.at = self.at, None
        return at


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Driver:
    """One key of ``ApplyPerGroupFn``: its state, its timers, and the runner's part (firing timers)."""

    def __init__(
        self,
        database,
        engine: EngineConfig | None = None,
        key: str | None = None,
        overlap: bool = False,
        save_delay: float = 0.0,
        recheck: float = 0.0,
        applier_factory: ApplierFactory = GroupApplier,
        tables: Callable[[Iterable[str]], dict[str, dict[tuple, dict[str, Any]]]] | None = None,
        shipped: bool = False,
    ) -> None:
        """``tables``: reads the store's rows back, normalized (``tests/memory_store.py``); by default the
        emulator's. ``shipped``: the DoFn is pickled and unpickled before its setup, as Beam ships it."""
        self.tables = tables or (lambda names: emulator_tables(database.database, names))
        config = ApplierConfig(
            spanner=SpannerTarget(database.project, database.instance, database.database_id),
            engine=engine or EngineConfig(),
            event_recheck_interval=recheck,
        )
        self.clock = Clock()
        self.fn = ApplyPerGroupFn(
            config,
            watermark_delay=0.0,
            processing_hold=HOLD,
            idle_timeout=IDLE,
            state_save_delay=save_delay,
            clock=self.clock,
            overlap_commits=overlap,
            applier_factory=applier_factory,
        )
        if shipped:
            self.fn = pickler.loads(pickler.dumps(self.fn))
        self.fn.setup()
        self.counts: dict[str, int] = {}
        self._start_bundle()
        self.buffer, self.key_state, self.meta = Bag(), Value(), Value()
        self.event, self.hold, self.lookup, self.expire = Timer(), Timer(), Timer(), Timer()
        self.confirm, self.save, self.probe = Timer(), Timer(), Timer()
        self.writes = 0
        self.key = key or f"{b.PROJECT.project_id}:{b.md5_hex(b.FINGERPRINT)}"

    def _start_bundle(self) -> None:
        if "_count" not in vars(self.fn):  # record what the DoFn and its applier count
            count = self.fn._count

            def recording(name: str, amount: int) -> None:
                self.counts[name] = self.counts.get(name, 0) + amount
                count(name, amount)

            self.fn._count = recording
        self.fn.start_bundle()

    def send(self, *messages: Message) -> None:
        for message in messages:
            self.fn.process(
                (message.key, Routed.of(message, b.PROJECT)),
                buffer=self.buffer,
                meta_state=self.meta,
                event_flush=self.event,
                hold_flush=self.hold,
            )

    def _timers(self) -> dict[str, Timer]:
        return {
            "event_flush": self.event,
            "lookup_retry": self.lookup,
            "expire": self.expire,
            "confirm": self.confirm,
            "save": self.save,
        }

    def fire_event(self) -> None:
        fired = self.event.take()
        list(
            self.fn.on_event_flush(
                key=self.key,
                fired=fired,
                buffer=self.buffer,
                key_state=self.key_state,
                meta_state=self.meta,
                **self._timers(),
            )
        )

    def fire_hold(self) -> list:
        """Fire the hold at its time; what the flush outputs."""
        self.clock.now = self.hold.take().micros / MICROS
        return list(
            self.fn.on_hold_flush(
                key=self.key,
                buffer=self.buffer,
                key_state=self.key_state,
                meta_state=self.meta,
                probe=self.probe,
                hold_flush=self.hold,
                **self._timers(),
            )
        )

    def flush(self, *messages: Message) -> list:
        """Send the messages, let the watermark pass them and the hold end; what the hold's flush outputs."""
        self.send(*messages)
        latest = max(message.message_time for message in messages)
        while self.event.at is not None and self.event.at.micros <= latest:
            self.fire_event()  # the watermark passes them (while the hold runs, nothing is applied)
        return self.fire_hold()

    def fire_probe(self) -> None:
        self.fn.on_probe(fired=self.probe.take())

    def fire_lookup(self) -> None:
        self.clock.now = self.lookup.take().micros / MICROS
        list(
            self.fn.on_lookup_retry(
                key=self.key,
                buffer=self.buffer,
                key_state=self.key_state,
                meta_state=self.meta,
                lookup_retry=self.lookup,
                expire=self.expire,
                confirm=self.confirm,
                save=self.save,
            )
        )

    def fire_expire(self) -> None:
        self.clock.now = self.expire.take().micros / MICROS
        self.fn.on_expire(
            key=self.key,
            buffer=self.buffer,
            key_state=self.key_state,
            meta_state=self.meta,
            confirm=self.confirm,
            save=self.save,
        )

    def fire_save(self) -> None:
        self.save.take()
        self.fn.on_save(key=self.key, key_state=self.key_state, meta_state=self.meta, confirm=self.confirm)

    def finish(self) -> list:
        """End the bundle and start the next; what the bundle's end outputs (overlap_commits: the dead letters
        of keys whose refused writes it rebuilt, ``Bundle.finish``)."""
        outputs = list(self.fn.finish_bundle() or ())
        self._start_bundle()
        return outputs

    def engine_calls(self) -> int:
        """Key writes made so far (one per flush that took messages in), committed to Spanner."""
        pending = self.fn.bundle.applier.pending_writes
        self.fn.finish_bundle()
        self._start_bundle()
        self.writes += pending
        return self.writes

    def buffered(self) -> list[int]:
        return sorted(decode_message(data).message_time for data in self.buffer.read())


@pytest.fixture(params=["emulator", "memory"])
def make_driver(request) -> Callable[..., Driver]:
    """Makes drivers over the emulator, or over an in-memory store that writes the same rows
    (``tests/memory_store.py``, pinned against the emulator by ``tests/test_memory_store.py``)."""
    if request.param == "emulator":
        database = request.getfixturevalue("spanner_db")
        return lambda **kwargs: Driver(database, **kwargs)
    name = f"flush-timers-{uuid.uuid4().hex[:12]}"
    target = SimpleNamespace(project="memory", instance="memory", database_id=name)
    store = memory_store(name)
    return lambda **kwargs: Driver(
        target,
        applier_factory=MemoryApplierFactory(name),
        tables=lambda names: {table: memory_tables(store).get(table, {}) for table in names},
        **kwargs,
    )


@pytest.fixture
def driver(make_driver) -> Driver:
    return make_driver()


def test_a_backlog_the_watermark_passed_during_the_hold_is_applied_in_one_flush(driver: Driver) -> None:
    driver.send(*(b.occurrence(T0 + i * SECOND) for i in (4, 0, 3, 1, 2)))
    driver.fire_event()  # the earliest: while the hold runs, the timer moves to the latest message
    assert driver.event.at == Timestamp(micros=T0 + 4 * SECOND)
    driver.fire_event()
    assert driver.engine_calls() == 0
    driver.fire_hold()
    assert driver.buffered() == []
    assert driver.engine_calls() == 1


def test_messages_wait_for_the_watermark_after_the_hold_and_are_not_held_again(driver: Driver) -> None:
    driver.send(b.occurrence(T0), b.occurrence(T0 + 20 * SECOND))
    driver.fire_hold()  # the watermark has passed neither
    assert driver.engine_calls() == 0
    driver.fire_event()  # the watermark passes the first: applied at once, the hold has passed
    assert driver.buffered() == [T0 + 20 * SECOND]
    assert driver.engine_calls() == 1
    assert driver.hold.at is None
    assert driver.event.at == Timestamp(micros=T0 + 20 * SECOND)
    driver.send(b.occurrence(T0 + 30 * SECOND))  # joins a buffer whose hold has passed: no new hold
    assert driver.hold.at is None
    driver.fire_event()
    assert driver.buffered() == [T0 + 30 * SECOND]
    assert driver.engine_calls() == 2


def test_the_hold_starts_again_with_the_first_message_after_the_buffer_emptied(driver: Driver) -> None:
    driver.send(b.occurrence(T0))
    driver.fire_event()
    driver.fire_hold()
    assert driver.buffered() == []
    assert driver.hold.at is None
    driver.clock.now += 60
    driver.send(b.occurrence(T0 + SECOND))
    assert driver.hold.at == Timestamp.of(driver.clock.now + HOLD)


def test_a_watermark_probe_spares_the_event_timers_of_messages_behind_it(driver: Driver) -> None:
    driver.clock.now = T0 / MICROS + 60  # processing time, a minute after the first message time
    driver.send(b.occurrence(T0))
    driver.fire_event()
    driver.fire_hold()  # the step's first hold sets its probe, a margin behind the processing time
    first_probe = Timestamp.of(driver.clock.now - ApplyPerGroupFn.PROBE_MARGIN)
    assert driver.probe.at == first_probe
    driver.send(b.occurrence(T0 + 10 * SECOND))  # the probe has not fired: an event timer as before
    assert driver.event.at == Timestamp(micros=T0 + 10 * SECOND)
    driver.fire_event()
    driver.fire_hold()
    assert driver.engine_calls() == 2
    assert driver.probe.at == first_probe  # one probe at a time
    driver.fire_probe()  # the watermark has passed the probe ...
    driver.send(b.occurrence(T0 + 20 * SECOND))  # ... and so this message: no event timer
    assert driver.event.at is None
    driver.fire_hold()  # the hold's flush takes it
    assert driver.buffered() == []
    assert driver.engine_calls() == 3
    assert driver.probe.at == Timestamp.of(driver.clock.now - ApplyPerGroupFn.PROBE_MARGIN)  # the next one


def test_a_message_behind_the_watermark_is_applied_at_the_next_flush_and_counted_late(
    driver: Driver,
) -> None:
    driver.send(b.occurrence(T0 + 10 * SECOND))
    driver.fire_event()
    driver.fire_hold()
    assert driver.engine_calls() == 1
    driver.send(b.occurrence(T0))  # the watermark is known to be past T0 + 10 s already ...
    assert driver.event.at is None  # ... so no event-time timer is set: the hold's flush takes it
    driver.fire_hold()
    assert driver.engine_calls() == 2
    assert driver.buffered() == []
    assert driver.counts[metrics.LATE_MESSAGES] == 1


def test_expiry_waits_for_a_busy_key_and_its_state_comes_back_from_spanner(make_driver) -> None:
    driver = make_driver()
    first = b.occurrence(T0)
    driver.send(first)
    assert driver.expire.at is None  # a key with messages is not idle
    driver.send(b.occurrence(T0 + SECOND))
    driver.expire.at = Timestamp.of(driver.clock.now)  # an expiry set earlier fires while messages wait
    driver.fire_expire()
    assert driver.meta.read() is not None and driver.counts.get(metrics.STATE_EXPIRED, 0) == 0
    driver.fire_event()
    driver.fire_event()
    driver.fire_hold()
    assert driver.engine_calls() == 1
    # Idle now: the expiry is armed for the idle timeout after the flush.
    assert driver.expire.at == Timestamp.of(driver.clock.now + IDLE)
    driver.fire_expire()
    assert (driver.meta.read(), driver.key_state.read(), driver.buffer.read()) == (None, None, [])
    assert driver.counts[metrics.STATE_EXPIRED] == 1

    driver.send(first, b.occurrence(T0 + 200 * SECOND))  # a redelivery and a new message, much later
    driver.engine_calls()  # the bundle ends: the key is read from Spanner
    driver.fire_event()  # the new message's (the redelivery is behind the watermark: no timer of its own)
    assert driver.event.at is None
    driver.fire_hold()
    assert driver.engine_calls() == 2
    assert driver.counts[metrics.STATE_HYDRATED] == 2
    assert driver.counts[metrics.DUPLICATES] == 1
    assert driver.counts[metrics.OCCURRENCE_MESSAGES] == 3


def test_a_lookup_waits_for_its_event_and_is_applied_when_another_key_stores_it(make_driver) -> None:
    driver = make_driver()
    lookup = b.occurrence(T0, lookup=True)
    driver.send(lookup)
    driver.fire_event()
    driver.fire_hold()
    assert driver.engine_calls() == 1  # taken in, waiting
    assert driver.counts[metrics.EVENT_LOOKUP_WAITING] == 1
    assert driver.lookup.at == Timestamp.of(driver.clock.now + 5.0)  # --lookup_retry_interval
    driver.fire_lookup()  # still not there: tries again later
    assert driver.engine_calls() == 1
    assert driver.lookup.at is not None

    carrier = b.occurrence(T0 + SECOND, with_event=b.event_of(lookup), fingerprint=("another key",))
    other = make_driver(key=carrier.key)
    other.send(carrier)
    other.fire_event()
    other.fire_hold()
    assert other.engine_calls() == 1  # the event is stored now

    driver.fire_lookup()
    assert driver.engine_calls() == 2
    assert driver.counts[metrics.GROUP_CREATED] == 1
    assert driver.lookup.at is None
    assert driver.expire.at is not None  # idle again


def test_a_hold_is_extended_while_its_lookups_events_are_read_in_the_background(
    spanner_db, monkeypatch
) -> None:
    # As in a pipeline (--lookup_retry_interval): the bundle's lookups are read in the background.
    driver = Driver(spanner_db, recheck=5.0)
    release = threading.Event()
    real_read = state_store.read_events

    def slow_read(database, wanted):
        release.wait(10.0)  # a flush that waited for the read would sit here, then apply the lookup
        return real_read(database, wanted)

    monkeypatch.setattr(state_store, "read_events", slow_read)
    lookup = b.occurrence(T0, lookup=True)
    driver.send(lookup)
    driver.finish()  # starts the bundle's background read of the lookup's event (after half a hold)
    driver.fire_event()
    driver.fire_hold()  # the read runs (started now): the hold is extended, nothing is applied yet
    assert driver.hold.at == Timestamp.of(driver.clock.now + ApplyPerGroupFn.READ_WAIT)
    assert driver.engine_calls() == 0
    assert driver.buffered() == [T0]

    release.set()
    deadline = time.monotonic() + 10.0
    while applier_reading(lookup) and time.monotonic() < deadline:
        time.sleep(0.01)
    driver.fire_hold()  # the read is done (the event is not stored): the lookup is taken in and waits
    assert driver.engine_calls() == 1
    assert driver.counts[metrics.EVENT_LOOKUP_WAITING] == 1
    assert driver.buffered() == []
    assert driver.hold.at is None


def applier_reading(message: Message) -> bool:
    from transforms.storage.event_cache import KNOWN_EVENTS

    return KNOWN_EVENTS.reading((message.project_id, message.payload.event_id))


def test_a_flush_takes_everything_the_steps_watermark_is_known_to_have_passed(spanner_db) -> None:
    """A key whose messages keep coming (a hot key) is not flushed one timer (often one message) at a time:
    an event-time timer fired for any key of the step shows how far the step's watermark has gone."""
    hot = Driver(spanner_db)
    other_message = b.occurrence(T0 + 10 * SECOND, fingerprint=["another-group"])
    other = Driver(spanner_db, key=other_message.key)
    other.fn = hot.fn  # two keys of one step
    hot.send(*(b.occurrence(T0 + i * SECOND) for i in range(10)))
    other.send(other_message)
    other.fire_event()  # the step's watermark has passed T0 + 10 s
    hot.fire_hold()
    assert hot.buffered() == []  # all ten in one flush, before the key's own timer (T0) fired
    assert hot.engine_calls() == 1


class _Gate:
    """Holds every Spanner commit (``SpannerWriter.write``) until opened; ``fail`` makes them raise."""

    def __init__(self, monkeypatch) -> None:
        self.open = threading.Event()
        self.fail = False
        real = SpannerWriter.write

        def gated(writer, writes):
            assert self.open.wait(30), "the gate was never opened"
            if self.fail:
                raise RuntimeError("injected commit failure")
            return real(writer, writes)

        monkeypatch.setattr(SpannerWriter, "write", gated)


def test_overlapped_commits_run_behind_their_bundle_and_a_confirm_timer_counts_them(
    spanner_db, monkeypatch
) -> None:
    """Local runs: a bundle's commit runs while later bundles are processed; a confirm timer makes sure a
    later bundle waits for it and counts it."""
    gate = _Gate(monkeypatch)
    driver = Driver(spanner_db, overlap=True)

    def applied() -> int:  # the bundle's counters, as Beam and the progress line see them
        return progress.snapshot().get(metrics.OCCURRENCE_MESSAGES, 0)

    before = applied()
    driver.send(b.occurrence(T0))
    driver.fire_event()
    driver.fire_hold()
    assert driver.confirm.at == Timestamp.of(driver.clock.now + ApplyPerGroupFn.CONFIRM_DELAY)
    driver.finish()  # hands the commit over and returns: the commit waits at the gate
    driver.send(b.occurrence(T0 + SECOND))
    driver.finish()  # a bundle without writes does not wait
    assert driver.counts.get(metrics.SPANNER_COMMITS, 0) == 0
    assert applied() == before  # counted once committed
    gate.open.set()
    driver.confirm.take()
    driver.fn.on_confirm()
    driver.finish()  # the confirm fired in a bundle without writes: it waits for every commit, and counts them
    assert driver.counts[metrics.SPANNER_COMMITS] == 1
    assert applied() == before + 1
    assert driver.counts[metrics.spanner_rows_counter("KeyStates")] == 1
    assert wait_for_commits(timeout=5) == 0


def test_a_failed_overlapped_commit_fails_every_later_bundle(spanner_db, monkeypatch) -> None:
    gate = _Gate(monkeypatch)
    gate.fail = True
    driver = Driver(spanner_db, overlap=True)
    driver.send(b.occurrence(T0))
    driver.fire_event()
    driver.fire_hold()
    driver.finish()
    gate.open.set()
    assert wait_for_commits(timeout=5) == 0
    for _ in range(2):
        with pytest.raises(CommitFailed, match="injected commit failure"):
            driver.finish()


def test_a_stopped_run_gets_the_counts_of_commits_no_bundle_counted(spanner_db, monkeypatch) -> None:
    gate = _Gate(monkeypatch)
    driver = Driver(spanner_db, overlap=True)
    driver.send(b.occurrence(T0))
    driver.fire_event()
    driver.fire_hold()
    driver.finish()  # the commit is handed over; then the pipeline stops: no later bundle
    gate.open.set()
    assert wait_for_commits(timeout=5) == 0
    counts = uncounted_counts()
    assert counts[metrics.SPANNER_COMMITS] == 1
    assert counts[metrics.OCCURRENCE_MESSAGES] == 1
    assert uncounted_counts() == {}  # given once


# --- deferred saves of keys without a group (module docstring, "Saves") ---------------------------------


def _stored(spanner_db, key: str) -> engine.KeyState | None:
    data = state_store.read_key_states(spanner_db.database, [key]).get(key)
    return None if data is None else engine.decode_state(data)


def _flush_one(driver: Driver, message: Message) -> None:
    driver.send(message)
    driver.fire_event()
    driver.fire_hold()


def test_a_groupless_key_is_saved_once_when_its_save_timer_fires_with_its_latest_state(spanner_db) -> None:
    driver = Driver(spanner_db, save_delay=60.0)
    _flush_one(driver, b.occurrence(T0, type=b.NOISY))
    assert driver.save.at == Timestamp(micros=T0 + 60 * SECOND)  # the known watermark + the delay
    driver.finish()
    assert _stored(spanner_db, driver.key) is None  # the flush wrote its event, not the key's state
    _flush_one(driver, b.occurrence(T0 + SECOND, type=b.NOISY))
    assert driver.save.at == Timestamp(micros=T0 + 60 * SECOND)  # armed once, by the first flush left behind
    driver.finish()
    assert _stored(spanner_db, driver.key) is None
    assert driver.counts[metrics.spanner_rows_counter("Events")] == 2
    assert metrics.spanner_rows_counter("KeyStates") not in driver.counts
    driver.fire_save()
    driver.finish()
    stored = _stored(spanner_db, driver.key)
    assert (stored.seq, stored.noise_count, stored.group) == (2, 2, None)
    assert driver.counts[metrics.STATE_SAVED_LATE] == 1
    assert driver.counts[metrics.spanner_rows_counter("KeyStates")] == 1
    driver.save.at = Timestamp(micros=T0 + 120 * SECOND)  # a save timer with nothing left to save
    driver.fire_save()
    driver.finish()
    assert driver.counts[metrics.STATE_SAVED_LATE] == 1


def test_a_flush_that_creates_the_group_writes_the_key_state_at_once(spanner_db) -> None:
    driver = Driver(spanner_db, save_delay=60.0)
    for second in (0, 1, 2):  # the noisy type needs 3 occurrences: the third creates the group
        _flush_one(driver, b.occurrence(T0 + second * SECOND, type=b.NOISY))
        driver.finish()
    stored = _stored(spanner_db, driver.key)
    assert stored.seq == 3 and stored.group is not None
    driver.fire_save()  # nothing is left behind: the creation wrote the row
    driver.finish()
    assert metrics.STATE_SAVED_LATE not in driver.counts
    assert driver.counts[metrics.spanner_rows_counter("KeyStates")] == 1


def test_an_expiring_key_is_saved_with_its_bundle_and_continues_after_hydration(spanner_db) -> None:
    driver = Driver(spanner_db, save_delay=600.0)
    for second in (0, 1):
        _flush_one(driver, b.occurrence(T0 + second * SECOND, type=b.NOISY))
    driver.finish()
    assert _stored(spanner_db, driver.key) is None
    driver.fire_expire()
    assert driver.save.at is None  # cleared with the rest of the key's Beam state
    driver.finish()
    assert driver.counts[metrics.STATE_EXPIRED] == 1 and driver.counts[metrics.STATE_SAVED_LATE] == 1
    assert _stored(spanner_db, driver.key).noise_count == 2
    driver.send(b.occurrence(T0 + 200 * SECOND, type=b.NOISY))  # the key comes back: read from Spanner
    driver.finish()
    driver.fire_event()
    driver.fire_hold()
    driver.finish()
    assert driver.counts[metrics.STATE_HYDRATED] == 2  # when new, and when it came back
    assert driver.counts[metrics.GROUP_CREATED] == 1  # the third occurrence, counting the saved two


def test_a_stopped_local_run_writes_the_saves_left_behind(spanner_db) -> None:
    driver = Driver(spanner_db, overlap=True, save_delay=60.0)
    _flush_one(driver, b.occurrence(T0, type=b.NOISY))
    driver.finish()
    _flush_one(driver, b.occurrence(T0 + SECOND, type=b.NOISY))
    driver.finish()
    assert wait_for_commits(timeout=10) == 0  # the run stops: its saves are written
    stored = _stored(spanner_db, driver.key)
    assert (stored.seq, stored.noise_count) == (2, 2)
    counts = uncounted_counts()
    assert counts[metrics.STATE_SAVED_LATE] == 1
    assert counts[metrics.spanner_rows_counter("KeyStates")] == 1
    assert wait_for_commits(timeout=10) == 0 and uncounted_counts().get(metrics.STATE_SAVED_LATE, 0) == 0


def test_a_local_key_that_comes_back_while_its_expiry_save_commits_is_read_after_it(
    spanner_db, monkeypatch
) -> None:
    driver = Driver(spanner_db, overlap=True, save_delay=600.0)
    for second in (0, 1):
        _flush_one(driver, b.occurrence(T0 + second * SECOND, type=b.NOISY))
    driver.finish()
    assert step_committer(driver.fn.settings.step).wait(10) == 0  # committed; the saves left behind are not
    assert _stored(spanner_db, driver.key) is None
    gate = _Gate(monkeypatch)
    driver.fire_expire()
    driver.finish()  # the save's commit waits at the gate
    driver.send(b.occurrence(T0 + 200 * SECOND, type=b.NOISY))
    driver.finish()  # starts the key's read: it must wait for the save
    gate.open.set()
    driver.fire_event()
    driver.fire_hold()
    driver.finish()
    assert wait_for_commits(timeout=10) == 0
    assert _stored(spanner_db, driver.key).group is not None  # the third occurrence, counting the saved two
