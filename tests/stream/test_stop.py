"""How a local streaming pipeline stops: ``--exit_when_idle``, SIGTERM and Ctrl-C (a real process each)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from bench import drain
from tests.stream.environment import StreamEnv


def test_exit_when_idle_counts_from_the_start_when_nothing_is_ever_read(
    env: StreamEnv, tmp_path: Path
) -> None:
    """On an empty subscription the idle time runs from the pipeline's first read: it exits (0) once it has
    had nothing to do for that long, rather than waiting for a first message."""
    pipeline = drain.Pipeline(env.args("--exit_when_idle=3s"), tmp_path / "pipeline.log").start()
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
