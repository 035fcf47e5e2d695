"""How a local streaming pipeline stops: ``--exit_when_idle``, SIGTERM and Ctrl-C (a real process each)."""

from __future__ import annotations

import signal
import time
from hashlib import md5
from pathlib import Path

import orjson
import pytest

from bench import drain
from tests.stream.environment import StreamEnv


@pytest.mark.parametrize("patches", [True, False], ids=["patched", "beams-runner"])
def test_exit_when_idle_counts_from_the_start_when_nothing_is_ever_read(
    env: StreamEnv, tmp_path: Path, patches: bool
) -> None:
    """On an empty subscription the idle time runs from the pipeline's first read (from the pipeline's start
    on Beam's runner without our patches): it exits (0) once it has had nothing to do for that long, rather
    than waiting for a first message."""
    args = env.args("--exit_when_idle=3s", *([] if patches else ["--no_local_runner_patches"]))
    pipeline = drain.Pipeline(args, tmp_path / "pipeline.log").start()
    stopped = pipeline.wait(timeout=120)
    assert stopped.exit_code == 0, pipeline.output()[-3000:]
    assert stopped.ran >= 3
    assert "nothing read or applied for" in pipeline.output()


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_graceful_stop_mid_stream_loses_nothing(
    stack, spanner_instance, tmp_path: Path, signal_number
) -> None:
    """A steady stream (100 messages a second, with invalid messages and lookups whose event comes later,
    some on keys that get no other message); the pipeline is stopped with the signal mid-stream, then a new
    one takes the rest until it is idle. Every published message is then applied (its occurrence in Spanner)
    or dead-lettered, none both, and none is left waiting for its event."""
    environment = drain.make_environment("stop")
    try:
        stream = drain.make_stream(1200, 30, seed=signal_number)
        log = tmp_path / "pipelines.log"
        args = environment.pipeline_args()
        pipeline = drain.Pipeline(args, log).start()
        pipeline.wait_streaming()
        publisher = drain.SteadyPublisher(environment.topic, stream, rate=100).start()
        time.sleep(5.0)  # mid-stream: about 500 of the 1,200 published
        # Mid-stream when the signal is sent (how long the stop then takes, under load, is not the question).
        assert not publisher.done, "the stream ended before the stop"
        pipeline.stop(signal_number)
        stopped = pipeline.wait(timeout=120)
        assert stopped.exit_code == 0, pipeline.output()[-3000:]
        publisher.join(timeout=120)
        last = drain.run_pipeline([*args, "--exit_when_idle=10s"], log, stop_after=None, signal_number=0)
        assert last.exit_code == 0, log.read_text()[-3000:]
        result = drain.tally(environment.database, environment.dead_letter_subscription, publisher.ids)
        assert result.published == len(stream)
        assert (result.lost, result.doubled, result.waiting) == ([], [], 0), result.text()
    finally:
        drain.drop_environment(environment)


def test_an_occurrence_left_waiting_for_its_event_at_a_stop_is_applied_by_the_next_pipeline(
    stack, spanner_instance, tmp_path: Path
) -> None:
    """An occurrence that looks its event up, on a key that gets no other message: the pipeline is stopped
    (SIGTERM) while it waits, so it is saved in its key's state. Its event comes afterwards, on another key.
    The next pipeline takes the waiting occurrence up by itself (its key gets no message to wake it) and
    applies it, within the lookup retry window."""
    environment = drain.make_environment("waiting")
    try:
        event_id, lookup_id, carrier_id = (md5(f"waiting:{n}".encode()).hexdigest() for n in range(3))
        lookup = drain.Sent(
            "lookup",
            orjson.dumps(drain._occurrence(lookup_id, "lonely", event_id, with_event=False)),
            lookup_id,
            "lonely",
        )
        carrier = drain.Sent(
            "carrier",
            orjson.dumps(drain._occurrence(carrier_id, "busy", event_id, with_event=True)),
            carrier_id,
            "busy",
        )
        log = tmp_path / "pipelines.log"
        args = [*environment.pipeline_args(), "--lookup_retry_interval=1s"]
        pipeline = drain.Pipeline(args, log).start()
        pipeline.wait_streaming()
        ids = _publish(environment.topic, [lookup])
        time.sleep(6.0)  # pulled, held, flushed: it waits for its event
        pipeline.stop(signal.SIGTERM)
        assert pipeline.wait(timeout=120).exit_code == 0, pipeline.output()[-3000:]
        before = drain.tally(environment.database, environment.dead_letter_subscription, ids)
        assert (before.applied, before.waiting) == (0, 1), before.text()
        ids.update(_publish(environment.topic, [carrier]))
        last = drain.run_pipeline([*args, "--exit_when_idle=10s"], log, stop_after=None, signal_number=0)
        assert last.exit_code == 0, log.read_text()[-3000:]
        after = drain.tally(environment.database, environment.dead_letter_subscription, ids)
        assert (after.applied, after.waiting, after.lost) == (2, 0, []), after.text()
    finally:
        drain.drop_environment(environment)


