"""Publishing messages to a Pub/Sub topic, and pulling a subscription into an archive.

Both use the Google Cloud Pub/Sub client, which talks to the emulator when
``PUBSUB_EMULATOR_HOST`` is set (no credentials needed) and to Pub/Sub
otherwise (Application Default Credentials).

Publishing sends explicit batches (up to 1,000 messages or 9 MB per
``Publish`` request, two requests in flight) through the client's generated
API layer, with its default retries: the client's own per-message batching
(``PublisherClient.publish`` with ``BatchSettings``) was several times slower,
its per-message futures and locks costing more than the requests
(docs/performance.md). At most two batches wait in memory, however long the
stream.

Pulling writes what it receives to an ``ArchiveWriter`` and acknowledges the
messages of a file only once that file is complete; until then their ack
deadlines are extended, so they are not redelivered while the file fills.
A message redelivered anyway is written once (by message id).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from transforms.core.model import RawMessage, from_datetime
from transforms.storage import clients

DEFAULT_PROJECT = "local-project"
MAX_ACK_DEADLINE_SECONDS = 600
_ACK_CHUNK = 1000


class PubSubSetupError(RuntimeError):
    """Pub/Sub cannot be reached as configured; the message says what to set."""


def default_project() -> str:
    """``PUBSUB_PROJECT_ID``, else ``GOOGLE_CLOUD_PROJECT``, else ``local-project``."""
    return os.environ.get("PUBSUB_PROJECT_ID") or os.environ.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_PROJECT


def topic_path(project: str, topic: str) -> str:
    return topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"


def subscription_path(project: str, subscription: str) -> str:
    return (
        subscription
        if subscription.startswith("projects/")
        else f"projects/{project}/subscriptions/{subscription}"
    )


def _client_error(exc: Exception) -> PubSubSetupError:
    return PubSubSetupError(
        f"cannot create a Pub/Sub client ({type(exc).__name__}: {exc}). For the local emulator set "
        "PUBSUB_EMULATOR_HOST (e.g. localhost:8085; `python -m pipeline.stack env` prints it); for Pub/Sub, "
        "configure Application Default Credentials"
    )


def make_publisher() -> Any:
    """A ``PublisherClient`` (its ``api`` sends the batches; it also creates and deletes topics), with no
    limit on the size of a gRPC message (``transforms.storage.clients.new_pubsub_client``)."""
    try:
        return clients.new_pubsub_client("publisher")
    except Exception as exc:  # DefaultCredentialsError and friends
        raise _client_error(exc) from None


def make_subscriber() -> Any:
    """A ``SubscriberClient`` whose pulls may be of any size (``transforms.storage.clients.new_pubsub_client``)."""
    try:
        return clients.new_pubsub_client("subscriber")
    except Exception as exc:
        raise _client_error(exc) from None


def ensure_topic(publisher: Any, topic: str) -> bool:
    """Creates the topic if it does not exist; True when it was created."""
    from google.api_core.exceptions import AlreadyExists

    try:
        publisher.create_topic(request={"name": topic})
    except AlreadyExists:
        return False
    return True


@dataclass
class PublishStats:
    submitted: int = 0
    published: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first few

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


MAX_BATCH_MESSAGES = 1000  # Pub/Sub's limit per Publish request
MAX_BATCH_BYTES = 9_000_000  # under the 10 MB request limit, leaving room for attributes and framing
IN_FLIGHT = 2


def publish(
    messages: Iterable[RawMessage],
    topic: str,
    *,
    publisher: Any | None = None,
    rate: float | None = None,
    progress: Callable[[PublishStats], None] | None = None,
    progress_seconds: float = 2.0,
    max_batch_messages: int = MAX_BATCH_MESSAGES,
    max_batch_bytes: int = MAX_BATCH_BYTES,
) -> PublishStats:
    """Publishes each message's data and attributes to ``topic`` (a full path); returns when all are settled.

    Pub/Sub assigns message ids and publish times; to keep the generator's
    times, generate with a timestamp attribute and read with it. ``rate``
    (messages per second) paces publishing, e.g. for a live demo. A batch that
    still fails after the client's retries counts its messages as failed (the
    first errors are kept in the stats); the others are still published.
    """
    from google.pubsub_v1.types import PublishRequest, PubsubMessage

    publisher = publisher or make_publisher()
    request_type, message_type = PublishRequest.pb(), PubsubMessage.pb()
    stats = PublishStats()
    lock = threading.Lock()
    slots = threading.Semaphore(IN_FLIGHT)
    workers = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="publish")
    started = time.perf_counter()
    next_report = started + progress_seconds

    def send(batch: list[Any]) -> None:
        try:
            response = publisher.api.publish(request=request_type(topic=topic, messages=batch))
            with lock:
                stats.published += len(response.message_ids)
        except Exception as exc:
            with lock:
                stats.failed += len(batch)
                if len(stats.errors) < 5:
                    stats.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            slots.release()

    def submit(batch: list[Any]) -> None:
        slots.acquire()  # at most IN_FLIGHT batches wait: the generator is paused, not buffered
        workers.submit(send, batch)

    batch: list[Any] = []
    batch_bytes = 0
    try:
        for message in messages:
            size = len(message.data) + sum(len(k) + len(v) for k, v in message.attributes.items()) + 16
            if batch and (len(batch) >= max_batch_messages or batch_bytes + size > max_batch_bytes):
                submit(batch)
                batch, batch_bytes = [], 0
            batch.append(message_type(data=message.data, attributes=message.attributes))
            batch_bytes += size
            stats.submitted += 1
            stats.bytes += len(message.data)
            if rate:
                ahead = stats.submitted / rate - (time.perf_counter() - started)
                if ahead > 0:
                    if batch:  # do not hold messages back while pacing
                        submit(batch)
                        batch, batch_bytes = [], 0
                    time.sleep(ahead)
            if progress is not None and time.perf_counter() >= next_report:
                stats.seconds = time.perf_counter() - started
                with lock:
                    progress(stats)
                next_report += progress_seconds
        if batch:
            submit(batch)
    finally:
        workers.shutdown(wait=True)
    stats.seconds = time.perf_counter() - started
    return stats


# About the most bytes of messages one pull of ``pull_to_archive`` asks for, once it knows how large they are.
PULL_MAX_BYTES = 32 << 20


@dataclass
class PullStats:
    received: int = 0
    written: int = 0
    redelivered: int = 0
    acknowledged: int = 0
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0


def pull_to_archive(
    subscription: str,
    writer: Any,
    *,
    subscriber: Any | None = None,
    max_messages: int | None = None,
    idle_timeout: float = 10.0,
    batch_size: int = 1000,
    progress: Callable[[PullStats], None] | None = None,
) -> PullStats:
    """Pulls ``subscription`` (a full path) into ``writer`` (an ``ArchiveWriter``) until it is idle.

    Stops after ``max_messages`` messages, or when no message arrived for
    ``idle_timeout`` seconds. Messages are acknowledged file by file, after
    each file is closed (``writer.on_file_written``); the writer is closed here.
    If writing fails, the messages of the unfinished file are handed back to
    Pub/Sub for redelivery and the error is raised.
    """
    from google.api_core import exceptions

    subscriber = subscriber or make_subscriber()
    stats = PullStats()
    pending: list[str] = []  # ack ids of messages written to the open file
    seen: dict[str, int] = {}  # message id -> index in pending of its latest ack id (open file only)
    written_ids: set[str] = set()
    previous_callback = writer.on_file_written
    last_extension = time.monotonic()

    def acknowledge(path: str, count: int) -> None:
        nonlocal pending
        for start in range(0, len(pending), _ACK_CHUNK):
            chunk = pending[start : start + _ACK_CHUNK]
            subscriber.acknowledge(request={"subscription": subscription, "ack_ids": chunk})
            stats.acknowledged += len(chunk)
        pending = []
        seen.clear()
        stats.files.append(path)
        if previous_callback is not None:
            previous_callback(path, count)

    writer.on_file_written = acknowledge
    started = time.perf_counter()
    idle_since = time.monotonic()
    next_report = idle_since + 2.0
    ack_ids: list[str] = []
    message_bytes = 0  # the mean size of a message of the latest pull that brought some
    try:
        while max_messages is None or stats.written < max_messages:
            wanted = batch_size if max_messages is None else min(batch_size, max_messages - stats.written)
            if message_bytes:  # large messages: fewer a pull, so that one pull stays about PULL_MAX_BYTES
                wanted = max(1, min(wanted, PULL_MAX_BYTES // message_bytes))
            try:
                clients.forget_pull_bytes()
                response = subscriber.pull(
                    request={"subscription": subscription, "max_messages": wanted},
                    timeout=max(1.0, min(idle_timeout, 10.0)),
                )
                received = list(response.received_messages)
            except (exceptions.DeadlineExceeded, exceptions.RetryError):
                received = []
            size = clients.last_pull_bytes()
            if received and size:
                message_bytes = max(size // len(received), 1)
            if not received:
                if time.monotonic() - idle_since >= idle_timeout:
                    break
                continue
            idle_since = time.monotonic()
            ack_ids = [item.ack_id for item in received]
            _extend(subscriber, subscription, ack_ids)
            for item in received:
                stats.received += 1
                message = item.message
                if message.message_id in written_ids:
                    stats.redelivered += 1
                    if message.message_id in seen:  # not yet acknowledged: acknowledge the newest delivery
                        pending[seen[message.message_id]] = item.ack_id
                    else:
                        subscriber.acknowledge(
                            request={"subscription": subscription, "ack_ids": [item.ack_id]}
                        )
                    continue
                written_ids.add(message.message_id)
                seen[message.message_id] = len(pending)
                pending.append(item.ack_id)
                writer.write(
                    RawMessage(
                        message.message_id,
                        from_datetime(message.publish_time),
                        bytes(message.data),
                        dict(message.attributes),
                    )
                )
                stats.written += 1
            if time.monotonic() - last_extension > MAX_ACK_DEADLINE_SECONDS / 2 and pending:
                _extend(subscriber, subscription, pending)
                last_extension = time.monotonic()
            if progress is not None and time.monotonic() >= next_report:
                stats.seconds = time.perf_counter() - started
                progress(stats)
                next_report += 2.0
        writer.close()
    except BaseException:
        # Nothing of the unfinished file is acknowledged: give its messages (and the rest of the last pull)
        # back at once, rather than after the extended deadline.
        _extend(subscriber, subscription, list(dict.fromkeys(pending + ack_ids)), seconds=0)
        raise
    finally:
        writer.on_file_written = previous_callback
    stats.seconds = time.perf_counter() - started
    return stats


def _extend(
    subscriber: Any, subscription: str, ack_ids: list[str], seconds: int = MAX_ACK_DEADLINE_SECONDS
) -> None:
    """Sets the ack deadline of ``ack_ids`` to ``seconds`` from now (0: redeliver them now)."""
    for start in range(0, len(ack_ids), _ACK_CHUNK):
        subscriber.modify_ack_deadline(
            request={
                "subscription": subscription,
                "ack_ids": ack_ids[start : start + _ACK_CHUNK],
                "ack_deadline_seconds": seconds,
            }
        )


def print_progress(label: str) -> Callable[[Any], None]:
    """A progress callback printing one line to stderr."""

    def report(stats: Any) -> None:
        count = getattr(stats, "published", None)
        if count is None:
            count = stats.written
        rate = count / stats.seconds if stats.seconds else 0.0
        print(f"{label}: {count:,} messages ({rate:,.0f}/s)", file=sys.stderr, flush=True)

    return report
