"""Process-wide clients for Spanner, Pub/Sub and Redis, built once and shared by every DoFn of the process.

Why: the BundleBasedDirectRunner re-creates DoFns and calls ``setup()`` for every bundle; a client built in
``setup()`` would leak a gRPC channel and a thread per bundle. DoFns call these functions in ``setup()``
instead and get the process's client. The caches live here, in an importable module, because a cache defined
in ``__main__`` is pickled with the DoFn. Do not close what these return: they are shared.

Where each client connects: the emulators when ``SPANNER_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST`` are set
(no credentials needed), Google Cloud with the application default credentials otherwise. The emulator host
is part of every cache key, so a test that points ``SPANNER_EMULATOR_HOST`` at another emulator gets a client
for that one. Redis clients are keyed by URL.

On the Spanner emulator, ``GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW`` and
``GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS`` are set to ``false`` (unless set already) before any client is
made: the emulator keeps one transaction per session, so on the one multiplexed session concurrent read-write
transactions failed with "Transaction not found" and their updates were lost, and concurrent multi-use
snapshots (a background read beside a flush's read) failed the same way.

Databases use ``RecentSessionsPool``: the client's default pool (``BurstyPool``) asks the server whether a
pooled session still exists (a round trip) every time it hands one out, before every read and commit; ours
asks only when the session sat unused in the pool for 55 minutes, as the client's ``FixedSizePool`` does
(sessions are deleted by the server after an hour idle). With multiplexed sessions (Google Cloud's default)
the pool is hardly used.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from transforms import private_api

if TYPE_CHECKING:
    import redis
    from google.cloud import pubsub_v1, spanner
    from google.cloud.spanner_v1.database import Database

_LOG = logging.getLogger(__name__)
SPANNER_EMULATOR_VAR = "SPANNER_EMULATOR_HOST"
# The local stack's Spanner database: the default of every --spanner_project/_instance/_database flag.
LOCAL_SPANNER_PROJECT = "local-project"
LOCAL_SPANNER_INSTANCE = "local-instance"
LOCAL_SPANNER_DATABASE = "occurrences"
PUBSUB_EMULATOR_VAR = "PUBSUB_EMULATOR_HOST"
MULTIPLEXED_RW_VAR = "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW"
MULTIPLEXED_VAR = "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS"


class MissingCredentialsError(RuntimeError):
    """Neither an emulator host nor Google credentials are configured for a client."""


_lock = threading.Lock()
_spanner_clients: dict[tuple[str, str | None], spanner.Client] = {}
_databases: dict[tuple[str, str, str, str | None], Database] = {}
_publishers: dict[str | None, pubsub_v1.PublisherClient] = {}
_subscribers: dict[str | None, pubsub_v1.SubscriberClient] = {}
_redis_clients: dict[str, redis.Redis] = {}


def spanner_emulator_host() -> str | None:
    return os.environ.get(SPANNER_EMULATOR_VAR) or None


def pubsub_emulator_host() -> str | None:
    return os.environ.get(PUBSUB_EMULATOR_VAR) or None


def spanner_client(project: str) -> spanner.Client:
    """The process's ``spanner.Client`` for ``project`` (on the emulator when ``SPANNER_EMULATOR_HOST`` is set)."""
    emulator = spanner_emulator_host()
    key = (project, emulator)
    with _lock:
        client = _spanner_clients.get(key)
        if client is None:
            client = _spanner_clients[key] = _new_spanner_client(project, emulator)
        return client


def spanner_database(project: str, instance: str, database: str) -> Database:
    """The process's ``Database`` handle (with its session pool) for (project, instance, database).

    The handle does not check that the database exists; the first read or write does.
    """
    emulator = spanner_emulator_host()
    key = (project, instance, database, emulator)
    with _lock:
        handle = _databases.get(key)
        if handle is not None:
            return handle
    client = spanner_client(project)
    with _lock:
        handle = _databases.get(key)
        if handle is None:
            handle = _databases[key] = client.instance(instance).database(
                database, pool=recent_sessions_pool()
            )
        return handle


