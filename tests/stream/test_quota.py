"""The creation quota in Redis (``transforms.storage.redis_quota``): windows in message time, free retries, failing open."""

from __future__ import annotations

import socket

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import MICROS
from transforms.storage.redis_quota import QuotaRequest, RedisCreationQuota

MINUTE = 60 * MICROS
T0 = 1_780_000_000 * MICROS
P95 = GROUP_TYPES[1018]  # 5 groups per hour
CRON = GROUP_TYPES[4001]


def test_a_window_of_message_time_grants_its_limit_then_refuses(redis_ns) -> None:
    quota = RedisCreationQuota(redis_ns.client, prefix=redis_ns.prefix)
    granted = [quota.try_acquire(1, P95, T0 + i * MINUTE, f"key-{i}:0") for i in range(6)]
    assert granted == [True] * 5 + [False]
    assert quota.try_acquire(2, P95, T0, "other-project:0")  # windows are per project ...
    assert quota.try_acquire(1, CRON, T0, "other-type:0")  # ... and per group type
    assert quota.try_acquire(1, P95, T0 + 61 * MINUTE, "key-6:0")  # the first bucket left the window


def test_asking_again_for_a_granted_creation_is_free(redis_ns) -> None:
    quota = RedisCreationQuota(redis_ns.client, prefix=redis_ns.prefix)
    requests = [QuotaRequest(1, P95, T0, f"key-{i}:0") for i in range(5)]
    assert quota.try_acquire_many(requests) == [True] * 5
    assert quota.try_acquire_many(requests) == [True] * 5  # a retried bundle, a replay
    assert quota.try_acquire(1, P95, T0, "key-5:0") is False


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_redis_fails_open_counts_it_and_is_not_asked_again_for_a_while() -> None:
    client = redis.Redis(
        host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    calls = []  # connections asked of the client's pool: each quota asks for one before its first command
    pool = client.connection_pool
    get_connection = pool.get_connection

    def counting(*args, **kwargs):
        calls.append(args)
        return get_connection(*args, **kwargs)

    pool.get_connection = counting
    opened = []
    first = RedisCreationQuota(client, fail_open=lambda: opened.append(1), retry_after=60)
    assert (
        first.try_acquire_many([QuotaRequest(1, P95, T0, "a:0"), QuotaRequest(1, P95, T0, "b:0")])
        == [True] * 2
    )
    assert len(opened) == 2
    asked = len(calls)
    assert asked >= 1
    second = RedisCreationQuota(client, fail_open=lambda: opened.append(1), retry_after=60)  # a new bundle
    assert second.try_acquire(1, P95, T0, "c:0") is True
    assert len(opened) == 3
    assert len(calls) == asked  # Redis was not asked again
