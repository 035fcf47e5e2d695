"""The naive baseline: every message handled on its own, in its own read-write transaction (Sentry's way).

Sentry's issue platform consumer handles each occurrence by itself: find the group by the fingerprint hash,
create it or update it, save the occurrence. ``NaiveHandler`` does the same against the product's schema, so
the rows it writes have the same shape and indexes as the pipeline's:

* occurrence: in one read-write transaction, read ``GroupHashes`` (project, primary hash); if a group is
  linked, read its ``Groups`` row and update it (times seen + 1, last seen, seq, unresolve a resolved group
  as a regression), else create the group (the engine's own ``create_group`` and row builder) and link its
  hashes; insert the ``Occurrences`` row with its event on it. An occurrence without event first reads its
  event (``Events``, else the ``OccurrencesByStoredEvent`` index), and is dropped when there is none;
* status change: read the hash and the group, update its status (dropped when there is no group);
* a redelivered or re-published occurrence (same occurrence id) fails its insert, so the whole transaction
  is rolled back and the group is not counted twice;
* messages that do not decode, or of unregistered projects, are dropped (no transaction).

It is simpler than the pipeline, in the baseline's favour: no noise gates, creation quotas, environments,
releases, activities or ordering; every read and write is a point read or write by key.

Modes:
  python -m bench.naive_baseline [--messages 20000] [--keys 20000] [--hot-key-share 0.05]
      standalone: a fresh database and topic on the local stack, the first --messages messages of the
      streaming workload published as a backlog, consumed here; prints messages/s, commits and rows.
  python -m bench.naive_baseline worker --subscription S --database D [--commit-times FILE]
      what ``bench.stream`` runs in a process of its own: pulls and handles until ``stop`` arrives on stdin,
      writing a JSON progress line every 0.2 s and a final line (see ``worker``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from google.api_core import exceptions as api_exceptions
from google.cloud import spanner

from bench import bench_database
from transforms import progress
from transforms.core.decode import decode
from transforms.core.engine.creation import create_group
from transforms.core.engine.ids import group_id as make_group_id
from transforms.core.engine.rows import group_row
from transforms.core.enums import GroupStatus, GroupSubStatus
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.intents import InsertOccurrence, RecordEvent
from transforms.core.model import (
    Event,
    Message,
    Occurrence,
    ProjectInfo,
    RawMessage,
    StatusChange,
    from_datetime,
    to_rfc3339,
)
from transforms.core.projects import check_project
from transforms.storage import mutation_buffer
from transforms.storage import spanner_rows as rows

_GROUP_READ = ("GroupId", "Status", "TimesSeen", "LastSeen", "Seq")
_GROUP_COUNT = ("GroupId", "TimesSeen", "LastSeen", "Seq", "UpdatedAt")
_GROUP_UPDATE = ("GroupId", "Status", "Substatus", "TimesSeen", "LastSeen", "Seq", "UpdatedAt")
_STATUS_UPDATE = ("GroupId", "Status", "Substatus", "ResolvedAt", "Seq", "UpdatedAt")


@dataclass
class NaiveStats:
    handled: int = 0
    commits: int = 0
    attempts: int = 0
    rows: int = 0
    created: int = 0
    dropped: int = 0  # invalid, unknown project, event or group not found
    duplicates: int = 0


class NaiveHandler:
    """Handles one message at a time (see the module docstring). Not thread-safe."""

    def __init__(self, database, projects: dict[int, ProjectInfo]) -> None:
        self._database = database
        self._projects = projects
        self.stats = NaiveStats()

    def handle(self, raw: RawMessage) -> bool:
        """Decode and apply one message; True when a transaction committed."""
        self.stats.handled += 1
        decoded = check_project(decode(raw), self._projects)
        if not isinstance(decoded, Message):
            self.stats.dropped += 1
            return False
        payload = decoded.payload
        work = self._occurrence if payload.__class__ is Occurrence else self._status_change
        written: list[int] = []

        def unit(transaction) -> None:
            self.stats.attempts += 1
            written.clear()
            written.append(work(transaction, decoded, payload))

        try:
            self._database.run_in_transaction(unit)
        except api_exceptions.AlreadyExists:  # the occurrence row exists: a redelivery, rolled back
            self.stats.duplicates += 1
            return False
        self.stats.commits += 1  # a transaction that found nothing to write still committed
        if not written or written[0] == 0:
            self.stats.dropped += 1
            return True
        self.stats.rows += written[0]
        return True

    def _linked_group(self, transaction, project_id: int, primary_hash: str) -> tuple | None:
        for (group_id,) in transaction.read(
            "GroupHashes", ("GroupId",), spanner.KeySet(keys=[[project_id, primary_hash]])
        ):
            for row in transaction.read("Groups", _GROUP_READ, spanner.KeySet(keys=[[group_id]])):
                return tuple(row)
        return None

    def _event(self, transaction, occurrence: Occurrence) -> Event | None:
        key = [occurrence.project_id, occurrence.event_id]
        for (payload,) in transaction.read("Events", ("Payload",), spanner.KeySet(keys=[key])):
            return rows.event_from_payload(payload)
        for group_id, occurrence_id in transaction.read(
            "Occurrences",
            ("GroupId", "OccurrenceId"),
            spanner.KeySet(keys=[key]),
            index="OccurrencesByStoredEvent",
        ):
            for (payload,) in transaction.read(
                "Occurrences", ("EventPayload",), spanner.KeySet(keys=[[group_id, occurrence_id]])
            ):
                if payload is not None:
                    return rows.event_from_payload(payload)
        return None

    def _occurrence(self, transaction, message: Message, occurrence: Occurrence) -> int:
        event, carried = occurrence.event, occurrence.event is not None
        if event is None:
            event = self._event(transaction, occurrence)
            if event is None:
                return 0
        project = self._projects[occurrence.project_id]
        primary_hash = occurrence.hashes[0]
        written = 0
        found = self._linked_group(transaction, occurrence.project_id, primary_hash)
        if found is None:
            group_id = make_group_id(occurrence.project_id, primary_hash, 0)
            group = create_group(
                group_id,
                occurrence,
                event,
                GROUP_TYPES[occurrence.type],
                message.message_time,
                message.message_id,
            )
            row = group_row(group, project, primary_hash, 0)
            mutation_buffer.add(
                transaction, "insert", "Groups", rows.GROUP_COLUMNS, [rows.group_values(row, 1, None)]
            )
            mutation_buffer.add(
                transaction,
                "insert_or_update",
                "GroupHashes",
                rows.HASH_COLUMNS,
                [(occurrence.project_id, hash_, group_id) for hash_ in occurrence.hashes],
            )
            written += 1 + len(occurrence.hashes)
            self.stats.created += 1
        else:
            group_id, status, times_seen, last_seen, seq = found
            last = to_rfc3339(max(from_datetime(last_seen), event.timestamp))
            if status == GroupStatus.RESOLVED:  # a new occurrence of a resolved group: a regression
                columns = _GROUP_UPDATE
                values = (group_id, int(GroupStatus.UNRESOLVED), int(GroupSubStatus.REGRESSED))
            else:
                columns, values = _GROUP_COUNT, (group_id,)
            values = (*values, times_seen + 1, last, seq + 1, rows.COMMIT_TIMESTAMP)
            mutation_buffer.add(transaction, "update", "Groups", columns, [values])
            written += 1
        insert = InsertOccurrence(
            group_id=group_id,
            message_id=message.message_id,
            message_time=message.message_time,
            event_time=event.timestamp,
            occurrence=occurrence,
            release=event.release,
            environment=event.environment,
        )
        columns, values = rows.OCCURRENCE_COLUMNS, rows.occurrence_values(insert)
        if carried:
            columns = columns + rows.EVENT_INLINE_COLUMNS
            values = values + rows.event_inline_values(RecordEvent(event=event, level=occurrence.level))
        mutation_buffer.add(transaction, "insert", "Occurrences", columns, [values])
        return written + 1

    def _status_change(self, transaction, message: Message, change: StatusChange) -> int:
        found = self._linked_group(transaction, change.project_id, change.hashes[0])
        if found is None:
            return 0
        group_id, _status, _times_seen, _last_seen, seq = found
        resolved_at = to_rfc3339(message.message_time) if change.new_status == GroupStatus.RESOLVED else None
        values = (
            group_id,
            change.new_status,
            change.new_substatus,
            resolved_at,
            seq + 1,
            rows.COMMIT_TIMESTAMP,
        )
        mutation_buffer.add(transaction, "update", "Groups", _STATUS_UPDATE, [values])
        return 1


def _raw(received) -> RawMessage:
    message = received.message
    return RawMessage(
        message.message_id,
        from_datetime(message.publish_time),
        bytes(message.data),
        dict(message.attributes),
    )


def consume(
    subscription: str,
    handler: NaiveHandler,
    stop: threading.Event,
    on_commit=None,
    pull_max: int = 1000,
) -> None:
    """Pull and handle until ``stop`` is set; a pull's messages are acknowledged once all are handled."""
    from transforms.storage import clients

    subscriber = clients.pubsub_subscriber()
    while not stop.is_set():
        try:
            response = subscriber.pull(
                request={"subscription": subscription, "max_messages": pull_max}, timeout=1.0
            )
        except (api_exceptions.DeadlineExceeded, api_exceptions.RetryError):
            continue
        received = list(response.received_messages)
        if not received:
            continue
        for item in received:
            handler.handle(_raw(item))
            if on_commit is not None:
                on_commit(item.message.message_id, time.time())
        subscriber.acknowledge(
            request={"subscription": subscription, "ack_ids": [r.ack_id for r in received]}
        )


