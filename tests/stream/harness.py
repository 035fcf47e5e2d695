"""Running the streaming pipeline against the local stack from a test, and reading what it wrote.

``StreamRun`` starts ``pipeline.stream`` in this process on the local runner (``run()`` returns at once for a
streaming pipeline), polls Spanner and the pipeline's counters until a condition holds or a deadline passes,
and stops it with ``cancel()`` (the local runner's ``wait_until_finish`` never returns). ``Published`` keeps
the message ids Pub/Sub gave to a test's messages, so rows of two runs of the same script can be compared
(``comparable_rows``: Pub/Sub assigns new ids on every publish).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from google.cloud.spanner_v1 import JsonObject

from pipeline import report, stream
from pipeline.local_runner import LocalRun
from tests.hostile import spanner_limits
from transforms import progress
from transforms.apply_per_group import uncounted_counts
from transforms.core.engine import KeyState, decode_state
from transforms.core.engine.ids import activity_id, status_change_memory_id
from transforms.core.engine.state import GroupState, RunMember
from transforms.core.enums import ActivityType
from transforms.core.model import MICROS, to_rfc3339
from transforms.storage import clients, spanner_rows

TIMESTAMP_ATTRIBUTE = "ts"
# The tables the pipeline writes; Events and KeyStates are compared too (the state is part of the result).
TABLES = report.TABLES
PRIMARY_KEYS = {table: spanner_limits.schema()[table].primary_key for table in TABLES}  # from the DDL


# ---------------------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class Scripted:
    """One message of a test script: its bytes, attributes and message time (carried in ``ts``)."""

    label: str
    data: bytes
    message_time: int  # µs
    attributes: Mapping[str, str] = field(default_factory=dict)

    def pubsub_attributes(self) -> dict[str, str]:
        """Its attributes with its message time in ``ts``, unless it carries a ``ts`` of its own (a test of
        what the pipeline makes of the attribute)."""
        return {TIMESTAMP_ATTRIBUTE: to_rfc3339(self.message_time), **self.attributes}


@dataclass
class Published:
    """Pub/Sub message id -> the label of the scripted message, for one run."""

    labels: dict[str, str] = field(default_factory=dict)

    def add(self, message_id: str, label: str) -> None:
        self.labels[message_id] = label

    def id_of(self, label: str) -> str:
        ids = [message_id for message_id, known in self.labels.items() if known == label]
        if len(ids) != 1:
            raise KeyError(f"{len(ids)} messages published as {label!r}")
        return ids[0]


def publish(topic: str, messages: Iterable[Scripted], published: Published) -> None:
    """Publish ``messages`` (in the given order) and wait for their ids."""
    publisher = clients.pubsub_publisher()
    futures = [
        (message.label, publisher.publish(topic, message.data, **message.pubsub_attributes()))
        for message in messages
    ]
    for label, future in futures:
        published.add(future.result(timeout=60), label)


def create_subscription(topic: str, name: str, *, retain_acked: bool = False) -> str:
    """A subscription of ``topic``; with ``retain_acked``, ``seek_to`` can replay acknowledged messages."""
    subscriber = clients.pubsub_subscriber()
    path = subscriber.subscription_path(topic.split("/")[1], name)
    subscriber.create_subscription(
        request={
            "name": path,
            "topic": topic,
            "ack_deadline_seconds": 60,
            "retain_acked_messages": retain_acked,
        }
    )
    return path


def delete_subscription(path: str) -> None:
    clients.pubsub_subscriber().delete_subscription(subscription=path)


def seek_to(subscription: str, seconds: float) -> None:
    """Make Pub/Sub deliver again every retained message published at or after ``seconds`` (epoch).

    Redelivered messages keep their message id, publish time, data and attributes: exactly what Pub/Sub does
    when an acknowledgement is lost or a subscriber replays.
    """
    from google.protobuf import timestamp_pb2

    when = timestamp_pb2.Timestamp()
    when.FromNanoseconds(int(seconds * 1e9))
    clients.pubsub_subscriber().seek(request={"subscription": subscription, "time": when})


def pull_all(subscription: str, *, expected: int, timeout: float = 30.0) -> list[Any]:
    """Pull and acknowledge until ``expected`` messages came or ``timeout`` passed; returns what came.

    Pulls of any size are received (the client has no receive limit: ``clients.new_pubsub_client``), so 100
    dead letters of 1 MiB come in one pull; a pull that fails for any reason but an idle subscription fails
    the caller, rather than being retried until the timeout hides it."""
    from google.api_core.exceptions import DeadlineExceeded

    subscriber = clients.pubsub_subscriber()
    received: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(received) < expected and time.monotonic() < deadline:
        try:
            response = subscriber.pull(subscription=subscription, max_messages=100, timeout=2.0)
        except DeadlineExceeded:  # an idle subscription
            continue
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
            received.extend(m.message for m in response.received_messages)
    return received


# ---------------------------------------------------------------------------------------------------------
# The pipeline


class PipelineFailed(AssertionError):
    pass


class StreamRun:
    """One streaming pipeline in this process, on the local runner (see the module docstring)."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = list(args)
        self.result = None
        self.local: LocalRun | None = None
        self.started_at = 0.0
        self._own_counts: dict[str, int] | None = None  # progress at the start, when Beam's counters are lost
        self.stopped_counts: dict[str, int] = {}

    def start(self) -> StreamRun:
        self.started_at = time.monotonic()
        before = progress.snapshot()
        self.result = stream.start(stream.make_options(self.args))
        self.local = LocalRun(self.result)
        self._own_counts = None if stream.beam_counters_reliable() else before
        return self

    def counters(self) -> dict[str, int]:
        """Beam's counters; on Beam's runner without the bundle metrics patch, which loses them, the
        process's own counts since the start (``stream.own_counts``)."""
        assert self.result is not None
        if self._own_counts is not None:
            return stream.own_counts(self._own_counts)
        return stream.counter_totals(self.result)

    def settled_counters(self, quiet: float = 1.0, timeout: float = 30.0) -> dict[str, int]:
        """The counters once they have not changed for ``quiet`` seconds. On the local runner a bundle's
        counters are counted when its commit is done, which a later bundle finds out (``overlap_commits``),
        so right after its rows appear in Spanner they may still be on their way."""
        started = time.monotonic()
        last, since = self.counters(), time.monotonic()
        while time.monotonic() - since < quiet:
            self.check_alive()
            if time.monotonic() - started > timeout:
                raise AssertionError(f"the counters did not settle in {timeout:.0f} s: {last}")
            time.sleep(0.1)
            current = self.counters()
            if current != last:
                last, since = current, time.monotonic()
        return last

    def counter(self, name: str) -> int:
        return self.counters().get(name, 0)

    def check_alive(self) -> None:
        assert self.local is not None
        if self.local.finished:
            raise PipelineFailed(f"the pipeline stopped: {self.local.failure!r}")

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 90.0) -> float:
        """Poll ``condition`` every 0.25 s; returns the seconds waited, fails after ``timeout``."""
        started = time.monotonic()
        while True:
            self.check_alive()
            if condition():
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; counters: {self.counters()}"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop the pipeline; the counts of its commits no bundle counted are taken (``stopped_counts``), so
        that a later pipeline or test of this process does not find them."""
        if self.local is not None:
            self.local.cancel()
            self.stopped_counts = uncounted_counts()

    def __enter__(self) -> StreamRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pipeline_args(
    database,
    subscription: str,
    *,
    dead_letter_topic: str | None = None,
    redis_url: str | None = None,
    quota_key_prefix: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """Flags for a test run: small holds and windows so a run takes seconds, message times from ``ts``."""
    args = [
        f"--input_subscription={subscription}",
        f"--timestamp_attribute={TIMESTAMP_ATTRIBUTE}",
        "--watermark_delay=0s",
        "--processing_hold=2s",
        "--lookup_retry_interval=1s",
        "--lookup_retry_window=4s",
        "--projects_refresh=5s",
        "--state_save_delay=1s",  # key states without a group: saved a second (of watermark) after a flush
        "--progress_interval=600s",
        *database.pipeline_args(),
    ]
    if dead_letter_topic:
        args.append(f"--dead_letter_topic={dead_letter_topic}")
    if redis_url:
        args.append(f"--redis_url={redis_url}")
        if quota_key_prefix:
            args.append(f"--quota_key_prefix={quota_key_prefix}")
    else:
        args.append("--no_creation_quota")
    return [*args, *extra]


# ---------------------------------------------------------------------------------------------------------
# Rows


def read_table(database, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` as a dict (column -> value), in primary-key order."""
    with database.snapshot() as snapshot:
        results = snapshot.execute_sql(f"SELECT * FROM `{table}`")
        rows = list(results)
        names = [column.name for column in results.fields]
    records = [dict(zip(names, row)) for row in rows]
    keys = PRIMARY_KEYS[table]
    return sorted(records, key=lambda record: tuple(record[k] for k in keys))


