"""Pub/Sub in and out: raw messages from a subscription or topic, dead letters to a topic (E11)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub, WriteToPubSub

from transforms import clients, progress
from transforms.core.envelopes import dead_letter_to_pubsub
from transforms.core.model import DeadLetter, RawMessage


class _ToRawMessage(beam.DoFn):
    """A Pub/Sub message becomes a ``RawMessage``; its message time is the element timestamp.

    The element timestamp is the publish time, or the timestamp attribute when the read was given one.
    Messages read are added to the local progress count once per bundle (its lock cost 0.3 µs a message).
    """

    def __init__(self) -> None:
        self._read = 0

    def start_bundle(self) -> None:
        self._read = 0

    def process(self, message: PubsubMessage, timestamp=beam.DoFn.TimestampParam) -> Iterator[RawMessage]:
        self._read += 1
        yield RawMessage(
            message_id=message.message_id or "",
            message_time=timestamp.micros,
            data=message.data or b"",
            attributes=dict(message.attributes or {}),
        )

    def finish_bundle(self) -> None:
        if self._read:
            progress.add(progress.READ, self._read)
            self._read = 0


class ReadMessages(beam.PTransform):
    """``PBegin`` → ``RawMessage`` from ``subscription`` (preferred) or ``topic``."""

    def __init__(
        self,
        *,
        subscription: str | None = None,
        topic: str | None = None,
        timestamp_attribute: str | None = None,
        pubsub_messages: bool = False,
        label: str | None = None,
    ) -> None:
        """``pubsub_messages``: give Beam's ``PubsubMessage``s (for ``transforms.ingest.Ingest``)."""
        super().__init__(label)
        if bool(subscription) == bool(topic):
            raise ValueError("give exactly one of --input_subscription or --input_topic")
        self._subscription = subscription
        self._topic = topic
        self._timestamp_attribute = timestamp_attribute
        self._pubsub_messages = pubsub_messages

    def expand(self, pbegin):
        pulled = pbegin | "Pull" >> ReadFromPubSub(
            subscription=self._subscription,
            topic=self._topic,
            with_attributes=True,
            timestamp_attribute=self._timestamp_attribute,
        )
        if self._pubsub_messages:
            return pulled
        return pulled | "ToRawMessage" >> beam.ParDo(_ToRawMessage())


def _to_pubsub(dead_letter: DeadLetter) -> PubsubMessage:
    progress.add(progress.DEAD_LETTERS)
    data, attributes = dead_letter_to_pubsub(dead_letter)
    return PubsubMessage(data, attributes)


class DeadLetterPublishError(RuntimeError):
    """A dead letter could not be published (local runs): the pipeline stops rather than lose it silently."""


class _Publishing:
    """The dead-letter Publish requests this process sent in the background (local runs, ``_PublishFn``)
    that are not confirmed yet; a failure is kept and raised by the next ``check``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[Future] = set()
        self._failure: BaseException | None = None

    def add(self, future: Future) -> None:
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        error = future.exception()
        with self._lock:
            self._pending.discard(future)
            if error is not None and self._failure is None:
                self._failure = error

    def check(self, max_pending: int) -> None:
        """Raise the first failed publish; wait while more than ``max_pending`` are unconfirmed."""
        with self._lock:
            pending = list(self._pending) if len(self._pending) > max_pending else []
        if pending:
            wait(pending)
        with self._lock:
            failure, self._failure = self._failure, None
        if failure is not None:
            raise DeadLetterPublishError(f"publishing a dead letter failed: {failure}") from failure

    def wait(self, timeout: float | None = None) -> int:
        """Wait for every publish handed over so far; returns how many are still unconfirmed."""
        with self._lock:
            pending = list(self._pending)
        return len(wait(pending, timeout).not_done) if pending else 0


PUBLISHING = _Publishing()


class _PublishFn(beam.DoFn):
    """Local runs: a bundle's dead letters go out as one Publish request (a few for many), sent in the
    background while the pipeline goes on. Beam's ``WriteToPubSub`` waits for every bundle's publishes (at
    least the publisher's 10 ms batching delay each), and the publisher client's ``publish`` costs 67 µs of
    CPU a message against 12 for a request of 1,000 built as a protobuf (measured on the emulator); on the
    local runner, which runs one bundle at a time, both held up the whole pipeline. Nothing is
    lost that the local runner would not lose anyway (it acknowledges messages when it pulls them): a failed
    publish (after the client's retries) fails a later bundle (``DeadLetterPublishError``), and
    ``pipeline.stream`` waits for the unconfirmed ones when it stops."""

    MAX_PENDING = 100  # requests
    MAX_MESSAGES, MAX_BYTES = 1_000, 8_000_000  # per request (Pub/Sub's limits: 1,000 and 10 MB)

    def __init__(self, topic: str) -> None:
        self._topic = topic

    def setup(self) -> None:
        from google.pubsub_v1.types import PublishRequest, PubsubMessage

        self._publisher = clients.pubsub_publisher()
        self._request, self._message = PublishRequest.pb(), PubsubMessage.pb()

    def start_bundle(self) -> None:
        self._batch: list = []
        self._bytes = 0

    def process(self, message: PubsubMessage):  # no "-> None": see ApplyPerGroupFn.process
        attributes = message.attributes or {}
        self._batch.append(self._message(data=message.data, attributes=attributes))
        self._bytes += len(message.data) + sum(len(k) + len(v) for k, v in attributes.items()) + 64
        if len(self._batch) >= self.MAX_MESSAGES or self._bytes >= self.MAX_BYTES:
            self._send()

    def finish_bundle(self) -> None:
        self._send()
        PUBLISHING.check(self.MAX_PENDING)

    def _send(self) -> None:
        if self._batch:
            request = self._request(topic=self._topic, messages=self._batch)
            PUBLISHING.add(_SENDER.submit(self._publisher.api.publish, request=request))
            self._batch, self._bytes = [], 0


class _Sender:
    """The process's threads for dead-letter Publish requests (started on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, function, **kwargs) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="dead-letter-publish")
            return self._pool.submit(function, **kwargs)


_SENDER = _Sender()


class WriteDeadLetters(beam.PTransform):
    """``DeadLetter`` → the dead-letter topic: original bytes, original attributes plus the dead_letter_* ones.

    ``local``: publish without waiting for each bundle's publishes (``_PublishFn``); otherwise Beam's
    ``WriteToPubSub`` (Dataflow's own sink)."""

    def __init__(self, topic: str, label: str | None = None, *, local: bool = False) -> None:
        super().__init__(label)
        self._topic = topic
        self._local = local

    def expand(self, dead_letters):
        messages = dead_letters | "ToPubsubMessage" >> beam.Map(_to_pubsub)
        if self._local:
            return messages | "Publish" >> beam.ParDo(_PublishFn(self._topic))
        return messages | "Publish" >> WriteToPubSub(self._topic, with_attributes=True)
