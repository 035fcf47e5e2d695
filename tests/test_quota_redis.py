"""The creation quota against a real Redis server (rule 3.5 step 2, E6, E15)."""

from __future__ import annotations

import redis

from transforms.core.grouptypes import GROUP_TYPES
from transforms.quota import QuotaRequest, RedisCreationQuota

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
T0 = 1_780_000_020 * SECOND  # 20 s into a minute bucket
ERROR = GROUP_TYPES[1]
CRON = GROUP_TYPES[4001]


def quota(redis_ns, **kwargs) -> RedisCreationQuota:
    return RedisCreationQuota(redis_ns.client, prefix=redis_ns.prefix.rstrip(":"), **kwargs)


def test_five_groups_per_hour_per_project_and_type(redis_ns):
    gate = quota(redis_ns)
    granted = [gate.try_acquire(1, ERROR, T0 + i * MINUTE, f"key{i}:0") for i in range(6)]
    assert granted == [True] * 5 + [False]
    assert gate.try_acquire(2, ERROR, T0, "other-project:0")
    assert gate.try_acquire(1, GROUP_TYPES[1006], T0, "other-type:0")


def test_window_is_measured_in_message_time_with_minute_buckets(redis_ns):
    gate = quota(redis_ns)
    for i in range(5):
        assert gate.try_acquire(1, ERROR, T0, f"key{i}:0")
    # Still inside (t - 1h, t]: the bucket of T0 is counted.
    assert not gate.try_acquire(1, ERROR, T0 + HOUR - MINUTE, "late:0")
    # An hour later T0's bucket has left the window.
    assert gate.try_acquire(1, ERROR, T0 + HOUR, "next-hour:0")
    # Going back in time (a backfill), another process finds T0's window full in Redis.
    assert not quota(redis_ns).try_acquire(1, ERROR, T0, "someone-else:0")


def test_asking_again_for_a_granted_creation_is_free(redis_ns):
    first = quota(redis_ns)
    assert first.try_acquire(1, ERROR, T0, "retried:0")
    # A retried bundle in another process asks again for the same creation: granted, nothing consumed.
    second = quota(redis_ns)
    for _ in range(3):
        assert second.try_acquire(1, ERROR, T0, "retried:0")
    assert [second.try_acquire(1, ERROR, T0, f"new{i}:0") for i in range(5)] == [True] * 4 + [False]


def test_quotas_of_one_process_share_what_redis_told_them(redis_ns):
    """The local runner builds a quota per bundle: a window one of them found full is refused by the next
    without a round trip, and a creation one was granted is granted again by the next."""
    first = quota(redis_ns)
    assert [first.try_acquire(1, ERROR, T0, f"k{i}:0") for i in range(6)] == [True] * 5 + [False]
    second = quota(redis_ns)

    def no_round_trip(**_kwargs):
        raise AssertionError("asked Redis")

    second._script = no_round_trip
    assert not second.try_acquire(1, ERROR, T0 + MINUTE, "another:0")
    assert second.try_acquire(1, ERROR, T0, "k0:0")
    # Another prefix (another pipeline) learns nothing from them.
    other = RedisCreationQuota(redis_ns.client, prefix=redis_ns.prefix + "other")
    assert other.try_acquire(1, ERROR, T0, "k0:0")


def test_per_type_limits_come_from_the_registry(redis_ns):
    gate = quota(redis_ns)
    assert all(gate.try_acquire_many([QuotaRequest(1, CRON, T0, f"cron{i}:0") for i in range(50)]))


def test_one_batch_is_checked_in_order(redis_ns):
    gate = quota(redis_ns)
    answers = gate.try_acquire_many([QuotaRequest(1, ERROR, T0, f"k{i}:0") for i in range(7)])
    assert answers == [True] * 5 + [False, False]


def test_unreachable_redis_fails_open_and_says_so():
    opened = []
    dead = redis.Redis(port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    gate = RedisCreationQuota(dead, fail_open=lambda: opened.append(1), retry_after=60)
    assert gate.try_acquire(1, ERROR, T0, "a:0")
    assert gate.try_acquire(1, ERROR, T0, "b:0")  # answered without waiting on Redis again
    assert len(opened) == 2
