"""Pub/Sub in and out: raw messages from a subscription or topic, dead letters to a topic (E11)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub, WriteToPubSub
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from transforms import clients, progress
from transforms.coders import typed
from transforms.core import metrics, reasons
from transforms.core.envelopes import dead_letter_to_pubsub
from transforms.core.message_time import parse_timestamp_attribute, timestamp_attribute_dead_letter
from transforms.core.model import DeadLetter, RawMessage
from transforms.decode import DEAD_LETTER, MESSAGES


class _ToRawMessage(beam.DoFn):
    """A Pub/Sub message becomes a ``RawMessage`` (main output), or a dead letter (``dead_letter``) when its
    timestamp attribute cannot be read.

    The message time is the value of ``timestamp_attribute`` when the message carries it, parsed here
    (``transforms.core.message_time``: the read itself is given no timestamp attribute, because Beam's readers
    fail the whole pull on a value they cannot parse), else the publish time, which is the element's timestamp
    as Beam's reader sets it. The element's timestamp becomes the message time: the Python SDK lets a DoFn
    give an element an earlier timestamp than its input's, and in the global window an element behind the
    watermark is not dropped. Messages read are added to the local progress count once per bundle (its lock
    cost 0.3 µs a message).
    """

    def __init__(self, timestamp_attribute: str | None = None) -> None:
        self._attribute = timestamp_attribute
        self._read = 0
        self._dead_letters = Metrics.counter(
            metrics.NAMESPACE, metrics.dead_letter_counter(reasons.INVALID_FIELD)
        )

    def start_bundle(self) -> None:
        self._read = 0

    def process(self, message: PubsubMessage, timestamp=beam.DoFn.TimestampParam) -> Iterator[Any]:
        published = timestamp.micros
        raw = self.to_raw(message, published)
        if type(raw) is DeadLetter:
            yield pvalue.TaggedOutput(DEAD_LETTER, raw)
        elif raw.message_time != published:
            yield TimestampedValue(raw, Timestamp(micros=raw.message_time))
        else:
            yield raw

    def to_raw(self, message: PubsubMessage, published: int) -> RawMessage | DeadLetter:
        """The message as a ``RawMessage`` (``published``: its publish time, µs), or its dead letter (counted)."""
        self._read += 1
        attributes = dict(message.attributes or {})
        message_time = published
        attribute = self._attribute
        if attribute is not None:
            value = attributes.get(attribute)
            if value is not None:
                try:
                    message_time = parse_timestamp_attribute(value)
                except ValueError as error:
                    self._dead_letters.inc()
                    return timestamp_attribute_dead_letter(
                        message.message_id or "",
                        published,
                        message.data or b"",
                        attributes,
                        attribute,
                        str(error),
                    )
        return RawMessage(
            message_id=message.message_id or "",
            message_time=message_time,
            data=message.data or b"",
            attributes=attributes,
        )

    def finish_bundle(self) -> None:
        if self._read:
            progress.add(progress.READ, self._read)
            self._read = 0


class ReadMessages(beam.PTransform):
    """``PBegin`` → ``messages`` (``RawMessage``) and ``dead_letter`` (``DeadLetter``: an unreadable timestamp
    attribute), from ``subscription`` (preferred) or ``topic``."""

    def __init__(
        self,
        *,
        subscription: str | None = None,
        topic: str | None = None,
        timestamp_attribute: str | None = None,
        pubsub_messages: bool = False,
        label: str | None = None,
    ) -> None:
        """``pubsub_messages``: give Beam's ``PubsubMessage``s, timestamped with their publish times, for
        ``transforms.ingest.Ingest`` (which reads ``timestamp_attribute`` itself)."""
        super().__init__(label)
        if bool(subscription) == bool(topic):
            raise ValueError("give exactly one of --input_subscription or --input_topic")
        self._subscription = subscription
        self._topic = topic
        self._timestamp_attribute = timestamp_attribute
        self._pubsub_messages = pubsub_messages

    def expand(self, pbegin):
        # No timestamp_attribute for Beam's reader: _ToRawMessage reads it (see its docstring).
        pulled = pbegin | "Pull" >> ReadFromPubSub(
            subscription=self._subscription, topic=self._topic, with_attributes=True
        )
        if self._pubsub_messages:
            return pulled
        return _to_raw_messages(pulled, self._timestamp_attribute)


class ToRawMessages(beam.PTransform):
    """Pub/Sub messages → ``messages`` (``RawMessage``) and ``dead_letter`` (``DeadLetter``), see
    ``_ToRawMessage``."""

    def __init__(self, timestamp_attribute: str | None = None, label: str | None = None) -> None:
        super().__init__(label)
        self._timestamp_attribute = timestamp_attribute

    def expand(self, messages):
        return _to_raw_messages(messages, self._timestamp_attribute)


def _to_raw_messages(messages, timestamp_attribute: str | None) -> pvalue.DoOutputsTuple:
    outputs = messages | "ToRawMessage" >> beam.ParDo(_ToRawMessage(timestamp_attribute)).with_outputs(
        DEAD_LETTER, main=MESSAGES
    )
    return typed(outputs, **{MESSAGES: RawMessage, DEAD_LETTER: DeadLetter})


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

    def process(self, message: PubsubMessage) -> None:
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
