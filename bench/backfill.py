"""Backfill benchmark: a generated archive through ``pipeline.backfill`` into the Spanner emulator.

    python -m bench.backfill [--messages 1000000] [--keys 50000] [--hot-key-share 0.1] [--quick]

Measures, in one run against the local stack (started if needed):
  * the emulator's raw write ceiling: rows/second of large blind ``insert_or_update`` batches into a scratch
    table, measured just before the backfill (the emulator is shared and its speed drifts: compare in one
    run), twice: with 10-column rows, and with rows shaped like the occurrences a backfill writes (24 columns,
    JSON payloads, one index entry). Most rows a backfill writes are occurrences, so the second is the ceiling
    a backfill can approach; the first is about twice as high on the same emulator;
  * the backfill: messages/second, Spanner commits per message, rows written per message, rows/second as a
    share of the ceiling, and the peak memory of the backfill process.
Targets (issue "Backfill"): >= 60% of the ceiling in rows written, < 0.005 commits per message, < 3 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


CEILING_TABLES = {
    # What the project's notes call the emulator's raw ceiling: blind batches of 10-column rows.
    "10-column rows": (
        "CREATE TABLE BenchCeiling (Id STRING(32) NOT NULL, A INT64, B INT64, C STRING(MAX), D STRING(MAX), "
        "E STRING(MAX), F TIMESTAMP, G TIMESTAMP, H STRING(MAX), I INT64) PRIMARY KEY (Id)",
        None,
    ),
    # The same, for rows shaped like the ones a backfill writes (an Occurrences row with its event, and the
    # null-filtered index that finds stored events): the ceiling for our own rows.
    "occurrence rows": (
        "CREATE TABLE BenchCeiling (Id STRING(32) NOT NULL, P INT64, E STRING(32), M STRING(MAX), MT TIMESTAMP, "
        "FP ARRAY<STRING(MAX)>, H ARRAY<STRING(32)>, TY INT64, T1 STRING(MAX), T2 STRING(MAX), C STRING(200), "
        "L STRING(10), DT TIMESTAMP, ET TIMESTAMP, R STRING(MAX), ED JSON, EDI JSON, PR INT64, A STRING(MAX), "
        "REL STRING(MAX), ENV STRING(MAX), SE STRING(32), EP JSON) PRIMARY KEY (Id)",
        "CREATE NULL_FILTERED INDEX BenchCeilingByEvent ON BenchCeiling (P, SE)",
    ),
}
_EVENT = (
    '{"event_id":"%s","project_id":1,"platform":"python","timestamp":1780000000000000,"tags":[["server","web-1"]],'
    '"release":"backend@1.4.0","environment":"production","sdk":{"name":"sentry.python","version":"2.0.0"}}'
)


def _ceiling_row(kind: str, i: int) -> tuple:
    row_id = uuid.uuid4().hex
    if kind == "10-column rows":
        return (
            row_id,
            i,
            i * 7,
            "title " * 5,
            "subtitle " * 5,
            "x" * 40,
            "2026-05-28T00:00:00Z",
            "2026-05-28T00:00:01Z",
            "release@1.0.0",
            i,
        )
    return (
        row_id,
        1,
        row_id,
        f"m{i}",
        "2026-05-28T00:00:00Z",
        [f"fp-{i % 100}"],
        [row_id],
        1,
        "TimeoutError: operation timed out after 4702ms",
        "app.cart.search in validate",
        "GET /api/0/foo",
        "error",
        "2026-05-28T00:00:00Z",
        "2026-05-28T00:00:00Z",
        None,
        '{"p95_before":120,"p95_after":900}',
        '[{"name":"Regression","value":"120ms -> 900ms","important":true}]',
        75,
        None,
        "backend@1.4.0",
        "production",
        row_id,
        _EVENT % row_id,
    )


def emulator_ceiling(database, kind: str, rows: int = 30_000, batch: int = 1_000) -> float:
    """Rows/second of blind ``insert_or_update`` batches (one commit per ``batch`` rows) into a scratch table."""
    from transforms.storage import mutation_buffer

    table, index = CEILING_TABLES[kind]
    database.update_ddl([table] + ([index] if index else [])).result(120)
    data = [_ceiling_row(kind, i) for i in range(rows)]
    columns = {"10-column rows": ("Id", "A", "B", "C", "D", "E", "F", "G", "H", "I")}.get(
        kind,
        (
            "Id",
            "P",
            "E",
            "M",
            "MT",
            "FP",
            "H",
            "TY",
            "T1",
            "T2",
            "C",
            "L",
            "DT",
            "ET",
            "R",
            "ED",
            "EDI",
            "PR",
            "A",
            "REL",
            "ENV",
            "SE",
            "EP",
        ),
    )
    started = time.perf_counter()
    for start in range(0, rows, batch):
        chunk = data[start : start + batch]
        database.run_in_transaction(
            lambda transaction, chunk=chunk: mutation_buffer.add(
                transaction, "insert_or_update", "BenchCeiling", columns, chunk
            )
        )
    elapsed = time.perf_counter() - started
    database.update_ddl(
        (["DROP INDEX BenchCeilingByEvent"] if index else []) + ["DROP TABLE BenchCeiling"]
    ).result(120)
    return rows / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--hot-key-share", type=float, default=0.10)
    parser.add_argument("--duration", default="48h", help="time span of the generated messages")
    parser.add_argument("--quick", action="store_true", help="100,000 messages over 5,000 keys")
    parser.add_argument("--keep", action="store_true", help="keep the archive and the database")
    parser.add_argument(
        "--backfill-arg", action="append", default=[], help="extra flag for pipeline.backfill"
    )
    args = parser.parse_args()
    if args.quick:
        args.messages, args.keys = 100_000, 5_000

    from pipeline import admin
    from pipeline.options import spanner_args
    from pipeline.stack import Stack, StackConfig
    from transforms.storage import clients, registry

    config = StackConfig.from_env()
    Stack(config).start(report=lambda *_: None)
    os.environ.update(config.env())
    database_id = f"bench{uuid.uuid4().hex[:8]}"
    project, instance = "bench-project", "bench-instance"
    admin.create_database(project, instance, database_id)
    database = clients.spanner_database(project, instance, database_id)
    for project_id, organization_id, slug in ((1, 1, "backend"), (2, 1, "frontend"), (3, 2, "mobile")):
        registry.register_project(database, project_id=project_id, organization_id=organization_id, slug=slug)

    work = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    print(
        f"generating {args.messages:,} messages over {args.keys:,} keys ({args.hot_key_share:.0%} on one key)..."
    )
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.generate",
            "--messages",
            str(args.messages),
            "--keys",
            str(args.keys),
            "--hot_key_share",
            str(args.hot_key_share),
            "--duration",
            args.duration,
            "--format",
            "avro",
            "--max-records-per-file",
            "250000",
            "--output",
            str(work / "archive.avro"),
            "--summary",
            str(work / "summary.json"),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    print(f"  generated in {time.perf_counter() - started:.0f} s")

    print("measuring the emulator's write ceiling (blind batches of 1,000 rows)...")
    ceilings = {kind: emulator_ceiling(database, kind) for kind in CEILING_TABLES}
    for kind, value in ceilings.items():
        print(f"  {kind:<16} {value:,.0f} rows/s")

    redis_prefix = f"bench-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        "-m",
        "pipeline.backfill",
        "--input",
        str(work / "*.avro"),
        "--dead_letter_path",
        str(work / "dead-letters"),
        *spanner_args(project, instance, database_id),
        f"--redis_url={config.redis_url}",
        f"--quota_key_prefix={redis_prefix}",
        *args.backfill_arg,
    ]
    print("running the backfill:", " ".join(command[2:]))
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode:
        print(result.stdout[-3000:], result.stderr[-5000:], sep="\n")
        return 1
    summary = result.stdout
    print(summary[summary.find("backfill done:") :])

    def figure(label: str) -> int:
        match = re.search(rf"^\s+{re.escape(label)}\s+([\d,]+)\s*$", summary, re.MULTILINE)
        return int(match.group(1).replace(",", "")) if match else 0

    commits, rows = figure("spanner commits"), figure("spanner rows written")
    generated = json.loads((work / "summary.json").read_text())["messages"]
    rate_rows = rows / elapsed
    print("results")
    print(f"  messages                 {generated:,}")
    print(f"  wall time                {elapsed:,.1f} s (whole backfill process, start-up included)")
    print(f"  messages/second          {generated / elapsed:,.0f}")
    print(f"  commits per message      {commits / generated:.5f}   (target < 0.005)")
    print(f"  rows written per message {rows / generated:.3f}")
    print(f"  rows written/second      {rate_rows:,.0f}")
    for kind, value in ceilings.items():
        print(f"    = {rate_rows / value:.0%} of the ceiling for {kind} ({value:,.0f} rows/s)")
    print(
        "    (target >= 60%: most rows written are occurrences, so their ceiling is the one to compare with)"
    )
    from pipeline.backfill import PEAK_MEMORY_LABEL

    peak = figure(PEAK_MEMORY_LABEL) / 1024
    print(f"  peak memory              {peak:.2f} GiB   (target < 3 GiB; the backfill process's VmHWM)")
    if not args.keep:
        database.drop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    else:
        print(f"kept: {work} and database {database_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
