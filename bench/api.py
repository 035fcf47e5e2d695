"""Latency of the issue index over HTTP, and what each query reads, on the Spanner emulator.

For each size (default 10,000 and 100,000 groups across 10 organizations of 5 projects each) the benchmark
creates a fresh database, loads the groups (and an environment per group), starts ``python -m pipeline.api``
on ``--port`` and times ``--requests`` requests of each query through HTTP (one keep-alive connection,
requests one after another, organizations in turn):

  default   GET /api/0/organizations/{org}/issues/?limit=100   (is:unresolved issue.priority:[high, medium])
  filtered  GET ...?project=A&project=B&environment=production&sort=freq&limit=100
                &query=is:unresolved level:[error, fatal] timesSeen:>=5
  search    GET ...?query=is:unresolved timeout&sort=new&limit=100      (free text: a residual filter)

It prints p50/p99/mean latency (ms, client side, X-Hits counting included), and for each query the index
ranges it reads and the rows and Read calls one page costs (from the service's own counters, in-process).
Finally it asks the emulator for the query plan of each range's equivalent SQL (``query_mode=PLAN``) and
checks that the SQL returns the same rows as the range read.

Needs the emulators: ``SPANNER_EMULATOR_HOST`` (and nothing else; no Pub/Sub is used). The emulator keeps
every database in memory and slows down as databases accumulate: restart it before measuring.

Run:  SPANNER_EMULATOR_HOST=localhost:9010 python bench/api.py
      SPANNER_EMULATOR_HOST=localhost:9010 python bench/api.py --sizes 10000 --requests 50   (quick)
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from google.cloud.spanner_v1 import COMMIT_TIMESTAMP, ExecuteSqlRequest  # noqa: E402
from google.cloud.spanner_v1.data_types import JsonObject  # noqa: E402

from api.query import parse_query  # noqa: E402
from api.search import INDEX_COLUMNS, Scope, Searcher, plan_search  # noqa: E402
from api.service import IssueIndex, ListRequest  # noqa: E402
from pipeline import admin  # noqa: E402
from transforms import clients, registry  # noqa: E402
from transforms.core.model import MICROS, to_datetime  # noqa: E402

PROJECT, INSTANCE = "bench-project", "bench-instance"
ORGS, PROJECTS_PER_ORG = 10, 5
NOW = int(time.time()) * MICROS
DAY = 86_400 * MICROS
WORDS = ("database timeout", "connection refused", "null pointer", "slow query", "render blocking", "n+1")
GROUP_COLUMNS = (
    "GroupId", "ProjectId", "OrganizationId", "PrimaryHash", "Fingerprint", "Generation", "Type", "Category",
    "Status", "Substatus", "Priority", "Level", "Title", "Subtitle", "Culprit", "Message", "Platform",
    "FirstSeen", "LastSeen", "ActiveAt", "TimesSeen", "FirstRelease", "Data", "Seq", "UpdatedAt",
)  # fmt: skip


@dataclass
class Query:
    name: str
    params: dict


def create_database(size: int):
    """A fresh database with the full schema (``pipeline.admin create-database``)."""
    database_id = f"bench{size}-{uuid.uuid4().hex[:6]}"
    admin.create_database(PROJECT, INSTANCE, database_id)
    return database_id, clients.spanner_database(PROJECT, INSTANCE, database_id)


def load(database, size: int, seed: int = 1) -> dict[int, str]:
    """``size`` groups over ORGS organizations; returns {organization id: read token}."""
    rnd = random.Random(seed)
    tokens = {}
    for org in range(1, ORGS + 1):
        for p in range(PROJECTS_PER_ORG):
            registry.register_project(
                database,
                project_id=org * 100 + p,
                organization_id=org,
                slug=f"project{p}",
                organization_slug=f"org{org}",
            )
        tokens[org], _ = registry.issue_api_token(database, organization=org, scope="read", name="bench")
    started = time.perf_counter()
    pairs = [(0, 3), (0, 3), (0, 3), (0, 7), (0, 6), (1, None), (2, 5), (2, 1)]
    chunk = 1000
    for start in range(0, size, chunk):
        rows, environments = [], []
        for i in range(start, min(size, start + chunk)):
            org = i % ORGS + 1
            project = org * 100 + rnd.randrange(PROJECTS_PER_ORG)
            group_id = rnd.getrandbits(62) + 1
            status, substatus = rnd.choice(pairs)
            first = NOW - rnd.randrange(0, 90 * DAY)
            last = min(NOW, first + rnd.randrange(0, 30 * DAY))
            type_id, category = rnd.choice([(1, 1), (1, 1), (1006, 2), (1001, 2), (4001, 4)])
            title = f"{rnd.choice(WORDS)} in handler {i}"
            rows.append(
                [
                    group_id, project, org, uuid.uuid4().hex, f"fp-{i}", 0, type_id, category, status, substatus,
                    rnd.choice([75, 50, 50, 25, 25]), rnd.choice([20, 30, 40, 40, 50]), title, "subtitle",
                    "app.handler", title, "python", to_datetime(first), to_datetime(last), to_datetime(last),
                    rnd.choice([1, 2, 3, 5, 8, 13, 100, 1000]), None, JsonObject({"metadata": {"title": title}}), 1,
                    COMMIT_TIMESTAMP,
                ]
            )  # fmt: skip
            environments.append(
                [group_id, rnd.choice(["production", "production", "staging"]), None, to_datetime(first)]
            )
        with database.batch() as batch:
            batch.insert("Groups", GROUP_COLUMNS, rows)
            batch.insert(
                "GroupEnvironments", ["GroupId", "Environment", "FirstRelease", "FirstSeen"], environments
            )
    elapsed = time.perf_counter() - started
    print(
        f"  loaded {size:,} groups in {elapsed:.1f} s ({size / elapsed:,.0f} groups/s, 6 issue-index indexes)"
    )
    return tokens


def queries() -> list[Query]:
    return [
        Query("default", {"limit": "100"}),
        Query(
            "filtered",
            {
                "project": ["project0", "project1"],
                "environment": "production",
                "sort": "freq",
                "limit": "100",
                "query": "is:unresolved level:[error, fatal] timesSeen:>=5",
            },
        ),
        Query("search", {"query": "is:unresolved timeout", "sort": "new", "limit": "100"}),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(database_id: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable, "-m", "pipeline.api", "--port", str(port), "--log_level", "warning",
        f"--spanner_project={PROJECT}", f"--spanner_instance={INSTANCE}", f"--spanner_database={database_id}",
    ]  # fmt: skip
    server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
        if server.poll() is not None:
            raise RuntimeError(server.stderr.read().decode())
    raise RuntimeError("the service did not start")


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def time_queries(port: int, tokens: dict[int, str], requests: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for query in queries():
            for org in list(tokens)[:3]:  # warm the service's caches
                client.get(f"/api/0/organizations/org{org}/issues/", params=query.params,
                           headers={"Authorization": f"Bearer {tokens[org]}"})  # fmt: skip
            latencies, sizes = [], []
            for n in range(requests):
                org = n % ORGS + 1
                started = time.perf_counter()
                response = client.get(
                    f"/api/0/organizations/org{org}/issues/",
                    params=query.params,
                    headers={"Authorization": f"Bearer {tokens[org]}"},
                )
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
                sizes.append(len(response.json()))
            latencies.sort()
            print(
                f"  {query.name:9s} p50 {percentile(latencies, 0.5):7.1f} ms   p99 {percentile(latencies, 0.99):7.1f} ms"
                f"   mean {sum(latencies) / len(latencies):7.1f} ms   rows/page {min(sizes)}-{max(sizes)}"
            )


def explain(database) -> None:
    index = IssueIndex(database)
    organization = index.organization("org1")
    for query in queries():
        params = query.params
        projects = params.get("project", [])
        request = ListRequest(
            projects=projects if isinstance(projects, list) else [projects],
            environments=[params["environment"]] if "environment" in params else [],
            query=params.get("query"),
            sort=params.get("sort"),
            limit=params["limit"],
        )
        page = index.list_issues(organization, request, count_hits=False)
        stats = page.stats
        line = (
            f"  {query.name:9s} page 1: {stats.ranges} ranges, {stats.index_rows} index rows, {stats.reads} Read calls"
            f" -> {len(page.issues)} issues"
        )
        if page.has_next:
            following = index.list_issues(
                organization, replace(request, cursor=page.next.encode()), count_hits=False
            )
            line += f";  page 2: {following.stats.index_rows} index rows, {following.stats.reads} Read calls"
        print(line)
        flt = parse_query(params.get("query"), now=NOW).with_environments(request.environments)
        project_ids = frozenset(
            p.id for p in index.directory.projects(organization.id).values() if p.slug in projects
        )
        plan = plan_search(
            Scope(organization.id, project_ids or None), flt, params.get("sort") or "date",
            index.directory.projects(organization.id),
        )  # fmt: skip
        rng = plan.ranges[0]
        print(
            f"            e.g. {rng.index}, key prefix {tuple(None if v is None else int(v) for v in rng.prefix)}"
        )
        sql, sql_params, sql_types = rng.to_sql(INDEX_COLUMNS, 101)
        with database.snapshot(multi_use=True) as snapshot:
            result = snapshot.execute_sql(
                sql, params=sql_params, param_types=sql_types, query_mode=ExecuteSqlRequest.QueryMode.PLAN
            )
            list(result)
            plan_nodes = result.stats.query_plan.plan_nodes if result.stats else []
            sql_rows = list(snapshot.execute_sql(sql, params=sql_params, param_types=sql_types))
            searcher = Searcher(snapshot)
            read_rows = [list(map(_plain, r)) for r in searcher._read(
                "Groups", INDEX_COLUMNS, _keyset(rng), index=rng.index, limit=101)]  # fmt: skip
        same = [list(map(_plain, r)) for r in sql_rows] == read_rows
        shown = (
            f"{len(plan_nodes)} plan nodes" if plan_nodes else "no plan (the emulator returns no query plan)"
        )
        print(f"            query_mode=PLAN: {shown};  SQL and range read return the same rows: {same}")


def _keyset(rng):
    from google.cloud.spanner_v1 import KeySet

    return KeySet(ranges=[rng.key_range()])


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="group counts, comma-separated")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query")
    parser.add_argument("--port", type=int, default=0, help="port of the HTTP service (default: a free one)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    if not os.environ.get("SPANNER_EMULATOR_HOST"):
        print("Set SPANNER_EMULATOR_HOST (see: python -m pipeline.stack env).", file=sys.stderr)
        return 2
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"{size:,} groups, {ORGS} organizations x {PROJECTS_PER_ORG} projects")
        database_id, database = create_database(size)
        try:
            tokens = load(database, size)
            port = args.port or free_port()
            server = start_service(database_id, port)
            try:
                print(f"  latency over HTTP, {args.requests} requests per query, limit=100:")
                time_queries(port, tokens, args.requests)
            finally:
                server.terminate()
                server.wait(timeout=30)
            print("  what one page reads (organization org1):")
            explain(database)
        finally:
            if not args.keep:
                database.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
