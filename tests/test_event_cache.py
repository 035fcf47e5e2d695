"""``EventCache`` holds events by event id and checks their project on the way out (``transforms.storage.event_cache``)."""

from __future__ import annotations

from tests.engine.builders import event, occurrence
from transforms.core.model import Occurrence
from transforms.storage.event_cache import EventCache

EVENT_ID = "a" * 32


def test_an_event_is_found_under_its_own_project_only():
    cache = EventCache()
    stored = event(EVENT_ID, project_id=1)
    cache.put_all([stored])
    assert cache.get((1, EVENT_ID)) is stored
    assert cache.get((2, EVENT_ID)) is None
    assert cache.get((1, "b" * 32)) is None


def test_two_projects_events_of_one_id_take_each_others_place():
    cache = EventCache()
    first, second = event(EVENT_ID, project_id=1), event(EVENT_ID, project_id=2)
    cache.put_all([first])
    cache.put((2, EVENT_ID), second)
    assert cache.get((2, EVENT_ID)) is second
    assert cache.get((1, EVENT_ID)) is None  # read again by its lookup, then found
    cache.record_read("db", [(1, EVENT_ID)], {(1, EVENT_ID): first}, 0.0)
    assert cache.get((1, EVENT_ID)) is first


def test_forgetting_a_carried_event_leaves_another_projects_event_of_that_id():
    cache = EventCache()
    other = event(EVENT_ID, project_id=2)
    cache.put_all([other])
    message = occurrence(with_event=event(EVENT_ID))
    payload = message.payload
    assert isinstance(payload, Occurrence) and payload.project_id != 2 and payload.event is not None
    cache.forget_carried(message)
    assert cache.get((2, EVENT_ID)) is other
    cache.put_all([payload.event])
    cache.forget_carried(message)
    assert cache.get((payload.project_id, EVENT_ID)) is None


def test_the_oldest_events_are_dropped_first():
    cache = EventCache(max_entries=10)
    events = [event(f"{n:032x}", project_id=1) for n in range(11)]
    for stored in events:
        cache.put_all([stored])
    assert cache.get((1, events[0].event_id)) is None
    assert cache.get((1, events[10].event_id)) is events[10]


def test_events_put_by_id_are_kept_as_put_all_keeps_them():
    """``put_by_id`` (the applier's, with the engine's ``Outputs.events``) and ``put_all`` keep the same
    events in the same order, so the same ones are dropped first."""
    events = [event(f"{n:032x}", project_id=1) for n in range(12)]
    by_list, by_id = EventCache(max_entries=10), EventCache(max_entries=10)
    for start in range(0, 12, 3):
        batch = events[start : start + 3]
        by_list.put_all(batch)
        by_id.put_by_id({stored.event_id: stored for stored in batch})
    assert list(by_id._events.items()) == list(by_list._events.items())
    assert by_id.get((1, events[11].event_id)) is events[11]
