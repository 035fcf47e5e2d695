"""Checks shared by the tests of the optional C extensions (``tests/test_native_mutations.py``,
``tests/test_native_planning.py``, ``tests/engine/test_native_tags.py``, ``tests/test_native_review.py``,
``tests/test_commit_plan_native.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_without(module: str, what: str, script: str) -> tuple[list[str], str]:
    """Runs ``script`` in a fresh interpreter where ``module`` (an extension) cannot be imported, as on a worker
    built without a compiler; returns the log lines that contain ``what`` (``LEVEL message``) and its stdout."""
    setup = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')\n"
        f"sys.modules[{module!r}] = None\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", setup + script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return [line for line in run.stderr.splitlines() if what in line], run.stdout.strip()


_LEAK_LOOP = """
for _ in range(500):
    call()
gc.collect()
before = sys.getallocatedblocks()
for _ in range(CALLS):
    call()
gc.collect()
print(sys.getallocatedblocks() - before)
"""


def leaked_blocks(script: str, calls: int) -> int:
    """Runs ``script`` (which defines ``call()``) under ``-X dev`` in a fresh interpreter, then ``call()`` 500
    times to warm up and ``calls`` times more; returns the memory blocks still allocated after those."""
    run = subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-c",
            "import gc, sys\n" + script + _LEAK_LOOP.replace("CALLS", str(calls)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return int(run.stdout.strip())