@functools.cache
def _recent_sessions_pool_class():
    from google.cloud.spanner_v1.pool import BurstyPool

    class RecentSessionsPool(BurstyPool):
        """``BurstyPool`` that checks a pooled session with the server only after 55 minutes unused.

        Only public API: ``BurstyPool.get`` calls ``session.exists()`` on the session it takes from the pool
        (its documented ping), and ``put`` gives each session an ``exists`` that answers yes while the
        session has been back in the pool for less than ``MAX_IDLE_SECONDS``, and asks the server after.
        A client version that stops pinging simply never calls it."""

        MAX_IDLE_SECONDS = 55 * 60

        def put(self, session):
            idle_since = time.monotonic()
            ping = type(session).exists

            def exists() -> bool:
                return time.monotonic() - idle_since < self.MAX_IDLE_SECONDS or ping(session)

            session.exists = exists
            super().put(session)

    return RecentSessionsPool


def recent_sessions_pool():
    """A new ``RecentSessionsPool`` (its class is built on first use: the Spanner client is imported lazily)."""
    return _recent_sessions_pool_class()()


def pubsub_publisher() -> pubsub_v1.PublisherClient:
    """The process's Pub/Sub publisher (on the emulator when ``PUBSUB_EMULATOR_HOST`` is set)."""
    return _pubsub_client(_publishers, "publisher")


def pubsub_subscriber() -> pubsub_v1.SubscriberClient:
    """The process's Pub/Sub subscriber client (admin of subscriptions, synchronous pulls)."""
    return _pubsub_client(_subscribers, "subscriber")


def _pubsub_client(clients: dict[str | None, Any], kind: str) -> Any:
    """The client of ``clients`` for the current emulator (or none), made on first use."""
    emulator = pubsub_emulator_host()
    with _lock:
        client = clients.get(emulator)
        if client is None:
            client = clients[emulator] = new_pubsub_client(kind)
        return client


def redis_client(url: str) -> redis.Redis:
    """The process's Redis client for ``url`` (``redis://host:port/db``); it holds a thread-safe pool."""
    if not url:
        raise ValueError(
            "No Redis URL: pass --redis_url (e.g. redis://localhost:6379/0) or set REDIS_URL "
            '(`eval "$(python -m pipeline.stack env)"` sets it for the local stack).'
        )
    import redis

    with _lock:
        client = _redis_clients.get(url)
        if client is None:
            try:
                client = redis.Redis.from_url(url)
            except ValueError as e:
                raise ValueError(f"Invalid Redis URL {url!r}: {e}") from None
            _redis_clients[url] = client
        return client


def forget_database(project: str, instance: str, database: str) -> None:
    """Forget the cached handle of a database (after dropping the database itself).

    The handle is not closed: ``Database.close()`` of google-cloud-spanner 3.71 joins a maintenance thread
    that sleeps for minutes. Once unreferenced, that daemon thread ends by itself at its next wake-up.
    """
    with _lock:
        _databases.pop((project, instance, database, spanner_emulator_host()), None)


def forget_spanner() -> None:
    """Forget every cached Spanner client and database handle, closing nothing (for tests that restart the
    Spanner emulator: the handles' pooled sessions ended with it, and a new client opens a new channel)."""
    with _lock:
        _databases.clear()
        _spanner_clients.clear()


def reset() -> None:
    """Close and forget every cached client (for tests that restart a server, and at interpreter exit)."""
    with _lock:
        closers = [
            *(r.close for r in _redis_clients.values()),
            *(c.close for c in _spanner_clients.values()),
            *(p.transport.close for p in _publishers.values()),
            *(s.close for s in _subscribers.values()),
        ]
        for close in closers:
            # Closing against a stopped server must not hide the caller's error.
            with contextlib.suppress(Exception):
                close()
        _redis_clients.clear()
        _databases.clear()
        _spanner_clients.clear()
        _publishers.clear()
        _subscribers.clear()


def _new_spanner_client(project: str, emulator: str | None) -> spanner.Client:
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import spanner

    if emulator:
        os.environ.setdefault(MULTIPLEXED_RW_VAR, "false")
        os.environ.setdefault(MULTIPLEXED_VAR, "false")
    try:
        return spanner.Client(project=project)
    except DefaultCredentialsError as e:
        raise MissingCredentialsError(_no_credentials("Spanner", SPANNER_EMULATOR_VAR, e)) from None


# gRPC's default limit on a message received is 4 MiB: one pull of a 5 MB message, or of 100 messages of 60 KB,
# failed whole ("Received message larger than max"), so nothing was read. Pub/Sub messages and requests go up
# to 10 MB, and a pull carries many: no limit either way, as the client library sets on its own channels.
PUBSUB_CHANNEL_OPTIONS = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))