def worker(args: argparse.Namespace) -> int:
    """Consume ``--subscription`` into ``--database`` until ``stop`` on stdin; JSON lines on stdout.

    Progress lines: ``{"t", "cpu", "stats": {...}}``; the last line: ``{"final": {"stats", "cpu", "maxrss"}}``.
    ``--commit-times FILE`` gets ``{pubsub message id: wall time its handling returned}`` at the end.
    """
    from transforms.storage import clients, registry

    database = clients.spanner_database(bench_database.PROJECT, bench_database.INSTANCE, args.database)
    handler = NaiveHandler(database, registry.read_projects(database))
    stop = threading.Event()
    done: dict[str, float] = {}

    def wait_for_stop() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    def report() -> None:
        while not stop.wait(0.2):
            line = {"t": time.time(), "cpu": time.process_time(), "stats": vars(handler.stats)}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    threading.Thread(target=report, daemon=True).start()
    sys.stdout.write(json.dumps({"ready": time.time()}) + "\n")
    sys.stdout.flush()
    consume(args.subscription, handler, stop, on_commit=done.__setitem__)
    if args.commit_times:
        Path(args.commit_times).write_text(json.dumps(done))
    final = {
        "stats": vars(handler.stats),
        "cpu": time.process_time(),
        "maxrss": progress.peak_memory(),
    }
    sys.stdout.write(json.dumps({"final": final}) + "\n")
    sys.stdout.flush()
    os._exit(0)


