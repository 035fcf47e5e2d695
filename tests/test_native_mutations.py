"""The C encoder of Spanner mutations gives the pure-Python builder's mutations, byte for byte, or its errors.

``spanner_rows.write_mutation`` is ``write_mutation_native`` where the extension ``transforms.storage._mutations``
is built from the source beside it, else ``write_mutation_python``. Both are compared here on generated rows,
on every kind of value (and the values that have no wire form), and against the client library's own
conversion for the values both convert the same way.
"""

from __future__ import annotations

import enum
import logging
import math
import shutil
import sysconfig
import tarfile
from pathlib import Path

import pytest
from google.cloud.spanner_v1 import Mutation
from google.cloud.spanner_v1.batch import Batch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.infra.test_packaging import _sdist
from tests.native_paths import ROOT, run_without
from transforms.core.model import to_rfc3339
from transforms.storage import commit_plan, mutation_buffer, spanner_rows, spanner_writer
from transforms.storage.commit_plan import CommitPlan

_COMPILER = (sysconfig.get_config_var("CC") or "cc").split()[0]
native = pytest.mark.skipif(spanner_rows._native is None, reason="the C extension is not built here")

# Text as Spanner takes it: any code point but the surrogates, which UTF-8 cannot encode.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
_SCALARS = (
    _TEXT
    | st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
)
_VALUES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner), max_leaves=8
)
_ROWS = st.lists(st.lists(_VALUES, max_size=12) | st.tuples(_VALUES, _VALUES), max_size=6)
_KINDS = st.sampled_from(["insert", "update", "insert_or_update", "replace"])


def _wire(mutation) -> bytes:
    return Mutation.pb(mutation).SerializeToString()


def _both(kind: str, rows, table: str = "Table", columns=("A", "B")) -> tuple[bytes, bytes]:
    return (
        _wire(spanner_rows.write_mutation_python(kind, table, columns, rows)),
        _wire(spanner_rows.write_mutation_native(kind, table, columns, rows)),
    )


def _same_error(rows) -> str:
    """Both builders raise the same exception, with the same message, for ``rows``; returns the message."""
    with pytest.raises(Exception) as python:
        spanner_rows.write_mutation_python("insert_or_update", "T", ["A"], rows)
    with pytest.raises(Exception) as native:
        spanner_rows.write_mutation_native("insert_or_update", "T", ["A"], rows)
    assert (type(native.value), str(native.value)) == (type(python.value), str(python.value))
    return str(native.value)


def test_the_extension_is_built_where_a_compiler_exists() -> None:
    """``pip install -e`` (scripts/venv.sh) builds it; a missing or stale build would otherwise go unnoticed, as
    the comparisons below would be skipped."""
    if shutil.which(_COMPILER) is None:
        pytest.skip(f"no C compiler ({_COMPILER}): the pure-Python path is the one that runs")
    assert spanner_rows._native is not None, (
        "transforms.storage._mutations is not built, or built from another source: "
        "run python setup.py build_ext --inplace (or pip install -e .)"
    )
    assert spanner_rows.write_mutation is spanner_rows.write_mutation_native


@native
@settings(max_examples=400, deadline=None)
@given(kind=_KINDS, rows=_ROWS)
def test_generated_rows_give_byte_identical_mutations(kind: str, rows) -> None:
    python, native_ = _both(kind, rows)
    assert native_ == python


@native
def test_every_kind_of_value_gives_the_python_builders_bytes() -> None:
    class Level(enum.IntEnum):
        ERROR = 40

    class Text(str):
        pass

    class Odd(int):
        def __str__(self) -> str:
            return "odd"

    class Items(list):
        pass

    class Number(float):
        pass

    rows = [
        ["", "text", "é ✓ 𝄞 \x00", "x" * 127, "x" * 128, "y" * 20_000, None, True, False],
        [0, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**40, -(10**40)],
        [0.0, -0.0, 1.5, math.nan, -math.nan, math.inf, -math.inf, 5e-324],
        [[], (), ["a", None, 1, True, 2.5], [[[]]], [["nested", ["deeper", [1, [None]]]]], ("t", ["u"])],
        [Level.ERROR, Text("sub"), Odd(3), Items(["i", 1]), Number(2.5), [Level.ERROR, Odd(4)]],
        [],
        ["a row", "of one column"] * 200,
    ]
    for kind in ("insert", "update", "insert_or_update"):
        python, native_ = _both(kind, rows)
        assert native_ == python
        # any iterable of sequences, read once
        python_ = _wire(spanner_rows.write_mutation_python(kind, "T", ["A"], (tuple(row) for row in rows)))
        assert (
            _wire(spanner_rows.write_mutation_native(kind, "T", ["A"], (tuple(row) for row in rows)))
            == python_
        )
    python, native_ = _both("insert_or_update", [])  # no rows
    assert native_ == python


