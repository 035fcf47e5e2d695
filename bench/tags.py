"""What tag and free-text reads cost the issue index (``api.tag_index.TagIndex``), at 10,000 and 100,000 groups.

``python -m bench.tags [--sizes 10000 100000] [--calls 200] [--shared-emulator]``

For each size, on a Spanner emulator started empty for it (``bench_database.fresh_emulator``; the stack's own
with ``--shared-emulator``), the benchmark makes the groups the way the pipeline does: one occurrence each,
applied by the engine and committed by the pipeline's ``SpannerWriter`` (so the tag and term rows are the
writer's), spread over 10 organizations of 5 projects. Every event has a level (4 values), a browser (5
values, the first in two groups of five) and a customer (500 values); one in ten has an ``os`` tag and a
user; a title is a phrase of ``WORDS`` and the group's own number. (Few tags: the emulator keeps every row in
memory, about 4 KB each, and 100,000 groups are already 1.5 million rows.)

Then it times ``--calls`` calls of each read search needs (organizations in turn, values drawn at random),
each on a fresh snapshot as a request would use, and reports p50/p99 latency (ms, in-process, so without
HTTP) and the rows each call read (``ReadStats``): index rows of index range reads, and rows read by primary
key or key range (membership):

  value          customer:c-N               candidates of a selective value (0.2% of the groups)
  value-broad    browser:chrome             ... of a value of 40% of the groups: reads the limit and stops
  in-list        browser:[safari, edge]     one range per value
  prefix         customer:c-1*              a prefix range
  has            has:os                     candidates of a key (GroupTagKeysByKey)
  text           "timeout 123"              words: the first selective word's candidates, checked for the rest
  text-broad     "timeout"                  a word of a sixth of the groups: the limit, then incomplete
  member         browser:firefox on a page  membership of the first 100 groups of the org (by last seen)
  member-text    "database timeout" on ...  the words of a page of 100 groups
  member-prefix  customer:c-1* on ...       a prefix of a page of 100 groups

Needs ``SPANNER_EMULATOR_HOST`` (``eval "$(python -m pipeline.stack env)"``).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import md5

from google.cloud.spanner_v1 import KeyRange, KeySet

from api.search import ReadStats
from api.tag_index import TagIndex
from bench import bench_database
from pipeline import admin
from transforms.core import engine
from transforms.core.engine import EngineConfig, EngineContext
from transforms.core.model import MICROS, Event, Message, Occurrence, ProjectInfo
from transforms.storage import clients, registry
from transforms.storage.spanner_writer import SpannerWriter

ORGS, PROJECTS_PER_ORG = 10, 5
WORDS = (
    "database timeout",
    "connection refused",
    "null pointer",
    "slow query",
    "render blocking",
    "n plus one",
)
BROWSERS = ("chrome", "chrome", "firefox", "safari", "edge")
NOW = int(time.time()) * MICROS
DAY = 86_400 * MICROS


@dataclass
class Calls:
    name: str
    seconds: list[float]
    rows: list[tuple[int, int]]  # (index rows, rows read by key or key range)
    reads: list[int]
    complete: list[bool]

    def row(self) -> str:
        ms = sorted(s * 1000 for s in self.seconds)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        done = f"{sum(self.complete) / len(self.complete):.0%}" if self.complete else "-"
        index_rows = [index for index, _ in self.rows]
        key_rows = [keyed for _, keyed in self.rows]
        return (
            f"| {self.name} | {statistics.median(ms):.1f} | {p99:.1f} | {statistics.median(index_rows):.0f} "
            f"/ {max(index_rows)} | {statistics.median(key_rows):.0f} / {max(key_rows)} | "
            f"{statistics.median(self.reads):.0f} | {done} |"
        )


def projects() -> dict[int, ProjectInfo]:
    return {
        org * 100 + p: ProjectInfo(org * 100 + p, org, f"project{p}", f"org{org}")
        for org in range(1, ORGS + 1)
        for p in range(PROJECTS_PER_ORG)
    }


def group_messages(i: int, rnd: random.Random, project: ProjectInfo) -> Message:
    """The one occurrence (with its event) of group ``i``."""
    time_ = NOW - rnd.randrange(0, 30 * DAY)
    tags = [("browser", rnd.choice(BROWSERS)), ("customer", f"c-{rnd.randrange(500)}")]
    user = None
    if rnd.random() < 0.1:
        tags.append(("os", rnd.choice(("linux", "windows", "macos"))))
        user = {"id": str(rnd.randrange(100_000))}
    fingerprint = f"fp-{i}"
    event = Event(
        event_id=f"{i:032x}",
        project_id=project.project_id,
        platform="python",
        timestamp=time_,
        tags=tuple(tags),
        user=user,
    )
    occurrence = Occurrence(
        id=f"{i + 10**9:032x}",
        project_id=project.project_id,
        event_id=event.event_id,
        fingerprint=(fingerprint,),
        hashes=(md5(fingerprint.encode()).hexdigest(),),
        issue_title=f"{rnd.choice(WORDS)} {i}",
        subtitle="",
        type=1,
        detection_time=time_,
        level=rnd.choice(("error", "error", "warning", "fatal")),
        event=event,
    )
    return Message(f"m{i:09d}", time_, occurrence)


def load(database, size: int, seed: int = 1) -> tuple[float, int]:
    """``size`` groups through the engine and the writer; returns (seconds, rows written)."""
    rnd = random.Random(seed)
    infos = projects()
    registry.register_projects(database, infos.values())
    writer = SpannerWriter(database)
    config = EngineConfig()
    started, rows = time.perf_counter(), 0
    batch = []
    for i in range(size):
        org = i % ORGS + 1
        info = infos[org * 100 + rnd.randrange(PROJECTS_PER_ORG)]
        _state, out = engine.apply(None, [group_messages(i, rnd, info)], EngineContext(info, config))
        batch.append(out.write)
        if len(batch) == 2000 or i == size - 1:
            rows += writer.write(batch).rows
            batch = []
            if (i + 1) % 20_000 == 0:
                print(f"  {i + 1:,} groups, {rows:,} rows, {time.perf_counter() - started:.0f} s", flush=True)
    return time.perf_counter() - started, rows


def page_of(snapshot, org: int) -> list[int]:
    """The first 100 group ids of the organization's unresolved/high-priority range by last seen."""
    keyset = KeySet(ranges=[KeyRange(start_closed=[org], end_closed=[org])])
    rows = snapshot.read("Groups", ["GroupId"], keyset, index="GroupsByOrganizationLastSeen", limit=100)
    return [row[0] for row in rows]