def read_tables(database, tables: Sequence[str] = TABLES) -> dict[str, list[dict[str, Any]]]:
    return {table: read_table(database, table) for table in tables}


def read_row(database, table: str, columns: Sequence[str], key: list[Any]) -> dict[str, Any] | None:
    """One row by primary key, or None."""
    from google.cloud import spanner

    with database.snapshot() as snapshot:
        rows = list(snapshot.read(table, columns, spanner.KeySet(keys=[key])))
    return dict(zip(columns, rows[0])) if rows else None


def count_rows(database, table: str, where: str = "TRUE") -> int:
    with database.snapshot() as snapshot:
        return next(iter(snapshot.execute_sql(f"SELECT COUNT(*) FROM `{table}` WHERE {where}")))[0]


def decoded_state(value: bytes | None) -> KeyState | None:
    """A Groups/KeyStates ``State`` column as the engine's ``KeyState``."""
    raw = spanner_rows.from_spanner_bytes(value)
    return None if raw is None else decode_state(raw)


def comparable_rows(tables: Mapping[str, list[dict[str, Any]]], published: Published) -> dict[str, list]:
    """The rows of one run in a form that another run of the same script must reproduce exactly.

    What legitimately differs between two runs of the same messages, and is therefore normalised:

    * ``UpdatedAt`` (Groups, KeyStates): Spanner's commit timestamp, i.e. when the write happened.
    * ``MessageId`` (Occurrences, Activities) and message ids inside the key state (last taken in, creator,
      latest occurrence, environments, held status changes): Pub/Sub gives every publish a new id, so they
      are replaced by the scripted message's label. The same goes for what is derived from a message id
      when a status change carries no ``id`` (its activity ids and duplicate-memory entries).
    * Processing times inside the key state: when a waiting lookup started and its deadline.
    * The first-seen time of a resolution's release as recorded in the group's state (and in the snapshot
      of the group kept for the open run of status changes): the engine takes the
      earliest time it knows, and what it knows includes the project's Releases table at that moment, which
      other keys write (a release named by another key's earlier message may or may not be committed yet).
      The Releases rows themselves must be equal.
    * ``KeyStates.Seq`` of a key that has a group: that row is rewritten only when the key is linked to a
      group (creation, deletion), with the version of the write that did it, which covers every message of
      the same engine call; how messages were batched into calls (hold, restarts, pulls) moves it. The
      state itself, and its version, live on the group's row, and are compared.

    Everything else is compared as written, ``Groups.Seq`` included: the same messages must take the same
    versions.
    """
    labels = published.labels
    memory_ids = {
        status_change_memory_id(message_id): status_change_memory_id(f"label:{label}")
        for message_id, label in labels.items()
    }
    out: dict[str, list] = {}
    for table, rows in tables.items():
        normalised = []
        for row in rows:
            row = {column: _plain(value) for column, value in row.items() if column != "UpdatedAt"}
            if "MessageId" in row:
                message_id = row["MessageId"]
                row["MessageId"] = labels.get(message_id, message_id)
                if table == "Activities" and row["ActivityId"] == activity_id(
                    row["GroupId"], message_id, row["Type"]
                ):
                    row["ActivityId"] = f"derived from {row['MessageId']}"
            if table == "KeyStates" and row["GroupId"] is not None:
                row["Seq"] = "the version of the write that linked the group"
            if "State" in row:
                row["State"] = _normalise_state(row["State"], labels, memory_ids)
            normalised.append(row)
        out[table] = sorted(normalised, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, JsonObject):
        return orjson.loads(value.serialize()) if value.serialize() is not None else None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


