"""The creation quota against a real Redis server (rule 3.5 step 2, E6, E15)."""

from __future__ import annotations

import itertools
import uuid

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native_paths import run_without
from transforms.core.grouptypes import GROUP_TYPES
from transforms.storage import redis_quota
from transforms.storage.redis_quota import QuotaRequest, RedisCreationQuota

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

    def no_round_trip(*_args):
        raise AssertionError("asked Redis")

    second._evaluate = no_round_trip
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


def test_a_dropped_connection_or_a_lost_script_is_recovered_without_failing_open(redis_ns):
    """The quota keeps a connection of its own (``_evaluate``): a connection the server dropped is reconnected
    and a script the server no longer knows (restarted, ``SCRIPT FLUSH``) is loaded again, as redis-py's own
    commands would; neither fails open."""
    opened = []
    gate = quota(redis_ns, fail_open=lambda: opened.append(1))
    assert gate.try_acquire(1, ERROR, T0, "k0:0")
    own = gate._connection
    assert own is not None
    host, port = own._sock.getsockname()[:2]
    killed = redis_ns.client.client_kill_filter(addr=f"{host}:{port}")
    assert killed == 1
    assert gate.try_acquire(1, ERROR, T0 + MINUTE, "k1:0")
    redis_ns.client.script_flush()
    assert gate.try_acquire(1, ERROR, T0 + 2 * MINUTE, "k2:0")
    assert [gate.try_acquire(1, ERROR, T0 + 3 * MINUTE, f"k{i}:0") for i in range(3, 5)] == [True, True]
    assert not gate.try_acquire(1, ERROR, T0 + 4 * MINUTE, "k5:0")
    assert opened == []
    assert buckets_granted(gate) == {b: 1 for b in (T0 // MINUTE, T0 // MINUTE + 1, T0 // MINUTE + 2)} | {
        T0 // MINUTE + 3: 2
    }


def test_unreachable_redis_fails_open_and_says_so():
    opened = []
    dead = redis.Redis(port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    gate = RedisCreationQuota(dead, fail_open=lambda: opened.append(1), retry_after=60)
    assert gate.try_acquire(1, ERROR, T0, "a:0")
    assert gate.try_acquire(1, ERROR, T0, "b:0")  # answered without waiting on Redis again
    assert len(opened) == 2


# ---------------------------------------------------------------------------------------------------------
# "At most N in any window of W" in every window, whatever order keys ask in (E6, E15; issue 17). A backfill,
# or a late key in streaming, asks out of message-time order: a grant must see creations after it too.

SIX = (3, 5, 7, 9, 11, 12)  # minutes: six new fingerprints of one type within ten minutes of message time


def fresh(redis_ns, name: str, **kwargs) -> RedisCreationQuota:
    """A quota on a prefix of its own, through a client of its own (another process: no shared memory)."""
    client = redis.Redis.from_url(redis_ns.url)
    return RedisCreationQuota(client, prefix=f"{redis_ns.prefix}{name}", **kwargs)


def buckets_granted(gate: RedisCreationQuota, project_id: int = 1, slug: str = ERROR.slug) -> dict[int, int]:
    stored = gate._client.hgetall(gate.key(project_id, slug))
    return {int(bucket): int(count) for bucket, count in stored.items()}


def fullest_window(granted: dict[int, int], buckets: int = 60) -> int:
    """The most creations in any window of ``buckets`` consecutive buckets."""
    if not granted:
        return 0
    low, high = min(granted), max(granted)
    return max(
        sum(granted.get(b, 0) for b in range(end - buckets + 1, end + 1))
        for end in range(low, high + buckets)
    )


def test_six_new_fingerprints_within_ten_minutes_get_five_groups_in_every_order(redis_ns):
    """All 720 orders, each in a fresh window; one quota object per order (its memory helps) and one process
    per request (every answer comes from Redis)."""
    for number, order in enumerate(itertools.permutations(range(6))):
        gate = fresh(redis_ns, f"one-{number}")
        granted = [gate.try_acquire(1, ERROR, T0 + SIX[i] * MINUTE, f"fp{i}:0") for i in order]
        assert sum(granted) == 5, order
        assert fullest_window(buckets_granted(gate)) == 5
    for number, order in enumerate(itertools.permutations(range(6))):
        if number % 24:  # every first order of each leading pair, to keep the round trips few
            continue
        answers = [
            fresh(redis_ns, f"many-{number}").try_acquire(1, ERROR, T0 + SIX[i] * MINUTE, f"fp{i}:0")
            for i in order
        ]
        assert sum(answers) == 5, order


def test_a_grant_sees_the_creations_after_it_in_the_window(redis_ns):
    """Five groups at 02:12 first, then one at 02:03: the window (01:13, 02:12] would hold six. At 01:12 the
    window (00:13, 01:12] is free, but (01:12, 02:11] holds 01:12's bucket and the five: refused too;
    an hour before 02:12's bucket is free again."""
    gate = fresh(redis_ns, "")
    at_0212 = T0 + 12 * MINUTE
    assert [gate.try_acquire(1, ERROR, at_0212, f"late{i}:0") for i in range(5)] == [True] * 5
    assert not fresh(redis_ns, "").try_acquire(1, ERROR, T0 + 3 * MINUTE, "early:0")
    assert not fresh(redis_ns, "").try_acquire(1, ERROR, at_0212 - HOUR + MINUTE, "hour-before:0")
    assert fresh(redis_ns, "").try_acquire(1, ERROR, at_0212 - HOUR, "an-hour-before:0")
    assert fresh(redis_ns, "").try_acquire(1, ERROR, at_0212 + HOUR, "an-hour-after:0")


def test_a_process_refuses_without_a_round_trip_when_a_later_window_it_knows_is_full(redis_ns):
    first = quota(redis_ns)
    assert [first.try_acquire(1, ERROR, T0 + 12 * MINUTE, f"k{i}:0") for i in range(5)] == [True] * 5
    second = quota(redis_ns)

    def no_round_trip(*_args):
        raise AssertionError("asked Redis")

    second._evaluate = no_round_trip
    assert not second.try_acquire(1, ERROR, T0 + 3 * MINUTE, "earlier:0")
    assert not second.try_acquire(1, ERROR, T0 + 12 * MINUTE - HOUR + MINUTE, "first-minute-of-the-window:0")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    minutes=st.lists(st.integers(0, 180), min_size=1, max_size=30),
    data=st.data(),
)
def test_no_window_ever_holds_more_than_the_limit_whatever_the_order(redis_ns, minutes, data):
    """Random creations over three hours, asked in a random order, one by one or in batches: no window of an
    hour holds more than five, and every refusal had a full window containing its minute."""
    gate = fresh(redis_ns, uuid.uuid4().hex)
    requests = [
        QuotaRequest(1, ERROR, T0 + minute * MINUTE, f"fp{index}:0") for index, minute in enumerate(minutes)
    ]
    order = data.draw(st.permutations(requests))
    cut = data.draw(st.integers(1, len(order)))
    answers = dict(zip(order, gate.try_acquire_many(order[:cut]) + gate.try_acquire_many(order[cut:])))
    granted = buckets_granted(gate)
    assert fullest_window(granted) <= 5
    assert sum(granted.values()) == sum(answers.values())
    for request, answer in answers.items():
        if not answer:
            bucket = request.message_time // MINUTE
            assert fullest_window({b: c for b, c in granted.items() if bucket - 59 <= b <= bucket + 59}) == 5


@settings(max_examples=300, deadline=None)
@given(
    seen=st.dictionaries(st.integers(-12, 12), st.integers(0, 4), max_size=30),
    bucket=st.integers(-6, 6),
    buckets=st.integers(1, 6),
    limit=st.integers(1, 12),
)
def test_a_window_is_known_full_exactly_when_the_counts_seen_fill_one(seen, bucket, buckets, limit):
    """``_known_full`` (its shortcut over the counts in reach included) against its definition: some window of
    ``buckets`` buckets ending at ``bucket`` or up to ``buckets - 1`` after it holds ``limit`` or more."""
    _check_known_full(seen, bucket, buckets, limit)


def _check_known_full(seen: dict[int, int], bucket: int, buckets: int, limit: int) -> None:
    """``_known_full`` against its definition: some window of ``buckets`` buckets ending at ``bucket`` or up
    to ``buckets - 1`` after it holds ``limit`` or more (the counts ``seen`` as Redis would tell them)."""
    gate = RedisCreationQuota(redis.Redis(), prefix=f"known-full:{uuid.uuid4().hex}")  # no round trip made
    window = redis_quota._Window("key", MINUTE, buckets, limit)
    gate._remember(window, [1, *itertools.chain.from_iterable(seen.items())])  # as Redis would tell them
    expected = any(
        sum(seen.get(b, 0) for b in range(end - buckets + 1, end + 1)) >= limit
        for end in range(bucket, bucket + buckets)
    )
    assert gate._known_full(window, bucket) == expected
    assert (bucket in window.full) == expected


_NEEDS_HIREDIS = pytest.mark.skipif(
    redis_quota._hiredis_pack is None, reason="hiredis is not installed (redis-py packs commands itself)"
)


@_NEEDS_HIREDIS
@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=4),
    numbers=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=6),
    creation=st.text(max_size=40),
)
def test_the_script_call_is_packed_as_the_connection_packs_it(keys, numbers, creation):
    """``_evaluate`` packs its EVALSHA with hiredis itself when the connection's packer would give the same
    bytes (``_packs_as_hiredis``): it does, for any keys and arguments of the script's kinds."""
    connection = redis.Redis().connection_pool.make_connection()
    assert redis_quota._packs_as_hiredis(connection)
    args = [*numbers, creation]
    expected = b"".join(connection.pack_command("EVALSHA", redis_quota._SHA, len(keys), *keys, *args))
    packed = redis_quota._hiredis_pack(("EVALSHA", redis_quota._SHA, len(keys), *keys, *args))
    assert packed == expected


