"""The local reader's subscriber client (``pipeline.local_runner.pulls.FastPullClient``) against the real Pub/Sub
emulator: large pulls that return after their timeout, and acknowledgements that hold."""

from __future__ import annotations

import time

from pipeline.local_runner import ACKNOWLEDGEMENTS, FastPullClient
from transforms.storage import clients


def test_pulls_are_large_and_acknowledged_messages_do_not_come_back(pubsub_topics) -> None:
    ref = pubsub_topics.create(ack_deadline_s=600)
    for i in range(30):
        pubsub_topics.publish(ref, f"m{i}".encode())
    fast = FastPullClient(clients.pubsub_subscriber(), max_messages=1000, timeout=2.0)
    received = []
    deadline = time.monotonic() + 30
    while len(received) < 30 and time.monotonic() < deadline:
        response = fast.pull(ref.subscription, max_messages=10, timeout=30)  # Beam's arguments: ignored
        received += response.received_messages
        fast.acknowledge(ref.subscription, [pulled.ack_id for pulled in response.received_messages])
    assert sorted(pulled.message.data for pulled in received) == sorted(f"m{i}".encode() for i in range(30))
    assert ACKNOWLEDGEMENTS.wait(timeout=10) == 0  # sent in the background
    started = time.monotonic()
    assert not fast.pull(ref.subscription).received_messages  # an empty subscription: back after the timeout
    assert time.monotonic() - started < 10
    # Ending the lease of every message pulled: those not acknowledged would be redelivered at once.
    clients.pubsub_subscriber().modify_ack_deadline(
        subscription=ref.subscription, ack_ids=[pulled.ack_id for pulled in received], ack_deadline_seconds=0
    )
    assert pubsub_topics.pull(ref, timeout_s=2) == []


def test_a_backlog_comes_in_pulls_of_up_to_max_messages(pubsub_topics) -> None:
    from pipeline.local_runner import PULLS_AHEAD

    # The emulator returns at most 100 messages a pull, whatever is asked for: full pulls are followed by more.
    ref = pubsub_topics.create(ack_deadline_s=600)
    publisher = clients.pubsub_publisher()
    sent = [f"m{i}".encode() for i in range(250)]
    for future in [publisher.publish(ref.topic, data) for data in sent]:
        future.result(timeout=30)
    fast = FastPullClient(clients.pubsub_subscriber(), max_messages=1000, timeout=2.0)
    received = list(fast.pull(ref.subscription).received_messages)
    assert len(received) > FastPullClient.FULL_PULL
    deadline = time.monotonic() + 30
    while len(received) < 250 and time.monotonic() < deadline:
        received += fast.pull(ref.subscription).received_messages
    fast.acknowledge(ref.subscription, [pulled.ack_id for pulled in received])
    assert sorted(pulled.message.data for pulled in received) == sorted(sent)
    assert ACKNOWLEDGEMENTS.wait(timeout=10) == 0
    PULLS_AHEAD.release()


class _GatedSubscriber:
    def __init__(self, fail: bool = False) -> None:
        import threading

        self.open, self.fail, self.sent = threading.Event(), fail, []

    def acknowledge(self, request, **kwargs):
        assert self.open.wait(10), "never opened"
        if self.fail:
            raise RuntimeError("acknowledge refused")
        self.sent.append(list(request.ack_ids))


def test_acknowledgements_go_in_the_background_in_order_and_a_failure_is_only_logged(caplog) -> None:
    from pipeline.local_runner import Acknowledgements

    acknowledgements = Acknowledgements(backlog=4)
    gated = _GatedSubscriber()
    fast = FastPullClient(gated, max_messages=10, timeout=1.0)
    fast_ack = FastPullClient.acknowledge
    from pipeline.local_runner import pulls

    real, pulls.ACKNOWLEDGEMENTS = pulls.ACKNOWLEDGEMENTS, acknowledgements
    try:
        for batch in (["a", "b"], ["c"], ["d"]):
            fast_ack(fast, "projects/p/subscriptions/s", batch)  # returns before the request is sent
        assert gated.sent == [] and acknowledgements.wait(timeout=0.1) == 3
        gated.open.set()
        assert acknowledgements.wait(timeout=10) == 0
        assert gated.sent == [["a", "b"], ["c"], ["d"]]
        failing = _GatedSubscriber(fail=True)
        failing.open.set()
        fast_ack(FastPullClient(failing, max_messages=10, timeout=1.0), "projects/p/subscriptions/s", ["e"])
        assert acknowledgements.wait(timeout=10) == 0
    finally:
        pulls.ACKNOWLEDGEMENTS = real
    assert "acknowledging 1 pulled messages failed (acknowledge refused)" in caplog.text


