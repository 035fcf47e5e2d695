"""The engine's C functions (``transforms/core/engine/_engine.c``) give the Python's answer, or None.

Where the extension is built, ``dedup`` and ``ids`` call it first and let the Python decide only when it answers
None (not sure). So whenever C answers, the answer must be the Python's: checked here on generated inputs,
including the unusual ones (other types, bool for int, numbers past int64, text UTF-8 cannot encode), where
C must answer None or the same. Without the extension the Python runs alone (a subprocess checks it, and the
same engine results).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.infra.test_packaging import _sdist
from transforms.core.engine import dedup

ROOT = Path(__file__).resolve().parents[2]
_COMPILER = (sysconfig.get_config_var("CC") or "cc").split()[0]
native = pytest.mark.skipif(dedup.native is None, reason="the C extension is not built here")

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Times as the engine has them, and what else a caller could pass: huge, negative, bool, float, None, str.
_ANY_TIME = (
    _INT64
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.none()
    | st.text(max_size=3)
)
_POOL = [hashlib.md5(str(i).encode()).digest() for i in range(8)]  # few ids, so they repeat
_IDS = st.sampled_from(_POOL) | st.binary(min_size=16, max_size=16)


def _answer(function, *args):
    """What the Python gives: its value or its exception's type."""
    try:
        return function(*args)
    except Exception as error:
        return type(error)


def _memory(draw_ids: list[bytes], draw_times: list[int]) -> tuple[bytes, bytes]:
    count = min(len(draw_ids), len(draw_times))
    times = b"".join(t.to_bytes(8, "little", signed=True) for t in draw_times[:count])
    return b"".join(draw_ids[:count]), times


def test_the_extension_is_built_where_a_compiler_exists() -> None:
    if shutil.which(_COMPILER) is None:
        pytest.skip(f"no C compiler ({_COMPILER}): the pure-Python path is the one that runs")
    assert dedup.native is not None, (
        "transforms.core.engine._engine is not built, or built from another source: "
        "run python setup.py build_ext --inplace (or pip install -e .)"
    )


@native
@settings(max_examples=1000, deadline=None)
@given(
    prefix=st.sampled_from([b"occurrence:", b"status_change:", b""]) | st.binary(max_size=80), text=st.text()
)
def test_memory_ids_are_md5s(prefix: bytes, text: str) -> None:
    """Any text, lone surrogates included (C answers None there, and Python raises)."""
    found = dedup.native.memory_id(prefix, text)
    expected = _answer(lambda: hashlib.md5(prefix + text.encode()).digest())
    assert found == expected or (found is None and expected is UnicodeEncodeError)


@native
def test_memory_ids_of_other_types_are_left_to_python() -> None:
    class Text(str):
        pass

    for prefix, text in ((b"p", Text("x")), (bytearray(b"p"), "x"), (b"p", b"x"), (b"p", None), (b"p", 1)):
        assert dedup.native.memory_id(prefix, text) is None
    assert dedup.native.memory_id(b"p", "\udc80") is None
    assert (
        dedup.native.memory_id(b"occurrence:", "é" * 100)
        == hashlib.md5(b"occurrence:" + "é".encode() * 100).digest()
    )


@native
@settings(max_examples=1000, deadline=None)
@given(ids=st.lists(_IDS, max_size=40), wanted=_IDS, tail=st.binary(max_size=20))
def test_find_gives_the_first_aligned_entry(ids: list[bytes], wanted: bytes, tail: bytes) -> None:
    """Entries are aligned: an id spanning two entries is not one of them (a ragged memory is Python's)."""
    memory = b"".join(ids)
    assert dedup.native.find(memory, wanted) == dedup.find_python(memory, wanted)
    assert dedup.native.find(memory[8:] + memory[:8], wanted) == dedup.find_python(
        memory[8:] + memory[:8], wanted
    )
    ragged = memory + tail
    assert dedup.native.find(ragged, wanted) in (None, dedup.find_python(ragged, wanted))
    assert dedup.native.find(memory, wanted[:15]) is None
    assert dedup.native.find(bytearray(memory), wanted) is None


@native
@settings(max_examples=1000, deadline=None)
@given(
    times=st.lists(_INT64, max_size=20),
    index=st.integers(min_value=-30, max_value=30) | st.booleans(),
    cut=st.integers(0, 7),
)
def test_time_at_reads_the_entry(times: list[int], index: int, cut: int) -> None:
    data = b"".join(t.to_bytes(8, "little", signed=True) for t in times)
    found = dedup.native.time_at(data, index)
    if found is not None:
        assert index.__class__ is int and 0 <= index < len(times)
        assert found == times[index] == dedup._to_array(data)[index]
    else:
        assert index.__class__ is bool or not 0 <= index < len(times)
    assert dedup.native.time_at(data + b"\0" * cut, 0) in (None, times[0] if times and not cut else None)


