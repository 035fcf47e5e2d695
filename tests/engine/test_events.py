"""The event of an occurrence: three paths, lookups that wait, dead letters (rule 3.2, 3.3, E7, E13)."""

from __future__ import annotations

from tests.engine.builders import (
    MINUTE,
    NOISY,
    SECOND,
    T0,
    UNRELEASED,
    context,
    event_of,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics, reasons
from transforms.core.engine import apply, needed_event_ids, next_lookup_deadline
from transforms.core.enums import GroupStatus
from transforms.core.intents import RecordEvent

WINDOW = 10 * MINUTE


def test_event_path_stores_the_event_with_the_occurrence_level():
    message = occurrence(T0, level="error")
    result = run([message])
    stored = result.tables.events[(1, message.payload.event_id)]
    assert stored.event == message.payload.event and stored.level == "error"


def test_event_path_stores_the_event_even_when_the_noise_gate_drops_the_occurrence():
    result = run([occurrence(T0, type=NOISY)])
    assert result.count(metrics.DROPPED_NOISE) == 1
    assert len(result.tables.events) == 1


def test_buffered_spans_use_the_payload_event_without_storing_it():
    message = occurrence(T0, buffered=True, release="2.0.0", platform="javascript")
    result = run([message])
    assert result.tables.events == {}
    assert result.group.first_release == "2.0.0" and result.group.platform == "javascript"


def test_lookup_path_uses_the_stored_event():
    message = occurrence(T0, lookup=True, event_time=T0 - MINUTE, release="1.0.0")
    result = run([message], ctx=context(events=[event_of(message)]))
    assert result.group.first_seen == T0 - MINUTE and result.group.first_release == "1.0.0"
    assert result.tables.events == {}  # the lookup path stores nothing


def test_lookup_finds_an_event_stored_earlier_in_the_same_call():
    carrier = occurrence(T0)
    lookup = occurrence(T0 + SECOND, lookup=True, with_event=event_of(carrier))
    result = run([carrier, lookup])
    assert result.group.times_seen == 2
    assert result.count(metrics.EVENT_LOOKUP_WAITING) == 0


def test_missing_event_waits_without_holding_up_later_messages():
    waiting = occurrence(T0, lookup=True)
    later = occurrence(T0 + SECOND)
    result = run([waiting, later])
    assert result.count(metrics.EVENT_LOOKUP_WAITING) == 1
    assert result.group.times_seen == 1 and result.group.first_seen == T0 + SECOND
    assert [entry.message_id for entry in result.state.waiting] == [waiting.message_id]
    assert result.dead_letters == []


def test_waiting_occurrence_is_applied_as_a_late_message_once_its_event_appears():
    waiting = occurrence(T0, lookup=True, event_time=T0 - MINUTE)
    result = run([waiting, occurrence(T0 + SECOND)])
    result.apply([], context(events=[event_of(waiting)], now=T0 + MINUTE))
    assert result.state.waiting == ()
    assert result.group.times_seen == 2
    assert result.group.first_seen == T0 - MINUTE
    assert result.group.active_at == T0  # it is older than the creator: it takes over (late rule)


def test_waiting_occurrence_is_dead_lettered_once_the_retry_window_has_passed():
    waiting = occurrence(T0, lookup=True)
    result = run([waiting], ctx=context(now=T0))
    result.apply([], context(now=T0 + WINDOW - 1))
    assert result.dead_letters == [] and len(result.state.waiting) == 1
    result.apply([], context(now=T0 + WINDOW))
    (dead,) = result.dead_letters
    assert dead.reason == reasons.EVENT_NOT_FOUND and dead.stage == reasons.STAGE_APPLY
    assert (dead.message_id, dead.message_time) == (waiting.message_id, waiting.message_time)
    assert (dead.data, dead.attributes) == (waiting.data, waiting.attributes)
    assert dead.project_id == 1 and waiting.payload.event_id in dead.error
    assert result.state.waiting == ()


def test_backfill_dead_letters_a_missing_event_at_once_and_leaves_no_trace():
    message = occurrence(T0, lookup=True)
    before = run([occurrence(T0 - SECOND)]).state
    state, outputs = apply(before, [message], context(wait_for_events=False))
    (dead,) = outputs.dead_letters
    assert dead.reason == reasons.EVENT_NOT_FOUND
    assert outputs.write is None and state == before


def test_a_replayed_dead_letter_is_processed_again():
    message = occurrence(T0, lookup=True)
    result = run([message], ctx=context(wait_for_events=False))
    result.apply([message], context(wait_for_events=False, events=[event_of(message)]))
    assert len(result.dead_letters) == 1
    assert result.group.times_seen == 1


def test_redelivery_while_waiting_is_a_duplicate():
    message = occurrence(T0, lookup=True)
    result = run([message], [message])
    assert result.count(metrics.DUPLICATES) == 1
    assert len(result.state.waiting) == 1


def test_feature_gated_lookup_occurrence_does_not_wait():
    result = run([occurrence(T0, type=UNRELEASED, lookup=True)])
    assert result.count(metrics.DROPPED_FEATURE_DISABLED) == 1
    assert result.state.waiting == ()


def test_waiting_occurrence_does_not_break_a_run_of_status_changes():
    result = run([occurrence(T0)])
    result.apply(
        [
            status_change(T0 + SECOND, GroupStatus.RESOLVED),
            occurrence(T0 + 2 * SECOND, lookup=True),
            status_change(T0 + 3 * SECOND, GroupStatus.IGNORED, 5),
        ]
    )
    assert result.count(metrics.DROPPED_STATUS_CHANGES) == 1
    assert result.group.status == GroupStatus.IGNORED


def test_needed_event_ids_are_the_lookups_of_the_batch_and_the_waiting_ones():
    waiting = occurrence(T0, lookup=True)
    state = run([waiting]).state
    lookup = occurrence(T0 + SECOND, lookup=True)
    carried = occurrence(T0 + 2 * SECOND)
    assert needed_event_ids(state, [lookup, carried, status_change(T0, 1)]) == {
        waiting.payload.event_id,
        lookup.payload.event_id,
    }
    assert needed_event_ids(None, [carried]) == set()


def test_next_lookup_deadline_is_the_earliest_wait_plus_the_retry_window():
    first = occurrence(T0, lookup=True)
    second = occurrence(T0 + SECOND, lookup=True)
    result = run([first], ctx=context(now=T0 + 5 * SECOND))
    result.apply([second], context(now=T0 + 9 * SECOND))
    assert next_lookup_deadline(result.state) == T0 + 5 * SECOND + WINDOW
    assert next_lookup_deadline(run([occurrence(T0)]).state) is None


def test_record_event_comes_before_the_group_rows_of_the_same_occurrence():
    write = run([occurrence(T0)]).writes[0]
    assert isinstance(write.intents[0], RecordEvent)


def test_an_event_of_buffered_spans_cannot_be_found_by_a_lookup():
    carrier = occurrence(T0, buffered=True)
    lookup = occurrence(T0 + SECOND, lookup=True, with_event=event_of(carrier))
    result = run([carrier, lookup])
    assert result.count(metrics.EVENT_LOOKUP_WAITING) == 1
    assert result.group.times_seen == 1