def _publish(topic: str, messages: list[drain.Sent]) -> dict[str, drain.Sent]:
    from transforms.storage import clients

    publisher = clients.pubsub_publisher()
    futures = [
        (sent, publisher.publish(topic, sent.data, content_type="application/json")) for sent in messages
    ]
    return {future.result(timeout=60): sent for sent, future in futures}


def _timed(sent: drain.Sent, seconds_from_now: float) -> tuple[drain.Sent, dict[str, str]]:
    """The message with its time in the ``ts`` attribute, ``seconds_from_now`` from now."""
    from transforms.core.model import MICROS, to_rfc3339

    return sent, {"ts": to_rfc3339(int((time.time() + seconds_from_now) * MICROS))}


def _occurrence_sent(name: str, key: str) -> drain.Sent:
    occurrence_id = md5(f"{name}:occurrence".encode()).hexdigest()
    event_id = md5(f"{name}:event".encode()).hexdigest()
    payload = drain._occurrence(occurrence_id, key, event_id, with_event=True)
    return drain.Sent(name, orjson.dumps(payload), occurrence_id, key)


def test_a_stop_applies_what_waits_for_the_watermark_and_saves_what_is_held_for_the_next_pipeline(
    stack, spanner_instance, tmp_path: Path
) -> None:
    """What a key buffers is applied when the pipeline stops, even messages the watermark has not passed (a
    time an hour ahead, from ``--timestamp_attribute``), by SIGTERM and by ``--exit_when_idle``; what is held
    on purpose, a status change waiting for its group, is saved in its key's state and applied by the next
    pipeline once a late occurrence creates the group."""
    from transforms.core.engine import decode_state
    from transforms.core.enums import GroupStatus
    from transforms.core.model import group_key
    from transforms.storage import state_store

    environment = drain.make_environment("held")
    try:
        change = drain.Sent(
            "change",
            orjson.dumps(
                {
                    "payload_type": "status_change",
                    "id": md5(b"held:change").hexdigest(),
                    "project_id": drain.PROJECT,
                    "fingerprint": ["held"],
                    "new_status": int(GroupStatus.RESOLVED),
                    "new_substatus": None,
                }
            ),
            None,
            "held",
        )
        ahead = _occurrence_sent("ahead", "ahead")
        log = tmp_path / "pipelines.log"
        args = [*environment.pipeline_args(), "--timestamp_attribute=ts"]
        pipeline = drain.Pipeline(args, log).start()
        pipeline.wait_streaming()
        _publish_with(environment.topic, [_timed(change, -1), _timed(ahead, 3600)])
        time.sleep(6.0)  # read: the change is taken in and held, the other waits for the watermark
        pipeline.stop(signal.SIGTERM)
        assert pipeline.wait(timeout=120).exit_code == 0, pipeline.output()[-3000:]
        assert "drain complete" in pipeline.output()
        assert _stored(environment.database) == {ahead.occurrence_id}
        key = group_key(drain.PROJECT, md5(b"held").hexdigest())
        (saved,) = state_store.read_key_states(environment.database, [key]).values()
        assert len(decode_state(saved).held) == 1  # saved, not dropped

        # The occurrence that creates the group comes late: its time is before the change's (a held change
        # later than its group's creator is applied after the creation; docs/behaviour.md).
        creator, later = _occurrence_sent("creator", "held"), _occurrence_sent("later", "later")
        _publish_with(environment.topic, [_timed(creator, -120), _timed(later, 3600)])
        last = drain.run_pipeline([*args, "--exit_when_idle=5s"], log, stop_after=None, signal_number=0)
        assert last.exit_code == 0, log.read_text()[-3000:]
        assert _stored(environment.database) == {
            ahead.occurrence_id,
            creator.occurrence_id,
            later.occurrence_id,
        }
        with environment.database.snapshot() as snapshot:
            rows = list(snapshot.execute_sql("SELECT Status FROM `Groups` WHERE Title = 'drain held'"))
        assert rows == [[int(GroupStatus.RESOLVED)]]
    finally:
        drain.drop_environment(environment)


