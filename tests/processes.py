"""The product's entry points as child processes of a test (``python -m pipeline.stream``, ``pipeline.api``),
as users start them, and waiting for what they do."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def start_module(module: str, args: Sequence[str], stdout: IO | int, stderr: IO | int) -> subprocess.Popen:
    """``python -m module args`` from the repository root, importing this checkout."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=stdout,
        stderr=stderr,
    )


def stop(process: subprocess.Popen, timeout: float) -> None:
    """Terminate ``process``; kill it if it has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


@contextlib.contextmanager
def stream_pipeline(subscription: str, database_args: Sequence[str], log: Path) -> Iterator[subprocess.Popen]:
    """``python -m pipeline.stream`` reading ``subscription`` into the database of ``database_args`` (no creation
    quota, a watermark delay and processing hold of 1 s), its output in ``log``; stopped when the block ends."""
    with log.open("wb") as output:
        pipeline = start_module(
            "pipeline.stream",
            [
                f"--input_subscription={subscription}",
                *database_args,
                "--no_creation_quota",
                "--watermark_delay=1s",
                "--processing_hold=1s",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield pipeline
    finally:
        stop(pipeline, timeout=60)


def wait_until_serving(
    base_url: str,
    process: subprocess.Popen,
    timeout: float,
    failure: Callable[[], str],
    probe_timeout: float = 1,
) -> None:
    """Until ``base_url``'s ``/healthz`` answers 200; an ``AssertionError`` with ``failure()`` if ``process``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=probe_timeout).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the service did not start\n{failure()}")
        time.sleep(0.2)


def wait_for(
    condition: Callable[[], Any],
    what: str,
    timeout: float = 180.0,
    interval: float = 1.0,
    log: Path | None = None,
) -> Any:
    """``condition()``'s first true value, asked every ``interval`` seconds; an ``AssertionError`` naming
    ``what`` (and the end of ``log``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n--- pipeline log ---\n{tail}")
