"""Graceful stops under a steady load: how many messages a stopped pipeline loses.

    python -m bench.drain [--messages 4000] [--rate 100] [--stops 3] [--signal TERM|INT] [--keys 40]

Needs the local stack (``python -m pipeline.stack start``; ``eval "$(python -m pipeline.stack env)"``). On a
database and topics of its own, it publishes a steady stream of ``--messages`` messages at ``--rate`` a
second (Pub/Sub's publish time is the message time): occurrences of the error type with their event over
``--keys`` keys, every one a new occurrence (so each applied one is a row of Occurrences), 5% invalid ones
(dead letters) and 3% occurrences that look up the event of an occurrence published later (they wait for it
in their key's state, across stops; a third of them, and the first, on keys of their own that get no other
message). Meanwhile it runs ``python -m pipeline.stream`` as real processes, one
after the other, and stops each of the first ``--stops`` with the signal (SIGTERM, or SIGINT as Ctrl-C
sends) 2 to 5 s after it started streaming, while the stream goes on (each start takes a few seconds, during
which the stream waits on the subscription); the last one runs until it has been idle for 10 s
(``--exit_when_idle``). Then it counts, for every message published, whether it was applied (its occurrence
is in Spanner) or dead-lettered (on the dead-letter subscription): a message that is neither was lost, one
that is both was doubled. A lookup still waiting for its event in its key's saved state when the last
pipeline stops is counted apart, as waiting: every event has been published by then, so none should be (each
pipeline takes up, when it starts, the keys whose saved state has lookups waiting). It prints each stop (how
long it took, what the pipeline's drain logged) and the totals, and exits 1 if a message was lost, doubled or
left waiting. The creation quota is off (every valid occurrence attaches to its group).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import md5
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
PROJECT = 1
GCP_PROJECT = "bench-project"
INSTANCE = "bench-instance"


@dataclass(frozen=True)
class Sent:
    """One message of the stream: its bytes, and what must become of it."""

    label: str
    data: bytes
    occurrence_id: str | None  # expected among the Occurrences rows; None: expected as a dead letter
    key: str = ""


def make_stream(
    messages: int,
    keys: int,
    seed: int,
    *,
    invalid_share: float = 0.05,
    lookup_share: float = 0.03,
    lonely_share: float = 0.3,
) -> list[Sent]:
    """The stream, in publish order (see the module docstring). A lookup's event is carried by an occurrence
    published later, in the stream's first 80%. A share of the lookups (``lonely_share``, and always the
    first) are on keys of their own, which get no other message: a new pipeline must take them up by itself
    when they waited across a stop (the first one's carrier is the last of that 80%, so it waits longest)."""
    rng = random.Random(seed)
    stream: list[Sent | None] = [None] * messages
    window = int(messages * 0.8)
    lookups: dict[int, int] = {}  # index of the carrier -> index of the lookup
    for index in range(int(messages * 0.6)):
        if rng.random() < lookup_share:
            carrier = window - 1 if not lookups else rng.randrange(index + 1, window)
            if carrier not in lookups and carrier not in lookups.values() and index not in lookups:
                lookups[carrier] = index
    looked_up = {lookup: carrier for carrier, lookup in lookups.items()}
    first_lookup = min(looked_up, default=None)
    for index in range(messages):
        label = f"{seed}-{index}"
        key = f"drain-key-{rng.randrange(keys)}"
        occurrence_id = md5(f"occurrence:{label}".encode()).hexdigest()
        if index in looked_up:
            if index == first_lookup or rng.random() < lonely_share:
                key = f"drain-lonely-{label}"
            event_id = md5(f"event:{seed}-{looked_up[index]}".encode()).hexdigest()
            payload = _occurrence(occurrence_id, key, event_id, with_event=False)
        elif index not in lookups and rng.random() < invalid_share:
            stream[index] = Sent(label, b'{"payload_type": "occurrence", "id": "not a uuid"}', None, key)
            continue
        else:
            event_id = md5(f"event:{label}".encode()).hexdigest()
            payload = _occurrence(occurrence_id, key, event_id, with_event=True)
        stream[index] = Sent(label, orjson.dumps(payload), occurrence_id, key)
    return [sent for sent in stream if sent is not None]


def _occurrence(occurrence_id: str, key: str, event_id: str, *, with_event: bool) -> dict:
    now = time.time()
    payload = {
        "payload_type": "occurrence",
        "id": occurrence_id,
        "project_id": PROJECT,
        "event_id": event_id,
        "fingerprint": [key],
        "issue_title": f"drain {key}",
        "subtitle": "steady load",
        "type": 1,
        "detection_time": now,
        "evidence_display": [],
        "level": "error",
    }
    if with_event:
        payload["event"] = {
            "event_id": event_id,
            "project_id": PROJECT,
            "platform": "python",
            "timestamp": now,
        }
    return payload


class SteadyPublisher:
    """Publishes the stream at ``rate`` messages a second from a thread; ``ids`` maps each Pub/Sub message id
    to its ``Sent``."""

    def __init__(self, topic: str, stream: Sequence[Sent], rate: float) -> None:
        self.topic = topic
        self.stream = list(stream)
        self.rate = rate
        self.ids: dict[str, Sent] = {}
        self.published = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="steady-publisher", daemon=True)

    def start(self) -> SteadyPublisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        from transforms.storage import clients

        try:
            publisher = clients.pubsub_publisher()
            started = time.monotonic()
            futures = []
            for index, sent in enumerate(self.stream):
                due = started + index / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(
                    (sent, publisher.publish(self.topic, sent.data, content_type="application/json"))
                )
                self.published = index + 1
            for sent, future in futures:
                self.ids[future.result(timeout=60)] = sent
        except BaseException as error:  # reported by ``join``
            self.error = error

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the publisher did not finish")
        if self.error is not None:
            raise self.error


