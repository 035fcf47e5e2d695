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


class _RecordingApi:
    """The emulator's publisher, recording the size of every request sent through it (the emulator enforces
    neither Pub/Sub's 10 MB nor its 1,000 messages a request)."""

    def __init__(self, api) -> None:
        self._api = api
        self.requests: list[tuple[int, int]] = []  # (messages, bytes as serialized)

    def publish(self, request, **kwargs):
        self.requests.append((len(request.messages), request.ByteSize()))
        return self._api.publish(request=request, **kwargs)


class _RecordingPublisher:
    def __init__(self, publisher) -> None:
        self.api = _RecordingApi(publisher.api)


def test_requests_stay_within_pubsub_limits_of_1000_messages_and_10_mb(pubsub_topics) -> None:
    """Dead letters of 7.9 MB and 4 MB in a row, and another of 4 MB, among 2,500 small ones: no request over
    10,000,000 bytes (the publisher had added a message before checking its 8 MB: 7.9 + 4 MB went in one
    request) or 1,000 messages, and every dead letter arrives."""
    ref = pubsub_topics.create(ack_deadline_s=600)
    fn = _PublishFn(ref.topic)
    fn.setup()
    fn._publisher = recording = _RecordingPublisher(fn._publisher)
    sent = [f"small {i}".encode() for i in range(2500)]
    for position, size in ((10, 7_900_000), (11, 4_000_000), (1500, 4_000_000)):
        sent.insert(position, bytes([position % 251]) * size)
    fn.start_bundle()
    for data in sent:
        fn.process(PubsubMessage(data, {"dead_letter_reason": "oversized"}))
    fn.finish_bundle()
    assert pubsub_io.PUBLISHING.wait(timeout=120) == 0
    assert len(recording.api.requests) > 3
    for messages, size in recording.api.requests:
        assert messages <= 1000 and size <= 10_000_000
    received = 0
    while received < len(sent):
        pulled = pubsub_topics.pull(ref, max_messages=1000, timeout_s=10)
        assert pulled, f"only {received} of {len(sent)} arrived"
        received += len(pulled)


def test_a_dead_letter_pubsub_refuses_for_good_is_logged_and_counted_and_the_others_are_published(
    pubsub_topics, caplog
) -> None:
    """The emulator refuses a request holding an empty message (InvalidArgument "Some messages are empty"),
    as Pub/Sub refuses one over its limits: the request is split until the refused one is found, its
    neighbours are published, and the refusal is logged with the message id, counted, and not fatal."""
    ref = pubsub_topics.create()
    fn = _PublishFn(ref.topic)
    fn.setup()
    fn.start_bundle()
    for i in range(25):
        if i == 17:
            fn.process(PubsubMessage(b"", {}))  # refused
        else:
            fn.process(PubsubMessage(f"dead {i}".encode(), {"original_message_id": str(i), "n": str(i)}))
    fn._send()
    assert pubsub_io.PUBLISHING.wait(timeout=60) == 0
    fn.finish_bundle()  # not fatal
    received = []
    while len(received) < 24:
        pulled = pubsub_topics.pull(ref, timeout_s=10)
        assert pulled, f"only {len(received)} of 24 arrived"
        received += pulled
    assert sorted(int(m.attributes["n"]) for m in received) == [i for i in range(25) if i != 17]
    assert "Pub/Sub refused the dead letter of message ?" in caplog.text
    assert "seek the input subscription back" in caplog.text


def test_refused_dead_letters_are_counted_by_the_next_bundle(pubsub_topics) -> None:
    ref = pubsub_topics.create()
    fn = _PublishFn(ref.topic)
    fn.setup()
    fn.start_bundle()
    fn.process(PubsubMessage(b"", {}))
    fn.process(PubsubMessage(b"", {}))
    fn._send()
    assert pubsub_io.PUBLISHING.wait(timeout=60) == 0
    assert pubsub_io.PUBLISHING.check(fn.MAX_PENDING) == 2
    assert pubsub_io.PUBLISHING.check(fn.MAX_PENDING) == 0
