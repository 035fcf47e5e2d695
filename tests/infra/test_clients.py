"""Process-wide clients: one per key, correct on the emulator, clear errors without configuration; the fixtures."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from google.cloud.spanner import KeySet

from transforms import private_api
from transforms.storage import clients

REPO = Path(__file__).resolve().parents[2]


def test_same_database_gives_the_same_handle_and_others_do_not(spanner_db) -> None:
    a = clients.spanner_database(spanner_db.project, spanner_db.instance, spanner_db.database_id)
    b = clients.spanner_database(spanner_db.project, spanner_db.instance, spanner_db.database_id)
    other = clients.spanner_database(spanner_db.project, spanner_db.instance, "another")
    assert a is b is spanner_db.database
    assert other is not a
    assert clients.spanner_client(spanner_db.project) is clients.spanner_client(spanner_db.project)


def test_clients_follow_the_emulator_host_they_were_made_for(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    on_stack = clients.spanner_client("test-project")
    monkeypatch.setenv(clients.SPANNER_EMULATOR_VAR, "localhost:1")
    elsewhere = clients.spanner_client("test-project")
    assert elsewhere is not on_stack
    monkeypatch.setenv(clients.SPANNER_EMULATOR_VAR, stack.spanner_host)
    assert clients.spanner_client("test-project") is on_stack


def test_emulator_clients_use_sessions_that_keep_concurrent_read_write_transactions(spanner_db) -> None:
    """With multiplexed read-write sessions the emulator lost concurrent transactions' updates."""
    assert os.environ[clients.MULTIPLEXED_RW_VAR] == "false"
    db = spanner_db.database
    with db.batch() as batch:
        batch.insert(
            "Releases", ["ProjectId", "Version", "FirstSeen"], [[1, "counter", "2024-01-01T00:00:00Z"]]
        )
        batch.insert(
            "KeyStates",
            ["ProjectId", "PrimaryHash", "Generation", "Seq", "UpdatedAt"],
            [[1, "h", 0, 0, "2024-01-01T00:00:00Z"]],
        )

    def increment(transaction) -> None:
        (seq,) = next(iter(transaction.read("KeyStates", ["Seq"], KeySet(keys=[[1, "h"]]))))
        transaction.update("KeyStates", ["ProjectId", "PrimaryHash", "Seq"], [[1, "h", seq + 1]])

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(8):
                clients.spanner_database(
                    spanner_db.project, spanner_db.instance, spanner_db.database_id
                ).run_in_transaction(increment)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.snapshot() as snapshot:
        assert list(snapshot.read("KeyStates", ["Seq"], KeySet(keys=[[1, "h"]]))) == [[32]]


def test_pubsub_topics_fixture_publishes_and_pulls_with_attributes(pubsub_topics) -> None:
    topic = pubsub_topics.create("roundtrip")
    message_id = pubsub_topics.publish(topic, b"payload", kind="occurrence")
    messages = pubsub_topics.pull(topic, timeout_s=10)
    assert [(m.message_id, m.data, dict(m.attributes)) for m in messages] == [
        (message_id, b"payload", {"kind": "occurrence"})
    ]
    assert clients.pubsub_publisher() is clients.pubsub_publisher()


def test_redis_namespace_is_unique_and_emptied_after_the_test(redis_ns, stack) -> None:
    assert redis_ns.url == os.environ["REDIS_URL"] == stack.redis_url
    assert clients.redis_client(redis_ns.url) is redis_ns.client
    redis_ns.client.set(redis_ns.key("a"), "1")
    assert redis_ns.client.get(redis_ns.key("a")) == b"1"
    assert redis_ns.key("a").startswith("test:")


def test_redis_url_missing_or_invalid_is_explained() -> None:
    with pytest.raises(ValueError, match="No Redis URL: pass --redis_url"):
        clients.redis_client("")
    with pytest.raises(ValueError, match="Invalid Redis URL 'localhost:6379'"):
        clients.redis_client("localhost:6379")