@dataclass
class Tally:
    published: int = 0
    applied: int = 0
    dead_lettered: int = 0
    waiting: int = 0  # saved in their key's state, waiting for their event (see ``tally``)
    lost: list[str] = field(default_factory=list)  # labels
    doubled: list[str] = field(default_factory=list)

    def text(self) -> str:
        return (
            f"published {self.published:,}, applied {self.applied:,}, dead-lettered {self.dead_lettered:,}, "
            f"waiting in their key's saved state {self.waiting:,}, lost {len(self.lost):,}, "
            f"doubled {len(self.doubled):,}"
        )


def tally(database, dead_letter_subscription: str, ids: dict[str, Sent]) -> Tally:
    """What became of every published message (see the module docstring). An occurrence that looks its event
    up and is still waiting for it when the last pipeline stops is in its key's saved state: it is counted
    apart (``waiting``), not as lost."""
    from transforms.core.engine import decode_state
    from transforms.core.model import group_key
    from transforms.storage import state_store

    with database.snapshot() as snapshot:
        stored = {row[0] for row in snapshot.execute_sql("SELECT OccurrenceId FROM Occurrences")}
    dead = {message.attributes.get("original_message_id") for message in pull_all(dead_letter_subscription)}
    keys = {group_key(PROJECT, md5(sent.key.encode()).hexdigest()) for sent in ids.values()}
    waiting = {
        lookup.occurrence.id
        for state in state_store.read_key_states(database, keys).values()
        for lookup in decode_state(state).waiting
    }
    result = Tally(published=len(ids))
    for message_id, sent in ids.items():
        applied = sent.occurrence_id is not None and sent.occurrence_id in stored
        dead_lettered = message_id in dead
        result.applied += applied
        result.dead_lettered += dead_lettered
        if applied and dead_lettered:
            result.doubled.append(sent.label)
        elif not applied and not dead_lettered:
            if sent.occurrence_id in waiting:
                result.waiting += 1
            else:
                result.lost.append(sent.label)
    return result


def pull_all(subscription: str, quiet: float = 3.0) -> list:
    """Every message waiting on ``subscription``, acknowledged, until none came for ``quiet`` seconds."""
    from google.api_core.exceptions import DeadlineExceeded

    from transforms.storage import clients

    subscriber = clients.pubsub_subscriber()
    received: list = []
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        try:
            response = subscriber.pull(subscription=subscription, max_messages=1000, timeout=2.0)
        except DeadlineExceeded:  # an idle subscription; any other failure must not pass for "none left"
            continue
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
            received.extend(m.message for m in response.received_messages)
            last = time.monotonic()
    return received


