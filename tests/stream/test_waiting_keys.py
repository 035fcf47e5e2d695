"""Occurrences waiting for their event across a stop (``transforms.waiting_keys``): the stateful step names
a key in ``WaitingKeys`` when it starts waiting and takes it out when nothing waits any more, and a wake-up
(what a starting pipeline sends every key named there) reads the key's saved state and retries its lookups at
once. Driven through ``ApplyPerGroupFn`` directly (``test_flush_timers.Driver``), on the Spanner emulator;
the whole path, with real pipelines stopped and started, is in ``test_stop.py``."""

from __future__ import annotations

import pytest
from apache_beam.utils.timestamp import Timestamp

from tests.engine import builders as b
from tests.stream.test_flush_timers import HOLD, SECOND, T0, Driver
from transforms import waiting_keys
from transforms.apply_per_group import Routed, step_committer
from transforms.core import metrics, reasons
from transforms.core.model import MICROS
from transforms.per_group.routed import project_info


def _settled(driver: Driver) -> None:
    """End the bundle; with overlapped commits, wait for them."""
    driver.finish()
    if driver.fn.settings.overlap:
        assert step_committer(driver.fn.settings.step).wait(30) == 0


def _waiting(driver: Driver) -> list[str]:
    return waiting_keys.read_waiting_keys(driver.fn.bundle.applier.database)


def _store_event_of(spanner_db, lookup) -> None:
    """Another key stores the lookup's event (its occurrence carries it)."""
    carrier = b.occurrence(T0 + SECOND, with_event=b.event_of(lookup), fingerprint=("the carrier",))
    other = Driver(spanner_db, key=carrier.key)
    other.flush(carrier)
    assert other.engine_calls() == 1


def _wake(driver: Driver) -> None:
    driver.fn.process(
        (driver.key, Routed.wake(b.PROJECT)),
        buffer=driver.buffer,
        meta_state=driver.meta,
        event_flush=driver.event,
        hold_flush=driver.hold,
        lookup_retry=driver.lookup,
    )


@pytest.mark.parametrize("overlap", [False, True], ids=["dataflow", "local"])
def test_a_key_is_named_while_an_occurrence_waits_and_taken_out_once_it_is_applied(
    spanner_db, overlap
) -> None:
    driver = Driver(spanner_db, overlap=overlap)
    lookup = b.occurrence(T0, lookup=True)
    driver.flush(lookup)
    _settled(driver)
    assert _waiting(driver) == [driver.key]
    _store_event_of(spanner_db, lookup)
    driver.fire_lookup()
    _settled(driver)
    assert driver.counts[metrics.GROUP_CREATED] == 1
    assert _waiting(driver) == []


def test_a_wake_up_takes_a_saved_waiting_occurrence_up_and_applies_it(spanner_db) -> None:
    """The pipeline that took the lookup in stopped (its state saved with the lookup waiting); the event was
    stored afterwards. A new pipeline's wake-up of the key applies the lookup: no message of the key needed."""
    first = Driver(spanner_db)
    lookup = b.occurrence(T0, lookup=True)
    first.flush(lookup)
    _settled(first)
    assert _waiting(first) == [first.key]
    _store_event_of(spanner_db, lookup)

    second = Driver(spanner_db)  # a new pipeline: no Beam state, no timer
    _wake(second)
    assert second.lookup.at == Timestamp.of(second.clock.now + HOLD)  # once its state is read
    assert second.buffered() == []
    second.finish()  # the wake-up's key is read in the bundle's batch
    second.fire_lookup()
    _settled(second)
    assert second.counts[metrics.GROUP_CREATED] == 1
    assert second.counts[metrics.OCCURRENCES_ATTACHED] == 1
    assert _waiting(second) == []


def test_a_wake_up_past_the_window_dead_letters_what_still_has_no_event(spanner_db) -> None:
    first = Driver(spanner_db)
    lookup = b.occurrence(T0, lookup=True)
    first.flush(lookup)
    _settled(first)

    second = Driver(spanner_db)
    second.clock.now = first.clock.now + 3600  # an hour later: past the 10-minute retry window
    _wake(second)
    second.finish()
    second.fire_lookup()
    _settled(second)
    assert second.counts[metrics.dead_letter_counter(reasons.EVENT_NOT_FOUND)] == 1
    assert _waiting(second) == []


def test_a_wake_up_of_a_key_that_no_longer_waits_deletes_its_row(spanner_db) -> None:
    driver = Driver(spanner_db)
    driver.flush(b.occurrence(T0))
    _settled(driver)
    waiting_keys.mark(
        driver.fn.bundle.applier.database, [driver.key]
    )  # a row left behind (its delete was lost)

    woken = Driver(spanner_db)
    _wake(woken)
    woken.finish()
    woken.fire_lookup()
    _settled(woken)
    assert _waiting(woken) == []
    assert woken.expire.at is not None  # its Beam state is given back once idle
    assert woken.counts.get(metrics.GROUP_CREATED, 0) == 0


def test_wake_ups_are_not_messages() -> None:
    wake = Routed.wake(b.PROJECT)
    assert wake.message_time < -253_402_300_800 * MICROS  # before year 1: no message time can be it
    assert wake.lookup is None and project_info(wake.project) == b.PROJECT
