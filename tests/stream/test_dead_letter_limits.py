"""Dead letters that real Pub/Sub accepts, end to end on the emulator (which enforces none of its limits, so
each dead letter is checked against them here): a message of 100 attributes, of 95, and one of 10 MB."""

from __future__ import annotations

import time

import orjson
import pytest
from google.pubsub_v1.types import PublishRequest, PubsubMessage

from tests.stream import harness, script
from tests.stream.environment import StreamEnv
from transforms.core import metrics, reasons
from transforms.core.dead_letter_fit import DEAD_LETTER_TRUNCATED
from transforms.core.envelopes import DEAD_LETTER_ATTRIBUTES
from transforms.core.limits import (
    PUBSUB_MAX_ATTRIBUTE_KEY_BYTES,
    PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES,
    PUBSUB_MAX_ATTRIBUTES,
    PUBSUB_MAX_REQUEST_BYTES,
)
from transforms.core.model import to_rfc3339
from transforms.storage import clients

pytestmark = pytest.mark.timeout(300)

UNKNOWN_TYPE = orjson.dumps({"payload_type": "nope", "id": "x"})


def _attributes(count: int) -> dict[str, str]:
    """``count`` attributes: the message time, content_type, and others named to sort after them."""
    attributes = {harness.TIMESTAMP_ATTRIBUTE: to_rfc3339(_t0()), "content_type": "application/json"}
    attributes.update({f"x{i:03d}": f"value {i}" for i in range(count - len(attributes))})
    return attributes


def _t0() -> int:
    return (int(time.time()) - 7200) * script.SECOND


def _assert_pubsub_accepts(message, topic: str) -> None:
    attributes = dict(message.attributes)
    assert len(attributes) <= PUBSUB_MAX_ATTRIBUTES
    for key, value in attributes.items():
        assert len(key.encode()) <= PUBSUB_MAX_ATTRIBUTE_KEY_BYTES
        assert len(value.encode()) <= PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES
    request = PublishRequest.pb()(
        topic=topic, messages=[PubsubMessage.pb()(data=message.data, attributes=attributes)]
    )
    assert request.ByteSize() <= PUBSUB_MAX_REQUEST_BYTES


def _originals(message) -> dict[str, str]:
    return {key: value for key, value in message.attributes.items() if key not in DEAD_LETTER_ATTRIBUTES}


def test_dead_letters_of_100_attributes_and_10_mb_are_cut_to_pubsubs_limits_and_95_are_kept_whole(
    env: StreamEnv,
) -> None:
    stream = script.Script(t0=_t0())
    valid = []
    for n in range(20):
        payload = stream.occurrence(f"v{n}", f"limits-{n % 3}", n * 0.1)
        valid.append(harness.Scripted(f"v{n}", orjson.dumps(payload), stream.at(n * 0.1)))
    publisher = clients.pubsub_publisher()
    published = harness.Published()
    sent = {
        "hundred": (UNKNOWN_TYPE, _attributes(100)),
        "ninety-five": (UNKNOWN_TYPE, _attributes(95)),
        "ten-mb": (b"x" * 9_999_000, _attributes(3)),  # as large as the publisher lets through
    }
    for label, (data, attributes) in sent.items():
        published.add(publisher.publish(env.input_topic, data, **attributes).result(timeout=120), label)
    harness.publish(env.input_topic, valid, published)
    with harness.StreamRun(env.args(quota=False)) as run:
        run.wait_until(
            lambda: harness.count_rows(env.database.database, "Occurrences") >= 20,
            "the valid ones",
            timeout=120,
        )
        dead = harness.pull_all(env.dead_letter_subscription, expected=3, timeout=60)
        by_label = {published.labels[m.attributes["original_message_id"]]: m for m in dead}
        assert sorted(by_label) == sorted(sent)
        for message in dead:
            _assert_pubsub_accepts(message, env.dead_letter_topic)

        hundred = by_label["hundred"]
        assert len(hundred.attributes) == PUBSUB_MAX_ATTRIBUTES
        assert hundred.attributes[DEAD_LETTER_TRUNCATED] == (
            "attributes dropped (6): x092, x093, x094, x095, x096, x097"
        )
        kept = _originals(hundred)
        assert kept == {
            k: v for k, v in sent["hundred"][1].items() if k not in {f"x{i:03d}" for i in range(92, 98)}
        }
        assert hundred.data == UNKNOWN_TYPE

        ninety_five = by_label["ninety-five"]
        assert len(ninety_five.attributes) == PUBSUB_MAX_ATTRIBUTES
        assert DEAD_LETTER_TRUNCATED not in ninety_five.attributes
        assert _originals(ninety_five) == sent["ninety-five"][1] and ninety_five.data == UNKNOWN_TYPE

        ten_mb = by_label["ten-mb"]
        assert ten_mb.attributes["dead_letter_reason"] == reasons.OVERSIZED
        # Our attributes took the room: the original attributes not read by the pipeline went first, then
        # the end of the data.
        assert ten_mb.attributes[DEAD_LETTER_TRUNCATED] == (
            f"data cut from 9999000 to {len(ten_mb.data)} bytes; attributes dropped (1): x000"
        )
        assert sent["ten-mb"][0].startswith(ten_mb.data) and len(ten_mb.data) > 9_990_000
        assert _originals(ten_mb) == {k: v for k, v in sent["ten-mb"][1].items() if k != "x000"}

        # The dead letter kept whole replays: republished as it is, it fails again the same way, with the
        # same bytes and attributes.
        replay = publisher.publish(env.input_topic, ninety_five.data, **dict(ninety_five.attributes))
        published.add(replay.result(timeout=60), "replay")
        (again,) = harness.pull_all(env.dead_letter_subscription, expected=1, timeout=60)
        assert again.attributes["original_message_id"] == published.id_of("replay")
        assert again.attributes["dead_letter_reason"] == ninety_five.attributes["dead_letter_reason"]
        assert _originals(again) == sent["ninety-five"][1] and again.data == UNKNOWN_TYPE
        counters = run.settled_counters()
    assert counters.get(metrics.DEAD_LETTERS_TRUNCATED) == 2
    assert harness.count_rows(env.database.database, "Occurrences") == 20