def test_a_backlog_is_pulled_ahead_and_what_no_one_took_goes_back_at_once(pubsub_topics) -> None:
    from pipeline.local_runner import PULLS_AHEAD

    ref = pubsub_topics.create(ack_deadline_s=600)
    sent = [f"m{i}".encode() for i in range(20)]
    for data in sent:
        pubsub_topics.publish(ref, data)
    fast = FastPullClient(clients.pubsub_subscriber(), max_messages=10, timeout=2.0)
    first = []
    deadline = time.monotonic() + 30
    while not first and time.monotonic() < deadline:
        first = list(fast.pull(ref.subscription).received_messages)
    fast.acknowledge(ref.subscription, [pulled.ack_id for pulled in first])
    assert ACKNOWLEDGEMENTS.wait(timeout=10) == 0
    # The next pulls, started when the first brought messages.
    aheads = [PULLS_AHEAD.take(ref.subscription) for _ in range(PULLS_AHEAD.depth)]
    assert None not in aheads and PULLS_AHEAD.take(ref.subscription) is None
    pulled_ahead = [pulled for ahead in aheads for pulled in ahead.result().received_messages]
    assert pulled_ahead  # a backlog of 20: the pulls ahead got some
    responses = iter([ahead.result() for ahead in aheads])
    PULLS_AHEAD.start(
        fast._client, ref.subscription, lambda: next(responses)
    )  # untaken, as by a stopped reader
    assert PULLS_AHEAD.release() == len(pulled_ahead)
    left = []
    deadline = time.monotonic() + 10  # well within the 600 s ack deadline: only a release brings them back
    while len(first) + len(left) < 20 and time.monotonic() < deadline:
        left += pubsub_topics.pull(ref, timeout_s=2)
    assert sorted([pulled.message.data for pulled in first] + [message.data for message in left]) == sorted(
        sent
    )


def test_reads_ahead_run_one_after_the_other_in_order() -> None:
    import itertools
    import threading

    from pipeline.local_runner import PullsAhead

    ahead = PullsAhead(depth=3)
    lock, running, most, finished = threading.Lock(), [0], [0], []
    numbers = itertools.count()

    def pull() -> int:
        number = next(numbers)
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            finished.append(number)
        return number

    ahead.start(None, "projects/p/subscriptions/s", pull)
    taken = [ahead.take("projects/p/subscriptions/s").result(timeout=10) for _ in range(3)]
    assert taken == finished == [0, 1, 2]  # each read a contiguous run of the subscription, in order
    assert most[0] == 1
    assert ahead.take("projects/p/subscriptions/s") is None


def test_a_pull_over_4_mib_is_received_and_its_size_is_known_without_visiting_its_messages(
    pubsub_topics,
) -> None:
    from google.pubsub_v1 import PullResponse

    ref = pubsub_topics.create(ack_deadline_s=600)
    publisher = clients.pubsub_publisher()
    sent = [bytes([65 + i]) * 60_000 for i in range(100)]  # 6 MB: gRPC's default receive limit is 4 MiB
    for future in [publisher.publish(ref.topic, data) for data in sent]:
        future.result(timeout=30)
    subscriber = clients.new_pubsub_client("subscriber")
    received = []
    deadline = time.monotonic() + 30
    while len(received) < 100 and time.monotonic() < deadline:
        clients.forget_pull_bytes()
        response = subscriber.pull(subscription=ref.subscription, max_messages=1000, timeout=5)
        assert clients.last_pull_bytes() == PullResponse.pb(response).ByteSize()
        received += response.received_messages
    subscriber.acknowledge(subscription=ref.subscription, ack_ids=[pulled.ack_id for pulled in received])
    assert sorted(pulled.message.data for pulled in received) == sorted(sent)


def test_a_backlog_of_large_messages_is_read_in_reads_of_about_max_bytes(pubsub_topics) -> None:
    """250 messages of 100 KB, reads of at most 1,000 messages and 2 MiB: the first read, before any size is
    known, is one pull (the emulator's 100 messages) and not merged with more; the next ones ask for as many
    messages as 2 MiB holds. Without the byte bound the first read merged all 250 (25 MB)."""
    from pipeline.local_runner import PULLS_AHEAD

    ref = pubsub_topics.create(ack_deadline_s=600)
    publisher = clients.pubsub_publisher()
    sent = [f"{i:04d}".encode() * 25_000 for i in range(250)]
    for future in [publisher.publish(ref.topic, data) for data in sent]:
        future.result(timeout=60)
    limit = 2 << 20
    fast = FastPullClient(
        clients.new_pubsub_client("subscriber"), max_messages=1000, timeout=2.0, max_bytes=limit
    )
    reads = []
    deadline = time.monotonic() + 60
    while sum(len(read) for read in reads) < 250 and time.monotonic() < deadline:
        read = list(fast.pull(ref.subscription).received_messages)
        if read:
            reads.append(read)
            fast.acknowledge(ref.subscription, [pulled.ack_id for pulled in read])
    assert ACKNOWLEDGEMENTS.wait(timeout=10) == 0
    PULLS_AHEAD.release()
    assert sorted(pulled.message.data for read in reads for pulled in read) == sorted(sent)
    assert len(reads[0]) <= FastPullClient.FULL_PULL
    for read in reads[1:]:
        assert sum(len(pulled.message.data) for pulled in read) <= limit + 100_000


def test_the_test_harness_pulls_100_messages_of_1_mib_whole(pubsub_topics) -> None:
    """``harness.pull_all`` (what the tests read dead letters with) asks for 100 messages a pull: 100 dead
    letters near the 1 MiB payload limit make a 100 MiB pull, which the subscriber receives (with gRPC's
    default 4 MiB limit every such pull failed, and the harness retried until its timeout, losing them)."""
    from tests.stream import harness

    ref = pubsub_topics.create(ack_deadline_s=600)
    publisher = clients.pubsub_publisher()
    sent = [bytes([65 + i % 26]) * (1 << 20) + str(i).encode() for i in range(100)]
    for future in [publisher.publish(ref.topic, data, n=str(i)) for i, data in enumerate(sent)]:
        future.result(timeout=60)
    received = harness.pull_all(ref.subscription, expected=100, timeout=60)
    assert sorted(message.data for message in received) == sorted(sent)
