"""Probe the Spanner emulator's data-plane latency, how far its clock runs ahead of the real time, and what
makes them grow (docs/performance.md, "The test suite's time, and the Spanner emulator's slowdown").

Runs against ``SPANNER_EMULATOR_HOST`` (never Google Cloud: it refuses to run without it), in project
``test-project`` / instance ``test-instance`` as the tests do, on a database of its own (``probe``, created when
missing). Subcommands::

    python scripts/emulator_probe.py once              # median ms of 20 `SELECT 1`, and the clock ahead
    python scripts/emulator_probe.py watch --every 30  # the same every 30 s, with the sessions the emulator holds
    python scripts/emulator_probe.py sessions          # sessions per database (ListSessions), and their total
    python scripts/emulator_probe.py clean             # delete every session of every database of the instance
    python scripts/emulator_probe.py grow KIND --count 2000 --step 250
        # leave KIND behind COUNT times, timing `SELECT 1` every STEP: KIND is one of
        #   session      a session created and never deleted
        #   rw           a session with a read-write transaction begun (and a read in it), never ended
        #   snapshot     a session with a multi-use read-only transaction begun, never ended
        #   database     a database created (full schema), a session in it and a read, then dropped
        #   database-del the same, the session deleted before the drop
        #   select       a `SELECT 1` on one session of the probe's (nothing left behind)
        #   session-del  a session created and deleted (nothing left behind)

``SELECT 1`` is timed on one session made for the measurement (deleted after), with the raw gRPC API (no pool),
so that the figure is the emulator's, not the client's session handling.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROJECT = "test-project"
INSTANCE = "test-instance"
PROBE_DATABASE = "probe"


@functools.cache
def _api():
    """The raw ``SpannerClient`` (gRPC) of the probe's database handle."""
    return _database(PROBE_DATABASE).spanner_api


def _database(database_id: str):
    from google.cloud.spanner_v1.pool import BurstyPool

    from transforms.storage import clients

    return clients.spanner_client(PROJECT).instance(INSTANCE).database(database_id, pool=BurstyPool())


def _database_path(database_id: str) -> str:
    return f"projects/{PROJECT}/instances/{INSTANCE}/databases/{database_id}"


def ensure_probe_database() -> None:
    from pipeline import admin

    admin.ensure_instance(PROJECT, INSTANCE)
    database = _database(PROBE_DATABASE)
    if not database.exists():
        database.create().result(120)


def select_ms(repeats: int = 20) -> float:
    """Median milliseconds of ``SELECT 1`` (ExecuteSql, single-use read-only) on a session made for it."""
    from google.cloud.spanner_v1 import ExecuteSqlRequest

    api = _api()
    session = api.create_session(database=_database_path(PROBE_DATABASE))
    times = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            api.execute_sql(request=ExecuteSqlRequest(session=session.name, sql="SELECT 1"))
            times.append((time.perf_counter() - started) * 1000)
    finally:
        api.delete_session(name=session.name)
    return statistics.median(times)


def clock_ahead_ms(tries: int = 3) -> float:
    """How far the emulator's clock runs ahead of this machine's, in ms, at least: the read timestamp of a
    strong read-only transaction minus the time its BeginTransaction call returned (the largest of ``tries``)."""
    from google.cloud.spanner_v1 import BeginTransactionRequest, TransactionOptions

    api = _api()
    session = api.create_session(database=_database_path(PROBE_DATABASE))
    options = TransactionOptions(
        read_only=TransactionOptions.ReadOnly(strong=True, return_read_timestamp=True)
    )
    ahead = []
    try:
        for _ in range(tries):
            transaction = api.begin_transaction(
                request=BeginTransactionRequest(session=session.name, options=options)
            )
            ahead.append((transaction.read_timestamp.timestamp() - time.time()) * 1000)
    finally:
        api.delete_session(name=session.name)
    return max(ahead)


def session_counts() -> dict[str, int]:
    """Live sessions per database of the instance (ListSessions)."""
    from google.api_core.exceptions import NotFound
    from google.cloud.spanner_admin_database_v1 import ListDatabasesRequest

    from transforms.storage import clients

    client = clients.spanner_client(PROJECT)
    api = _api()
    counts = {}
    for database in client.database_admin_api.list_databases(
        request=ListDatabasesRequest(parent=f"projects/{PROJECT}/instances/{INSTANCE}")
    ):
        try:
            counts[database.name.rsplit("/", 1)[1]] = sum(
                1 for _ in api.list_sessions(database=database.name)
            )
        except NotFound:  # dropped meanwhile (a test's database)
            continue
    return counts


def delete_sessions() -> int:
    """Delete every session of every database of the instance; returns how many."""
    from google.cloud.spanner_admin_database_v1 import ListDatabasesRequest

    from transforms.storage import clients

    api = _api()
    deleted = 0
    for database in clients.spanner_client(PROJECT).database_admin_api.list_databases(
        request=ListDatabasesRequest(parent=f"projects/{PROJECT}/instances/{INSTANCE}")
    ):
        for session in list(api.list_sessions(database=database.name)):
            api.delete_session(name=session.name)
            deleted += 1
    return deleted


