"""Latency of the web interface's pages over HTTP on the Spanner emulator, and what each page reads.

Creates a fresh database with ``--groups`` groups (default 10,000) over 10 organizations of 5 projects, each
group with 1 to 40 occurrences over the last 30 days (``web.demo.scale``), starts ``python -m pipeline.api``,
signs in with a token of organization ``org1`` (the sign-in form, as a browser does) and times ``--requests``
requests of each page, one after another on one keep-alive connection:

  api-list      /api/0/organizations/org1/issues/?limit=25&statsPeriod=14d   the API's JSON for the same
                issues (X-Hits included): the reference, measured in the same run
  stream        /organizations/org1/issues/                       default query, 14 days, 25 issues + sparklines
  stream-24h    ...?period=24h&sort=freq                           hourly sparklines
  filtered      ...?query=is:unresolved level:[error, fatal]&project=project1&environment=production&sort=new
  search        ...?query=TimeoutError                             free text (a residual filter)
  next-page     the stream's second page (its cursor)
  issue         /organizations/org1/issues/{id}/?period=30d        chart, latest event, tags, activity
  issue-24h     the same issue, ?period=24h (hourly chart)

It prints p50, p99 and mean (ms, client side) per page, and, measured in-process on the same database, the
index rows the issue index's search and the pages' own reads (sparklines, chart) take for one page.

Needs the emulators (``SPANNER_EMULATOR_HOST``; ``python -m pipeline.stack env``). The emulator slows down as
databases accumulate in it: restart it (``pipeline.stack stop`` / ``start``) before measuring.

Run:  python -m bench.web                       (10,000 groups, 100 requests per page)
      python -m bench.web --groups 2000 --requests 20   (quick)
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from api.directory import Directory
from api.issue_details import ReadCost, event_counts
from api.service import IssueIndex, ListRequest
from pipeline import admin
from pipeline.options import spanner_args
from pipeline.screenshots import free_port
from transforms.core.model import MICROS
from transforms.storage import clients
from web import demo
from web.routes import SPARKLINE_BUDGET
from web.timerange import parse_range

ROOT = Path(__file__).resolve().parent.parent
PROJECT, INSTANCE = "bench-project", "bench-instance"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument(
        "--database", help="reuse a database an earlier --keep run loaded (skips the loading)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (its id is printed)")
    args = parser.parse_args(argv)
    # a SIGTERM ends the run through its finally blocks, so the service it started stops with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.environ.get("SPANNER_EMULATOR_HOST"):
        print(
            'error: set the emulator variables first: eval "$(python -m pipeline.stack env)"', file=sys.stderr
        )
        return 1

    admin.ensure_instance(PROJECT, INSTANCE)
    now = int(time.time()) * MICROS
    groups = args.groups
    if args.database:
        # the data's times were relative to its loading: reuse it soon after, or ranges drift
        database_id = args.database
        database = clients.spanner_database(PROJECT, INSTANCE, database_id)
    else:
        database_id = f"web{args.groups}-{uuid.uuid4().hex[:6]}"
        admin.create_database(PROJECT, INSTANCE, database_id)
        database = clients.spanner_database(PROJECT, INSTANCE, database_id)
        started = time.perf_counter()
        groups, occurrences = demo.scale(database, now, args.groups)
        print(
            f"loaded {groups:,} groups and {occurrences:,} occurrences in {time.perf_counter() - started:.0f} s"
        )
    token = demo.issue_token(database, "org1", "read")

    port = free_port()
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.api",
            f"--port={port}",
            *spanner_args(PROJECT, INSTANCE, database_id),
            "--log_level=warning",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)
        form = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        signed = client.post("/login", data={"csrf_token": csrf, "token": token, "next": ""})
        assert signed.status_code in (200, 303), signed.text

        bearer = {"Authorization": f"Bearer {token}"}
        stream = "/organizations/org1/issues/"
        first = client.get(stream)
        next_link = re.search(r'rel="next" href="([^"]+)"', first.text)
        ids = re.findall(r'data-issue-id="(\d+)"', first.text)
        rnd = random.Random(1)
        pages = {
            # the API's own list of the same page (JSON, X-Hits included): the reference the pages build on
            "api-list": ["/api/0/organizations/org1/issues/?limit=25&statsPeriod=14d"],
            "stream": [stream],
            "stream-24h": [f"{stream}?period=24h&sort=freq&query="],
            "filtered": [
                f"{stream}?query=is%3Aunresolved+level%3A%5Berror%2C+fatal%5D&project=project1"
                "&environment=production&sort=new"
            ],
            "search": [f"{stream}?query=TimeoutError"],
            "next-page": [next_link.group(1).replace("&amp;", "&")] if next_link else [],
            "issue": [f"{stream}{gid}/?period=30d" for gid in ids],
            "issue-24h": [f"{stream}{gid}/?period=24h" for gid in ids],
        }
        print(f"\n{args.requests} requests per page, {groups:,} groups (organization org1: {groups // 10:,})")
        print(
            f"{'page':<12} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}   server side, mean ms (Server-Timing)"
        )
        for name, urls in pages.items():
            if not urls:
                continue
            client.get(urls[0], headers=bearer)  # warm the caches of the directory and the connection
            times = []
            parts: dict[str, list[float]] = {}
            for _ in range(args.requests):
                url = rnd.choice(urls)
                begin = time.perf_counter()
                response = client.get(url, headers=bearer if url.startswith("/api/") else None)
                times.append((time.perf_counter() - begin) * 1000)
                assert response.status_code == 200, (url, response.status_code)
                for part, ms in re.findall(r"(\w+);dur=([\d.]+)", response.headers.get("server-timing", "")):
                    parts.setdefault(part, []).append(float(ms))
            split = ", ".join(f"{part} {statistics.fmean(values):.1f}" for part, values in parts.items())
            print(
                f"{name:<12} {percentile(times, 0.5):8.1f} {percentile(times, 0.99):8.1f} "
                f"{statistics.fmean(times):8.1f}   {split}"
            )
    finally:
        service.terminate()
        service.wait(timeout=30)

    # what one page reads, in-process on the same database
    index = IssueIndex(database, Directory(database))
    organization = index.organization("org1")
    window = parse_range("14d", None, None, now)
    page = index.list_issues(organization, ListRequest(limit=25, stats_period="14d"))
    cost = ReadCost()
    with database.snapshot(multi_use=True) as snapshot:
        gids = [int(issue["id"]) for issue in page.issues]
        event_counts(snapshot, gids, window.sparkline_buckets, SPARKLINE_BUDGET, cost)
        chart = ReadCost()
        event_counts(snapshot, gids[:1], parse_range("30d", None, None, now).buckets, 10**6, chart)
    print(
        f"\nstream page: search {page.stats.index_rows} index rows in {page.stats.reads} reads (X-Hits included);"
        f" sparklines {cost.rows} index rows in {cost.reads} read(s) for {len(gids)} issues"
    )
    print(
        f"issue page: chart {chart.rows} index rows in {chart.reads} read(s) (the issue's events in 30 days)"
    )
    if args.keep:
        print(f"kept database {database_id} (--database {database_id} reuses it)")
    else:
        clients.forget_database(PROJECT, INSTANCE, database_id)
        database.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
