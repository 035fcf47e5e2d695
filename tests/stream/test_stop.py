"""How a local streaming pipeline stops: ``--exit_when_idle``, SIGTERM and Ctrl-C (a real process each)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.stream.environment import StreamEnv
from tests.stream.processes import PipelineProcess


def test_exit_when_idle_counts_from_the_start_when_nothing_is_ever_read(
    env: StreamEnv, tmp_path: Path
) -> None:
    """On an empty subscription the idle time runs from the start: the pipeline exits (0) once it has had
    nothing to do for that long, rather than waiting for a first message."""
    run = PipelineProcess(env.args("--exit_when_idle=3s"), tmp_path / "pipeline.log").start()
    try:
        started = time.monotonic()
        assert run.wait(timeout=90) == 0, run.tail()
        elapsed = time.monotonic() - started
    finally:
        run.kill()
    assert elapsed >= 3
    assert "nothing read or applied for" in run.output()
