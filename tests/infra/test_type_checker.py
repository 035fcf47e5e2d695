"""The type checker: ./run_tests.sh runs mypy, strict on transforms/core (pyproject.toml [tool.mypy])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mypy(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_core_type_checks_strictly(tmp_path: Path) -> None:
    result = _mypy(cache=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "transforms/core" not in result.stdout


def test_the_configuration_is_strict(tmp_path: Path) -> None:
    """What strict mode refuses (an unannotated function, a value of type Any returned as an int) fails."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import Any\n\n\ndef untyped(x):\n    return x\n\n\n"
        "def leaky(value: Any) -> int:\n    return value + 1\n"
    )
    result = _mypy("--config-file", str(ROOT / "pyproject.toml"), str(sample), cache=tmp_path / "cache")
    assert result.returncode == 1, result.stdout
    assert "[no-untyped-def]" in result.stdout
    assert "[no-any-return]" in result.stdout


def test_run_tests_fails_when_mypy_fails() -> None:
    script = (ROOT / "run_tests.sh").read_text()
    step = script.index('"$VENV/bin/mypy" || failed+=("mypy")')
    assert script.index('failed+=("ruff format")') < step < script.index('"$py" -m pytest')