@native
def test_a_value_without_a_wire_form_raises_the_same_type_error() -> None:
    for value in (b"bytes", {"a": 1}, {1}, object(), 1j):
        message = _same_error([["ok", value]])
        assert message.startswith("no Spanner wire form for ")
    assert _same_error([["ok", [1, [b"deep"]]]]) == "no Spanner wire form for bytes: b'deep'"


@native
def test_a_lone_surrogate_raises_the_same_unicode_error() -> None:
    for rows in ([["\ud800"]], [["ok", "a\udfffb"]], [[["in a list", "\udc80"]]]):
        assert "surrogates not allowed" in _same_error(rows)


@native
def test_a_value_whose_str_writes_a_mutation_meanwhile_leaves_both_right() -> None:
    """The encoder's scratch buffer is taken by one call at a time: a call made inside another (here from a
    value's ``__str__``, as another thread could while the first waits for the GIL) uses its own."""

    inner_rows = [["inner", 1, None, "z" * 5000]]
    inner: list[bytes] = []

    class Writes(int):
        def __str__(self) -> str:
            inner.append(_wire(spanner_rows.write_mutation_native("update", "Inner", ["A"], inner_rows)))
            return "7"

    rows = [["before", "w" * 70_000], [Writes(7), "after"]]
    python, native_ = _both("insert_or_update", rows)
    assert native_ == python
    assert inner[-1] == _wire(spanner_rows.write_mutation_python("update", "Inner", ["A"], inner_rows))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.lists(_TEXT | st.none() | st.booleans() | st.integers() | st.lists(_TEXT, max_size=3), max_size=8),
        max_size=4,
    )
)
def test_the_mutation_is_the_client_librarys_own(rows) -> None:
    """For text, NULL, bools, ints and lists of text (empty ones too) the client library converts values the
    same way (``mutation_buffer`` relies on that): both builders give its mutation."""
    batch = Batch(None)
    batch.insert_or_update("Table", ["A"], rows)
    expected = _wire(batch._mutations[-1])
    assert _wire(spanner_rows.write_mutation_python("insert_or_update", "Table", ["A"], rows)) == expected
    if spanner_rows._native is not None:
        assert _wire(spanner_rows.write_mutation_native("insert_or_update", "Table", ["A"], rows)) == expected


def run_without_extension(name: str, purpose: str, code: str) -> str:
    """``code`` run by a fresh interpreter in which ``transforms.storage.<name>`` cannot be imported (as where
    no compiler built it); checks that one INFO line says ``purpose`` takes the pure-Python path, and returns
    what ``code`` printed."""
    lines, stdout = run_without(f"transforms.storage.{name}", f"INFO {purpose}: ", code)
    assert lines == [
        f"INFO {purpose}: pure-Python path (the C extension transforms.storage.{name} is not built)"
    ]
    return stdout


def test_without_the_extension_the_python_path_runs_and_says_so() -> None:
    """A worker installed where no compiler exists has no ``_mutations``: the import fails and the pure-Python
    path runs, which one INFO line says."""
    stdout = run_without_extension(
        "_mutations",
        "Spanner mutations",
        "from transforms.storage import spanner_rows as r\n"
        "assert r._native is None and r.write_mutation is r.write_mutation_python\n"
        "from transforms.core.model import to_rfc3339\n"
        "assert r.rfc3339 is to_rfc3339\n"
        "m = r.write_mutation('insert_or_update', 'T', ['A', 'B'], [['a', None], [1, [True, 2.5]]])\n"
        "print(type(m).pb(m).SerializeToString().hex())\n",
    )
    rows = [["a", None], [1, [True, 2.5]]]
    expected = _wire(spanner_rows.write_mutation_python("insert_or_update", "T", ["A", "B"], rows))
    assert bytes.fromhex(stdout) == expected


# --- A table's rows grouped and encoded in one pass (``_mutations.encode_table``) ---------------------------

# The third equals the first in another tuple (a literal would be the same object: the compiler folds it).
_TABLE_COLUMNS = [("GroupId", "Type"), ("GroupId", "Seq"), tuple(["GroupId", "Type"]), ("A", "B", "C")]


