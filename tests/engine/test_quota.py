"""The creation quota (rule 3.5 step 2, E5, E6)."""

from __future__ import annotations

from tests.engine.builders import (
    HOUR,
    MINUTE,
    NO_NOISE,
    NOISY,
    PROJECT,
    SECOND,
    T0,
    MemoryQuota,
    context,
    occurrence,
    run,
)
from transforms.core import metrics
from transforms.core.grouptypes import GROUP_TYPES


def test_refused_creation_is_counted_and_stores_no_group():
    quota = MemoryQuota(limit=0)
    result = run([occurrence(T0)], ctx=context(quota=quota))
    assert result.count(metrics.DROPPED_RATE_LIMITING) == 1
    assert result.tables.groups == {} and result.tables.occurrences == {}
    assert quota.calls == [(PROJECT.project_id, NO_NOISE, T0)]


def test_refused_key_asks_again_with_its_next_occurrence_and_creates_once_the_window_frees():
    quota = MemoryQuota(limit=1)
    assert quota.try_acquire(PROJECT.project_id, GROUP_TYPES[NO_NOISE], T0)  # another key took the quota
    ctx = context(quota=quota)
    result = run([occurrence(T0 + MINUTE)], [occurrence(T0 + 30 * MINUTE)], ctx=ctx)
    assert result.count(metrics.DROPPED_RATE_LIMITING) == 2
    result.apply([occurrence(T0 + HOUR + MINUTE)], ctx)  # the window is measured in message time
    assert result.count(metrics.GROUP_CREATED) == 1
    assert result.group.first_seen == T0 + HOUR + MINUTE


def test_refusal_keeps_the_noise_count_so_the_next_occurrence_asks_the_quota_again():
    answers = iter([False, True])

    class Flaky:
        calls = 0

        def try_acquire(self, project_id, group_type, message_time, creation_id):
            Flaky.calls += 1
            return next(answers)

    messages = [occurrence(T0 + index * SECOND, type=NOISY) for index in range(4)]
    result = run(messages, ctx=context(quota=Flaky()))
    assert result.count(metrics.DROPPED_NOISE) == 2
    assert result.count(metrics.DROPPED_RATE_LIMITING) == 1
    assert result.count(metrics.GROUP_CREATED) == 1
    assert Flaky.calls == 2
    assert result.group.first_seen == T0 + 3 * SECOND


def test_quota_is_asked_only_to_create_not_for_existing_groups():
    quota = MemoryQuota()
    run([occurrence(T0)], [occurrence(T0 + SECOND)], [occurrence(T0 + 2 * SECOND)], ctx=context(quota=quota))
    assert len(quota.calls) == 1


def test_no_quota_means_the_quota_is_off():
    messages = [occurrence(T0 + index * SECOND, fingerprint=(f"fp-{index}",)) for index in range(10)]
    created = sum(run([message]).count(metrics.GROUP_CREATED) for message in messages)
    assert created == 10


def test_memory_quota_allows_the_limit_in_any_window_of_message_time():
    quota = MemoryQuota(limit=2)
    kind = GROUP_TYPES[NO_NOISE]
    assert quota.try_acquire(1, kind, T0)
    assert quota.try_acquire(1, kind, T0 + 30 * MINUTE)
    assert not quota.try_acquire(1, kind, T0 + 59 * MINUTE)
    assert quota.try_acquire(1, kind, T0 + HOUR)  # T0's bucket left the window


def test_the_event_of_a_quota_refused_occurrence_is_still_stored():
    message = occurrence(T0)
    result = run([message], ctx=context(quota=MemoryQuota(limit=0)))
    assert (PROJECT.project_id, message.payload.event_id) in result.tables.events


def test_memory_quota_checks_every_window_that_contains_the_message_time():
    """As the Redis quota: a creation asked out of message-time order sees the ones after it (E6, E15)."""
    quota = MemoryQuota(limit=2)
    kind = GROUP_TYPES[NO_NOISE]
    assert quota.try_acquire(1, kind, T0 + 12 * MINUTE)
    assert quota.try_acquire(1, kind, T0 + 11 * MINUTE)
    assert not quota.try_acquire(1, kind, T0 + 3 * MINUTE)  # (T0 + 3 - 60, T0 + 12] would hold three
    assert not quota.try_acquire(1, kind, T0 + 12 * MINUTE - HOUR + MINUTE)
    assert quota.try_acquire(1, kind, T0 + 11 * MINUTE - HOUR)  # no window with it reaches the two