@dataclass
class Environment:
    database: object
    database_id: str
    topic: str
    subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str

    def pipeline_args(self) -> list[str]:
        from pipeline.options import spanner_args

        return [
            f"--input_subscription={self.subscription}",
            f"--dead_letter_topic={self.dead_letter_topic}",
            *spanner_args(GCP_PROJECT, INSTANCE, self.database_id),
            "--no_creation_quota",
            "--progress_interval=600s",
        ]


def make_environment(name: str = "drain") -> Environment:
    """A database with project 1 registered, an input topic and a dead-letter topic, each with a subscription."""
    from pipeline import admin
    from transforms.storage import clients, registry

    unique = f"{name}-{uuid.uuid4().hex[:8]}"
    database_id = f"d{uuid.uuid4().hex[:12]}"
    admin.ensure_instance(GCP_PROJECT, INSTANCE)
    admin.create_database(GCP_PROJECT, INSTANCE, database_id)
    database = clients.spanner_database(GCP_PROJECT, INSTANCE, database_id)
    registry.register_project(database, project_id=PROJECT, organization_id=1, slug="drain")
    publisher, subscriber = clients.pubsub_publisher(), clients.pubsub_subscriber()
    paths = []
    for suffix in ("", "-dead"):
        topic = publisher.topic_path(GCP_PROJECT, unique + suffix)
        subscription = subscriber.subscription_path(GCP_PROJECT, unique + suffix + "-sub")
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=60)
        paths += [topic, subscription]
    return Environment(database, database_id, *paths)


def drop_environment(environment: Environment) -> None:
    from transforms.storage import clients

    publisher, subscriber = clients.pubsub_publisher(), clients.pubsub_subscriber()
    for subscription in (environment.subscription, environment.dead_letter_subscription):
        subscriber.delete_subscription(subscription=subscription)
    for topic in (environment.topic, environment.dead_letter_topic):
        publisher.delete_topic(topic=topic)
    clients.forget_database(GCP_PROJECT, INSTANCE, environment.database_id)
    environment.database.drop()


@dataclass
class Stop:
    """One pipeline process and how it ended."""

    ran: float  # seconds from its start to the signal (or to its exit)
    exit_seconds: float  # from the signal to its exit
    exit_code: int
    drain_lines: list[str]


STARTED_LINE = "streaming locally"  # what pipeline.stream logs once its pipeline runs


# ``python -m pipeline.stream`` with SIGINT's default handler restored first: a shell's background job starts
# with SIGINT ignored, and a child inherits that (Python then installs no KeyboardInterrupt handler, and a Ctrl-C
# stop would never arrive). Restored in the child's Python rather than by ``preexec_fn``: a ``preexec_fn`` makes
# subprocess fork() where it would vfork(), so gRPC's fork handlers run in a process with busy channels, and
# grpcio 1.85 then aborts the child now and then before it execs ("epoll_wait ... Bad file descriptor", exit
# -6; https://github.com/grpc/grpc/issues/43055): 6 and 10 of 400 spawns beside busy Spanner clients with a
# preexec_fn, 0 and 0 without.
_STREAM_WITH_SIGINT = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('pipeline.stream', run_name='__main__', alter_sys=True)"
)