@_NEEDS_HIREDIS
def test_a_connection_that_encodes_otherwise_packs_the_script_call_itself(redis_ns):
    """With another encoding than UTF-8 (strict) the connection's own packer is used, so the bytes sent are
    always what redis-py would send."""
    assert not redis_quota._packs_as_hiredis(
        redis.Redis(encoding="latin-1").connection_pool.make_connection()
    )
    assert not redis_quota._packs_as_hiredis(
        redis.Redis(encoding_errors="replace").connection_pool.make_connection()
    )
    gate = quota(redis_ns)
    assert gate.try_acquire(1, ERROR, T0, "k0:0")
    assert gate._packs_as_hiredis


def test_without_hiredis_the_connection_packs_the_script_call(redis_ns):
    """redis>=5 installs without hiredis: the module then imports, and the connection's own packer is used."""
    prefix = redis_ns.prefix.rstrip(":")
    script = (
        "import redis\n"
        "from transforms.core.grouptypes import GROUP_TYPES\n"
        "from transforms.storage import redis_quota\n"
        f"gate = redis_quota.RedisCreationQuota(redis.Redis.from_url({redis_ns.url!r}), prefix={prefix!r})\n"
        f"print(redis_quota._hiredis_pack, gate.try_acquire(1, GROUP_TYPES[1], {T0}, 'k0:0'), gate._packs_as_hiredis)\n"
    )
    _lines, printed = run_without("hiredis", "creation quota", script)
    assert printed == "None True False"


