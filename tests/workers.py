"""What lets the tests run in several processes (``pytest -n N``, pytest-xdist; ./run_tests.sh runs two)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def worker_number() -> int:
    """0, or N in pytest-xdist's worker ``gwN``: the offset of the ports of servers a test process starts for
    itself, so that two test processes never share one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Held by one test process at a time (an advisory lock on ``path``), e.g. while a server starts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
