"""Publishing a benchmark's messages to Pub/Sub, as fast as possible or at a steady rate, remembering when.

``Feed.publish`` sends messages in order on one thread and records, for every message, the wall time at which
the request that carried it was sent (``sent_at``) and the message id Pub/Sub gave it (``message_ids``). The
send time is a lower bound of Pub/Sub's publish time (by the length of one Publish call, a few milliseconds),
so latencies measured from it are slightly pessimistic, never flattering.

* ``rate=None``: requests of up to 1,000 messages, back to back (a backlog for the consumer to drain);
* ``rate=R``: every 20 ms, one request with the messages due by then, so messages leave at R per second.

The messages' data and attributes are published unchanged: no timestamp attribute, so the pipeline's message
time is Pub/Sub's publish time, as in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from transforms.core.model import RawMessage

MAX_BATCH = 1000
TICK = 0.02


@dataclass
class Published:
    """What happened to one ``publish`` call's messages (index i = the i-th message given)."""

    sent_at: list[float] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    rate: float | None = None


def create_topic_and_subscription(project: str, name: str) -> tuple[str, str]:
    """A new topic and a subscription to it (before anything is published, so nothing is missed)."""
    from transforms.storage import clients

    publisher, subscriber = clients.pubsub_publisher(), clients.pubsub_subscriber()
    topic = publisher.topic_path(project, name)
    subscription = subscriber.subscription_path(project, name)
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=60)
    return topic, subscription


def delete_topic_and_subscription(topic: str, subscription: str | None) -> None:
    from transforms.storage import clients

    if subscription:
        clients.pubsub_subscriber().delete_subscription(subscription=subscription)
    clients.pubsub_publisher().delete_topic(topic=topic)


class Feed:
    """Publishes to one topic from a background thread (``start``) or the caller's (``publish``)."""

    def __init__(self, topic: str) -> None:
        from google.pubsub_v1.types import PublishRequest, PubsubMessage

        from transforms.storage import clients

        self._topic = topic
        self._api = clients.pubsub_publisher().api
        self._request = PublishRequest.pb()
        self._message = PubsubMessage.pb()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def publish(
        self, messages: Sequence[RawMessage], rate: float | None = None, into: Published | None = None
    ) -> Published:
        """Publish ``messages`` in order; ``into`` (if given) is filled as they go, for readers on other threads."""
        out = into if into is not None else Published()
        out.rate = rate
        out.started = time.time()
        position = 0
        total = len(messages)
        while position < total:
            if rate:
                due = min(total, int((time.time() - out.started) * rate) + 1)
                if due <= position:
                    time.sleep(TICK)
                    continue
                end = min(due, position + MAX_BATCH)
            else:
                end = min(total, position + MAX_BATCH)
            batch = [self._message(data=m.data, attributes=m.attributes) for m in messages[position:end]]
            sent = time.time()
            response = self._api.publish(request=self._request(topic=self._topic, messages=batch))
            out.sent_at.extend([sent] * (end - position))
            out.message_ids.extend(response.message_ids)
            position = end
        out.finished = time.time()
        return out

    def start(self, messages: Sequence[RawMessage], rate: float | None) -> Published:
        """Publish in a background thread; the returned record fills as messages go (``join`` waits)."""
        out = Published(rate=rate, started=time.time())

        def run() -> None:
            try:
                self.publish(messages, rate, into=out)
            except BaseException as error:  # reported by join
                self.error = error

        self._thread = threading.Thread(target=run, name="bench-publish", daemon=True)
        self._thread.start()
        return out

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise RuntimeError(f"publishing failed: {self.error!r}") from self.error
