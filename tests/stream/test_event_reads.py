"""How often the streaming applier reads a lookup's event from Spanner (real emulator; the reads are counted by
wrapping ``state_store.read_events``, which still does the reading)."""

from __future__ import annotations

import time

import msgspec
import pytest

from tests.test_spanner_writer_emulator import PROJECT, SECOND, context, occurrence
from transforms.applier import ApplierConfig, GroupApplier, SpannerTarget
from transforms.core import engine
from transforms.core.engine import EngineConfig
from transforms.storage import registry, state_store
from transforms.storage.event_cache import KNOWN_EVENTS
from transforms.storage.spanner_writer import SpannerWriter

RECHECK = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reads(monkeypatch) -> list[list[tuple[int, str]]]:
    calls: list[list[tuple[int, str]]] = []
    real = state_store.read_events

    def counted(database, wanted):
        wanted = list(wanted)
        calls.append(wanted)
        return real(database, wanted)

    monkeypatch.setattr(state_store, "read_events", counted)
    return calls


def make_applier(spanner_db, clock: Clock) -> GroupApplier:
    registry.register_project(spanner_db.database, project_id=1, organization_id=1, slug="backend")
    config = ApplierConfig(
        spanner=SpannerTarget(spanner_db.project, spanner_db.instance, spanner_db.database_id),
        engine=EngineConfig(wait_for_events=True, lookup_retry_window=20 * SECOND),
        event_recheck_interval=RECHECK,
    )
    return GroupApplier(config, lambda name, amount: None, clock)


def store_event_elsewhere(spanner_db, n: int, event_id: str) -> None:
    """What another worker does: an occurrence carrying the event, written without this process's cache."""
    _state, outputs = engine.apply(None, [occurrence(n, event_id=event_id)], context())
    SpannerWriter(spanner_db.database).write([outputs.write])


def test_a_prefetched_event_is_found_without_another_read(spanner_db, reads):
    clock = Clock()
    applier = make_applier(spanner_db, clock)
    event_id = "e1".ljust(32, "0")
    store_event_elsewhere(spanner_db, 1, event_id)
    applier.prefetch_events([(1, event_id)])
    lookup = occurrence(2, event=False, event_id=event_id)
    found = applier.events_for(None, [lookup], 1)
    assert set(found) == {event_id}
    assert reads == [[(1, event_id)]]  # the prefetch's, and only it


def test_a_missing_event_is_read_once_per_interval_and_found_when_it_arrives(spanner_db, reads):
    clock = Clock()
    applier = make_applier(spanner_db, clock)
    event_id = "e2".ljust(32, "0")
    lookup = occurrence(2, event=False, event_id=event_id)
    applier.prefetch_events([(1, event_id)])
    KNOWN_EVENTS.settle((1, event_id))
    state, dead = applier.apply(lookup.key, None, [lookup], PROJECT)
    assert not dead and len(state.waiting) == 1
    assert len(reads) == 1  # the first attempt took the prefetch's "not found"

    store_event_elsewhere(spanner_db, 1, event_id)
    clock.now += RECHECK / 2
    assert applier.events_for(state, [occurrence(3)], 1) == {}  # the key flushes again: no new read yet
    assert len(reads) == 1

    clock.now += RECHECK / 2
    assert set(applier.events_for(state, [], 1)) == {event_id}  # the retry reads, and finds it
    assert len(reads) == 2


def test_a_lookup_at_its_deadline_is_read_again_at_once(spanner_db, reads):
    clock = Clock()
    applier = make_applier(spanner_db, clock)
    event_id = "e3".ljust(32, "0")
    lookup = occurrence(2, event=False, event_id=event_id)
    state, _dead = applier.apply(lookup.key, None, [lookup], PROJECT)
    assert len(reads) == 1 and len(state.waiting) == 1

    clock.now += 16.0  # a retry: reads, does not find it
    assert applier.events_for(state, [], 1) == {}
    assert len(reads) == 2

    store_event_elsewhere(spanner_db, 1, event_id)
    clock.now += 3.5  # less than an interval since the last read, but within a second of the deadline
    assert set(applier.events_for(state, [], 1)) == {event_id}
    assert len(reads) == 3


def test_an_event_stored_by_this_process_meanwhile_does_not_wait_for_the_running_read(
    spanner_db, monkeypatch
):
    """A lookup's background read is still running when the occurrence carrying its event is applied here:
    the flush takes the event from the process's cache instead of waiting for that read."""
    import threading

    clock = Clock()
    applier = make_applier(spanner_db, clock)
    event_id = "e4".ljust(32, "0")
    release = threading.Event()
    real = state_store.read_events

    def slow(database, wanted):
        release.wait(30)
        return real(database, wanted)

    monkeypatch.setattr(state_store, "read_events", slow)
    try:
        applier.prefetch_events([(1, event_id)])  # blocked until released
        carrier = occurrence(1, event_id=event_id)
        applier.apply(carrier.key, None, [carrier], PROJECT)  # this process stores the event
        lookup = occurrence(2, event=False, event_id=event_id)
        answer: list = []
        worker = threading.Thread(target=lambda: answer.append(applier.events_for(None, [lookup], 1)))
        worker.start()
        worker.join(5)
        assert answer and set(answer[0]) == {event_id}  # without waiting for the read
    finally:
        release.set()
        KNOWN_EVENTS.settle((1, event_id))


def test_a_delayed_prefetch_skips_an_event_stored_here_meanwhile(spanner_db, reads):
    clock = Clock()
    applier = make_applier(spanner_db, clock)
    event_id = "e5".ljust(32, "0")
    applier.prefetch_events([(1, event_id)], delay=0.3)
    carrier = occurrence(1, event_id=event_id)
    applier.apply(carrier.key, None, [carrier], PROJECT)  # applied here before the read starts
    time.sleep(0.6)
    KNOWN_EVENTS.settle((1, event_id))
    lookup = occurrence(2, event=False, event_id=event_id)
    assert set(applier.events_for(None, [lookup], 1)) == {event_id}
    assert reads == []  # never read from Spanner


def test_a_flush_starts_a_delayed_prefetch_at_once(spanner_db, reads):
    clock = Clock()
    applier = make_applier(spanner_db, clock)
    event_id = "e6".ljust(32, "0")
    store_event_elsewhere(spanner_db, 1, event_id)
    applier.prefetch_events([(1, event_id)], delay=30.0)
    started = time.monotonic()
    lookup = occurrence(2, event=False, event_id=event_id)
    assert set(applier.events_for(None, [lookup], 1)) == {event_id}
    assert time.monotonic() - started < 10  # did not wait for the delay
    assert reads == [[(1, event_id)]]  # the prefetch's read, started by the flush, and only it


def test_the_applied_state_is_given_encoded_as_its_write_carries_it(spanner_db, monkeypatch):
    applier = make_applier(spanner_db, Clock())
    message = occurrence(3, event_id="e3".ljust(32, "0"))
    state, _dead = applier.apply(message.key, None, [message], PROJECT)
    assert applier.encoded_state(state) == engine.encode_state(state)
    encodings = []
    monkeypatch.setattr(engine, "encode_state", lambda s: encodings.append(s) or b"")
    assert applier.encoded_state(state) == applier.last_write.intents[-1].state  # not encoded again
    assert encodings == []
    other = msgspec.structs.replace(state)  # an equal state, but not the one apply returned
    applier.encoded_state(other)
    assert encodings == [other]