class Pipeline:
    """``python -m pipeline.stream ARGS`` as a process of its own, its output appended to ``log``."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        self.args = list(args)
        self.log = log
        self._offset = log.stat().st_size if log.exists() else 0
        self.process: subprocess.Popen | None = None
        self.started = self.signalled = 0.0

    def start(self) -> Pipeline:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _STREAM_WITH_SIGINT, *self.args],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()
        return self

    def output(self) -> str:
        """What this process logged."""
        with self.log.open("rb") as file:
            file.seek(self._offset)
            return file.read().decode(errors="replace")

    def wait_streaming(self, timeout: float = 300.0) -> None:
        """Wait until it logged that its pipeline runs."""
        assert self.process is not None
        while STARTED_LINE not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"the pipeline exited ({self.process.returncode}) before streaming")
            if time.monotonic() - self.started > timeout:
                raise RuntimeError(f"the pipeline did not start streaming within {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self, signal_number: int) -> None:
        assert self.process is not None
        self.signalled = time.monotonic()
        self.process.send_signal(signal_number)

    def wait(self, timeout: float = 300.0) -> Stop:
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"the pipeline did not exit within {timeout:.0f} s; see {self.log}") from None
        ended = time.monotonic()
        lines = [line for line in self.output().splitlines() if "drain" in line.lower()]
        if not self.signalled:
            return Stop(ended - self.started, 0.0, code, lines)
        return Stop(self.signalled - self.started, ended - self.signalled, code, lines)


def run_pipeline(
    args: Sequence[str], log: Path, *, stop_after: float | None, signal_number: int, timeout: float = 300.0
) -> Stop:
    """Run a pipeline; ``stop_after`` seconds after it logged that it streams, send it the signal (None: let
    it exit by itself, e.g. with ``--exit_when_idle``); wait for it to exit."""
    pipeline = Pipeline(args, log).start()
    if stop_after is not None:
        pipeline.wait_streaming(timeout)
        try:
            pipeline.process.wait(timeout=stop_after)
        except subprocess.TimeoutExpired:
            pipeline.stop(signal_number)
    return pipeline.wait(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=100.0, help="messages published a second")
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument("--stops", type=int, default=3, help="pipelines stopped with the signal mid-stream")
    parser.add_argument("--signal", choices=("TERM", "INT"), default="TERM")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", default="/tmp/bench-drain.log", help="the pipelines' output")
    parser.add_argument("--pipeline-arg", action="append", default=[], help="extra flag for pipeline.stream")
    args = parser.parse_args(argv)
    missing = [v for v in ("SPANNER_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST") if not os.environ.get(v)]
    if missing:
        sys.exit(f'set {", ".join(missing)} first: eval "$(python -m pipeline.stack env)" (stack running)')
    signal_number = signal.SIGTERM if args.signal == "TERM" else signal.SIGINT
    stream = make_stream(args.messages, args.keys, args.seed)
    rng = random.Random(args.seed)
    log = Path(args.log)
    log.write_text("")
    environment = make_environment()
    try:
        pipeline_args = [*environment.pipeline_args(), *args.pipeline_arg]
        publisher = None
        print(
            f"{len(stream):,} messages at {args.rate:g}/s ({len(stream) / args.rate:.0f} s); pipelines log to {log}"
        )
        for number in range(args.stops):
            pipeline = Pipeline(pipeline_args, log).start()
            pipeline.wait_streaming()
            if publisher is None:  # the stream starts once the first pipeline runs
                publisher = SteadyPublisher(environment.topic, stream, args.rate).start()
            time.sleep(rng.uniform(2.0, 5.0))
            if publisher.done:
                pipeline.stop(signal_number)
                pipeline.wait()
                print(f"stop {number + 1}: the stream had ended; no more stops mid-stream")
                break
            published = publisher.published
            pipeline.stop(signal_number)
            stop = pipeline.wait()
            print(
                f"stop {number + 1}: SIG{args.signal} {stop.ran:.1f} s after the start, {published:,} published; "
                f"exited {stop.exit_code} {stop.exit_seconds:.1f} s after the signal"
            )
            for line in stop.drain_lines:
                print(f"    {line.split(': ', 1)[-1]}")
        assert publisher is not None
        publisher.join(timeout=len(stream) / args.rate + 120)
        last = run_pipeline([*pipeline_args, "--exit_when_idle=10s"], log, stop_after=None, signal_number=0)
        print(f"last pipeline (--exit_when_idle=10s): exited {last.exit_code} after {last.ran:.1f} s")
        result = tally(environment.database, environment.dead_letter_subscription, publisher.ids)
        print(result.text())
        if result.lost:
            print(f"lost: {', '.join(sorted(result.lost)[:20])}{' ...' if len(result.lost) > 20 else ''}")
        return 0 if not result.lost and not result.doubled and not result.waiting else 1
    finally:
        drop_environment(environment)


if __name__ == "__main__":
    sys.exit(main())
