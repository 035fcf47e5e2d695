"""How a local streaming pipeline stops: ``--exit_when_idle``, SIGTERM and Ctrl-C (a real process each)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

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
    """A steady stream (100 messages a second, with invalid messages and lookups whose event comes later);
    the pipeline is stopped with the signal mid-stream, then a new one takes the rest until it is idle. Every
    published message is then applied (its occurrence in Spanner) or dead-lettered, and none both."""
    environment = drain.make_environment("stop")
    try:
        stream = drain.make_stream(1200, 30, seed=signal_number)
        log = tmp_path / "pipelines.log"
        args = environment.pipeline_args()
        pipeline = drain.Pipeline(args, log).start()
        pipeline.wait_streaming()
        publisher = drain.SteadyPublisher(environment.topic, stream, rate=100).start()
        time.sleep(5.0)  # mid-stream: about 500 of the 1,200 published
        pipeline.stop(signal_number)
        stopped = pipeline.wait(timeout=120)
        assert stopped.exit_code == 0, pipeline.output()[-3000:]
        assert not publisher.done, "the stream ended before the stop"
        publisher.join(timeout=120)
        last = drain.run_pipeline([*args, "--exit_when_idle=10s"], log, stop_after=None, signal_number=0)
        assert last.exit_code == 0, log.read_text()[-3000:]
        result = drain.tally(environment.database, environment.dead_letter_subscription, publisher.ids)
        assert result.published == len(stream)
        assert (result.lost, result.doubled) == ([], []), result.text()
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


def _occurrences(database) -> int:
    with database.snapshot() as snapshot:
        return next(iter(snapshot.execute_sql("SELECT COUNT(*) FROM Occurrences")))[0]
