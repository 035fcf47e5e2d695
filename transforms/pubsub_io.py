"""Pub/Sub in and out: raw messages from a subscription or topic, dead letters to a topic (E11)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub, WriteToPubSub
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from transforms import progress
from transforms.coders import typed
from transforms.core import metrics, reasons
from transforms.core.dead_letter_fit import DEAD_LETTER_TRUNCATED, publish_request_bytes, pubsub_message_bytes
from transforms.core.envelopes import (
    DEAD_LETTER_REASON,
    DEAD_LETTER_STAGE,
    ORIGINAL_MESSAGE_ID,
    ORIGINAL_PUBLISH_TIME,
    fit_dead_letter,
    with_message_time,
)
from transforms.core.limits import PUBSUB_MAX_MESSAGES_PER_REQUEST, PUBSUB_MAX_REQUEST_BYTES
from transforms.core.message_time import parse_timestamp_attribute, timestamp_attribute_dead_letter
from transforms.core.model import DeadLetter, RawMessage
from transforms.decode_messages import DEAD_LETTER, MESSAGES
from transforms.storage import clients

_LOG = logging.getLogger(__name__)


class ToRawMessage(beam.DoFn):
    """A Pub/Sub message becomes a ``RawMessage`` (main output), or a dead letter (``dead_letter``) when its
    timestamp attribute cannot be read.

    The message time is the value of ``timestamp_attribute`` when the message carries it, parsed here
    (``transforms.core.message_time``: the read itself is given no timestamp attribute, because Beam's readers
    fail the whole pull on a value they cannot parse), else the publish time, which is the element's timestamp
    as Beam's reader sets it. The element's timestamp becomes the message time: the Python SDK lets a DoFn
    give an element an earlier timestamp than its input's, and in the global window an element behind the
    watermark is not dropped. Messages read are added to the local progress count once per bundle, not per
    message (its lock: docs/performance.md). The publish time is read from the element's ``WindowedValue``
    (``timestamp_micros``), not from ``DoFn.TimestampParam``, for which Beam makes a ``Timestamp`` object a
    message when the element was decoded from the runner's bytes.
    """

    def __init__(self, timestamp_attribute: str | None = None) -> None:
        self._attribute = timestamp_attribute
        self._read = 0
        self._dead_letters = Metrics.counter(
            metrics.NAMESPACE, metrics.dead_letter_counter(reasons.INVALID_FIELD)
        )

    def start_bundle(self) -> None:
        self._read = 0

    def process(self, message: PubsubMessage, windowed=beam.DoFn.WindowedValueParam) -> Iterable[Any]:
        # A tuple, not a generator: Beam iterates whatever process returns (one output a message here).
        published = windowed.timestamp_micros
        if self._attribute is None:  # nothing to read: the message time is the publish time it came with
            self._read += 1
            return (
                RawMessage(
                    message.message_id or "", published, message.data or b"", dict(message.attributes or {})
                ),
            )
        raw = self.to_raw(message, published)
        if type(raw) is DeadLetter:
            return (pvalue.TaggedOutput(DEAD_LETTER, raw),)
        if raw.message_time != published:
            return (TimestampedValue(raw, Timestamp(micros=raw.message_time)),)
        return (raw,)

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
    attribute), from ``subscription`` (preferred) or ``topic``, or from ``source``."""

    def __init__(
        self,
        *,
        subscription: str | None = None,
        topic: str | None = None,
        timestamp_attribute: str | None = None,
        pubsub_messages: bool = False,
        source: beam.PTransform | None = None,
        label: str | None = None,
    ) -> None:
        """``pubsub_messages``: give Beam's ``PubsubMessage``s, timestamped with their publish times, for
        ``transforms.ingest.Ingest`` (which reads ``timestamp_attribute`` itself). ``source``: a ``PBegin`` →
        ``PubsubMessage`` transform that replaces the Pub/Sub read (step ``Pull``) and nothing else, for
        ``pipeline.streaming_driver``, which feeds the job its own events; the subscription and topic are then
        not used."""
        super().__init__(label)
        if source is None and bool(subscription) == bool(topic):
            raise ValueError("give exactly one of --input_subscription or --input_topic")
        self._source = source
        self._subscription = subscription
        self._topic = topic
        self._timestamp_attribute = timestamp_attribute
        self._pubsub_messages = pubsub_messages

    def expand(self, pbegin):
        # No timestamp_attribute for Beam's reader: ToRawMessage reads it (see its docstring).
        if self._source is not None:
            pulled = pbegin | "Pull" >> self._source
        else:
            pulled = pbegin | "Pull" >> ReadFromPubSub(
                subscription=self._subscription, topic=self._topic, with_attributes=True
            )
        if self._pubsub_messages:
            return pulled
        return _to_raw_messages(pulled, self._timestamp_attribute)


