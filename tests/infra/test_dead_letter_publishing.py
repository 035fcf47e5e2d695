"""Local runs publish dead letters without waiting for each bundle (``transforms.pubsub_io._PublishFn``),
against the real Pub/Sub emulator: what was handed over arrives, and a failed publish stops the pipeline."""

from __future__ import annotations

import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage

from transforms import pubsub_io
from transforms.pubsub_io import DeadLetterPublishError, _PublishFn


def test_dead_letters_handed_over_arrive_with_their_attributes(pubsub_topics) -> None:
    ref = pubsub_topics.create()
    fn = _PublishFn(ref.topic)
    fn.setup()
    fn.MAX_MESSAGES = 10  # several requests
    fn.start_bundle()
    for i in range(25):
        fn.process(PubsubMessage(f"dead {i}".encode(), {"dead_letter_reason": "invalid_field", "n": str(i)}))
    fn.finish_bundle()  # does not wait
    assert pubsub_io.PUBLISHING.wait(timeout=30) == 0
    received = []
    while len(received) < 25:
        pulled = pubsub_topics.pull(ref, timeout_s=10)
        assert pulled, f"only {len(received)} of 25 arrived"
        received += pulled
    assert sorted(int(m.attributes["n"]) for m in received) == list(range(25))
    assert {m.data for m in received} == {f"dead {i}".encode() for i in range(25)}
    assert {m.attributes["dead_letter_reason"] for m in received} == {"invalid_field"}


def test_a_failed_publish_fails_a_later_bundle(pubsub_topics) -> None:
    ref = pubsub_topics.create()
    fn = _PublishFn(ref.topic.replace(ref.topic.rsplit("/", 1)[1], "no-such-topic-for-dead-letters"))
    fn.setup()
    fn.start_bundle()
    fn.process(PubsubMessage(b"lost?", {}))
    fn._send()
    pubsub_io.PUBLISHING.wait(timeout=60)
    with pytest.raises(DeadLetterPublishError, match="publishing a dead letter failed"):
        fn.finish_bundle()
    fn.start_bundle()
    fn.finish_bundle()  # reported once
