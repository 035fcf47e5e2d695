"""Cost of the creation quota's Redis check (``transforms.storage.redis_quota``), per request, against a real Redis.

Each round asks a fresh key prefix for ``--requests`` creations of one project and type (error: 5 an hour)
at random seconds of a ``--hours`` span, in random order: one by one (a round trip each) and in batches of
``--batch`` (one round trip per batch, as the applier asks for a bundle). Most requests are refused once the
windows fill, which is the common case of a busy project. Two ways: as the pipeline uses it (the process
remembers the bucket counts Redis returned and refuses requests in windows it knows are full without a
round trip), and Redis only (that memory emptied before every call, so every request runs the script).
Prints the median over ``--rounds`` rounds of the microseconds per request.

Run:  python -m bench.quota --redis_url redis://localhost:6379/0
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

import redis

from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import MICROS
from transforms.storage.redis_quota import QuotaRequest, RedisCreationQuota

ERROR = GROUP_TYPES[1]
T0 = 1_780_000_000 * MICROS


def requests(count: int, hours: int, rng: random.Random) -> list[QuotaRequest]:
    return [
        QuotaRequest(1, ERROR, T0 + rng.randrange(hours * 3600) * MICROS, f"bench-{index}:0")
        for index in range(count)
    ]


def timed(client: redis.Redis, prefix: str, asked: list[QuotaRequest], batch: int, memory: bool) -> float:
    quota = RedisCreationQuota(client, prefix=prefix)
    started = time.perf_counter()
    for start in range(0, len(asked), batch):
        if not memory:
            quota._seen.clear()
            for window in quota._windows.values():
                window.full.clear()
        quota.try_acquire_many(asked[start : start + batch])
    return (time.perf_counter() - started) / len(asked) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis_url", default="redis://localhost:6379/0")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rng = random.Random(1)
    ways = [
        (f"{mode}, {'one by one' if batch == 1 else f'batches of {batch}'}", batch, memory)
        for mode, memory in (("as used", True), ("Redis only", False))
        for batch in (1, args.batch)
    ]
    results: dict[str, list[float]] = {label: [] for label, _batch, _memory in ways}
    prefixes = []
    for _ in range(args.rounds):
        for label, batch, memory in ways:
            prefix = f"bench-quota:{uuid.uuid4().hex}"  # a fresh window, and a process memory of its own
            prefixes.append(prefix)
            client = redis.Redis.from_url(args.redis_url)
            asked = requests(args.requests, args.hours, rng)
            results[label].append(timed(client, prefix, asked, batch, memory))
            client.close()
    client = redis.Redis.from_url(args.redis_url)
    for prefix in prefixes:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    print(f"{args.requests} requests over {args.hours} h, median of {args.rounds} rounds:")
    for label, values in results.items():
        print(f"  {label:>28}: {statistics.median(values):7.1f} µs a request")


if __name__ == "__main__":
    main()
