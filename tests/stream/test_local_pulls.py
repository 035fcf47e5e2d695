"""The local reader's subscriber client (``pipeline.local_runner._FastPullClient``) against the real Pub/Sub
emulator: large pulls that return after their timeout, and acknowledgements that hold."""

from __future__ import annotations

import time

from pipeline.local_runner import _FastPullClient
from transforms import clients


def test_pulls_are_large_and_acknowledged_messages_do_not_come_back(pubsub_topics) -> None:
    ref = pubsub_topics.create(ack_deadline_s=600)
    for i in range(30):
        pubsub_topics.publish(ref, f"m{i}".encode())
    fast = _FastPullClient(clients.pubsub_subscriber(), max_messages=1000, timeout=2.0)
    received = []
    deadline = time.monotonic() + 30
    while len(received) < 30 and time.monotonic() < deadline:
        response = fast.pull(ref.subscription, max_messages=10, timeout=30)  # Beam's arguments: ignored
        received += response.received_messages
        fast.acknowledge(ref.subscription, [pulled.ack_id for pulled in response.received_messages])
    assert sorted(pulled.message.data for pulled in received) == sorted(f"m{i}".encode() for i in range(30))
    started = time.monotonic()
    assert not fast.pull(ref.subscription).received_messages  # an empty subscription: back after the timeout
    assert time.monotonic() - started < 10
    # Ending the lease of every message pulled: those not acknowledged would be redelivered at once.
    clients.pubsub_subscriber().modify_ack_deadline(
        subscription=ref.subscription, ack_ids=[pulled.ack_id for pulled in received], ack_deadline_seconds=0
    )
    assert pubsub_topics.pull(ref, timeout_s=2) == []