def standalone(args: argparse.Namespace) -> int:
    from bench.stream_feed import Feed, create_topic_and_subscription, delete_topic_and_subscription
    from pipeline.workload import Workload, stream_config
    from transforms.storage import registry

    if not os.environ.get("SPANNER_EMULATOR_HOST") or not os.environ.get("PUBSUB_EMULATOR_HOST"):
        sys.exit('point the clients at the local stack first: eval "$(python -m pipeline.stack env)"')
    messages = list(
        Workload(stream_config(messages=args.messages, keys=args.keys, hot_key_share=args.hot_key_share))
    )
    database_id, database = bench_database.create("naive")
    topic, subscription = create_topic_and_subscription(bench_database.PROJECT, database_id)
    try:
        handler = NaiveHandler(database, registry.read_projects(database))
        published = Feed(topic).publish(messages)
        stop = threading.Event()
        count = {"n": 0}

        def on_commit(_message_id: str, _at: float) -> None:
            count["n"] += 1
            if count["n"] >= len(messages):
                stop.set()

        cpu = time.process_time()
        consume(subscription, handler, stop, on_commit=on_commit)
        seconds = time.time() - published.started
        stats = handler.stats
        print(
            f"naive baseline: {len(messages):,} messages in {seconds:.1f}s from the first publish: "
            f"{len(messages) / seconds:,.0f} messages/s; {stats.commits:,} commits "
            f"({stats.commits / len(messages):.3f}/message), {stats.rows:,} rows "
            f"({stats.rows / len(messages):.2f}/message), {stats.created:,} groups created, "
            f"{stats.duplicates:,} duplicates, {stats.dropped:,} dropped; "
            f"CPU {1e6 * (time.process_time() - cpu) / len(messages):,.0f} µs/message"
        )
    finally:
        delete_topic_and_subscription(topic, subscription)
        bench_database.drop(database_id)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        parser = argparse.ArgumentParser(prog="bench.naive_baseline worker")
        parser.add_argument("--subscription", required=True)
        parser.add_argument("--database", required=True)
        parser.add_argument("--commit-times", default=None)
        return worker(parser.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--hot-key-share", type=float, default=0.05)
    return standalone(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