@pytest.mark.parametrize(
    ("call", "variable"),
    [("spanner_client('p')", "SPANNER_EMULATOR_HOST"), ("pubsub_publisher()", "PUBSUB_EMULATOR_HOST")],
)
def test_without_emulator_or_credentials_the_error_says_what_to_set(
    tmp_path: Path, call: str, variable: str
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "NO_GCE_CHECK": "true",  # never probe the metadata server from a test
    }
    code = (
        "from transforms.storage import clients\n"
        "try:\n"
        f"    clients.{call}\n"
        "except clients.MissingCredentialsError as e:\n"
        "    print(e)\n"
        "else:\n"
        "    print('no error')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert f"{variable} is not set and no Google credentials were found" in result.stdout, result.stderr
    assert "python -m pipeline.stack start" in result.stdout
    assert "gcloud auth application-default login" in result.stdout


def test_fault_injecting_emulator_aborts_commits_and_retried_transactions_still_succeed(
    fault_spanner_db,
) -> None:
    assert os.environ[clients.SPANNER_EMULATOR_VAR] == fault_spanner_db.emulator_host
    db = fault_spanner_db.database
    attempts = 0

    def insert(transaction, version: str) -> None:
        nonlocal attempts
        attempts += 1
        transaction.insert(
            "Releases", ["ProjectId", "Version", "FirstSeen"], [[1, version, "2024-01-01T00:00:00Z"]]
        )

    committed = 0
    while attempts == committed and committed < 300:  # until the emulator has aborted at least one commit
        db.run_in_transaction(insert, f"v{committed}")
        committed += 1
    with db.snapshot() as snapshot:
        (count,) = next(iter(snapshot.execute_sql("SELECT COUNT(*) FROM Releases")))
    assert count == committed
    assert attempts > committed, (
        "no commit was aborted: is the emulator running with --enable_fault_injection?"
    )


def test_emulator_clients_keep_concurrent_read_only_snapshots(spanner_db) -> None:
    """On the one multiplexed session the emulator lost concurrent multi-use snapshots ("Transaction not
    found"); the streaming pipeline reads in the background beside its flushes and commits."""
    assert os.environ[clients.MULTIPLEXED_VAR] == "false"
    database = clients.spanner_database(spanner_db.project, spanner_db.instance, spanner_db.database_id)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for n in range(20):
                with database.snapshot(multi_use=True) as snapshot:
                    list(snapshot.read("Events", ["ProjectId"], KeySet(keys=[[1, f"{n:032x}"]])))
                    list(snapshot.read("KeyStates", ["ProjectId"], KeySet(keys=[[1, f"{n:032x}"]])))
        except BaseException as e:  # reported below
            errors.append(e)

    def writer() -> None:
        try:
            for n in range(20):
                with database.batch() as batch:
                    batch.insert_or_update(
                        "Releases",
                        ["ProjectId", "Version", "FirstSeen"],
                        [[1, f"v{n}", "2024-01-01T00:00:00Z"]],
                    )
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_pooled_sessions_are_reused_without_a_round_trip_until_idle_too_long(
    spanner_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's default pool asked the server whether a session exists before every read and commit."""
    from google.cloud.spanner_v1.session import Session

    database = clients.spanner_database(spanner_db.project, spanner_db.instance, spanner_db.database_id)
    pool = database._pool
    assert type(pool).__name__ == "RecentSessionsPool"
    checked: list[Session] = []
    exists = Session.exists
    monkeypatch.setattr(Session, "exists", lambda self: checked.append(self) or exists(self))

    def read() -> list:
        with database.snapshot() as snapshot:
            return list(snapshot.read("Releases", ["ProjectId"], KeySet(all_=True)))

    for _ in range(5):
        assert read() == []
    assert checked == []
    session = pool.get()
    session.delete()  # as the server does with a session idle for an hour
    pool.put(session)
    monkeypatch.setattr(pool, "MAX_IDLE_SECONDS", 0)
    assert read() == []  # the deleted session was found out and replaced
    assert checked == [session]


def test_the_subscriber_transport_copies_the_pull_of_the_installed_pubsub_library() -> None:
    assert private_api.target_problems(clients.SIZED_PULL) == []


def test_pulls_tell_their_size_and_without_the_copied_pull_the_librarys_transport_is_used(
    pubsub_topics, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A pull through our subscriber notes its size as received; on a library whose ``pull`` is not what
    ours was copied from, the library's own transport pulls the same messages, without a size."""
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    ref = pubsub_topics.create(ack_deadline_s=600)
    for index in range(3):
        pubsub_topics.publish(ref, f"message {index}".encode())
    subscriber = clients.new_pubsub_client("subscriber")
    clients.forget_pull_bytes()
    pulled = subscriber.pull(subscription=ref.subscription, max_messages=10, timeout=10)
    assert len(pulled.received_messages) == 3
    assert clients.last_pull_bytes() > sum(len(m.message.data) for m in pulled.received_messages)
    subscriber.modify_ack_deadline(
        subscription=ref.subscription,
        ack_ids=[m.ack_id for m in pulled.received_messages],
        ack_deadline_seconds=0,
    )

    changed = dataclasses.replace(clients.SIZED_PULL, sha256=("0" * 64,))
    monkeypatch.setattr(clients, "SIZED_PULL", changed)
    with caplog.at_level(logging.WARNING, logger=clients.__name__):
        transport = clients._sized_subscriber_transport.__wrapped__()
    assert transport is SubscriberGrpcTransport
    assert "SubscriberGrpcTransport.pull changed" in caplog.text
    monkeypatch.setattr(clients, "_sized_subscriber_transport", lambda: transport)
    plain = clients.new_pubsub_client("subscriber")
    clients.forget_pull_bytes()
    again = plain.pull(subscription=ref.subscription, max_messages=10, timeout=10)
    assert sorted(m.message.data for m in again.received_messages) == [
        f"message {i}".encode() for i in range(3)
    ]
    assert clients.last_pull_bytes() is None