def emulator_rss_mb() -> float | None:
    """RSS of the emulator_main serving SPANNER_EMULATOR_HOST's port (from /proc), MB."""
    port = os.environ["SPANNER_EMULATOR_HOST"].rsplit(":", 1)[1]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if not cmdline or not cmdline[0].endswith(b"emulator_main"):
                continue
            if not any(arg.endswith(f":{port}".encode()) for arg in cmdline):
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            continue
    return None


@functools.cache
def _probe_session() -> str:
    return _api().create_session(database=_database_path(PROBE_DATABASE)).name


def leave_behind(kind: str) -> None:
    """Leave one ``kind`` behind (see the module docstring)."""
    from google.cloud.spanner_v1 import (
        BeginTransactionRequest,
        ExecuteSqlRequest,
        TransactionOptions,
        TransactionSelector,
    )

    api = _api()
    probe = _database_path(PROBE_DATABASE)
    if kind == "select":
        api.execute_sql(request=ExecuteSqlRequest(session=_probe_session(), sql="SELECT 1"))
        return
    if kind == "session-del":
        api.delete_session(name=api.create_session(database=probe).name)
        return
    if kind == "session":
        api.create_session(database=probe)
        return
    if kind in ("rw", "snapshot"):
        session = api.create_session(database=probe)
        options = (
            TransactionOptions(read_write=TransactionOptions.ReadWrite())
            if kind == "rw"
            else TransactionOptions(read_only=TransactionOptions.ReadOnly(strong=True))
        )
        transaction = api.begin_transaction(
            request=BeginTransactionRequest(session=session.name, options=options)
        )
        api.execute_sql(
            request=ExecuteSqlRequest(
                session=session.name,
                sql="SELECT 1",
                transaction=TransactionSelector(id=transaction.id),
                seqno=1,
            )
        )
        return
    if kind in ("database", "database-del"):
        from pipeline import admin

        database_id = f"p{uuid.uuid4().hex[:12]}"
        admin.create_database(PROJECT, INSTANCE, database_id)
        session = api.create_session(database=_database_path(database_id))
        api.execute_sql(request=ExecuteSqlRequest(session=session.name, sql="SELECT 1"))
        if kind == "database-del":
            api.delete_session(name=session.name)
        _database(database_id).drop()
        return
    raise SystemExit(f"unknown kind {kind!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["once", "watch", "sessions", "grow", "clean"])
    parser.add_argument("kind", nargs="?", default="session")
    parser.add_argument("--every", type=float, default=30.0, help="watch: seconds between measurements")
    parser.add_argument("--count", type=int, default=2000, help="grow: how many to leave behind")
    parser.add_argument("--step", type=int, default=250, help="grow: measure after this many")
    args = parser.parse_args(argv)
    if not os.environ.get("SPANNER_EMULATOR_HOST"):
        raise SystemExit("SPANNER_EMULATOR_HOST is not set: this probe runs against the emulator only")
    ensure_probe_database()
    started = time.monotonic()
    if args.command == "once":
        print(
            f"select_ms {select_ms():.2f}  clock_ahead_ms {clock_ahead_ms():.2f}  "
            f"rss_mb {emulator_rss_mb() or 0:.0f}"
        )
    elif args.command == "clean":
        deleted = delete_sessions()
        print(
            f"deleted {deleted} sessions in {time.monotonic() - started:.1f} s; select_ms {select_ms():.2f}"
        )
    elif args.command == "sessions":
        counts = session_counts()
        for name, count in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"{name:<20} {count}")
        print(f"total sessions {sum(counts.values())} in {len(counts)} databases")
    elif args.command == "watch":
        while True:
            counts = session_counts()
            print(
                f"t={time.monotonic() - started:6.0f}s  select_ms {select_ms():6.2f}  clock_ahead_ms "
                f"{clock_ahead_ms():6.2f}  sessions "
                f"{sum(counts.values()):6d}  databases {len(counts):3d}  rss_mb {emulator_rss_mb() or 0:.0f}",
                flush=True,
            )
            time.sleep(args.every)
    else:
        print(
            f"{args.kind:>12} {0:6d}  select_ms {select_ms():6.2f}  clock_ahead_ms {clock_ahead_ms():6.2f}  "
            f"rss_mb {emulator_rss_mb() or 0:.0f}"
        )
        for done in range(1, args.count + 1):
            leave_behind(args.kind)
            if done % args.step == 0:
                print(
                    f"{args.kind:>12} {done:6d}  select_ms {select_ms():6.2f}  clock_ahead_ms "
                    f"{clock_ahead_ms():6.2f}  rss_mb "
                    f"{emulator_rss_mb() or 0:.0f}  ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
