"""Cost of the creation quota's Redis check (``transforms.storage.redis_quota``), per request, against a real Redis.

Each round asks a fresh key prefix for ``--requests`` creations of one project and type (error: 5 an hour)
at random seconds of a ``--hours`` span, in random order: one by one (a round trip each) and in batches of
``--batch`` (one round trip per batch, as the applier asks for a bundle). Most requests are refused once the
windows fill, which is the common case of a busy project. Two ways: as the pipeline uses it (the process
remembers the bucket counts Redis returned and refuses requests in windows it knows are full without a
round trip), and Redis only (that memory emptied before every call, so every request runs the script).
Prints the median over ``--rounds`` rounds of the microseconds per request.

With ``--against CHECKOUT``, instead: the CPU (``time.process_time``) of the quota module of another checkout
against this one's, loaded side by side in one process and run alternately, ``--rounds`` rounds, medians:
``--requests`` round trips (``_evaluate``, each for a new window), back to back and each after a gap of other
work that leaves the caches cold (as in a pass, where one comes every 40 messages or so), and as many refused
asks answered from memory (windows made full first), warm and cold likewise.

Run:  python -m bench.quota --redis_url redis://localhost:6379/0
      python -m bench.quota --redis_url "$REDIS_URL" --against /path/to/other/checkout --rounds 10
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
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
            for window in quota._windows.values():
                window.seen.clear()
                window.seen_total = 0
                window.full.clear()
        quota.try_acquire_many(asked[start : start + batch])
    return (time.perf_counter() - started) / len(asked) * 1e6


_JUNK = [{"n": n} for n in range(300_000)]


def _cool(index: int) -> None:
    """Other work between two timed calls: a walk over objects the call does not touch."""
    start = index * 997 % 290_000
    for item in _JUNK[start : start + 3000]:
        item.get("n")


def _cpu_per_call(call, count: int, cold: bool) -> float:  # type: ignore[no-untyped-def]
    """Microseconds of process CPU a ``call(index)``; cold: each after ``_cool``, timed alone."""
    clock = time.process_time
    if not cold:
        started = clock()
        for index in range(count):
            call(index)
        return (clock() - started) / count * 1e6
    spent = 0.0
    for index in range(count):
        _cool(index)
        started = clock()
        call(index)
        spent += clock() - started
    return spent / count * 1e6


def _trips(module, url: str, count: int, cold: bool) -> float:  # type: ignore[no-untyped-def]
    quota = module.RedisCreationQuota(redis.Redis.from_url(url), prefix=f"bench-quota:{uuid.uuid4().hex}")
    assert quota.try_acquire(1, ERROR, T0, "warm:0")  # connected, the script loaded
    keys = [quota.key(project, ERROR.slug) for project in range(count)]
    bucket = T0 // (60 * MICROS)

    def trip(index: int) -> None:
        reply = quota._evaluate([keys[index], keys[index] + ":grants"], [3600, bucket, 60, 5, f"c{index}:0"])
        assert reply[0][0] == 1

    try:
        return _cpu_per_call(trip, count, cold)
    finally:
        quota._client.delete(*keys, *(key + ":grants" for key in keys), quota.key(1, ERROR.slug))


def _refusals(module, url: str, count: int, cold: bool) -> float:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(url)
    quota = module.RedisCreationQuota(client, prefix=f"bench-quota:{uuid.uuid4().hex}")
    projects = 200
    for project in range(projects):  # each project's window full at T0's minute (5 round trips each)
        assert all(quota.try_acquire(project, ERROR, T0, f"fill-{index}:0") for index in range(5))
        assert not quota.try_acquire(project, ERROR, T0, "known-full:0")
    asks = [(index % projects, T0 + index % 60 * MICROS, f"ask-{index}:0") for index in range(count)]

    def refused(index: int) -> None:
        project, at, creation = asks[index]
        assert not quota.try_acquire(project, ERROR, at, creation)

    try:
        return _cpu_per_call(refused, count, cold)
    finally:
        keys = [quota.key(project, ERROR.slug) for project in range(projects)]
        client.delete(*keys, *(key + ":grants" for key in keys))


def against(checkout: str, url: str, count: int, rounds: int) -> None:
    """See the module docstring (``--against``)."""
    from transforms.storage import redis_quota

    spec = importlib.util.spec_from_file_location(
        "other_redis_quota", f"{checkout}/transforms/storage/redis_quota.py"
    )
    assert spec is not None and spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = other  # its dataclasses look their module up
    spec.loader.exec_module(other)
    sides = {checkout: other, "this checkout": redis_quota}
    measures = {
        "round trip, back to back": lambda module: _trips(module, url, count, cold=False),
        "round trip, caches cold": lambda module: _trips(module, url, count // 3, cold=True),
        "refused from memory, warm": lambda module: _refusals(module, url, 10 * count, cold=False),
        "refused from memory, caches cold": lambda module: _refusals(module, url, count, cold=True),
    }
    for label, measure in measures.items():
        results: dict[str, list[float]] = {side: [] for side in sides}
        for number in range(rounds):
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            for side in order:
                results[side].append(measure(sides[side]))
        print(f"{label}, median of {rounds} rounds (µs of CPU a call):")
        for side, values in results.items():
            print(f"  {side:>40}: {statistics.median(values):7.2f}  ({min(values):.2f}-{max(values):.2f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis_url", default="redis://localhost:6379/0")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", help="another checkout: its quota module against this one's (CPU)")
    args = parser.parse_args(argv)
    if args.against:
        against(args.against, args.redis_url, args.requests, args.rounds)
        return
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
