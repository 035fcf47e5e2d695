"""The local reader's subscriber client (``FastPullClient``): large reads, pulls ahead, acknowledgements in
the background.

Every pull asks for ``max_messages`` and returns after ``timeout`` seconds (Beam's asks for 10 and waits up
to 30 s on an idle subscription, on the runner's thread, so timers and the watermark stall while it waits).
The emulator returns at most 100 messages a pull, and each pull is one read bundle of the runner: a full
pull is followed by more, merged into one read of up to ``max_messages`` messages and about ``max_bytes``
bytes (``--pubsub_pull_max_bytes``); once the size of the messages is known each pull asks for as many as
that holds, so a backlog of large messages is read in reads of about that size (the first pull of a read can
still bring what Pub/Sub gives one pull). While pulls bring messages, the next reads are started in the
background, one after the other on one thread (``PULLS_AHEAD``), and acknowledgements are sent in the
background, in order (``ACKNOWLEDGEMENTS``). ``PULL_SETTINGS`` holds the settings of the latest
``prepare_direct_runner`` call.
"""

from __future__ import annotations

import logging
import threading

from pipeline.local_runner.drain_patch import DRAINING

_LOG = logging.getLogger(__package__)

# max_messages, timeout and max_bytes of the reader's pulls (set by ``prepare_direct_runner``).
PULL_SETTINGS: dict[str, float] = {}


class Acknowledgements:
    """The local reader's acknowledgements, sent on a thread of their own, in order, at most ``backlog``
    requests behind (the reader then waits). One that fails is logged: its messages come back after their
    ack deadline and are applied as the duplicates they are. ``LocalRun.cancel`` waits for them."""

    def __init__(self, backlog: int = 4) -> None:
        self._backlog = backlog
        self._lock = threading.Lock()
        self._pool = None
        self._pending: list = []

    def send(self, client, request, kwargs) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pubsub-ack")
            self._pending = [future for future in self._pending if not future.done()]
            oldest = self._pending[0] if len(self._pending) >= self._backlog else None
            self._pending.append(self._pool.submit(self._acknowledge, client, request, kwargs))
        if oldest is not None:
            oldest.result()

    @staticmethod
    def _acknowledge(client, request, kwargs) -> None:
        try:
            client.acknowledge(request=request, **kwargs)
        except Exception as error:  # redelivered later: duplicates, counted and applied once
            _LOG.warning(
                "acknowledging %d pulled messages failed (%s): they will come back",
                len(request.ack_ids),
                error,
            )

    def wait(self, timeout: float | None = 30.0) -> int:
        """Wait for the acknowledgements sent so far; returns how many requests are still unsent."""
        from concurrent.futures import wait

        with self._lock:
            pending = list(self._pending)
        return len(wait(pending, timeout).not_done) if pending else 0


ACKNOWLEDGEMENTS = Acknowledgements()


class PullsAhead:
    """The next reads of a subscription (``depth`` of them), started in the background as soon as a pull
    brought messages (a backlog), so that the runner's thread finds one done instead of waiting for the
    emulator or Pub/Sub (with only one ahead, it still waited for pulls in a local backlog). They run one after the other on one thread, in order. An empty pull starts none: an idle
    pipeline pulls as Beam's does. ``release`` (``LocalRun.cancel``) gives the messages of pulls nobody took
    back to the subscription at once (their lease ended), so a new pipeline gets them now rather than after
    their ack deadline."""

    def __init__(self, depth: int = 3) -> None:
        self.depth = depth
        self._lock = threading.Lock()
        self._pool = None
        self._ahead: dict = {}  # subscription -> (client, [future, ...]), oldest first

    def start(self, client, subscription: str, pull) -> None:
        """Start pulls (``pull()``) until ``depth`` are under way or done and not taken (none while the
        pipeline drains: it reads no more)."""
        from concurrent.futures import ThreadPoolExecutor

        if DRAINING.requested:
            return
        with self._lock:
            if self._pool is None:
                # One thread: the pulls run one after the other, so each read is a contiguous run of what the
                # subscription delivers, in order (concurrent pulls interleave their messages, and a key's
                # message that comes in a later read than a newer one is applied behind it: late).
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pubsub-pull-ahead")
            _client, futures = self._ahead.setdefault(subscription, (client, []))
            while len(futures) < self.depth:
                futures.append(self._pool.submit(pull))

    def take(self, subscription: str):
        """The oldest pull ahead of ``subscription`` (a future), or None."""
        with self._lock:
            entry = self._ahead.get(subscription)
            if entry is None:
                return None
            future = entry[1].pop(0)
            if not entry[1]:
                del self._ahead[subscription]
            return future

    def release(self, timeout: float = 30.0) -> int:
        """End the leases of the messages pulled ahead and not taken; returns how many."""
        with self._lock:
            entries, self._ahead = list(self._ahead.items()), {}
        released = 0
        for subscription, client, future in (
            (subscription, client, future)
            for subscription, (client, futures) in entries
            for future in futures
        ):
            try:
                received = type(future.result(timeout)).pb(future.result()).received_messages
                if received:
                    client.modify_ack_deadline(
                        subscription=subscription,
                        ack_ids=[pulled.ack_id for pulled in received],
                        ack_deadline_seconds=0,
                    )
                    released += len(received)
            except Exception as error:  # they come back after their ack deadline instead
                _LOG.warning("could not give back the messages pulled ahead on %s: %s", subscription, error)
        return released