_RESOLUTION_FIRST_SEEN = GroupState.__struct_fields__.index("resolution_first_seen")
_MEMBER_RESOLUTION_FIRST_SEEN = RunMember.__struct_fields__.index("resolution_first_seen")


def _normalise_state(value: bytes | None, labels: Mapping[str, str], memory_ids: Mapping[bytes, bytes]):
    raw = spanner_rows.from_spanner_bytes(value)
    if raw is None:
        return None
    state = decode_state(raw)
    ids = state.seen_ids
    translated = b"".join(memory_ids.get(ids[i : i + 16], ids[i : i + 16]) for i in range(0, len(ids), 16))
    plain = {name: msgspec.to_builtins(getattr(state, name)) for name in state.__struct_fields__}
    member = state.member
    if member is not None and member.payload_id in labels:  # a status change without id: ids from its message
        derived = {
            activity_id(member.group_id, member.payload_id, kind): f"derived from {labels[member.payload_id]}"
            for kind in ActivityType
        }
        plain["member"][3] = [derived.get(activity, activity) for activity in member.activity_ids]
    plain["seen_ids"] = base64.b64encode(translated).decode()
    if plain["group"] is not None:
        plain["group"][_RESOLUTION_FIRST_SEEN] = "as the project's Releases table had it then"
    if plain["member"] is not None:  # the group's fields before the open run of status changes
        plain["member"][_MEMBER_RESOLUTION_FIRST_SEEN] = "as the project's Releases table had it then"
    for waiting in plain["waiting"]:
        waiting[5] = waiting[6] = "processing time"  # first_wait, deadline

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return f"label:{labels[item]}" if item in labels else item
        if isinstance(item, list | tuple):
            return [walk(element) for element in item]
        if isinstance(item, dict):
            return {walk(key): walk(element) for key, element in item.items()}
        return item

    return walk(plain)


