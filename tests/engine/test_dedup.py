"""Duplicates: never counted twice within the retention (rule 2) [ours: Sentry forgets after 300 s]."""

from __future__ import annotations

from tests.engine.builders import DAY, MINUTE, SECOND, T0, context, occurrence, run, status_change
from transforms.core import metrics
from transforms.core.engine import apply, compact
from transforms.core.engine.dedup import INDEX_THRESHOLD, SCANS_BEFORE_INDEX, DuplicateMemory, prune
from transforms.core.engine.ids import occurrence_memory_id
from transforms.core.enums import GroupStatus


def test_a_redelivered_occurrence_in_the_same_batch_is_a_duplicate():
    message = occurrence(T0)
    result = run([message, message])
    assert result.group.times_seen == 1
    assert result.count(metrics.DUPLICATES) == 1


def test_a_redelivered_occurrence_in_a_later_batch_writes_nothing():
    message = occurrence(T0)
    result = run([message])
    state, outputs = apply(result.state, [message], context())
    assert outputs.write is None and state is result.state
    assert outputs.counters == {metrics.DUPLICATES: 1}


def test_a_redelivery_ten_minutes_later_is_still_a_duplicate():
    # Sentry's memory lasts 300 s; ours the retention (24 h of message time).
    first = occurrence(T0)
    result = run([first], [occurrence(T0 + 10 * MINUTE)], [first])
    assert result.group.times_seen == 2
    assert result.count(metrics.DUPLICATES) == 1


def test_a_redelivered_status_change_is_a_duplicate():
    change = status_change(T0 + SECOND, GroupStatus.RESOLVED)
    result = run([occurrence(T0), change], [occurrence(T0 + 2 * SECOND)], [change])
    assert result.count(metrics.DUPLICATES) == 1
    assert result.group.substatus == 6  # regressed by the second occurrence, not resolved again


def test_the_same_payload_id_more_than_the_retention_later_is_applied_again():
    first = occurrence(T0)
    again = occurrence(T0 + DAY + 1, occurrence_id=first.payload.id)
    result = run([first], [again])
    assert result.group.times_seen == 2
    same_day = run([first], [occurrence(T0 + DAY, occurrence_id=first.payload.id)])
    assert same_day.group.times_seen == 1


def test_a_pruned_entry_lets_a_very_old_redelivery_through():
    first = occurrence(T0)
    result = run([first])
    result.state = compact(result.state, T0 + 1)  # the shell's horizon passed the entry
    result.apply([first])
    assert result.group.times_seen == 2


def test_occurrences_already_stored_for_the_group_are_duplicates_in_a_backfill():
    stored = occurrence(T0)
    result = run([occurrence(T0 - SECOND)])
    result.apply([stored], context(wait_for_events=False, stored_occurrence_ids=[stored.payload.id]))
    assert result.group.times_seen == 1
    assert result.count(metrics.DUPLICATES) == 1


def test_duplicate_memory_matches_by_id_within_the_retention():
    memory = DuplicateMemory(b"", b"")
    first, second = bytes(range(16)), bytes(range(1, 17))
    memory.remember(first, 100)
    assert memory.is_duplicate(first, 150, 50)
    assert not memory.is_duplicate(first, 151, 50)
    assert not memory.is_duplicate(second, 100, 50)
    ids, times = memory.freeze()
    reopened = DuplicateMemory(ids, times)
    assert reopened.is_duplicate(first, 100, 0)
    reopened.remember(first, 300)
    reopened.remember(second, 200)
    assert len(reopened) == 2
    ids, times = reopened.freeze()
    assert ids == first + second
    assert DuplicateMemory(ids, times).entry_time(first) == 300


def test_duplicate_memory_ignores_matches_that_straddle_two_ids():
    left, right = bytes(8) + bytes([1] * 8), bytes([2] * 8) + bytes(8)
    memory = DuplicateMemory(b"", b"")
    memory.remember(left, 1)
    memory.remember(right, 1)
    ids, times = memory.freeze()
    straddling = bytes([1] * 8) + bytes([2] * 8)
    assert DuplicateMemory(ids, times).entry_time(straddling) is None


def test_prune_keeps_entries_at_or_after_the_horizon_in_order():
    memory = DuplicateMemory(b"", b"")
    for index, time in enumerate([5, 1, 9, 3]):
        memory.remember(bytes([index]) * 16, time)
    ids, times = prune(*memory.freeze(), horizon=4)
    kept = DuplicateMemory(ids, times)
    assert ids == bytes([0]) * 16 + bytes([2]) * 16
    assert kept.entry_time(bytes([2]) * 16) == 9


def test_a_large_memory_is_indexed_and_answers_like_a_small_one():
    memory = DuplicateMemory(b"", b"")
    identifiers = [occurrence_memory_id(f"{index:032x}") for index in range(INDEX_THRESHOLD + 500)]
    for index, identifier in enumerate(identifiers):
        memory.remember(identifier, index)
    large = DuplicateMemory(*memory.freeze())
    assert large.entry_time(identifiers[0]) == 0
    assert large.entry_time(identifiers[-1]) == len(identifiers) - 1
    assert large.entry_time(occurrence_memory_id("f" * 32)) is None
    large.remember(identifiers[3], 10_000)
    assert DuplicateMemory(*large.freeze()).entry_time(identifiers[3]) == 10_000


def test_a_large_memory_is_scanned_until_a_call_has_looked_up_many_ids_then_indexed():
    memory = DuplicateMemory(b"", b"")
    identifiers = [occurrence_memory_id(f"{index:032x}") for index in range(INDEX_THRESHOLD + 10)]
    for index, identifier in enumerate(identifiers):
        memory.remember(identifier, index)
    large = DuplicateMemory(*memory.freeze())
    unknown = [occurrence_memory_id(f"unknown {index}") for index in range(SCANS_BEFORE_INDEX + 20)]
    for step, (identifier, other) in enumerate(zip(identifiers * 2, unknown, strict=False)):
        assert (large._index_of is None) == (4 * step <= SCANS_BEFORE_INDEX)  # four lookups a step
        assert large.entry_time(identifier) == identifiers.index(identifier)
        assert large.entry_time(other) is None
        assert large.is_duplicate(identifier, identifiers.index(identifier) + 5, 5)
        assert not large.is_duplicate(other, 0, 5)
    assert large._index_of is not None
