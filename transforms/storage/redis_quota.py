"""The creation quota in Redis: sliding windows in message time, shared by every key and worker.

At most ``limit`` groups of one (project, group type slug) are created in any window of
``window_seconds`` of message time, counted in buckets of ``granularity_seconds`` (Sentry's
``issue-platform-issues:{project}:{slug}`` quota, 5 per hour by default). A creation at message time t is
granted only if every window that contains t's bucket still has room: the windows ending at t's bucket
and at each of the ``buckets - 1`` buckets after it (``buckets`` = window / granularity), so the check reads
the ``2 * buckets - 1`` bucket counts around t. Requests may come in any order of message time (a backfill
takes keys in any order, a late key in streaming asks for an older time): a grant at 02:03 sees one already
made at 02:12, and no window ever holds more than ``limit``, whatever the order. Taken in order of message
time, the buckets after t are still empty and this is Sentry's "the hour before t". Because windows are
measured in message time, a backfill is limited like the live stream was.

Retries are free: a request names the group it would create (``creation_id``), and a creation granted
before is granted again without consuming quota, so a retried bundle or a replay does not eat the window.
Each process also keeps a lower bound of the bucket counts it has seen (Redis returns the counts it read
with each answer; counts only grow), shared by all its quotas of one client and key prefix and started
afresh every ten minutes: when those already fill a window containing a request's bucket, the request is
refused without a round trip (and a bucket found so is remembered, not summed again). Over-quota projects, whose refused occurrences ask again one by one, cost almost no
Redis traffic that way. The one imprecision: a creation granted by another process and asked again here, in
a window this process knows to be full, is refused; its key asks again with its next occurrence.

One round trip per batch of requests: a Lua script checks and consumes a whole batch atomically, sent as one
EVALSHA on a connection the quota keeps (``_evaluate``; on a plain connection written to its socket and read
with its own parser, ``_round_trip``). If Redis cannot be reached the quota fails open (the
group is created) and ``fail_open`` is called once per request, so the shell can count it; after a failure Redis is not asked again for ``retry_after`` seconds by any quota
of the process that uses the same client (``transforms.storage.clients`` shares one per URL, and the local runner
builds a new quota for every bundle), so a dead Redis does not add a timeout to every creation. How long
one attempt may take is the client's business: put ``socket_connect_timeout`` and ``socket_timeout`` in the
Redis URL (``redis://host:6379/0?socket_connect_timeout=1&socket_timeout=1``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis
from redis.connection import AbstractConnection, Connection, UnixDomainSocketConnection

try:
    from hiredis import pack_command as _hiredis_pack
    from redis.connection import HiredisRespSerializer
except ImportError:  # redis-py packs the command itself then (_packs_as_hiredis)
    _hiredis_pack = None
    HiredisRespSerializer = None

try:  # what the direct round trip (_round_trip) reads replies with: the connection's own hiredis parser
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
    from redis._parsers.hiredis import _HiredisParser
except ImportError:  # hiredis absent, or a redis-py whose parser says "not enough data" otherwise
    _NOT_ENOUGH_DATA = _HiredisParser = None

from transforms.core.grouptypes import GroupType
from transforms.core.model import MICROS

_LOG = logging.getLogger(__name__)

# KEYS: per request, the window's hash then its grants' hash. ARGV: ttl, then per request: the request's
# bucket, buckets in a window, limit, creation id. Requests are checked in order, so two requests for the
# same windows in one batch see each other. A creation id granted before is granted again without consuming
# more. A new creation at bucket b is granted iff every window containing b (ending at b .. b + buckets - 1)
# holds fewer than limit: one HMGET of the 2 * buckets - 1 counts, then a sliding sum over them.
# Returns per request {granted (0/1), then bucket, count, bucket, count... of the buckets read that saw
# creations, after the request}, all integers (Redis's integer replies: the client reads them as ints, without
# a string to parse for each; a reply has up to 2 * buckets - 1 such pairs, 15 on average in bench.stream_cpu).
_CHECK_AND_USE = """
local ttl = tonumber(ARGV[1])
local granted = {}
for i = 1, #KEYS / 2 do
  local key = KEYS[2 * i - 1]
  local grants = KEYS[2 * i]
  local base = 1 + (i - 1) * 4
  local bucket = tonumber(ARGV[base + 1])
  local buckets = tonumber(ARGV[base + 2])
  local limit = tonumber(ARGV[base + 3])
  local creation = ARGV[base + 4]
  local low = bucket - buckets + 1
  local fields = {}
  for b = low, bucket + buckets - 1 do fields[#fields + 1] = tostring(b) end
  local counts = redis.call('HMGET', key, unpack(fields))
  for n = 1, #fields do counts[n] = tonumber(counts[n]) or 0 end
  local answer = 0
  if creation ~= '' and redis.call('HEXISTS', grants, creation) == 1 then
    answer = 1
  else
    -- counts[n] is bucket low + n - 1; the window ending at bucket + k is counts[k + 1 .. k + buckets].
    local total = 0
    for n = 1, buckets do total = total + counts[n] end
    local fullest = total
    for k = 1, buckets - 1 do
      total = total + counts[k + buckets] - counts[k]
      if total > fullest then fullest = total end
    end
    if fullest < limit then
      redis.call('HINCRBY', key, tostring(bucket), 1)
      redis.call('EXPIRE', key, ttl)
      counts[buckets] = counts[buckets] + 1
      if creation ~= '' then
        redis.call('HSET', grants, creation, bucket)
        redis.call('EXPIRE', grants, ttl)
      end
      answer = 1
    end
  end
  local result = {answer}
  for n = 1, #fields do
    if counts[n] > 0 then
      result[#result + 1] = low + n - 1
      result[#result + 1] = counts[n]
    end
  end
  granted[i] = result
end
return granted
"""

_SHA = hashlib.sha1(_CHECK_AND_USE.encode(), usedforsecurity=False).hexdigest()

# When each Redis client may be asked again after a failure (monotonic seconds, in a one-element list),
# shared by every quota of the client: a quota keeps its client's list, so that answering from memory reads a
# float instead of looking its client up in a WeakKeyDictionary (which builds a weak reference each time).
_down_until: weakref.WeakKeyDictionary[redis.Redis, list[float]] = weakref.WeakKeyDictionary()
_down_lock = threading.Lock()


def _down_of(client: redis.Redis) -> list[float]:
    with _down_lock:
        down = _down_until.get(client)
        if down is None:
            down = _down_until[client] = [0.0]
        return down


def _packs_as_hiredis(connection: AbstractConnection) -> bool:
    """Whether ``connection`` packs a command as ``hiredis.pack_command`` does, for the script's arguments (str
    and int): its packer is redis-py's hiredis one, which only encodes each argument first (a str as its
    encoder says, an int as its decimal digits), and its encoder writes UTF-8 strictly, as hiredis does."""
    encoder = getattr(connection, "encoder", None)
    return (
        _hiredis_pack is not None
        and HiredisRespSerializer is not None
        and type(getattr(connection, "_command_packer", None)) is HiredisRespSerializer
        and encoder is not None
        and encoder.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        and encoder.encoding_errors == "strict"
    )


def _sends_directly(connection: AbstractConnection) -> bool:
    """Whether ``_round_trip`` may talk to ``connection``'s socket itself: a plain TCP or Unix socket (no TLS),
    no health checks, and redis-py's hiredis parser, whose reader and buffer it then uses, so the connection's
    own ``read_response`` can take over at any point (a RESP3 push message before the reply). Anything else
    goes through the connection's ``send_packed_command`` and ``read_response``."""
    return (
        _HiredisParser is not None
        and type(connection) in (Connection, UnixDomainSocketConnection)
        and type(getattr(connection, "_parser", None)) is _HiredisParser
        and getattr(connection, "protocol", None) in (None, 2, "2", 3, "3")
        and not getattr(connection, "health_check_interval", 0)
        and _packs_as_hiredis(connection)
    )


class _Window:
    """The windows of one project and group type in a process's memory: what a request is checked and asked
    with (its hash's key, the grants' key, bucket width in µs, buckets in a window, limit), and what the
    process knows of them: a lower bound of each bucket's count (``seen``: what Redis last told us) and their
    sum, the buckets whose windows those already fill (``full``) and the creations granted (``granted``,
    asking again is answered here). All only grow (bounded), under the memory's lock; ``try_acquire`` reads
    ``full`` and ``granted`` without it (one set membership each). ``memory``: the process's memory it is part
    of, which bounds what all its windows remember (``_Memory.added``)."""

    __slots__ = (
        "buckets",
        "full",
        "granted",
        "grants",
        "key",
        "limit",
        "memory",
        "seen",
        "seen_total",
        "width",
    )

    def __init__(self, key: str, width: int, buckets: int, limit: int, memory: _Memory | None = None):
        self.memory = memory
        self.key = key
        self.grants = key + ":grants"
        self.width = width
        self.buckets = buckets
        self.limit = limit
        self.seen: dict[int, int] = {}
        self.seen_total = 0  # the sum of ``seen``: no window holds more
        self.full: set[int] = set()
        self.granted: set[str] = set()

    def fill(self, bucket: int) -> None:
        self._add(self.full, bucket)

    def grant(self, creation_id: str) -> None:
        self._add(self.granted, creation_id)

    def _add(self, members: set, member: int | str) -> None:
        """``member`` into ``full`` or ``granted``, each bounded on its own and all of them by ``memory``."""
        if len(members) > _MAX_REMEMBERED:
            members.clear()
        members.add(member)
        if self.memory is not None:
            self.memory.added()


_MAX_REMEMBERED = 20_000  # buckets known full, creations granted, of one window
_MAX_REMEMBERED_IN_ALL = 200_000  # buckets known full and creations granted, of all the windows of a memory


@dataclass
class _Memory:
    """What a process knows about the windows of one Redis client and key prefix, shared by its quotas (the
    local runner builds one per bundle). Counts only grow while their hash lives (its TTL is renewed with
    every creation), and a memory is dropped after ``_MEMORY_SECONDS`` so it never outlives a hash."""

    born: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (project id, group type slug) -> its windows (``_Window``: the buckets known full, the creations granted).
    windows: dict[tuple[int, str], _Window] = field(default_factory=dict)
    remembered: int = 0  # buckets and creations added to ``windows`` since they were last all forgotten

    def added(self) -> None:
        """A bucket known full or a creation granted was added to one of ``windows`` (under ``lock``): past
        ``_MAX_REMEMBERED_IN_ALL`` of them, every window forgets those it knows (as if new; their counts seen
        stay), so that a process that lives long and sees many projects stays bounded in all, not only window
        by window."""
        self.remembered += 1
        if self.remembered > _MAX_REMEMBERED_IN_ALL:
            for window in list(self.windows.values()):  # a copy: try_acquire adds windows without the lock
                window.full.clear()
                window.granted.clear()
            self.remembered = 0


_MEMORY_SECONDS = 600.0
_memories: weakref.WeakKeyDictionary[redis.Redis, dict[str, _Memory]] = weakref.WeakKeyDictionary()


def _memory(client: redis.Redis, prefix: str) -> _Memory:
    now = time.monotonic()
    with _down_lock:
        by_prefix = _memories.get(client)
        if by_prefix is None:
            by_prefix = _memories[client] = {}
        memory = by_prefix.get(prefix)
        if memory is None or now - memory.born > _MEMORY_SECONDS:
            memory = by_prefix[prefix] = _Memory(now)
        return memory


@dataclass(frozen=True)
class QuotaRequest:
    project_id: int
    group_type: GroupType
    message_time: int  # microseconds
    creation_id: str = ""  # the group that would be created: asking again for it is free


class RedisCreationQuota:
    """Implements the engine's ``QuotaGate`` over Redis (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "occurrence-pipeline",
        fail_open: Callable[[], None] | None = None,
        retry_after: float = 5.0,
        key_ttl_seconds: int = 7 * 24 * 3600,
    ):
        self._client = client
        self._prefix = prefix
        self._fail_open = fail_open or (lambda: None)
        self._retry_after = retry_after
        self._ttl = key_ttl_seconds
        self._connection: AbstractConnection | None = None  # see _evaluate
        self._packs_as_hiredis = False  # whether _hiredis_pack gives what the connection's packer gives
        self._direct = False  # whether _round_trip may use the connection's socket itself (_sends_directly)
        self._command: bytes | list[bytes] = b""  # what _send and _round_trip send
        self._down = _down_of(client)
        memory = self._memory = _memory(client, prefix)
        self._lock = memory.lock
        self._windows = memory.windows

    def key(self, project_id: int, slug: str) -> str:
        return f"{self._prefix}:issue-platform-issues:{project_id}:{slug}"

    def try_acquire(
        self, project_id: int, group_type: GroupType, message_time: int, creation_id: str = ""
    ) -> bool:
        # Answered from the process's memory when it can be (see try_acquire_many, which decides the same
        # way): over-quota keys ask again with each occurrence, most of them in a window known to be full.
        down_until = self._down[0]
        if down_until and time.monotonic() < down_until:
            return self.try_acquire_many([QuotaRequest(project_id, group_type, message_time, creation_id)])[0]
        window = self._windows.get((project_id, group_type.slug))
        if window is None:
            window = self._window(project_id, group_type)
        if creation_id and creation_id in window.granted:
            return True
        bucket = message_time // window.width
        if bucket in window.full:
            return False
        return self._ask(window, bucket, creation_id)

    def _window(self, project_id: int, group_type: GroupType) -> _Window:
        """The windows of ``project_id`` and ``group_type`` in the process's memory (bounded: all forgotten
        at once, as if the memory were new)."""
        window = self._windows.get((project_id, group_type.slug))
        if window is None:
            quota = group_type.creation_quota
            window = _Window(
                self.key(project_id, group_type.slug),
                quota.granularity_seconds * MICROS,
                -(-quota.window_seconds // quota.granularity_seconds),
                quota.limit,
                self._memory,
            )
            if len(self._windows) > 10_000:
                self._windows.clear()
                self._memory.remembered = 0
            self._windows[(project_id, group_type.slug)] = window
        return window

    def _ask(self, window: _Window, bucket: int, creation_id: str) -> bool:
        """``try_acquire_many`` of one request (``try_acquire``'s, when its memory did not answer), without
        building the request and the lists of a batch."""
        with self._lock:  # shared with the process's other quotas (threads)
            known = self._known_answer(window, bucket, creation_id)
        if known is not None:
            return known
        try:
            reply = self._evaluate(
                [window.key, window.grants], [self._ttl, bucket, window.buckets, window.limit, creation_id]
            )[0]
        except (redis.RedisError, OSError) as error:  # unreachable, read-only, out of memory...
            self._went_down(error)
            self._fail_open()
            return True
        with self._lock:
            return self._take_reply(window, creation_id, reply)

    def try_acquire_many(self, requests: Sequence[QuotaRequest]) -> list[bool]:
        if not requests:
            return []
        with _down_lock:
            down_until = self._down[0]
        if time.monotonic() < down_until:
            return self._open(requests)
        answers: list[bool | None] = [None] * len(requests)
        asked: list[tuple[int, _Window]] = []
        keys: list[str] = []
        args: list[int | str] = [self._ttl]
        with self._lock:  # shared with the process's other quotas (threads)
            for index, request in enumerate(requests):
                window = self._window(request.project_id, request.group_type)
                bucket = request.message_time // window.width
                known = self._known_answer(window, bucket, request.creation_id)
                if known is not None:
                    answers[index] = known
                    continue
                asked.append((index, window))
                keys += [window.key, window.grants]
                args += [bucket, window.buckets, window.limit, request.creation_id]
        if not asked:
            return [bool(answer) for answer in answers]
        try:
            granted = self._evaluate(keys, args)
        except (redis.RedisError, OSError) as error:  # unreachable, read-only, out of memory...
            self._went_down(error)
            return self._open(requests)
        with self._lock:
            for (index, window), reply in zip(asked, granted):
                answers[index] = self._take_reply(window, requests[index].creation_id, reply)
        return [bool(answer) for answer in answers]

    def _known_answer(self, window: _Window, bucket: int, creation_id: str) -> bool | None:
        """What the process's memory answers for a request (under ``self._lock``): True for a creation already
        granted, False where the window is known to be full (no need to ask), None: Redis must be asked."""
        if creation_id and creation_id in window.granted:
            return True
        if bucket in window.full or self._known_full(window, bucket):
            return False
        return None

    def _take_reply(self, window: _Window, creation_id: str, reply: list[int]) -> bool:
        """A request's answer in the script's ``reply``, its grant and its counts remembered (under
        ``self._lock``)."""
        answer = reply[0]
        if answer and creation_id:
            window.grant(creation_id)
        self._remember(window, reply)
        return bool(answer)

    def _went_down(self, error: Exception) -> None:
        _LOG.warning(
            "creation quota: Redis unreachable (%s); failing open for %.0fs", error, self._retry_after
        )
        with _down_lock:
            self._down[0] = time.monotonic() + self._retry_after

    def _remember(self, window: _Window, reply: list[int]) -> None:
        """The counts of ``window``'s buckets in a request's ``reply`` (granted, then bucket, count, ...: ints,
        see the script) kept as lower bounds (bounded). Called under ``self._lock``."""
        seen = window.seen
        total = window.seen_total
        if len(seen) > 100_000:
            seen.clear()
            total = 0
        known = seen.get
        pairs = iter(reply)
        next(pairs)  # granted
        for seen_bucket, count in zip(pairs, pairs):
            before = known(seen_bucket, 0)
            if count > before:
                seen[seen_bucket] = count
                total += count - before
        window.seen_total = total

    def _evaluate(self, keys: list[str], args: list[int | str]) -> list[list[int]]:
        """The script's answer for ``keys`` and ``args``: one EVALSHA on this quota's own connection.

        The connection is taken from the client's pool at the first call and given back when the quota is
        dropped, and the command is packed by hiredis when that gives the connection's bytes, so a round trip
        skips redis-py's per-command layers (the pool's check-out, which polls the socket, and its timing and
        telemetry hooks). On a plain connection (``_sends_directly``) the command is written to the socket and
        the reply read with the connection's own parser (``_round_trip``). Failures are retried as the
        client's own commands retry them (the connection's ``Retry``: connection and timeout errors,
        reconnecting), a connection the server closed is reconnected once, and a server that lost the script
        (restarted, ``SCRIPT FLUSH``) is given it again. A quota is used by one thread at a time (its
        applier's)."""
        connection = self._connection
        if connection is None:
            pool = self._client.connection_pool
            try:
                connection = pool.get_connection()
            except TypeError:  # redis-py before 5.3 (setup.py allows 5.0) requires a command name
                connection = pool.get_connection("EVALSHA")
            self._connection = connection
            weakref.finalize(self, pool.release, connection)
            self._packs_as_hiredis = _packs_as_hiredis(connection)
            self._direct = _sends_directly(connection)
        command: bytes | list[bytes] | None = None
        if self._packs_as_hiredis:
            try:  # the bytes the connection's packer would give, without its encoding of each argument in Python
                command = _hiredis_pack(("EVALSHA", _SHA, len(keys), *keys, *args))
            except Exception:  # the connection's packer then raises its own error (or packs)
                command = None
        if command is None:
            command = connection.pack_command("EVALSHA", _SHA, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
            send = self._send
        else:
            send = self._round_trip if self._direct else self._send
        self._command = command
        try:
            return self._attempt(connection, send)
        except redis.ConnectionError:
            # The server closed the connection while it was idle (a restart, its idle timeout): the pool would
            # have found that out when handing it over, by polling it; here the command fails, so once more.
            connection.disconnect()  # type: ignore[no-untyped-call]
            return self._attempt(connection, send)

    def _attempt(
        self, connection: AbstractConnection, send: Callable[[], list[list[int]]]
    ) -> list[list[int]]:
        try:
            return connection.retry.call_with_retry(send, self._drop)
        except redis.exceptions.NoScriptError:
            self._client.script_load(_CHECK_AND_USE)
            return connection.retry.call_with_retry(send, self._drop)

    def _drop(self, _error: Exception) -> None:
        self._connection.disconnect()  # type: ignore[union-attr]

    def _send(self) -> list[list[int]]:
        """``self._command`` sent and its reply read by redis-py's connection."""
        connection, command = self._connection, self._command
        connection.send_packed_command([command] if type(command) is bytes else command)  # type: ignore[union-attr]
        answer: list[list[int]] = connection.read_response()  # type: ignore[union-attr]
        return answer

    def _round_trip(self) -> list[list[int]]:
        """What ``_send`` does, on a connection ``_sends_directly`` accepts, without its layers: the packed
        command written to the socket's descriptor (one system call; the socket's own send polls it first when
        it has a timeout), the reply read by the connection's parser (its reader, buffer and error handling),
        and the connection's handling of errors, as ``Connection.read_response`` does it (dropped on a failed
        read, timeouts and socket errors raised as redis-py's). A connection without a socket, a write that
        fails or is short, go to redis-py's ``send_packed_command`` (it connects, waits, raises its errors)."""
        connection: Connection = self._connection  # type: ignore[assignment]
        command: bytes = self._command  # type: ignore[assignment]
        sock = connection._sock
        if sock is None:
            return self._send()
        try:
            sent = os.write(sock.fileno(), command)
        except OSError:
            sent = 0  # nothing was written: redis-py writes it, or raises its error for it
        except BaseException:
            connection.disconnect()
            raise
        if sent < len(command):
            connection.send_packed_command([command[sent:]], check_health=False)
        parser = connection._parser
        try:
            reader = parser._reader
            reply = reader.gets()
            while reply is _NOT_ENOUGH_DATA:
                parser.read_from_socket()
                reply = reader.gets()
        except (TimeoutError, redis.TimeoutError):
            connection.disconnect()
            raise redis.TimeoutError(f"Timeout reading from {connection._host_error()}") from None
        except OSError as error:
            connection.disconnect()
            raise redis.ConnectionError(
                f"Error while reading from {connection._host_error()} : {error.args}"
            ) from error
        except BaseException:
            connection.disconnect()
            raise
        if type(reply) is list and (not reply or type(reply[0]) is list):
            return reply  # the script's answer
        return self._other_reply(connection, reply)

    def _other_reply(self, connection: Connection, reply: object) -> list[list[int]]:
        """What the parser's and the connection's ``read_response`` do with a reply that is not the script's
        answer: a push message (RESP3) handled by the parser and the reply after it read by the connection; an
        error raised (a connection error dropping the connection)."""
        parser = connection._parser
        push = getattr(parser, "_hiredis_PushNotificationType", None)
        if push is not None and isinstance(reply, push):
            try:
                parser.handle_push_response(reply)  # type: ignore[attr-defined]
            except BaseException:
                connection.disconnect()
                raise
            answer: list[list[int]] = connection.read_response()
            return answer
        failed = reply[0] if isinstance(reply, list) and reply else reply
        if isinstance(failed, redis.ConnectionError):
            connection.disconnect()
            raise failed
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply  # type: ignore[return-value]

    def _known_full(self, window: _Window, bucket: int) -> bool:
        """Whether the counts seen already fill a window of ``window.buckets`` buckets that contains ``bucket``
        (one ending at ``bucket`` or at one of the ``buckets - 1`` after it) with ``window.limit``; such a
        window stays full (counts only grow), so the bucket is remembered (``window.full``) and never summed
        again. Called under ``self._lock``."""
        buckets, limit = window.buckets, window.limit
        if window.seen_total < limit:
            return False  # all the counts seen together do not fill a window (the usual case)
        seen = window.seen
        if not seen:
            return False
        low, high = bucket - buckets + 1, bucket + buckets - 1
        if len(seen) < 2 * buckets - 1:
            # Fewer counts seen than buckets read (the usual case): only those in reach count, without a lookup
            # per bucket. No window is full unless they add up to the limit, and the fullest window is one that
            # starts at a bucket seen (at or before ``bucket``) or at ``bucket``: any other holds no more.
            near = [item for item in seen.items() if low <= item[0] <= high]
            if sum([count for _bucket, count in near]) < limit:
                return False
            near.sort()
            inside = first = last = 0  # the counts of near[first:last], those in the window
            for start in [seen_bucket for seen_bucket, _count in near if seen_bucket < bucket] + [bucket]:
                end = start + buckets - 1
                while last < len(near) and near[last][0] <= end:
                    inside += near[last][1]
                    last += 1
                while first < last and near[first][0] < start:
                    inside -= near[first][1]
                    first += 1
                if inside >= limit:
                    window.fill(bucket)
                    return True
            return False
        get = seen.get
        counts = [get(b, 0) for b in range(low, high + 1)]  # as the script reads them
        total = sum(counts[:buckets])  # the window ending at ``bucket``, then sliding to the later ones
        fullest = total
        if sum(counts) >= limit:
            for k in range(1, buckets):
                total += counts[k + buckets - 1] - counts[k - 1]
                if total > fullest:
                    fullest = total
        if fullest < limit:
            return False
        window.fill(bucket)
        return True

    def _open(self, requests: Sequence[QuotaRequest]) -> list[bool]:
        for _ in requests:
            self._fail_open()
        return [True] * len(requests)
