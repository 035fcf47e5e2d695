"""The worker processes' collector settings (transforms.runtime), checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, json
from transforms.runtime import GC_THRESHOLD, tune_garbage_collector
before = gc.get_threshold()
tune_garbage_collector()
first = (gc.get_threshold(), gc.get_freeze_count())
junk = [[] for _ in range(1000)]
tune_garbage_collector()  # once per process: nothing more is frozen
second = (gc.get_threshold(), gc.get_freeze_count())
print(json.dumps({"before": before, "first": first, "second": second, "limit": GC_THRESHOLD}))
"""


def test_tuning_freezes_what_exists_and_collects_less_often_once_per_process() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    found = json.loads(out)
    (threshold, frozen), second = found["first"], found["second"]
    assert threshold[0] == found["limit"] > found["before"][0]
    assert threshold[1:] == found["before"][1:]
    assert frozen > 1000  # the interpreter's and the imported modules' objects
    assert second == [threshold, frozen]
