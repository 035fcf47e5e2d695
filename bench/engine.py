"""Throughput and state size of the group engine, as the streaming shell would drive it.

Generates occurrences and status changes over many keys, hands them to
``apply`` in batches per key (each call decodes the key's stored state, applies
the batch and keeps the encoded state of its ``SaveKeyState``, as the shell
does), and prints messages per second, peak memory and encoded state sizes.
Only ``decode_state`` + ``apply`` (+ ``encode_state`` when nothing was written)
are timed, in CPU time of this process (``time.process_time``: one core, and
not inflated when other processes share the machine); wall time is printed
too. Generating messages is not timed.

Phases:
  mixed     every key's first messages (noise gate, creation) then a realistic mix: 95 % occurrences
            (event path, releases, environments), 3 % status changes, 2 % redelivered duplicates;
  existing  only occurrences on existing groups (the hot path; target >= 100,000 msgs/s on one core);
  hot key   one key taking --hot-messages occurrences within the duplicate retention.

Run:  python bench/engine.py                      (1,000,000 messages over 10,000 keys)
      python bench/engine.py --messages 100000 --keys 1000     (quick)
      python bench/engine.py --profile            (cProfile of the existing phase, top functions)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from hashlib import md5
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transforms.core.engine import (
    EngineConfig,
    EngineContext,
    apply,
    compact,
    decode_state,
    encode_state,
)
from transforms.core.engine.state import KeyState
from transforms.core.enums import GroupStatus, GroupSubStatus
from transforms.core.intents import SaveKeyState
from transforms.core.model import Event, Message, Occurrence, ProjectInfo, StatusChange

SECOND = 1_000_000
T0 = 1_717_243_200 * SECOND
PROJECT = ProjectInfo(project_id=7, organization_id=70, slug="bench", organization_slug="bench")
RELEASES = ("backend@1.4.0", "backend@1.4.1", "backend@1.5.0")
ENVIRONMENTS = ("production", "staging")
STATUS_CHANGES = (
    (GroupStatus.RESOLVED, None),
    (GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING),
    (GroupStatus.IGNORED, GroupSubStatus.UNTIL_ESCALATING),
    (GroupStatus.UNRESOLVED, GroupSubStatus.ESCALATING),
)


@dataclass
class Key:
    index: int
    fingerprint: str
    hashes: tuple[str, ...]
    type: int
    state: bytes | None = None
    recent: list[Message] | None = None


class Generator:
    """Deterministic message factory (seeded); message time advances with every message."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.counter = 0
        self.clock = T0

    def _next(self) -> int:
        self.counter += 1
        self.clock += 2_000  # 500 messages per second of message time over all keys
        return self.counter

    def _uuid(self) -> str:
        return f"{self.random.getrandbits(128):032x}"  # random, like the UUID4s producers send

    def occurrence(self, key: Key) -> Message:
        number = self._next()
        uuid = self._uuid()
        event = Event(
            event_id=self._uuid(),
            project_id=PROJECT.project_id,
            platform="python",
            timestamp=self.clock - 1_000_000,
            release=self.random.choice(RELEASES),
            environment=self.random.choice(ENVIRONMENTS),
        )
        payload = Occurrence(
            id=uuid,
            project_id=PROJECT.project_id,
            event_id=event.event_id,
            fingerprint=(key.fingerprint,),
            hashes=key.hashes,
            issue_title="N+1 Query",
            subtitle="SELECT * FROM orders WHERE customer_id = %s",
            type=key.type,
            detection_time=self.clock,
            level="warning",
            culprit="GET /api/0/orders/",
            event=event,
        )
        return Message(message_id=f"{number:012d}", message_time=self.clock, payload=payload, data=b"x" * 600)

    def status_change(self, key: Key) -> Message:
        number = self._next()
        status, substatus = self.random.choice(STATUS_CHANGES)
        payload = StatusChange(
            id=self._uuid(),
            project_id=PROJECT.project_id,
            fingerprint=(key.fingerprint,),
            hashes=key.hashes,
            new_status=int(status),
            new_substatus=None if substatus is None else int(substatus),
        )
        return Message(message_id=f"{number:012d}", message_time=self.clock, payload=payload)

    def mixed_batch(self, key: Key, size: int) -> list[Message]:
        batch: list[Message] = []
        for _ in range(size):
            roll = self.random.random()
            if roll < 0.02 and key.recent:
                batch.append(self.random.choice(key.recent))
            elif roll < 0.05:
                batch.append(self.status_change(key))
            else:
                batch.append(self.occurrence(key))
        key.recent = batch[-5:]
        return batch


