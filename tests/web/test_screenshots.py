"""``python -m pipeline.screenshots`` writes both pages at 1280x800 from its own demonstration database."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_screenshots_of_the_stream_and_an_issue_page(stack, tmp_path):
    # a process of its own, as it is run (and Playwright's sync API wants no other one running in this thread)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.screenshots", "--output", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("stream.png", "issue.png"):
        data = (tmp_path / name).read_bytes()
        assert png_size(data) == (1280, 800)
        assert len(data) > 20_000  # a rendered page, not a blank one
        assert f"wrote {tmp_path / name}" in done.stdout
