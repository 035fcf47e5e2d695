"""The creation quota in Redis: sliding windows in message time, shared by every key and worker.

At most ``limit`` groups of one (project, group type slug) are created in any window of
``window_seconds`` of message time, counted in buckets of ``granularity_seconds`` (Sentry's
``issue-platform-issues:{project}:{slug}`` quota, 5 per hour by default). A creation at message time t
counts the creations in the buckets covering (t - window, t]. Because windows are measured in message time,
a backfill is limited like the live stream was.

Retries are free: a request names the group it would create (``creation_id``), and a creation granted
before is granted again without consuming quota, so a retried bundle or a replay does not eat the window.

One round trip per batch of requests: a Lua script checks and consumes a whole batch atomically. If Redis
cannot be reached the quota fails open (the group is created) and ``fail_open`` is called, so the shell can
count it; after a failure Redis is not asked again for ``retry_after`` seconds, so a dead Redis does not add
a timeout to every creation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from transforms.core.grouptypes import GroupType
from transforms.core.model import MICROS

_LOG = logging.getLogger(__name__)

# KEYS: per request, the window's hash then its grants' hash. ARGV: ttl, then per request: current bucket,
# buckets in the window, limit, creation id. Requests are checked in order, so two requests for the same
# window in one batch see each other. A creation id granted before is granted again without consuming more.
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
  if creation ~= '' and redis.call('HEXISTS', grants, creation) == 1 then
    granted[i] = 1
  else
    local fields = {}
    for b = bucket - buckets + 1, bucket do fields[#fields + 1] = tostring(b) end
    local total = 0
    for _, value in ipairs(redis.call('HMGET', key, unpack(fields))) do
      if value then total = total + tonumber(value) end
    end
    if total < limit then
      redis.call('HINCRBY', key, tostring(bucket), 1)
      redis.call('EXPIRE', key, ttl)
      if creation ~= '' then
        redis.call('HSET', grants, creation, bucket)
        redis.call('EXPIRE', grants, ttl)
      end
      granted[i] = 1
    else
      granted[i] = 0
    end
  end
end
return granted
"""


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
        self._down_until = 0.0
        self._script = client.register_script(_CHECK_AND_USE)

    def key(self, project_id: int, slug: str) -> str:
        return f"{self._prefix}:issue-platform-issues:{project_id}:{slug}"

    def try_acquire(
        self, project_id: int, group_type: GroupType, message_time: int, creation_id: str = ""
    ) -> bool:
        return self.try_acquire_many([QuotaRequest(project_id, group_type, message_time, creation_id)])[0]

    def try_acquire_many(self, requests: Sequence[QuotaRequest]) -> list[bool]:
        if not requests:
            return []
        if time.monotonic() < self._down_until:
            return self._open(requests)
        keys: list[str] = []
        args: list[int | str] = [self._ttl]
        for request in requests:
            quota = request.group_type.creation_quota
            granularity = quota.granularity_seconds * MICROS
            key = self.key(request.project_id, request.group_type.slug)
            keys += [key, key + ":grants"]
            args += [
                request.message_time // granularity,
                -(-quota.window_seconds // quota.granularity_seconds),
                quota.limit,
                request.creation_id,
            ]
        try:
            granted = self._script(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
            _LOG.warning(
                "creation quota: Redis unreachable (%s); failing open for %.0fs", error, self._retry_after
            )
            self._down_until = time.monotonic() + self._retry_after
            return self._open(requests)
        return [bool(value) for value in granted]

    def _open(self, requests: Sequence[QuotaRequest]) -> list[bool]:
        for _ in requests:
            self._fail_open()
        return [True] * len(requests)