def _grouped_then_encoded(table: str, planned: dict, new, updated, groups: bool) -> tuple[list, int, int]:
    """``encode_table``'s answer as the Python path makes it: ``commit_plan._group_rows``, then each group's rows
    encoded by ``encode_values``."""
    order, not_updated = commit_plan._group_rows(table, planned, new, updated, groups)
    cells = sum(len(columns) * len(values) for _kind, _table, columns, values in order)
    encoded = [
        (kind, name, columns, spanner_rows._native.encode_values(values))
        for kind, name, columns, values in order
    ]
    return encoded, not_updated, cells


@native
@settings(max_examples=400, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.tuples(st.integers(0, 8)) | st.tuples(st.integers(0, 3), st.sampled_from(["a", "b", "é"])),
            st.integers(0, 3),
            st.lists(_VALUES, max_size=4) | st.tuples(_VALUES, _VALUES),
        ),
        max_size=12,
    ),
    new=st.sets(st.tuples(st.integers(0, 8)), max_size=3),
    updated=st.sets(st.tuples(st.integers(0, 8)), max_size=3),
    groups=st.booleans(),
)
def test_rows_grouped_and_encoded_in_one_pass_are_the_python_paths(rows, new, updated, groups) -> None:
    planned = {key: (_TABLE_COLUMNS[columns], values) for key, columns, values in rows}
    new_, updated_ = new or (), updated or ()
    answer = spanner_rows._native.encode_table("T", planned, new_, updated_, groups)
    assert answer == _grouped_then_encoded("T", planned, new_, updated_, groups)
    assert [id(columns) for _kind, _table, columns, _data in answer[0]] == [
        id(columns)
        for _kind, _table, columns, _rows in commit_plan._group_rows("T", planned, new_, updated_, groups)[0]
    ]


@native
def test_rows_the_one_pass_cannot_encode_without_python_are_left_to_python() -> None:
    """Declined (None) before anything is built: a row, key or value whose handling would run Python code, or
    more groups than C keeps; a value with no wire form is declined too (its error message needs its repr), and
    the Python path then raises it."""

    class Number(int):
        pass

    class Rows(list):
        pass

    encode = spanner_rows._native.encode_table
    for values in ((Number(3),), ([1, Number(2)],), (Rows(["a"]),), (object(),), ((x for x in "ab"),)):
        assert encode("T", {(1,): (("A",), values)}, (), (), False) is None
    assert encode("T", {(1,): (("A",), Rows(["a"]))}, (), (), False) is None
    assert encode("T", {(1,): ["not", "a tuple"]}, (), (), False) is None
    assert encode("T", {(1.5,): (("A",), ("a",))}, (), (), False) is None
    assert encode("T", {(n,): (tuple(f"c{n}"), ()) for n in range(40)}, (), (), False) is None
    with pytest.raises(UnicodeEncodeError):
        encode("T", {(1,): (("A",), ("ok",)), (2,): (("A",), ("\ud800",))}, (), (), False)


@native
def test_a_plan_buffered_with_its_rows_encoded_as_grouped_gives_the_same_mutations() -> None:
    """``buffer_plan`` once the buffer is known usable (rows encoded as they are grouped) against the rows
    handed over and encoded one group at a time: the same mutations, in order, and the same count; rows of
    equal columns in distinct tuples joined into one mutation either way."""
    plan = CommitPlan()
    plan.upsert("Groups", (1,), ("GroupId", "Type", "Seq"), (1, "error", 3))
    plan.upsert("Groups", (2,), ("GroupId", "Seq"), (2, 4))
    plan.upsert("Events", (1, "e"), ("ProjectId", "EventId"), (1, "e"))
    plan.upsert("Events", (1, "f"), tuple(["ProjectId", "EventId"]), (1, "f"))  # equal columns, another tuple
    plan.upsert("Events", (1, "g"), ("ProjectId", "EventId"), (1, "g"))
    plan.upsert("GroupTagValues", (1, "k", "v"), ("GroupId", "Key", "Value", "TimesSeen"), (1, "k", "v", 2))
    plan.updates["GroupTagValues"] = {(1, "k", "v")}
    plan.inserts.add(("Events", (1, "e")))
    plan.delete("Activities", (3, "a"))
    wires = []
    for encoded in (False, True):
        saved = mutation_buffer.BUFFER.private
        batch = Batch(None)
        try:
            mutation_buffer.BUFFER.private = True
            if not encoded:
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(spanner_rows, "encode_table", None)
                    assert not mutation_buffer.BUFFER.takes_encoded
                    count = spanner_writer.buffer_plan(batch, plan)
            else:
                assert mutation_buffer.BUFFER.takes_encoded
                count = spanner_writer.buffer_plan(batch, plan)
        finally:
            mutation_buffer.BUFFER.private = saved
        wires.append(([_wire(mutation) for mutation in batch._mutations], count))
    assert wires[0] == wires[1]
    # the deletion, then Groups (two kinds), Events (insert, insert_or_update), the tag row
    assert len(wires[0][0]) == 6