class ToRawMessages(beam.PTransform):
    """Pub/Sub messages → ``messages`` (``RawMessage``) and ``dead_letter`` (``DeadLetter``), see
    ``ToRawMessage``."""

    def __init__(self, timestamp_attribute: str | None = None, label: str | None = None) -> None:
        super().__init__(label)
        self._timestamp_attribute = timestamp_attribute

    def expand(self, messages):
        return _to_raw_messages(messages, self._timestamp_attribute)


def _to_raw_messages(messages, timestamp_attribute: str | None) -> pvalue.DoOutputsTuple:
    outputs = messages | "ToRawMessage" >> beam.ParDo(ToRawMessage(timestamp_attribute)).with_outputs(
        DEAD_LETTER, main=MESSAGES
    )
    return typed(outputs, **{MESSAGES: RawMessage, DEAD_LETTER: DeadLetter})


def _to_pubsub(dead_letter: DeadLetter, first: tuple[str | None, ...] = ()) -> PubsubMessage:
    """The dead letter as the message to publish, within Pub/Sub's limits (``fit_dead_letter``); what gave way
    to them is logged with the message id. ``first``: original attributes kept before others (the timestamp
    attribute, which a dead letter made past keying gets with its message time: ``with_message_time``)."""
    progress.add(progress.DEAD_LETTERS)
    dead_letter = with_message_time(dead_letter, first[0] if first else None)
    fitted = fit_dead_letter(dead_letter, first=first)
    if fitted.truncated is not None:
        _LOG.warning(
            "dead letter %s (%s) published without part of its original, to fit Pub/Sub's limits: %s; the "
            "attributes left out: %s",
            dead_letter.message_id,
            dead_letter.reason,
            fitted.truncated,
            json.dumps(fitted.dropped, ensure_ascii=False),
        )
    return PubsubMessage(fitted.data, fitted.attributes)


class _ToPubsubMessage(beam.DoFn):
    """``DeadLetter`` → the ``PubsubMessage`` to publish (``_to_pubsub``), counting those that lost part of
    their original to Pub/Sub's limits (``dead_letter_publish.truncated``)."""

    def __init__(self, first: tuple[str | None, ...] = ()) -> None:
        self._first = first
        self._truncated = Metrics.counter(metrics.NAMESPACE, metrics.DEAD_LETTERS_TRUNCATED)

    def process(self, dead_letter: DeadLetter) -> Iterator[PubsubMessage]:
        message = _to_pubsub(dead_letter, self._first)
        if DEAD_LETTER_TRUNCATED in message.attributes:
            self._truncated.inc()
        yield message


class DeadLetterPublishError(RuntimeError):
    """A dead letter could not be published (local runs), for a reason that would refuse every dead letter (the
    topic is missing, no permission, Pub/Sub unreachable after the client's retries): the pipeline stops rather
    than lose them silently."""


