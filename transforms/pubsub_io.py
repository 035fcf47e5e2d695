"""Pub/Sub in and out: raw messages from a subscription or topic, dead letters to a topic (E11)."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub, WriteToPubSub

from transforms import progress
from transforms.core.envelopes import dead_letter_to_pubsub
from transforms.core.model import DeadLetter, RawMessage


class _ToRawMessage(beam.DoFn):
    """A Pub/Sub message becomes a ``RawMessage``; its message time is the element timestamp.

    The element timestamp is the publish time, or the timestamp attribute when the read was given one.
    """

    def process(self, message: PubsubMessage, timestamp=beam.DoFn.TimestampParam) -> Iterator[RawMessage]:
        progress.add(progress.READ)
        yield RawMessage(
            message_id=message.message_id or "",
            message_time=timestamp.micros,
            data=message.data or b"",
            attributes=dict(message.attributes or {}),
        )


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


class WriteDeadLetters(beam.PTransform):
    """``DeadLetter`` → the dead-letter topic: original bytes, original attributes plus the dead_letter_* ones."""

    def __init__(self, topic: str, label: str | None = None) -> None:
        super().__init__(label)
        self._topic = topic

    def expand(self, dead_letters):
        return (
            dead_letters
            | "ToPubsubMessage" >> beam.Map(_to_pubsub)
            | "Publish" >> WriteToPubSub(self._topic, with_attributes=True)
        )