# ---------------------------------------------------------------------------------------------------------
# The direct round trip (``_round_trip``): the EVALSHA written to the connection's socket and read with its
# parser, on a plain connection; redis-py's ``send_packed_command`` and ``read_response`` (``_send``) otherwise.


def _grants_in_order(gate: RedisCreationQuota) -> list[bool]:
    return [gate.try_acquire(1, ERROR, T0 + i * MINUTE, f"k{i}:0") for i in range(6)] + [
        gate.try_acquire(1, ERROR, T0, "k0:0")
    ]


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_plain_connection_sends_directly_and_decides_the_same(redis_ns, protocol):
    client = redis.Redis.from_url(redis_ns.url, protocol=protocol)
    direct = RedisCreationQuota(client, prefix=f"{redis_ns.prefix}direct-{protocol}")
    assert _grants_in_order(direct) == [True] * 5 + [False, True]
    assert direct._direct
    checked = redis.Redis.from_url(redis_ns.url, protocol=protocol, health_check_interval=30)
    other = RedisCreationQuota(checked, prefix=f"{redis_ns.prefix}checked-{protocol}")
    assert _grants_in_order(other) == [True] * 5 + [False, True]
    assert not other._direct  # health checks are redis-py's: its path
    assert buckets_granted(direct) == buckets_granted(other)