class _Publishing:
    """The dead-letter Publish requests this process sent in the background (local runs, ``_PublishFn``)
    that are not confirmed yet. A failure is kept and raised by the next ``check``; dead letters Pub/Sub refused
    for good (``_publish``) are counted, and the next ``check`` returns how many."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[Future] = set()
        self._failure: BaseException | None = None
        self._refused = 0

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

    def refused(self, count: int) -> None:
        with self._lock:
            self._refused += count

    def check(self, max_pending: int) -> int:
        """Raise the first failed publish; wait while more than ``max_pending`` are unconfirmed. Returns how
        many dead letters Pub/Sub refused for good since the last ``check``."""
        with self._lock:
            pending = list(self._pending) if len(self._pending) > max_pending else []
        if pending:
            wait(pending)
        with self._lock:
            failure, self._failure = self._failure, None
            refused, self._refused = self._refused, 0
        if failure is not None:
            raise DeadLetterPublishError(f"publishing a dead letter failed: {failure}") from failure
        return refused

    def wait(self, timeout: float | None = None) -> int:
        """Wait for every publish handed over so far; returns how many are still unconfirmed."""
        with self._lock:
            pending = list(self._pending)
        return len(wait(pending, timeout).not_done) if pending else 0


PUBLISHING = _Publishing()


def _publish(api, request_type, topic: str, messages: list) -> None:
    """One Publish request of dead letters (on a thread of ``_SENDER``). A request Pub/Sub refuses as invalid
    (``InvalidArgument``: retrying cannot help) is split in two until the refused dead letters are found; the
    others are published, and each refused one is logged with its message id and counted, instead of stopping
    the pipeline. Other errors (after the client's retries) are raised: they would refuse every dead letter."""
    from google.api_core.exceptions import InvalidArgument

    try:
        api.publish(request=request_type(topic=topic, messages=messages))
    except InvalidArgument as error:
        if len(messages) > 1:
            half = len(messages) // 2
            _publish(api, request_type, topic, messages[:half])
            _publish(api, request_type, topic, messages[half:])
            return
        (message,) = messages
        attributes = message.attributes
        _LOG.error(
            "Pub/Sub refused the dead letter of message %s (%s at %s) for good, so it is not on %s: %s. Its "
            "original was acknowledged: to process it again, seek the input subscription back to before its "
            "publish time %s (if it retains acknowledged messages) or have its producer send it again. "
            "Counted in %s.",
            attributes.get(ORIGINAL_MESSAGE_ID, "?"),
            attributes.get(DEAD_LETTER_REASON, "?"),
            attributes.get(DEAD_LETTER_STAGE, "?"),
            topic,
            error,
            attributes.get(ORIGINAL_PUBLISH_TIME, "?"),
            metrics.DEAD_LETTERS_REFUSED,
        )
        PUBLISHING.refused(1)


class _PublishFn(beam.DoFn):
    """Local runs: a bundle's dead letters go out as one Publish request (a few for many), sent in the
    background while the pipeline goes on. Beam's ``WriteToPubSub`` waits for every bundle's publishes (at
    least the publisher's 10 ms batching delay each), and the publisher client's ``publish`` costs more CPU
    a message than one request built as a protobuf (docs/performance.md); on the local runner, which runs
    one bundle at a time, both held up the whole pipeline. Nothing is
    lost that the local runner would not lose anyway (it acknowledges messages when it pulls them): a failed
    publish (after the client's retries) fails a later bundle (``DeadLetterPublishError``), and
    ``pipeline.stream`` waits for the unconfirmed ones when it stops. A dead letter Pub/Sub refuses for good
    is logged and counted instead (``_publish``).

    A request is sent before a message would take it over Pub/Sub's limits of 1,000 messages and 10 MB (its
    size counted as Pub/Sub counts it, ``pubsub_message_bytes``); every dead letter fits one request alone
    (``fit_dead_letter``)."""

    MAX_PENDING = 100  # requests
    MAX_MESSAGES, MAX_BYTES = PUBSUB_MAX_MESSAGES_PER_REQUEST, PUBSUB_MAX_REQUEST_BYTES  # per request

    def __init__(self, topic: str) -> None:
        self._topic = topic
        self._refused = Metrics.counter(metrics.NAMESPACE, metrics.DEAD_LETTERS_REFUSED)

    def setup(self) -> None:
        from google.pubsub_v1.types import PublishRequest, PubsubMessage

        self._publisher = clients.pubsub_publisher()
        self._request, self._message = PublishRequest.pb(), PubsubMessage.pb()
        self._empty_bytes = publish_request_bytes(self._topic)

    def start_bundle(self) -> None:
        self._batch: list = []
        self._bytes = self._empty_bytes

    def process(self, message: PubsubMessage):  # no "-> None": see ApplyPerGroupFn.process
        attributes = message.attributes or {}
        size = pubsub_message_bytes(len(message.data or b""), attributes)
        if self._batch and (len(self._batch) >= self.MAX_MESSAGES or self._bytes + size > self.MAX_BYTES):
            self._send()
        self._batch.append(self._message(data=message.data, attributes=attributes))
        self._bytes += size

    def finish_bundle(self) -> None:
        self._send()
        refused = PUBLISHING.check(self.MAX_PENDING)
        if refused:
            self._refused.inc(refused)

    def _send(self) -> None:
        if self._batch:
            PUBLISHING.add(
                _SENDER.submit(_publish, self._publisher.api, self._request, self._topic, self._batch)
            )
            self._batch, self._bytes = [], self._empty_bytes


class _Sender:
    """The process's threads for dead-letter Publish requests (started on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, function, *args, **kwargs) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="dead-letter-publish")
            return self._pool.submit(function, *args, **kwargs)


_SENDER = _Sender()


class WriteDeadLetters(beam.PTransform):
    """``DeadLetter`` → the dead-letter topic: original bytes, original attributes plus the dead_letter_* ones,
    within Pub/Sub's limits (``transforms.core.dead_letter_fit``; ``timestamp_attribute`` is kept with
    ``content_type`` when original attributes must give way).

    ``local``: publish without waiting for each bundle's publishes (``_PublishFn``); otherwise Beam's
    ``WriteToPubSub`` (Dataflow's own sink)."""

    def __init__(
        self,
        topic: str,
        label: str | None = None,
        *,
        local: bool = False,
        timestamp_attribute: str | None = None,
    ) -> None:
        super().__init__(label)
        self._topic = topic
        self._local = local
        self._first = (timestamp_attribute,) if timestamp_attribute else ()

    def expand(self, dead_letters):
        messages = dead_letters | "ToPubsubMessage" >> beam.ParDo(_ToPubsubMessage(self._first))
        if self._local:
            return messages | "Publish" >> beam.ParDo(_PublishFn(self._topic))
        return messages | "Publish" >> WriteToPubSub(self._topic, with_attributes=True)
