"""Cases found by reviewing the optional C extensions: inputs on which C crashed, leaked or answered otherwise
than the Python it stands for. Each runs in a fresh interpreter under ``python -X dev`` (a crash there fails
the test instead of ending the run) and checks what the Python path does on the same input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.native_paths import ROOT
from transforms.storage import spanner_rows

mutations = pytest.mark.skipif(spanner_rows._native is None, reason="the C extension is not built here")


def _run(script: str) -> str:
    """stdout of ``script`` run by ``python -X dev`` in the checkout; fails on a crash or a non-zero exit."""
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    return run.stdout.strip()


@mutations
@pytest.mark.parametrize("nested", ["a = []; a.append(a)", "a = []\nfor _ in range(200_000): a = [a]"])
def test_a_list_inside_itself_or_nested_too_deep_raises_recursion_error_in_both_paths(nested: str) -> None:
    script = f"""
from transforms.storage import spanner_rows
{nested}
for build in (spanner_rows.write_mutation_python, spanner_rows.write_mutation_native):
    try:
        build("insert_or_update", "T", ["A"], [[a]])
    except RecursionError:
        print("RecursionError")
"""
    assert _run(script).split() == ["RecursionError", "RecursionError"]