def measure(database, size: int, calls: int, seed: int = 2) -> list[Calls]:
    rnd = random.Random(seed)
    pages: dict[int, list[int]] = {}
    with database.snapshot(multi_use=True) as snapshot:
        for org in range(1, ORGS + 1):
            pages[org] = page_of(snapshot, org)

    def numbered(org: int) -> int:
        """The number of one of ``org``'s groups (group ``i`` belongs to organization ``i % 10 + 1``)."""
        return rnd.randrange(size // ORGS) * ORGS + org - 1

    cases: list[tuple[str, Callable[[TagIndex, int], object]]] = [
        ("value", lambda ix, org: ix.value_candidates(org, "customer", [f"c-{rnd.randrange(500)}"])),
        ("value-broad", lambda ix, org: ix.value_candidates(org, "browser", ["chrome"])),
        ("in-list", lambda ix, org: ix.value_candidates(org, "browser", ["safari", "edge"])),
        ("prefix", lambda ix, org: ix.prefix_candidates(org, "customer", f"c-1{rnd.randrange(10)}")),
        ("has", lambda ix, org: ix.key_candidates(org, "os")),
        ("text", lambda ix, org: ix.text_candidates(org, f"timeout {numbered(org)}", prefix_last=False)),
        ("text-broad", lambda ix, org: ix.text_candidates(org, "timeout", prefix_last=False)),
        ("member", lambda ix, org: ix.with_values(pages[org], "browser", ["firefox"])),
        (
            "member-text",
            lambda ix, org: ix.with_terms(pages[org], ["database", "timeout"], prefix_last=False),
        ),
        ("member-prefix", lambda ix, org: ix.with_prefix(pages[org], "customer", "c-1")),
    ]
    results = []
    for name, call in cases:
        measured = Calls(name, [], [], [], [])
        for n in range(calls):
            org = n % ORGS + 1
            stats = ReadStats()
            began = time.perf_counter()
            with database.snapshot(multi_use=True) as snapshot:
                found = call(TagIndex(snapshot, stats), org)
            measured.seconds.append(time.perf_counter() - began)
            measured.rows.append((stats.index_rows, stats.rows - stats.index_rows))
            measured.reads.append(stats.reads)
            if hasattr(found, "complete"):
                measured.complete.append(found.complete)
        results.append(measured)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tags", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--shared-emulator", action="store_true", help="use the stack's emulator")
    args = parser.parse_args(argv)
    for size in args.sizes:
        print(f"{size:,} groups", flush=True)
        fresh = contextlib.nullcontext() if args.shared_emulator else bench_database.fresh_emulator()
        with fresh:
            admin.ensure_instance(bench_database.PROJECT, bench_database.INSTANCE)
            database_id, database = bench_database.create(f"tags{size}-")
            try:
                seconds, rows = load(database, size)
                print(
                    f"  loaded through the engine and the writer: {rows:,} rows in {seconds:.0f} s",
                    flush=True,
                )
                print(
                    "| call | p50 ms | p99 ms | index rows (median / max) | rows by key (median / max) "
                    "| Read calls | complete |"
                )
                print("|---|---|---|---|---|---|---|")
                for calls in measure(database, size, args.calls):
                    print(calls.row(), flush=True)
            finally:
                with contextlib.suppress(Exception):
                    clients.spanner_database(
                        bench_database.PROJECT, bench_database.INSTANCE, database_id
                    ).drop()
                clients.forget_database(bench_database.PROJECT, bench_database.INSTANCE, database_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
