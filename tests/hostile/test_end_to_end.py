"""Hostile messages between valid ones, through the streaming pipeline on the emulators and through a backfill.

Every case of ``cases.CASES`` and a few generated messages (``--hostile-examples`` / 10, drawn with a fixed
seed) are published to the Pub/Sub emulator, each followed by a valid occurrence of a key of its own (a
neighbour). The streaming pipeline runs until every message is accounted for; then the same messages, with
the same ids and times, are archived and backfilled into a second database. Both runs must:

* never exit or stall (the streaming run is watched, the backfill must return);
* dead-letter each hostile message with the reason decoding gives it, and take in every other one;
* apply every neighbour (its group exists, seen once);
* account for every message: taken in (occurrences and status changes counted) or dead-lettered;
* write the same rows.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from google.api_core.exceptions import DeadlineExceeded
from hypothesis import HealthCheck, Phase, given, seed, settings

from pipeline import backfill
from pipeline.archive_writer import ArchiveWriter
from tests.hostile import cases
from tests.hostile.cases import APPLIED, CASES, MIB, PROJECT
from tests.hostile.downstream import project_of
from tests.hostile.strategies import hostile_messages
from tests.stream import harness
from tests.stream.environment import PROJECTS, stream_env
from transforms import clients, registry
from transforms.core import metrics
from transforms.core.decode import decode
from transforms.core.model import MICROS, DeadLetter, Message, Occurrence, RawMessage
from transforms.core.projects import check_project

# Compared in both runs: what the pipeline writes. KeyStates rows differ legitimately between streaming and a
# backfill (a streaming key state keeps the processing times of its waits, and its Seq counts its flushes).
TABLES = (
    "Groups",
    "Occurrences",
    "Activities",
    "GroupEnvironments",
    "GroupReleases",
    "GroupHashes",
    "Releases",
)


def generated(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` generated hostile messages, the same every run (a fixed seed, no example database)."""
    drawn: list[tuple[bytes, dict[str, str]]] = []
    if count <= 0:
        return drawn

    @seed(20261206)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile_messages())
    def collect(message: tuple[bytes, dict[str, str]]) -> None:
        drawn.append(message)

    collect()
    return drawn[:count]


def expected(
    data: bytes, attributes: dict[str, str], removed: list[str] | None = None
) -> tuple[str, Message | None]:
    """What decoding and the project check make of a message: APPLIED (and the message) or the reason; the
    counters of what decoding removes go to ``removed``."""
    decoded = decode(RawMessage("x", 0, data, attributes), max_bytes=MIB, removed=removed)
    decoded = check_project(decoded, {PROJECT: project_of(PROJECT)})
    return (decoded.reason, None) if isinstance(decoded, DeadLetter) else (APPLIED, decoded)


def is_lookup(message: Message | None) -> bool:
    payload = message.payload if message is not None else None
    return isinstance(payload, Occurrence) and payload.event is None


def build(examples: int) -> tuple[list[harness.Scripted], dict[str, str], set[str]]:
    """The messages in publishing order, what each must become (by label), and the neighbours' labels."""
    start = (int(time.time()) - 600) * MICROS
    hostile = [(case.name, *case.message(), case.expect) for case in CASES]
    keys: set[str] = set()
    for index, (data, attributes) in enumerate(generated(examples)):
        outcome, message = expected(data, attributes)
        if is_lookup(message):  # whether its event turns up depends on timing: not a hostile-input question
            continue
        if message is not None:
            # One message a key: several on one key could arrive after its flush in streaming, and late
            # messages may legitimately differ from a backfill in their activities (docs/behaviour.md).
            if message.key in keys:
                continue
            keys.add(message.key)
        hostile.append((f"generated {index}", data, attributes, outcome))
    messages, outcomes, neighbours = [], {}, set()
    for index, (label, data, attributes, outcome) in enumerate(hostile):
        neighbour = f"neighbour {index}"
        neighbour_data, neighbour_attributes = cases.occurrence()(neighbour)
        messages.append(harness.Scripted(label, data, start + 2 * index * 1000, attributes))
        messages.append(
            harness.Scripted(neighbour, neighbour_data, start + (2 * index + 1) * 1000, neighbour_attributes)
        )
        outcomes[label] = outcome
        outcomes[neighbour] = APPLIED
        neighbours.add(neighbour)
    return messages, outcomes, neighbours


def taken_in(counters: dict[str, int]) -> int:
    return sum(
        counters.get(name, 0)
        for name in (metrics.OCCURRENCE_MESSAGES, metrics.STATUS_CHANGE_MESSAGES, metrics.DUPLICATES)
    )


def dead_lettered(counters: dict[str, int]) -> int:
    return sum(value for name, value in counters.items() if name.startswith(metrics.DEAD_LETTER_PREFIX))


