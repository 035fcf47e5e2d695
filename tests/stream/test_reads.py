"""What the streaming pipeline reads from Pub/Sub, end to end on the emulator: pulls of any size, and
message times from the timestamp attribute parsed by the pipeline, where a value it cannot read is a dead
letter and never holds up its neighbours."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.stream import harness, script
from tests.stream.environment import StreamEnv
from transforms.core import metrics, reasons
from transforms.core.model import MICROS, from_rfc3339
from transforms.storage import clients

pytestmark = pytest.mark.timeout(300)

KIB = 1024


def _occurrences(count: int, *, padding: int = 0, keys: int = 4) -> list[harness.Scripted]:
    """``count`` valid occurrences over ``keys`` keys of one type without a noise gate, each padded to about
    ``padding`` bytes by its evidence."""
    stream = script.Script(t0=_t0())
    messages = []
    for n in range(count):
        extra = {"evidence_data": {"padding": "x" * padding}} if padding else {}
        payload = stream.occurrence(f"m{n}", f"reads-{n % keys}", n * 0.01, **extra)
        messages.append(harness.Scripted(f"m{n}", orjson.dumps(payload), stream.at(n * 0.01)))
    return messages


def _t0() -> int:
    return (int(time.time()) - 7200) * script.SECOND


def _applied(run: harness.StreamRun, env: StreamEnv, expected: int) -> bool:
    return harness.count_rows(env.database.database, "Occurrences") >= expected


def test_a_5mb_message_is_an_oversized_dead_letter_and_100_valid_60kb_neighbours_are_applied(
    env: StreamEnv,
) -> None:
    """One read of over 4 MiB (gRPC's default receive limit, which the emulator's clients kept): the 5 MB
    message is refused by its size and the 100 valid messages of 60 KB read with it are applied."""
    valid = _occurrences(100, padding=60 * KIB)
    assert all(len(message.data) > 60 * KIB for message in valid)
    huge = harness.Scripted("huge", b"{" + b" " * (5_000_000 - 2) + b"}", _t0())
    published = harness.Published()
    harness.publish(env.input_topic, [huge, *valid], published)
    with harness.StreamRun(env.args(quota=False)) as run:
        run.wait_until(lambda: _applied(run, env, 100), "the 100 valid messages", timeout=120)
        counters = run.settled_counters()
    assert counters.get(metrics.dead_letter_counter(reasons.OVERSIZED)) == 1
    assert harness.count_rows(env.database.database, "Occurrences") == 100
    (dead,) = harness.pull_all(env.dead_letter_subscription, expected=1)
    assert dead.attributes["dead_letter_reason"] == reasons.OVERSIZED
    assert dead.attributes["original_message_id"] == published.id_of("huge")
    assert dead.data == huge.data  # kept whole: 5 MB fits a Pub/Sub message


BAD_TIMESTAMPS = ("yesterday", "", "2026-13-45T00:00:00Z", "99999999999999999", "0001-01-01T00:00:00+01:00")


def test_an_unreadable_timestamp_attribute_is_a_dead_letter_and_its_199_neighbours_are_applied(
    env: StreamEnv,
) -> None:
    """Beam's reader parsed the attribute and failed the whole pull on a value it could not read: 0 of 199
    valid messages were applied, the pull redelivered again and again. Each bad value is now a dead letter
    (``invalid_field`` at stage ``read``) with its bytes and attributes, and its neighbours are applied."""
    messages = _occurrences(199 + len(BAD_TIMESTAMPS))
    valid, bad = messages[:199], messages[199:]
    published = harness.Published()
    harness.publish(env.input_topic, valid[:100], published)
    publisher = clients.pubsub_publisher()
    for message, value in zip(bad, BAD_TIMESTAMPS):
        future = publisher.publish(env.input_topic, message.data, ts=value, origin="hostile")
        published.add(future.result(timeout=60), message.label)
    harness.publish(env.input_topic, valid[100:], published)
    with harness.StreamRun(env.args(quota=False)) as run:
        run.wait_until(lambda: _applied(run, env, 199), "the 199 valid messages", timeout=90)
        counters = run.settled_counters()
    assert harness.count_rows(env.database.database, "Occurrences") == 199
    assert counters.get(metrics.dead_letter_counter(reasons.INVALID_FIELD)) == len(BAD_TIMESTAMPS)
    dead = harness.pull_all(env.dead_letter_subscription, expected=len(BAD_TIMESTAMPS))
    by_label = {published.labels[m.attributes["original_message_id"]]: m for m in dead}
    assert sorted(by_label) == sorted(message.label for message in bad)
    for message, value in zip(bad, BAD_TIMESTAMPS):
        letter = by_label[message.label]
        assert letter.data == message.data
        assert letter.attributes["ts"] == value and letter.attributes["origin"] == "hostile"
        assert letter.attributes["dead_letter_reason"] == reasons.INVALID_FIELD
        assert letter.attributes["dead_letter_stage"] == reasons.STAGE_READ
        assert letter.attributes["dead_letter_error"].startswith("timestamp attribute ts ")
        # Its time is its publish time: the attribute gave none.
        assert (
            abs(from_rfc3339(letter.attributes["original_publish_time"]) - time.time() * MICROS)
            < 600 * MICROS
        )