PULLS_AHEAD = PullsAhead()


class FastPullClient:
    def __init__(self, client, max_messages: int, timeout: float, max_bytes: int = 32 << 20) -> None:
        self._client = client
        self._max_messages = max_messages
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._message_bytes = 0  # mean size of a message of the latest pull that brought some, as received

    def pull(self, subscription, max_messages=None, timeout=None, **kwargs):
        """``max_messages`` messages, waiting at most ``timeout`` seconds (Beam's arguments are ignored);
        while there is a backlog, the next pulls are already under way (``PULLS_AHEAD``)."""
        ahead = PULLS_AHEAD.take(subscription)
        response = ahead.result() if ahead is not None else self._pull(subscription, kwargs)
        if type(response).pb(response).received_messages:
            PULLS_AHEAD.start(self._client, subscription, lambda: self._pull(subscription, kwargs))
        return response

    def _pull(self, subscription, kwargs):
        """One pull; and while pulls come back full (a backlog), more pulls, merged into one read of up to
        ``max_messages`` messages and about ``max_bytes`` bytes. Each pull asks for as many messages as the
        bytes left hold at the size of the latest ones, so that a backlog of large messages is read in reads
        of about ``max_bytes`` rather than of ``max_messages`` (2,000 messages of 10 MB would be 20 GB)."""
        from google.pubsub_v1 import PullResponse

        first = merged = None
        count = size = 0
        while True:
            wanted = self._wanted(self._max_messages - count, self._max_bytes - size)
            response, received_bytes = self._pull_once(subscription, kwargs, wanted)
            received = PullResponse.pb(response).received_messages
            if received:
                self._message_bytes = max(received_bytes // len(received), 1)
            if first is None:
                first = response
            else:
                if merged is None:
                    merged = PullResponse.pb(first)
                merged.received_messages.extend(received)
            count += len(received)
            size += received_bytes
            if (
                len(received) < min(wanted, self.FULL_PULL)
                or count >= self._max_messages
                or size >= self._max_bytes
            ):
                return first if merged is None else PullResponse.wrap(merged)

    def _wanted(self, messages_left: int, bytes_left: int) -> int:
        if self._message_bytes:
            messages_left = min(messages_left, bytes_left // self._message_bytes)
        return max(messages_left, 1)

    # The Pub/Sub emulator returns at most 100 messages a pull, whatever is asked for; Pub/Sub itself may
    # return fewer than asked for too. Each read bundle of the runner is one pull: over a backlog, bundles of
    # 100 messages, and the pulls ahead (another thread) could not keep up with the runner's thread.
    FULL_PULL = 100

    def _pull_once(self, subscription, kwargs, max_messages: int):
        """One pull and its size in bytes as received."""
        from google.api_core import exceptions
        from google.pubsub_v1 import PullResponse

        from transforms.storage import clients

        clients.forget_pull_bytes()
        try:
            response = self._client.pull(
                subscription=subscription, max_messages=max_messages, timeout=self._timeout, **kwargs
            )
        except exceptions.DeadlineExceeded:
            return PullResponse(), 0
        size = clients.last_pull_bytes()
        if size is None:  # a client not made by ``clients.new_pubsub_client``: the messages' bytes
            received = PullResponse.pb(response).received_messages
            size = sum(len(pulled.message.data) for pulled in received)
        return response, size

    def acknowledge(self, subscription, ack_ids, **kwargs):
        """Sent in the background (``ACKNOWLEDGEMENTS``), so the runner's thread goes on with the pulled
        messages; the request built as a protobuf (its proto-plus wrapper sets the ids one by one, slowly)."""
        from google.pubsub_v1 import AcknowledgeRequest

        request = AcknowledgeRequest.pb()(subscription=subscription, ack_ids=ack_ids)
        ACKNOWLEDGEMENTS.send(self._client, AcknowledgeRequest.wrap(request), kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)
