"""Latency of the issue index over HTTP, and what each query reads, on the Spanner emulator.

For each size (default 10,000 and 100,000 groups across 10 organizations of 5 projects each) the benchmark
creates a fresh database, loads the groups (with an environment, one to three releases, one occurrence with its
event id, and a regression activity for one group in twenty; the projects' Releases rows), starts
``python -m pipeline.api`` on ``--port`` and times ``--requests`` requests of each query through HTTP (one
keep-alive connection, requests one after another, organizations in turn):

  default     GET /api/0/organizations/{org}/issues/?limit=100   (is:unresolved issue.priority:[high, medium])
  filtered    GET ...?project=A&project=B&environment=production&sort=freq&limit=100
                &query=is:unresolved level:[error, fatal] timesSeen:>=5
  search      GET ...?query=is:unresolved timeout&sort=new&limit=100      (free text: the word index)
  and Sentry's terms (issue 19), each with limit=100: wildcard (``*timeout*``), title (``title:n+1*``),
  status (``status:[resolved, ignored]``), for_review, has_release (``has:release``), project
  (``project:project3``), issue (``issue:`` two short ids), timestamp (``timestamp:>-7d``), semver
  (``release.version:>=1.5.0``), latest (``release:latest``), package (``release.package:backend``),
  regressed (``regressed_in_release:backend@1.9.0``), event_id (the query is an event id); and two requests at
  the request limits (``--requests`` / 10 of each): releases100 (``release:[100 releases no group has]``),
  environments100 (100 ``environment`` parameters no group has); and tags and free text (``api.tag_search``;
  every group has a browser (2 in 5 Chrome), a server_name (1 of 10), a customer (1 of 500), one in ten an os
  and a user email, and the words of its title): tag, tag_rare, tag_in, tag_not (negation), tag_prefix,
  tag_wildcard (``*b-3``), tag_middle (``*fox*``), tag_has, tag_not_has, tag_empty (``os:""``), user_email,
  text (two words), text_prefix, text_rare, text_not (``!message:``), combined.

It prints p50/p99/mean latency (ms, client side, X-Hits counting included), and for each query the index
ranges it reads and the rows and Read calls one page costs (from the service's own counters, in-process):
index rows read from ranges, and rows read by key (lookups of candidates, and the page's display columns).
Finally it asks the emulator for the query plan of each range's equivalent SQL (``query_mode=PLAN``) and
checks that the SQL returns the same rows as the range read.

Needs the emulators: ``SPANNER_EMULATOR_HOST`` (and nothing else; no Pub/Sub is used). The emulator keeps
every database in memory and slows down as databases accumulate: restart it before measuring.

Run:  SPANNER_EMULATOR_HOST=localhost:9010 python bench/api.py
      SPANNER_EMULATOR_HOST=localhost:9010 python bench/api.py --sizes 10000 --requests 50   (quick)
      SPANNER_EMULATOR_HOST=localhost:9010 python bench/api.py --sizes 10000 --queries semver,latest
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

from api.query import QueryContext, QueryError, parse_query  # noqa: E402
from api.search import INDEX_COLUMNS, Scope, Searcher, plan_search  # noqa: E402
from api.serializers import base36  # noqa: E402
from api.service import IssueIndex, ListRequest  # noqa: E402
from pipeline import admin  # noqa: E402
from transforms.core.engine.rows import search_message  # noqa: E402
from transforms.core.engine.tags import TEXT_KEY, text_terms  # noqa: E402
from transforms.core.model import MICROS, to_datetime  # noqa: E402
from transforms.storage import clients, org_words, registry, spanner_rows  # noqa: E402

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
OCCURRENCE_COLUMNS = (
    "GroupId", "OccurrenceId", "ProjectId", "EventId", "MessageId", "MessageTime", "Fingerprint", "Hashes", "Type",
    "IssueTitle", "Subtitle", "Culprit", "Level", "DetectionTime", "EventTime",
)  # fmt: skip
ACTIVITY_COLUMNS = ("GroupId", "ActivityId", "ProjectId", "Type", "MessageId", "ActivityTime", "Data")
BROWSERS = ("Chrome 120", "Chrome 120", "Firefox 99", "Safari 17", "Edge 118")


@dataclass
class Query:
    name: str
    params: dict
    heavy: bool = False  # timed with a tenth of the requests
    first_org: bool = False  # names data of organization 1 only: every request goes there


def create_database(size: int):
    """A fresh database with the full schema (``pipeline.admin create-database``)."""
    database_id = f"bench{size}-{uuid.uuid4().hex[:6]}"
    admin.create_database(PROJECT, INSTANCE, database_id)
    return database_id, clients.spanner_database(PROJECT, INSTANCE, database_id)


@dataclass
class Loaded:
    tokens: dict[int, str]  # organization -> read token
    event_id: str  # an event of organization 1
    short_ids: list[str]  # two short ids of organization 1


def load(database, size: int, seed: int = 1) -> Loaded:
    """``size`` groups over ORGS organizations, with the rows the search terms read."""
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
    chunk = 500
    event_id, short_ids, releases = "", [], set()
    for start in range(0, size, chunk):
        rows, environments, group_releases, occurrences, activities = [], [], [], [], []
        tag_values, tag_keys, words_of = [], [], set()
        for i in range(start, min(size, start + chunk)):
            org = i % ORGS + 1
            p = rnd.randrange(PROJECTS_PER_ORG)
            project = org * 100 + p
            group_id = rnd.getrandbits(62) + 1
            status, substatus = rnd.choice(pairs)
            first = NOW - rnd.randrange(0, 90 * DAY)
            last = min(NOW, first + rnd.randrange(0, 30 * DAY))
            type_id, category = rnd.choice([(1, 1), (1, 1), (1006, 2), (1001, 2), (4001, 4)])
            title = f"{rnd.choice(WORDS)} in handler {i}"
            # projects 0-2 name releases by semver, 3-4 by commit
            versions = sorted({_release(p, rnd) for _ in range(rnd.randrange(1, 4))})
            rows.append(
                [
                    group_id, project, org, uuid.uuid4().hex, f"fp-{i}", 0, type_id, category, status, substatus,
                    rnd.choice([75, 50, 50, 25, 25]), rnd.choice([20, 30, 40, 40, 50]), title, "subtitle",
                    "app.handler", title, "python", to_datetime(first), to_datetime(last), to_datetime(last),
                    rnd.choice([1, 2, 3, 5, 8, 13, 100, 1000]), versions[0], JsonObject({"metadata": {"title": title}}), 1,
                    COMMIT_TIMESTAMP,
                ]
            )  # fmt: skip
            environments.append(
                [
                    group_id,
                    rnd.choice(["production", "production", "staging"]),
                    versions[0],
                    to_datetime(first),
                ]
            )
            group_releases += [[group_id, version] for version in versions]
            releases |= {(project, version) for version in versions}
            occurrence_event = uuid.UUID(int=rnd.getrandbits(128)).hex
            occurrences.append(
                [
                    group_id, uuid.uuid4().hex, project, occurrence_event, uuid.uuid4().hex, to_datetime(last),
                    [f"fp-{i}"], ["0" * 32], type_id, title, "subtitle", "app.handler", "error", to_datetime(last),
                    to_datetime(last),
                ]
            )  # fmt: skip
            if i % 20 == 0:
                activities.append(
                    [group_id, uuid.uuid4().hex, project, 6, uuid.uuid4().hex, to_datetime(last),
                     JsonObject({"event_id": occurrence_event, "version": versions[-1]})]
                )  # fmt: skip
            tags = _tags(i, rnd)
            for key, value in tags:
                counted = None if key.startswith("@") else 1
                seen = None if counted is None else to_datetime(last)
                tag_values.append([group_id, key, value, org, project, counted, seen, seen])
            words = text_terms(search_message(title, "subtitle", "app.handler"))
            tag_values += [[group_id, TEXT_KEY, word, org, project, None, None, None] for word in words]
            words_of.update(org_words.rows_of(org, words))  # the organization's vocabulary, as the writer's
            keys = {key for key, _ in tags} | {TEXT_KEY}
            tag_keys += [
                [group_id, key, org, project, len(words) if key == TEXT_KEY else 1, 0] for key in sorted(keys)
            ]
            if org == 1 and len(short_ids) < 2:
                short_ids.append(f"PROJECT{p}-{base36(group_id)}")
                event_id = occurrence_event
        with database.batch() as batch:
            batch.insert("Groups", GROUP_COLUMNS, rows)
            batch.insert(
                "GroupEnvironments", ["GroupId", "Environment", "FirstRelease", "FirstSeen"], environments
            )
            batch.insert("GroupReleases", ["GroupId", "Release"], group_releases)
            batch.insert("Occurrences", OCCURRENCE_COLUMNS, occurrences)
            batch.insert("Activities", ACTIVITY_COLUMNS, activities)
            batch.insert("GroupTagValues", spanner_rows.TAG_VALUE_COLUMNS, tag_values)
            batch.insert("GroupTagKeys", spanner_rows.TAG_KEY_COLUMNS, tag_keys)
            batch.insert_or_update(org_words.TABLE, org_words.COLUMNS, sorted(words_of))
    with database.batch() as batch:
        batch.insert_or_update(
            "Releases",
            ["ProjectId", "Version", "FirstSeen"],
            [
                [project, version, to_datetime(_release_time(version))]
                for project, version in sorted(releases)
            ],
        )
    elapsed = time.perf_counter() - started
    print(
        f"  loaded {size:,} groups in {elapsed:.1f} s ({size / elapsed:,.0f} groups/s, with their environments, "
        f"releases, occurrences and regressions)"
    )
    return Loaded(tokens, event_id, short_ids)


def _tags(i: int, rnd: random.Random) -> list[tuple[str, str]]:
    """A group's tags as the tag writer stores them: a browser (2 in 5 Chrome), a server (one of 10), a
    customer (one of 500: a selective tag), one in ten an ``os`` and a user (its email a search-only value)."""
    tags = [
        ("browser", rnd.choice(BROWSERS)),
        ("server_name", f"web-{rnd.randrange(10)}"),
        ("customer", f"c-{rnd.randrange(500)}"),
    ]
    if rnd.randrange(10) == 3:
        tags += [
            ("os", "Linux 6.1"),
            ("user", f"email:u{i}@example.com"),
            ("@user.email", f"u{i}@example.com"),
        ]
    return tags


def _release(project_slot: int, rnd: random.Random) -> str:
    minor = rnd.randrange(0, 12)
    if project_slot <= 2:
        return f"backend@1.{minor}.{rnd.randrange(0, 3)}"
    return f"{minor:02x}{rnd.randrange(0, 3):02x}cafe"


def _release_time(version: str) -> int:
    """Later minors were first seen later (so the newest by first seen is also the highest semver)."""
    if "@" in version:
        minor, patch = (int(part) for part in version.rpartition("@")[2].split(".")[1:])
    else:
        minor, patch = int(version[:2], 16), int(version[2:4], 16)
    return NOW - 60 * DAY + (minor * 3 + patch) * DAY


def queries(loaded: Loaded | None = None) -> list[Query]:
    event_id = loaded.event_id if loaded else "0" * 32
    short_ids = loaded.short_ids if loaded else ["PROJECT0-1", "PROJECT1-2"]
    absent_releases = ", ".join(f"nope@9.9.{i}" for i in range(100))
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
        Query("wildcard", {"query": "*timeout*", "limit": "100"}),
        Query("title", {"query": "title:n+1*", "limit": "100"}),
        Query("status", {"query": "status:[resolved, ignored]", "limit": "100"}),
        Query("for_review", {"query": "is:for_review", "limit": "100"}),
        Query("has_release", {"query": "has:release is:unresolved", "limit": "100"}),
        Query("project", {"query": "project:project3 is:unresolved", "limit": "100"}),
        Query("issue", {"query": f"issue:[{', '.join(short_ids)}]", "limit": "100"}, first_org=True),
        Query("timestamp", {"query": "timestamp:>-7d", "limit": "100"}),
        Query("semver", {"query": "release.version:>=1.5.0", "limit": "100"}),
        Query("latest", {"query": "release:latest", "limit": "100"}),
        Query("package", {"query": "release.package:backend is:unresolved", "limit": "100"}),
        Query("regressed", {"query": "regressed_in_release:backend@1.9.0", "limit": "100"}),
        Query("event_id", {"query": event_id, "limit": "100"}, first_org=True),
        # tags and free text (api.tag_search)
        Query("tag", {"query": 'browser:"Firefox 99"', "limit": "100"}),
        Query("tag_rare", {"query": "customer:c-7", "limit": "100"}),
        Query("tag_in", {"query": 'browser:["Safari 17", "Edge 118"] is:unresolved', "limit": "100"}),
        Query("tag_not", {"query": '!browser:"Chrome 120"', "limit": "100"}),
        Query("tag_prefix", {"query": "server_name:web-1*", "sort": "new", "limit": "100"}),
        Query("tag_wildcard", {"query": "server_name:*b-3", "limit": "100"}),
        Query("tag_middle", {"query": "browser:*fox*", "sort": "freq", "limit": "100"}),
        Query("tag_has", {"query": "has:os", "limit": "100"}),
        Query("tag_not_has", {"query": "!has:os is:unresolved", "limit": "100"}),
        Query("tag_empty", {"query": 'os:""', "limit": "100"}),
        Query("user_email", {"query": "user.email:*@example.com", "limit": "100"}),
        Query("text", {"query": "database timeout", "limit": "100"}),
        Query("text_prefix", {"query": "connection ref", "sort": "freq", "limit": "100"}),
        Query("text_rare", {"query": "handler 1234", "limit": "100"}),
        Query("text_not", {"query": "!message:timeout", "limit": "100"}),
        Query(
            "combined",
            {"query": "is:unresolved browser:Firefox* !server_name:web-1 timeout", "limit": "100"},
        ),
        Query("releases100", {"query": f"release:[{absent_releases}]", "limit": "100"}, heavy=True),
        Query(
            "environments100",
            {"environment": [f"nowhere-{i}" for i in range(100)], "query": "", "limit": "100"},
            heavy=True,
        ),
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


def time_queries(port: int, loaded: Loaded, requests: int, selected: list[Query]) -> None:
    tokens = loaded.tokens
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for query in selected:
            for org in list(tokens)[:3]:  # warm the service's caches
                org = 1 if query.first_org else org
                client.get(f"/api/0/organizations/org{org}/issues/", params=query.params,
                           headers={"Authorization": f"Bearer {tokens[org]}"})  # fmt: skip
            latencies, sizes = [], []
            count = max(1, requests // 10) if query.heavy else requests
            for n in range(count):
                org = 1 if query.first_org else n % ORGS + 1
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
                f"  {query.name:15s} p50 {percentile(latencies, 0.5):7.1f} ms   p99 {percentile(latencies, 0.99):7.1f} ms"
                f"   mean {sum(latencies) / len(latencies):7.1f} ms   rows/page {min(sizes)}-{max(sizes)}"
                f"   ({count} requests)"
            )


def explain(database, selected: list[Query]) -> None:
    index = IssueIndex(database)
    organization = index.organization("org1")
    org_projects = index.directory.projects(organization.id)
    for query in selected:
        params = query.params
        projects = params.get("project", [])
        environments = params.get("environment", [])
        request = ListRequest(
            projects=projects if isinstance(projects, list) else [projects],
            environments=environments if isinstance(environments, list) else [environments],
            query=params.get("query"),
            sort=params.get("sort"),
            limit=params["limit"],
        )
        page = index.list_issues(organization, request, count_hits=False)
        stats = page.stats
        line = (
            f"  {query.name:15s} page 1: {stats.ranges} ranges, {stats.index_rows} index rows, "
            f"{stats.rows - stats.index_rows} rows by key, {stats.reads} Read calls -> {len(page.issues)} issues"
        )
        if page.direct_hit or (page.issues and "matchingEventId" in page.issues[0]):
            print(line + "  (the event-id lookup: no index range)")
            continue
        if page.has_next:
            following = index.list_issues(
                organization, replace(request, cursor=page.next.encode()), count_hits=False
            )
            line += (
                f";  page 2: {following.stats.index_rows} index rows, "
                f"{following.stats.rows - following.stats.index_rows} rows by key, {following.stats.reads} Reads"
            )
        print(line)
        context = QueryContext(projects={p.slug: p.id for p in org_projects.values()})
        try:
            flt = parse_query(params.get("query"), now=NOW, context=context)
        except QueryError:
            continue
        flt = flt.with_environments(request.environments)
        project_ids = frozenset(p.id for p in org_projects.values() if p.slug in projects)
        plan = plan_search(
            Scope(organization.id, project_ids or None), flt, params.get("sort") or "date", org_projects,
        )  # fmt: skip
        if not plan.ranges:
            print("            read by key (no index range)")
            continue
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
    parser.add_argument(
        "--queries", default="", help="names of the queries to run, comma-separated (default: all)"
    )
    parser.add_argument("--port", type=int, default=0, help="port of the HTTP service (default: a free one)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    if not os.environ.get("SPANNER_EMULATOR_HOST"):
        print("Set SPANNER_EMULATOR_HOST (see: python -m pipeline.stack env).", file=sys.stderr)
        return 2
    wanted = [name for name in args.queries.split(",") if name]
    unknown = set(wanted) - {query.name for query in queries()}
    if unknown:
        print(f"unknown queries: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"{size:,} groups, {ORGS} organizations x {PROJECTS_PER_ORG} projects")
        database_id, database = create_database(size)
        try:
            loaded = load(database, size)
            selected = [query for query in queries(loaded) if not wanted or query.name in wanted]
            port = args.port or free_port()
            server = start_service(database_id, port)
            try:
                print(f"  latency over HTTP, {args.requests} requests per query, limit=100:")
                time_queries(port, loaded, args.requests, selected)
            finally:
                server.terminate()
                server.wait(timeout=30)
            print("  what one page reads (organization org1):")
            explain(database, selected)
        finally:
            if not args.keep:
                database.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