class Driver:
    """Applies batches per key the way the streaming shell does and times only the engine."""

    def __init__(self) -> None:
        self.context = EngineContext(project=PROJECT, config=EngineConfig(), now=T0)
        self.elapsed = 0.0  # CPU seconds
        self.wall = 0.0
        self.messages = 0
        self.occurrences = 0

    def apply(self, key: Key, batch: list[Message]) -> None:
        context = self.context
        start_wall = time.perf_counter()
        start = time.process_time()
        state = decode_state(key.state) if key.state is not None else None
        new, outputs = apply(state, batch, context)
        write = outputs.write
        key.state = write.intents[-1].state if write is not None else encode_state(new)
        self.elapsed += time.process_time() - start
        self.wall += time.perf_counter() - start_wall
        self.messages += len(batch)
        assert write is None or isinstance(write.intents[-1], SaveKeyState)


def make_keys(count: int, noisy_share: float, rng: random.Random) -> list[Key]:
    keys = []
    for index in range(count):
        fingerprint = f"bench-fingerprint-{index}"
        hashes = (md5(fingerprint.encode()).hexdigest(),)
        type_id = 1006 if rng.random() < noisy_share else 1018  # N+1 (noise limit 3) / no noise gate
        keys.append(Key(index, fingerprint, hashes, type_id))
    return keys


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} msgs/s" if seconds else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000, help="total messages over all keys")
    parser.add_argument("--keys", type=int, default=10_000, help="number of keys")
    parser.add_argument("--batch", type=int, default=20, help="messages per apply call (per key)")
    parser.add_argument("--hot-messages", type=int, default=20_000, help="messages for the one hot key")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="profile the existing-groups phase")
    args = parser.parse_args(argv)

    generator = Generator(args.seed)
    keys = make_keys(args.keys, noisy_share=0.2, rng=random.Random(args.seed))
    mixed_share = args.messages // 2
    print(
        f"engine benchmark: {args.messages:,} messages, {args.keys:,} keys, batches of {args.batch}, "
        f"python {sys.version.split()[0]}"
    )

    # Phase 1: mixed (creation through the noise gate, status changes, duplicates).
    mixed = Driver()
    while mixed.messages < mixed_share:
        for key in keys:
            if mixed.messages >= mixed_share:
                break
            batch = generator.mixed_batch(key, args.batch)
            if key.state is None:  # the key's first batch: enough occurrences to pass a noise gate
                batch = [generator.occurrence(key) for _ in range(3)] + batch
            mixed.apply(key, batch)

    # Phase 2: occurrences on existing groups only.
    existing = Driver()
    remaining = args.messages - mixed.messages
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    while existing.messages < remaining:
        for key in keys:
            if existing.messages >= remaining:
                break
            size = min(args.batch, remaining - existing.messages)
            existing.apply(key, [generator.occurrence(key) for _ in range(size)])
    if profiler:
        profiler.disable()

    # Phase 3: one hot key.
    hot_key = make_keys(1, 0.0, random.Random(0))[0]
    hot_key.fingerprint, hot_key.hashes = "bench-hot", (md5(b"bench-hot").hexdigest(),)
    hot = Driver()
    while hot.messages < args.hot_messages:
        hot.apply(
            hot_key,
            [generator.occurrence(hot_key) for _ in range(min(200, args.hot_messages - hot.messages))],
        )

    total = mixed.messages + existing.messages
    seconds = mixed.elapsed + existing.elapsed
    wall = mixed.wall + existing.wall
    print(f"{'phase':<18} {'messages':>10}  {'CPU s':>7}  {'msgs/s (CPU)':>15}  {'msgs/s (wall)':>15}")
    for name, count, cpu, elapsed in (
        ("overall", total, seconds, wall),
        ("  mixed", mixed.messages, mixed.elapsed, mixed.wall),
        ("  existing groups", existing.messages, existing.elapsed, existing.wall),
        ("  hot key", hot.messages, hot.elapsed, hot.wall),
    ):
        print(f"{name:<18} {count:>10,}  {cpu:7.2f}  {rate(count, cpu):>15}  {rate(count, elapsed):>15}")

    sizes = sorted(len(key.state) for key in keys if key.state is not None)
    horizon = generator.clock + 1  # nothing older than now can still be a duplicate: the key is idle
    idle_state: KeyState = compact(decode_state(keys[0].state), horizon)
    hot_state = decode_state(hot_key.state)
    retention = EngineConfig().duplicate_retention
    hot_compacted = compact(hot_state, generator.clock - retention)
    print(
        f"state bytes        median {statistics.median(sizes):,.0f}, max {sizes[-1]:,} "
        f"(duplicate memory of ~{args.messages // args.keys} messages per key)"
    )
    print(f"  idle key         {len(encode_state(idle_state)):,} bytes after compact (target < 1,024)")
    print(
        f"  hot key          {len(hot_key.state):,} bytes ({len(hot_state.seen_ids) // 16:,} remembered ids), "
        f"{len(encode_state(hot_compacted)):,} after compact at the retention horizon"
    )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"peak memory        {peak_kib / 1024:,.0f} MiB (ru_maxrss, whole process incl. generated messages)"
    )

    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