def test_a_drain_that_cannot_finish_in_drain_timeout_ends_and_says_what_it_lost(
    stack, spanner_instance, tmp_path: Path
) -> None:
    environment = drain.make_environment("timeout")
    try:
        log = tmp_path / "pipeline.log"
        args = [*environment.pipeline_args(), "--timestamp_attribute=ts", "--drain_timeout=0s"]
        pipeline = drain.Pipeline(args, log).start()
        pipeline.wait_streaming()
        _publish_with(environment.topic, [_timed(_occurrence_sent(f"m{n}", f"k{n}"), 3600) for n in range(3)])
        time.sleep(6.0)  # read: they wait for the watermark in their keys' buffers
        pipeline.stop(signal.SIGTERM)
        stopped = pipeline.wait(timeout=120)
        assert stopped.exit_code == 0, pipeline.output()[-3000:]
        assert "drain timed out after" in pipeline.output()
        assert "3 messages still in key buffers are lost" in pipeline.output()
        assert "drain incomplete" in pipeline.output()
    finally:
        drain.drop_environment(environment)


def test_without_our_patches_a_stop_after_the_stream_applies_everything_it_read(
    stack, spanner_instance, tmp_path: Path
) -> None:
    """On Beam's runner as it is (``--no_local_runner_patches``): no drain patch (the drain waits until the
    key buffers are empty and nothing moved for a while), no wake-up of the runner's waiter (the stop is
    Beam's cancel), Beam's counters lost (the log gives the pipeline's own counts). A backlog is read and
    applied; SIGTERM once its occurrences are in Spanner drains and stops the pipeline: every message is
    applied or dead-lettered, once."""
    environment = drain.make_environment("stock-stop")
    try:
        stream = drain.make_stream(300, 20, seed=5, lookup_share=0.0)
        publisher = drain.SteadyPublisher(environment.topic, stream, rate=1000).start()
        publisher.join(timeout=120)
        log = tmp_path / "pipeline.log"
        pipeline = drain.Pipeline([*environment.pipeline_args(), "--no_local_runner_patches"], log).start()
        pipeline.wait_streaming()
        expected = sum(1 for sent in stream if sent.occurrence_id is not None)
        deadline = time.monotonic() + 240
        while _occurrences(environment.database) < expected and time.monotonic() < deadline:
            assert pipeline.process.poll() is None, pipeline.output()[-3000:]
            time.sleep(1.0)
        pipeline.stop(signal.SIGTERM)
        stopped = pipeline.wait(timeout=180)
        output = pipeline.output()
        assert stopped.exit_code == 0, output[-3000:]
        assert "without our patches" in output and "drain complete" in output
        assert "the counts below are the pipeline's own" in output
        result = drain.tally(environment.database, environment.dead_letter_subscription, publisher.ids)
        assert result.published == len(stream)
        assert (result.lost, result.doubled) == ([], []), result.text()
    finally:
        drain.drop_environment(environment)


def _publish_with(topic: str, messages: list[tuple[drain.Sent, dict[str, str]]]) -> None:
    from transforms.storage import clients

    publisher = clients.pubsub_publisher()
    futures = [
        publisher.publish(topic, sent.data, content_type="application/json", **attributes)
        for sent, attributes in messages
    ]
    for future in futures:
        future.result(timeout=60)


def _stored(database) -> set[str]:
    with database.snapshot() as snapshot:
        return {row[0] for row in snapshot.execute_sql("SELECT OccurrenceId FROM Occurrences")}


def _occurrences(database) -> int:
    with database.snapshot() as snapshot:
        return next(iter(snapshot.execute_sql("SELECT COUNT(*) FROM Occurrences")))[0]