_PLAN_COLUMNS = [("GroupId", "Type", "Seq"), ("GroupId", "Seq"), ("A", "B"), ("GroupId", "Seq", "Type")]


@native
@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["Groups", "Events", "GroupTagValues"]),
            st.integers(0, 5),
            st.integers(0, len(_PLAN_COLUMNS) - 1),
            st.booleans(),  # the columns as another tuple of equal names
            st.lists(_VALUES, min_size=3, max_size=3),
        ),
        max_size=16,
    ),
    new=st.sets(st.integers(0, 5), max_size=3),
    updated=st.sets(st.integers(0, 5), max_size=3),
)
def test_a_plans_mutations_encoded_as_grouped_are_its_rows_encoded(rows, new, updated) -> None:
    """``mutation_groups(plan, encoded=True)`` against ``mutation_groups(plan)`` with each mutation's rows then
    encoded by ``encode_values`` (what ``write_mutation`` does): the same mutations in the same order, rows
    merged in the plan and equal columns in distinct tuples joined, and the same count."""
    plan = CommitPlan()
    for table, key, index, copied, values in rows:
        columns = _PLAN_COLUMNS[index]
        plan.upsert(table, (key,), tuple(list(columns)) if copied else columns, tuple(values[: len(columns)]))
    for key in new:
        plan.inserts.add(("Events", (key,)))
    if updated:
        plan.updates["GroupTagValues"] = {(key,) for key in updated}
    found, count = commit_plan.mutation_groups(plan)
    expected = [
        (kind, table, columns, spanner_rows._native.encode_values(values))
        for kind, table, columns, values in found
    ]
    assert commit_plan.mutation_groups(plan, encoded=True) == (expected, count)


# Microseconds of the years 1 to 9999, the range both format themselves (beyond it, to_rfc3339 raises).
_FIRST, _LAST = -62_135_596_800_000_000, 253_402_300_799_999_999


def _same_time_text(value) -> None:
    try:
        expected: object = to_rfc3339(value)
    except Exception as error:  # the C function hands such values to to_rfc3339: the same error
        with pytest.raises(type(error)) as raised:
            spanner_rows._native.rfc3339(value)
        assert str(raised.value) == str(error)
    else:
        assert spanner_rows._native.rfc3339(value) == expected


@native
@settings(max_examples=2000, deadline=None)
@given(
    micros=st.integers(min_value=_FIRST, max_value=_LAST)
    | st.integers(min_value=_FIRST - 10**6, max_value=_FIRST + 10**6)
    | st.integers(min_value=_LAST - 10**6, max_value=_LAST + 10**6)
    | st.integers(min_value=-(2**70), max_value=2**70)
)
def test_the_c_time_text_is_to_rfc3339s(micros: int) -> None:
    _same_time_text(micros)
    _same_time_text(micros - micros % 1_000_000)  # whole seconds: no fraction


@native
def test_the_c_time_text_of_edges_and_other_types_is_to_rfc3339s() -> None:
    class Micros(int):
        pass

    for value in (
        0,
        -1,
        1,
        999_999,
        -1_000_000,
        _FIRST,
        _FIRST - 1,
        _LAST,
        _LAST + 1,
        2**62,
        -(2**62),
        2**100,
    ):
        _same_time_text(value)
    for value in (True, Micros(1_764_000_000_123_456), 1.5, "1", None):
        _same_time_text(value)
    assert spanner_rows.rfc3339 is spanner_rows._native.rfc3339


@native
def test_a_build_of_another_source_is_not_used(monkeypatch, caplog) -> None:
    monkeypatch.setattr(spanner_rows._native, "SOURCE_SHA256", "0" * 64)
    with caplog.at_level(logging.INFO, logger=spanner_rows.__name__):
        assert spanner_rows._load_native() is None
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "built from another version of _mutations.c" in caplog.records[0].getMessage()


@native
def test_a_current_build_is_used_and_says_so(caplog) -> None:
    with caplog.at_level(logging.INFO, logger=spanner_rows.__name__):
        assert spanner_rows._load_native() is spanner_rows._native
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == ["Spanner mutations: C path"]


def test_the_worker_package_carries_the_c_source(tmp_path: Path) -> None:
    """Dataflow workers install the sdist and build the extension from it (or run the Python path)."""
    with tarfile.open(_sdist(ROOT, tmp_path)) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "transforms/storage/_mutations.c" in names
    assert not any(name.endswith(".so") for name in names)