def neighbour_groups(database, neighbours: set[str]) -> dict[str, int]:
    rows = harness.read_table(database, "Groups")
    by_title = {row["Title"].removeprefix("hostile "): row["TimesSeen"] for row in rows}
    return {name: by_title[name] for name in neighbours if name in by_title}


def pull_small(subscription: str, *, expected: int, timeout: float = 120.0) -> list:
    """Pull and acknowledge until ``expected`` messages came, three at a time: dead letters of messages near
    1 MiB would make a larger pull exceed the client's 4 MiB receive limit (``harness.pull_all`` asks 100)."""
    subscriber = clients.pubsub_subscriber()
    received: list = []
    deadline = time.monotonic() + timeout
    while len(received) < expected and time.monotonic() < deadline:
        try:
            response = subscriber.pull(subscription=subscription, max_messages=3, timeout=2.0)
        except DeadlineExceeded:
            continue
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
            received.extend(m.message for m in response.received_messages)
    return received


def run_backfill(database, messages: list[harness.Scripted], published: harness.Published, tmp_path: Path):
    ids = {label: message_id for message_id, label in published.labels.items()}
    archive = tmp_path / "archive" / "hostile.jsonl"
    archive.parent.mkdir()
    with ArchiveWriter(str(archive)) as writer:
        for message in messages:
            writer.write(
                RawMessage(ids[message.label], message.message_time, message.data, message.attributes)
            )
    dead = tmp_path / "dead"
    args = ["--input", str(archive), "--dead_letter_path", str(dead), "--no_creation_quota"]
    assert backfill.main([*args, *database.pipeline_args()]) == 0
    reasons = {}
    for path in dead.glob("*.jsonl"):
        for line in path.read_bytes().split(b"\n"):  # only newlines end a line (not U+2028, \x1e ...)
            if not line:
                continue
            record = json.loads(line)
            reasons[published.labels[record["message_id"]]] = record["reason"]
    return reasons


def test_hostile_messages_stream_and_backfill_to_the_same_rows_and_spare_their_neighbours(
    stack, spanner_db_factory, tmp_path, hostile_examples
) -> None:
    messages, outcomes, neighbours = build(hostile_examples // 10)
    dead_expected = {label: reason for label, reason in outcomes.items() if reason != APPLIED}
    with stream_env(stack, "hostile") as env:
        published = harness.Published()
        harness.publish(env.input_topic, messages, published)
        # Three messages a pull: several near 1 MiB would exceed the Pub/Sub client's 4 MiB receive limit.
        run = harness.StreamRun(env.args("--pubsub_pull_max=3", quota=False)).start()
        try:
            run.wait_until(
                lambda: (
                    dead_lettered(run.counters()) >= len(dead_expected)
                    and taken_in(run.counters()) >= len(messages) - len(dead_expected)
                    and len(neighbour_groups(env.database.database, neighbours)) == len(neighbours)
                ),
                "every message to be taken in or dead-lettered",
                timeout=240,
            )
            counters = run.settled_counters()
            time.sleep(3)  # states of keys without a group: saved a second of watermark after their flush
            run.check_alive()
        finally:
            run.stop()
        streamed = {table: harness.read_table(env.database.database, table) for table in TABLES}
        letters = pull_small(env.dead_letter_subscription, expected=len(dead_expected))
        streaming_reasons = {
            published.labels[m.attributes["original_message_id"]]: m.attributes["dead_letter_reason"]
            for m in letters
        }
        assert streaming_reasons == dead_expected
        assert dead_lettered(counters) == len(dead_expected)
        assert taken_in(counters) == len(messages) - len(dead_expected)
        assert Counter(neighbour_groups(env.database.database, neighbours).values()) == {1: len(neighbours)}
        removed: list[str] = []
        for message in messages:
            expected(message.data, dict(message.attributes), removed)
        for name in (metrics.EVENT_RELEASE_REMOVED, metrics.EVENT_ENVIRONMENT_REMOVED):
            assert counters.get(name, 0) == removed.count(name), name

        other = spanner_db_factory()
        for project_id, organization_id, slug, organization_slug in PROJECTS:
            registry.register_project(
                other.database,
                project_id=project_id,
                organization_id=organization_id,
                slug=slug,
                organization_slug=organization_slug,
            )
        applied_occurrences = len(neighbours) + sum(1 for case in CASES if case.expect == APPLIED)
        assert len(streamed["Groups"]) >= len(neighbours) and len(streamed["Occurrences"]) >= len(neighbours)
        assert len(streamed["Groups"]) <= applied_occurrences + len(outcomes)
        backfill_reasons = run_backfill(other, messages, published, tmp_path)
        assert backfill_reasons == dead_expected
        backfilled = {table: harness.read_table(other.database, table) for table in TABLES}
        harness.assert_same_rows(
            harness.comparable_rows(streamed, published), harness.comparable_rows(backfilled, published)
        )
