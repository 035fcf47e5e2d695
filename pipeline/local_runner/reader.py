"""The local runner's Pub/Sub read (the ``pubsub_pulls`` patch): Beam's read evaluator with our subscriber
client (``pulls.FastPullClient``, made from ``transforms.storage.clients.new_pubsub_client``: Beam's had gRPC's
4 MiB limit on a response, so a pull of one 5 MB message, or of 100 of 60 KB, failed whole and nothing was
read), reading the pulled messages from the response's protobuf instead of its proto-plus wrappers (the same
``(Timestamp, PubsubMessage)`` pairs and the same errors as Beam's).
"""

from __future__ import annotations

import functools

from pipeline.local_runner.drain_patch import DRAINING
from pipeline.local_runner.pulls import PULL_SETTINGS, FastPullClient
from transforms.private_api import Replacement


@functools.cache
def _pulled_message_class():
    """``PubsubMessage`` whose ``publish_time`` (a ``DatetimeWithNanoseconds``) is made when first read: the
    pipeline uses the element's timestamp, and making it for every message is work for nothing. Pickled, it is Beam's ``PubsubMessage``."""
    from apache_beam.io.gcp.pubsub import PubsubMessage
    from google.api_core.datetime_helpers import DatetimeWithNanoseconds
    from google.protobuf import timestamp_pb2

    class PulledMessage(PubsubMessage):
        def __init__(self, data, attributes, publish_pb: tuple[int, int] | None) -> None:
            super().__init__(data, attributes)  # checks the message as Beam does; sets publish_time to None
            if publish_pb is not None:
                del self.__dict__["_publish_time"]
                self._publish_pb = publish_pb  # (seconds, nanos)

        @property
        def publish_time(self):
            if "_publish_time" not in self.__dict__:
                seconds, nanos = self._publish_pb
                self._publish_time = DatetimeWithNanoseconds.from_timestamp_pb(
                    timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
                )
            return self._publish_time

        @publish_time.setter
        def publish_time(self, value) -> None:
            self._publish_time = value

        def __reduce__(self):
            fields = (self.data, self.attributes, self.message_id, self.publish_time, self.ordering_key)
            return PubsubMessage, fields

    return PulledMessage


def read_from_pubsub(self, timestamp_attribute):
    """Beam's ``_PubSubReadEvaluator._read_from_pubsub``, reading the pulled messages from the response's
    protobuf rather than through its proto-plus wrappers: the same ``(Timestamp, PubsubMessage)`` pairs, the
    same errors (``PulledMessage`` makes its publish time only if it is read). While ``LocalRun.drain``
    runs it reads nothing."""
    from apache_beam.utils.timestamp import Timestamp

    if DRAINING.requested:  # no more reads (what stops reading in a drain without the drain patch)
        DRAINING.reader_stopped()
        return []
    pulled_message = _pulled_message_class()
    sub_client = self._get_subscriber_client(self._applied_ptransform)
    response = sub_client.pull(subscription=self._sub_name, max_messages=10, timeout=30)
    received = type(response).pb(response).received_messages
    results = []
    for pulled in received:
        message = pulled.message
        attributes = dict(message.attributes)
        has_publish_time = message.HasField("publish_time")
        publish_time = message.publish_time if has_publish_time else None
        parsed = pulled_message(
            message.data, attributes, (publish_time.seconds, publish_time.nanos) if has_publish_time else None
        )
        if message.message_id:
            parsed.message_id = message.message_id
        if message.ordering_key:
            parsed.ordering_key = message.ordering_key
        if timestamp_attribute and timestamp_attribute in attributes:
            rfc3339_or_milli = attributes[timestamp_attribute]
            try:
                timestamp = Timestamp(micros=int(rfc3339_or_milli) * 1000)
            except ValueError:
                try:
                    timestamp = Timestamp.from_rfc3339(rfc3339_or_milli)
                except ValueError as e:
                    raise ValueError(f"Bad timestamp value: {e}") from e
            if timestamp.precision() > Timestamp.MICROS_PRECISION:
                timestamp = timestamp.to_precision(Timestamp.MICROS_PRECISION, allow_lossy_conversion=True)
        else:
            if not has_publish_time:
                raise ValueError(f"No publish time present in message: {message}")
            timestamp = Timestamp(micros=publish_time.seconds * 1_000_000 + publish_time.nanos // 1000)
        results.append((timestamp, parsed))
    ack_ids = [pulled.ack_id for pulled in received]
    if ack_ids:
        sub_client.acknowledge(subscription=self._sub_name, ack_ids=ack_ids)
    return results


def install_pubsub_pulls() -> list[Replacement]:
    from apache_beam.runners.direct import transform_evaluator

    evaluator = transform_evaluator._PubSubReadEvaluator
    original = evaluator._get_subscriber_client.__func__
    original_state = evaluator._get_subscriber_client_state_unlocked.__func__

    def _get_subscriber_client_state_unlocked(cls, transform):
        """Beam's, with our subscriber client: gRPC's 4 MiB limit on what a pull receives made a pull of
        more than 4 MiB fail whole, and nothing was read (``transforms.storage.clients.new_pubsub_client``)."""
        import weakref

        from transforms.storage import clients

        subscriber_client = cls._subscriber_client_cache.get(transform)
        if subscriber_client is None:
            subscriber_client = transform_evaluator._PubSubSubscriberClient(
                clients.new_pubsub_client("subscriber")
            )
            cls._subscriber_client_cache[transform] = subscriber_client
            weakref.finalize(transform, subscriber_client.close)
        return subscriber_client

    def _get_subscriber_client(cls, transform):
        client = original(cls, transform)
        return FastPullClient(
            client,
            int(PULL_SETTINGS["max_messages"]),
            PULL_SETTINGS["timeout"],
            int(PULL_SETTINGS["max_bytes"]),
        )

    _get_subscriber_client_state_unlocked.__wrapped__ = original_state  # Beam's, for the tests
    read_from_pubsub.__wrapped__ = evaluator._read_from_pubsub  # Beam's, for the tests
    return [
        (
            evaluator,
            "_get_subscriber_client_state_unlocked",
            classmethod(_get_subscriber_client_state_unlocked),
        ),
        (evaluator, "_get_subscriber_client", classmethod(_get_subscriber_client)),
        (evaluator, "_read_from_pubsub", read_from_pubsub),
    ]