@native
@settings(max_examples=1000, deadline=None)
@given(
    stored=st.lists(st.tuples(_IDS, _INT64), max_size=12),
    added=st.dictionaries(_IDS | st.binary(max_size=20), _ANY_TIME, max_size=6),
    updated=st.dictionaries(st.integers(min_value=-3, max_value=14) | st.booleans(), _ANY_TIME, max_size=6),
)
def test_freeze_gives_the_pythons_memory(stored, added, updated) -> None:
    """DuplicateMemory.freeze with the memory's entries, the call's new ids and later times, any of them odd."""
    ids, times = _memory([i for i, _t in stored], [t for _i, t in stored])
    memory = dedup.DuplicateMemory(ids, times)
    memory._added, memory._updated = dict(added), dict(updated)
    found = dedup.native.freeze(ids, times, memory._added, memory._updated)
    expected = _answer(memory.freeze_python)
    if found is not None:
        assert found == expected
    assert _answer(memory.freeze) == expected


@native
@settings(max_examples=1000, deadline=None)
@given(
    stored=st.lists(st.tuples(_IDS, _INT64 | st.integers(-5, 5)), max_size=12),
    horizon=_ANY_TIME,
    cut=st.integers(0, 20),
)
def test_prune_gives_the_pythons_entries(stored, horizon, cut: int) -> None:
    ids, times = _memory([i for i, _t in stored], [t for _i, t in stored])
    found = dedup.native.prune(ids, times, horizon)
    expected = _answer(dedup.prune_python, ids, times, horizon)
    if found is not None:
        assert found == expected
        if all(t >= horizon for _i, t in stored):  # nothing dropped: the same objects, as Python's
            assert found[0] is ids and found[1] is times
    else:
        assert horizon.__class__ is not int or not -(2**63) <= horizon < 2**63
    assert dedup.native.prune(ids[cut:], times, 0) in (None, dedup.prune_python(ids, times, 0)) or not cut


@native
def test_a_build_of_another_source_is_not_used(monkeypatch, caplog) -> None:
    from transforms.core.extensions import load_extension

    monkeypatch.setattr(dedup.native, "SOURCE_SHA256", "0" * 64)
    with caplog.at_level(logging.INFO, logger="capply-test"):
        assert (
            load_extension("transforms.core.engine", "_engine", "Engine", logging.getLogger("capply-test"))
            is None
        )
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "built from another version of _engine.c" in caplog.records[0].getMessage()


@native
def test_a_current_build_is_used_and_says_so(caplog) -> None:
    from transforms.core.extensions import load_extension

    with caplog.at_level(logging.INFO, logger="capply-test"):
        found = load_extension(
            "transforms.core.engine", "_engine", "Engine", logging.getLogger("capply-test")
        )
    assert found is dedup.native
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == ["Engine: C path"]


_WITHOUT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
if sys.argv[1] == 'hidden':
    sys.modules['transforms.core.engine._engine'] = None
from transforms.core import engine
from transforms.core.engine import dedup, ids
from tests.engine.builders import context, occurrence
assert (dedup.native is None) == (sys.argv[1] == 'hidden')
# ids seen again within the retention (duplicates) and past it (a later time for a stored entry)
ctx = context(duplicate_retention=3_000_000)
state = None
for batch in range(4):
    messages = [
        occurrence(1_000_000 * (4 * batch + i), occurrence_id=f"o{i % 3}", message_id=f"m{batch}.{i}")
        for i in range(4)
    ]
    state, outputs = engine.apply(state, messages, ctx)
    state = engine.compact(state, 1_000_000 * (4 * batch - 2))
    print(engine.encode_state(state).hex(), len(outputs.write.intents) if outputs.write else 0)
# one message a call on a key the quota keeps without a group (engine.groupless, dedup.remember_one)
from tests.engine.builders import MemoryQuota
ctx = context(duplicate_retention=3_000_000, quota=MemoryQuota(limit=0))
state = None
for i in range(8):
    message = occurrence(1_000_000 * 2 * i, occurrence_id=f"q{i % 3}", message_id=f"q{i}", fingerprint=("q",))
    state, outputs = engine.apply(state, [message], ctx)
    print(engine.encode_state(state).hex(), outputs.counters)
print(ids.status_change_memory_id("x").hex(), ids.occurrence_memory_id("é").hex())
"""


def test_without_the_extension_the_python_path_runs_gives_the_same_state_and_says_so() -> None:
    runs = {
        how: subprocess.run(
            [sys.executable, "-c", _WITHOUT, how],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=True,
        )
        for how in ("hidden", "built")
    }
    lines = [line for line in runs["hidden"].stderr.splitlines() if "Engine duplicate memory" in line]
    assert lines == [
        "INFO Engine duplicate memory: pure-Python path (the C extension transforms.core.engine._engine is not built)"
    ]
    assert runs["hidden"].stdout == runs["built"].stdout


def test_the_worker_package_carries_the_c_source(tmp_path: Path) -> None:
    """Dataflow workers install the sdist and build the extension from it (or run the Python path)."""
    with tarfile.open(_sdist(ROOT, tmp_path)) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "transforms/core/engine/_engine.c" in names
    assert not any(name.endswith(".so") for name in names)