def new_pubsub_client(kind: str):
    """A new Pub/Sub ``PublisherClient`` (``kind`` "publisher") or ``SubscriberClient`` (``"subscriber"``)
    whose gRPC channel has no limit on the size of a message sent or received (``PUBSUB_CHANNEL_OPTIONS``).

    On Google Cloud the library's own channel has no limit already; on the emulator
    (``PUBSUB_EMULATOR_HOST``) the library opens a bare channel, with gRPC's 4 MiB receive limit, so the
    channel is made here. Every Pub/Sub client of the pipeline and its tools comes from here.
    """
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import pubsub_v1

    emulator = pubsub_emulator_host()
    if kind == "publisher":
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        cls, transport_class = pubsub_v1.PublisherClient, PublisherGrpcTransport
    else:
        cls, transport_class = pubsub_v1.SubscriberClient, _sized_subscriber_transport()
    if emulator:
        import grpc

        channel = grpc.insecure_channel(emulator, options=list(PUBSUB_CHANNEL_OPTIONS))
        return cls(transport=transport_class(channel=channel))
    try:
        return cls(transport=transport_class)  # the library makes its channel (credentials, no size limit)
    except DefaultCredentialsError as e:
        raise MissingCredentialsError(_no_credentials("Pub/Sub", PUBSUB_EMULATOR_VAR, e)) from None


_pull_sizes = threading.local()


def last_pull_bytes() -> int | None:
    """The size, as received, of the latest Pull response this thread got through a subscriber of
    ``new_pubsub_client`` (None when there was none since ``forget_pull_bytes``): what a pull weighs without
    visiting its messages, which reading the length of every message's data would cost (docs/performance.md)."""
    return getattr(_pull_sizes, "bytes", None)


def forget_pull_bytes() -> None:
    _pull_sizes.bytes = None


# The transport's ``pull`` property, which ``_sized_subscriber_transport`` reimplements with another response
# deserializer; it reads the transport's private ``_stubs`` and ``_logged_channel``. Recorded on
# google-cloud-pubsub 2.44.0.
SIZED_PULL = private_api.Target(
    "google.pubsub_v1.services.subscriber.transports.grpc",
    "SubscriberGrpcTransport.pull",
    ("19de89480f28088f6af120b1c3f7a96e2ef7ac4c23ed163fbbbd31962d9e173b",),
    "reimplements",
    reads=("SubscriberGrpcTransport._stubs", "SubscriberGrpcTransport._logged_channel"),
)


@functools.cache
def _sized_subscriber_transport():
    """The library's gRPC transport for subscribers, whose Pull responses note their size (``last_pull_bytes``)
    as they are decoded (on the thread that made the call: gRPC decodes a blocking call's response there).
    Only while the library's ``pull`` is what it was copied from (``SIZED_PULL``); otherwise the library's
    own transport, with a WARNING: pull sizes are then the messages' bytes (``_FastPullClient``)."""
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport
    from google.pubsub_v1.types import PullRequest, PullResponse

    problems = private_api.target_problems(SIZED_PULL)
    if problems:
        _LOG.warning(
            "google-cloud-pubsub changed what the pipeline's subscriber transport copies (%s): using the "
            "library's own, whose pulls do not tell their size",
            "; ".join(problems),
        )
        return SubscriberGrpcTransport

    def deserialize(data: bytes) -> PullResponse:
        _pull_sizes.bytes = len(data)
        return PullResponse.deserialize(data)

    class SizedSubscriberGrpcTransport(SubscriberGrpcTransport):
        @property
        def pull(self):
            if "pull" not in self._stubs:
                self._stubs["pull"] = self._logged_channel.unary_unary(
                    "/google.pubsub.v1.Subscriber/Pull",
                    request_serializer=PullRequest.serialize,
                    response_deserializer=deserialize,
                )
            return self._stubs["pull"]

    return SizedSubscriberGrpcTransport


def _no_credentials(service: str, variable: str, cause: Exception) -> str:
    return (
        f"Cannot connect to {service}: {variable} is not set and no Google credentials were found. "
        f'For the local emulators run `python -m pipeline.stack start` and `eval "$(python -m pipeline.stack '
        f'env)"`; for Google Cloud run `gcloud auth application-default login` or set '
        f"GOOGLE_APPLICATION_CREDENTIALS to a service account key file. ({cause})"
    )
