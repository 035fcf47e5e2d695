"""The streaming pipeline as a real process (``python -m pipeline.stream``), for what only a process shows:
how it stops (signals, ``--exit_when_idle``) and what it logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class PipelineProcess:
    """``python -m pipeline.stream ARGS`` started in the background, its output in ``log``."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        self.args = list(args)
        self.log = log
        self.started_at = 0.0
        self._process: subprocess.Popen | None = None

    def start(self) -> PipelineProcess:
        with self.log.open("ab") as output:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "pipeline.stream", *self.args],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started_at = time.monotonic()
        return self

    @property
    def process(self) -> subprocess.Popen:
        assert self._process is not None, "not started"
        return self._process

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 120.0) -> float:
        """Wait until ``text`` is in the log; returns the seconds since the start."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"the pipeline exited ({self.process.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)
        return time.monotonic() - self.started_at

    def signal(self, number: int = signal.SIGTERM) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float) -> int:
        """The exit code; fails (and kills the process) if it has not exited within ``timeout`` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the pipeline did not exit within {timeout:.0f} s:\n{self.tail()}"
            ) from None

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])