def test_a_dropped_connection_is_reconnected_on_the_direct_path(redis_ns):
    """The server kills the connection between two round trips, twice: the direct write goes out on a dead
    socket, the read fails, and the connection's ``Retry`` reconnects (redis-py's path) and asks again."""
    opened = []
    gate = quota(redis_ns, fail_open=lambda: opened.append(1))
    assert gate.try_acquire(1, ERROR, T0, "k0:0")
    assert gate._direct
    for minute in (1, 2):
        host, port = gate._connection._sock.getsockname()[:2]
        assert redis_ns.client.client_kill_filter(addr=f"{host}:{port}") == 1
        assert gate.try_acquire(1, ERROR, T0 + minute * MINUTE, f"k{minute}:0")
        assert gate._connection._sock is not None
    assert opened == []
    assert buckets_granted(gate) == {T0 // MINUTE + m: 1 for m in range(3)}


def test_pushed_messages_before_the_answer_are_handled_by_redis_py(redis_ns):
    """RESP3: with client tracking on, the server pushes an invalidation of a window key this connection read
    (another process created in it) ahead of the next answer; the parser handles it and the answer follows."""
    client = redis.Redis.from_url(redis_ns.url, protocol=3)
    gate = RedisCreationQuota(client, prefix=f"{redis_ns.prefix}pushed")
    assert gate.try_acquire(1, ERROR, T0, "k0:0")
    assert gate._direct
    connection = gate._connection
    pushed = []
    connection._parser.set_invalidation_push_handler(pushed.append)
    connection.send_command("CLIENT", "TRACKING", "ON")
    assert connection.read_response() in (b"OK", "OK")
    assert gate.try_acquire(1, ERROR, T0 + MINUTE, "k1:0")  # reads the window key: tracked
    client.hincrby(gate.key(1, ERROR.slug), str(T0 // MINUTE + 2), 1)  # another process's creation
    assert gate.try_acquire(1, ERROR, T0 + 3 * MINUTE, "k3:0")
    assert pushed and pushed[0][0] in (b"invalidate", "invalidate")
    assert gate._connection._sock is not None
    assert buckets_granted(gate) == {T0 // MINUTE + m: 1 for m in range(4)}


def _server_says(gate: RedisCreationQuota, send, replies: list[bytes], then_close: bool = False):
    """What ``send`` (``gate._round_trip`` or ``gate._send``) does when the server's side of the connection's
    socket is a socket pair's end that answers ``replies`` (one write each, a moment apart) once the command
    came, then stops writing if ``then_close``: its answer or (exception type, message), and whether the
    connection was dropped."""
    import socket
    import threading
    import time

    connection = gate._connection
    if connection._sock is None:
        connection.connect()
    real = connection._sock
    ours, server = socket.socketpair()
    ours.settimeout(0.3)
    connection._sock = connection._parser._sock = ours
    real.close()

    def serve() -> None:
        server.recv(65536)
        for reply in replies:
            server.sendall(reply)
            time.sleep(0.02)
        if then_close:
            server.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        outcome = send()
    except Exception as error:
        outcome = (type(error), str(error))
    thread.join()
    server.close()
    dropped = connection._sock is None
    if not dropped:
        connection.disconnect()
    return outcome, dropped


@pytest.mark.parametrize(
    ("replies", "then_close"),
    [
        ([b"*1\r\n*3\r\n:1\r\n:7\r\n:2\r\n"], False),  # the answer
        ([b"*1\r\n*3\r\n:1\r", b"\n:7\r\n:2", b"\r\n"], False),  # the answer in pieces
        ([b"*0\r\n"], False),  # an empty batch's answer
        ([], False),  # no answer: a timeout
        ([], True),  # the server closed the connection
        ([b"*1\r\n*3\r\n:1\r\n"], True),  # ... in the middle of an answer
        ([b"-ERR boom\r\n"], False),  # an error reply
        ([b"-NOSCRIPT No matching script\r\n"], False),  # a lost script
        ([b"-LOADING Redis is loading\r\n"], False),  # an error that is a connection error
        ([b"?what\r\n"], False),  # not RESP
        (
            [b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", b"*1\r\n*1\r\n:0\r\n"],
            False,
        ),  # a push, then the answer
    ],
)
def test_the_direct_round_trip_answers_and_fails_as_redis_py_does(redis_ns, replies, then_close):
    """``_round_trip`` against ``_send`` (redis-py's connection), on the same scripted server side: the same
    answer, or the same exception (type and message), and the connection dropped or kept alike."""
    outcomes = []
    for name in ("_round_trip", "_send"):
        gate = fresh(redis_ns, name)
        assert gate.try_acquire(1, ERROR, T0, "k0:0")
        assert gate._direct
        gate._command = redis_quota._hiredis_pack(
            ("EVALSHA", redis_quota._SHA, 2, "a", "a:grants", 60, 1, 60, 5, "c")
        )
        outcomes.append(_server_says(gate, getattr(gate, name), replies, then_close))
    assert outcomes[0] == outcomes[1]


def test_a_short_or_failed_write_is_finished_by_redis_py(redis_ns, monkeypatch):
    """A write the socket takes only part of, or refuses, is finished (or failed) by ``send_packed_command``."""
    gate = quota(redis_ns)
    assert gate.try_acquire(1, ERROR, T0, "k0:0")
    real_write = redis_quota.os.write
    monkeypatch.setattr(redis_quota.os, "write", lambda fd, data: real_write(fd, data[:10]))
    assert gate.try_acquire(1, ERROR, T0 + MINUTE, "k1:0")

    def refused(_fd, _data):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(redis_quota.os, "write", refused)
    assert gate.try_acquire(1, ERROR, T0 + 2 * MINUTE, "k2:0")
    assert buckets_granted(gate) == {T0 // MINUTE + m: 1 for m in range(3)}


@settings(max_examples=300, deadline=None)
@given(
    seen=st.dictionaries(st.integers(-130, 130), st.integers(0, 4), max_size=24),
    bucket=st.integers(-10, 10),
    buckets=st.integers(1, 60),
    limit=st.integers(1, 12),
)
def test_a_window_is_known_full_exactly_when_the_counts_seen_fill_one_of_many_buckets(
    seen, bucket, buckets, limit
):
    """The same for windows of up to 60 buckets with few counts seen (the sparse sweep of ``_known_full``)."""
    _check_known_full(seen, bucket, buckets, limit)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asks=st.lists(st.tuples(st.integers(0, 150), st.integers(0, 12)), min_size=1, max_size=30))
def test_one_request_at_a_time_decides_as_a_batch_of_one(redis_ns, asks):
    """``try_acquire`` (its own path for one request, ``_ask``) and ``try_acquire_many`` of one request, each
    in a window of its own: the same answers, the same buckets stored (a creation id may come again)."""
    name = uuid.uuid4().hex
    one, many = fresh(redis_ns, f"one-{name}"), fresh(redis_ns, f"many-{name}")
    answers_one = [one.try_acquire(1, ERROR, T0 + minute * MINUTE, f"fp{fp}:0") for minute, fp in asks]
    answers_many = [
        many.try_acquire_many([QuotaRequest(1, ERROR, T0 + minute * MINUTE, f"fp{fp}:0")])[0]
        for minute, fp in asks
    ]
    assert answers_one == answers_many
    assert buckets_granted(one) == buckets_granted(many)


def test_what_a_process_remembers_is_bounded_across_its_windows(monkeypatch):
    """The buckets known full and the creations granted that a process remembers are bounded in all (200,000,
    as when they were two sets of 100,000 for every window), not only window by window: a worker that lives
    for days sees thousands of projects, and every group it creates is a creation granted."""
    gate = RedisCreationQuota(redis.Redis(), prefix=f"bounded:{uuid.uuid4().hex}")  # no round trip made
    monkeypatch.setattr(gate, "_evaluate", lambda keys, args: [[1]])  # Redis grants every creation
    for project in range(25):
        for i in range(10_000):
            assert gate.try_acquire(project, ERROR, T0 + i * MINUTE, f"fp{i}:0")
        gate._window(project, ERROR).fill(project)
    windows = gate._windows.values()
    assert sum(len(window.granted) + len(window.full) for window in windows) <= 200_000
    assert "fp9999:0" in gate._window(24, ERROR).granted  # the latest are still known


class _PoolBefore53(redis.ConnectionPool):
    """A pool as redis-py before 5.3 has it (setup.py allows redis>=5): ``get_connection`` needs a command name."""

    def get_connection(self, command_name, *keys, **options):  # type: ignore[override]
        return super().get_connection()


def test_a_pool_that_wants_a_command_name_gives_the_quota_its_connection(redis_ns):
    """redis-py 5.0 to 5.2 require ``get_connection``'s command name (5.3 made it optional and warns when it is
    given): the quota takes its connection from either."""
    client = redis.Redis(connection_pool=_PoolBefore53.from_url(redis_ns.url))
    gate = RedisCreationQuota(client, prefix=f"{redis_ns.prefix}pool-before-5.3")
    assert _grants_in_order(gate) == [True] * 5 + [False, True]