def diff_rows(expected: Mapping[str, list], actual: Mapping[str, list]) -> list[str]:
    """Differences between two ``comparable_rows`` results, column by column (empty when equal)."""
    problems = []
    for table in expected:
        key_columns = PRIMARY_KEYS[table]
        want = {tuple(str(row[k]) for k in key_columns): row for row in expected[table]}
        got = {tuple(str(row[k]) for k in key_columns): row for row in actual.get(table, [])}
        for key in sorted(want.keys() - got.keys()):
            problems.append(f"{table} {key}: missing")
        for key in sorted(got.keys() - want.keys()):
            problems.append(f"{table} {key}: unexpected")
        for key in sorted(want.keys() & got.keys()):
            for column in want[key]:
                wanted, found = want[key][column], got[key].get(column)
                if wanted == found:
                    continue
                problems.extend(f"{table} {key} {column}{where}" for where in _differences(wanted, found))
    return problems


def _differences(wanted: Any, found: Any, path: str = "") -> list[str]:
    """Where two plain values differ: ``.field`` or ``[index]`` paths down to the differing leaves."""
    if wanted == found:
        return []
    if isinstance(wanted, dict) and isinstance(found, dict):
        return [
            difference
            for part in sorted(wanted.keys() | found.keys(), key=str)
            for difference in _differences(wanted.get(part), found.get(part), f"{path}.{part}")
        ]
    if isinstance(wanted, list | tuple) and isinstance(found, list | tuple) and len(wanted) == len(found):
        return [
            difference
            for index, (a, b) in enumerate(zip(wanted, found))
            for difference in _differences(a, b, f"{path}[{index}]")
        ]
    return [f"{path}: {_short(wanted)} != {_short(found)}"]


def _short(value: Any, limit: int = 1500) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= limit else text[:limit] + "..."


def seconds(micros: int) -> float:
    return micros / MICROS


def assert_same_rows(expected: Mapping[str, list], actual: Mapping[str, list]) -> None:
    problems = diff_rows(expected, actual)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])
