"""``python -m pipeline.screenshots`` writes both pages at 1280x800 from its own demonstration database."""

from __future__ import annotations

import struct

import pytest

from pipeline import screenshots

pytestmark = pytest.mark.slow


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_screenshots_of_the_stream_and_an_issue_page(stack, tmp_path, capsys):
    assert screenshots.main(["--output", str(tmp_path)]) == 0
    for name in ("stream.png", "issue.png"):
        data = (tmp_path / name).read_bytes()
        assert png_size(data) == (1280, 800)
        assert len(data) > 20_000  # a rendered page, not a blank one
    assert "wrote" in capsys.readouterr().out
