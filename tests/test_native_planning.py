"""The C loops of a commit's planning (``transforms/storage/_planning.c``) give the Python loops' answers, or none.

Each C function either answers as the Python it replaces would, or answers None (False) and changes nothing,
leaving the Python loop to decide. Compared here on generated inputs (unicode, huge and negative ints, bools,
None, other types, rows in odd shapes), and the whole tag planning with and without the extension.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.infra.test_packaging import _sdist
from tests.native_paths import leaked_blocks
from tests.test_native_mutations import run_without_extension
from transforms.core import intents
from transforms.core.engine.tags import TEXT_KEY
from transforms.storage import commit_plan, spanner_rows, tag_writer
from transforms.storage.commit_plan import CommitPlan

ROOT = Path(__file__).resolve().parents[1]
native = spanner_rows.planning
needs_native = pytest.mark.skipif(native is None, reason="the C extension _planning is not built here")

_TEXT = st.text(max_size=6) | st.sampled_from(["a", "b", "@text", "@x", "é", "𝄞"])
_INT = st.integers(-3, 3) | st.integers() | st.integers(min_value=2**62, max_value=2**70) | st.booleans()
_ODD = st.none() | st.floats(allow_nan=False) | st.binary(max_size=3)
_PLAIN = _TEXT | _INT
_ANY = _PLAIN | _ODD
_PAIR = st.tuples(_TEXT, _TEXT) | st.tuples(_ANY, _ANY) | st.tuples(_TEXT) | st.lists(_TEXT, max_size=2)


def _python_missing(known, head, items, pairs) -> list:
    if pairs:
        return [(key, value) for key, value in items if (*head, key, value) not in known]
    return [item for item in items if (*head, item) not in known]


def _usual(head, items, pairs) -> bool:
    """Exact ints and strs in the shapes the engine writes: C always answers these."""
    plain = (str, int)
    if pairs:
        return all(type(x) in plain for x in head) and all(
            type(i) is tuple and len(i) == 2 and all(type(x) in plain for x in i) for i in items
        )
    return all(type(x) in plain for x in (*head, *items))


@needs_native
@settings(max_examples=600, deadline=None)
@given(
    head=st.tuples(_PLAIN) | st.tuples(_PLAIN, _PLAIN) | st.tuples(_ANY),
    items=st.lists(_PAIR | _ANY, max_size=6),
    pairs=st.booleans(),
    extra=st.lists(st.tuples(_PLAIN, _PLAIN, _PLAIN) | st.tuples(_PLAIN, _PLAIN), max_size=6),
    frozen=st.booleans(),
    data=st.data(),
)
def test_known_lookups_answer_as_python(head, items, pairs, extra, frozen, data) -> None:
    items = tuple(items)
    known = set(extra)
    for item in data.draw(st.lists(st.sampled_from(items), max_size=len(items))) if items else []:
        with contextlib.suppress(TypeError):  # an unhashable item (a list) is in no set
            known.add((*head, *item) if pairs and isinstance(item, tuple | list) else (*head, item))
    known = frozenset(known) if frozen else known
    try:
        expected: list | None = _python_missing(known, head, items, pairs)
    except (TypeError, ValueError):
        expected = None  # Python raises: C must not answer
    try:
        answer = native.missing(known, head, items, pairs)
    except TypeError:
        assert expected is None
        return
    if answer is None:
        assert not (_usual(head, items, pairs) and expected is not None)
        return
    assert expected is not None and answer == expected


def _mostly(usual, odd):
    """``usual`` nine times in ten, else ``odd``."""
    return st.one_of([usual] * 9 + [odd])


_ROW_INT = st.integers(-5, 5) | st.just(2**63 - 1) | st.integers(min_value=2**63, max_value=2**64)
_SMALL = st.integers(-5, 5)
# Rows as tag_writer makes them, mostly; sometimes in another shape (which C leaves to Python).
_VALUE_ROW = st.builds(
    lambda count, first, last, state: [count, first, last, state],
    st.integers(0, 5),
    _SMALL,
    _SMALL,
    st.integers(0, 3),
) | st.lists(_ROW_INT | st.none() | st.booleans(), min_size=4, max_size=4)
_STORED_ROW = st.tuples(st.integers(0, 5), _SMALL, _SMALL) | st.tuples(
    _ROW_INT | st.none(), _ROW_INT, _ROW_INT
)
_KEY_ROW = st.builds(
    lambda seen, other, state: [seen, other, state],
    st.integers(995, 1001) | st.integers(0, 3),
    st.integers(0, 5),
    st.integers(0, 3),
) | st.lists(_ROW_INT | st.none(), min_size=3, max_size=3)
_TAG_KEYS = st.sampled_from(["a", "b", "c", TEXT_KEY])
_TAG_VALUES = st.sampled_from(["1", "2", "3", "é"])


# The group's stored key rows (StoredTags.keys), and whether they were read; mostly the usual.
_STORED_KEYS = _mostly(
    st.tuples(st.dictionaries(_TAG_KEYS, st.tuples(st.integers(0, 1001), _SMALL), max_size=4), st.just(True)),
    st.tuples(
        st.dictionaries(_TAG_KEYS, st.tuples(_ROW_INT, _ROW_INT) | st.tuples(_SMALL) | st.none(), max_size=3),
        st.booleans(),
    ),
)
_READ_KEYS = ({"a": (1, 0), "zz": (1, 0)}, True)


def _group(draw_values, draw_stored, draw_keys, stored_none, stored_keys=_READ_KEYS) -> tag_writer._Group:
    intent = intents.IndexOccurrence(
        group_id=7, organization_id=1, project_id=2, occurrence_id="o", seen=0, tags=()
    )
    stored = None
    if not stored_none:
        key_rows, read = stored_keys
        stored = tag_writer.StoredTags(
            values={(7, k, v): row for (k, v), row in draw_stored.items()},
            keys={(7, k): row for k, row in key_rows.items()},
            key_groups={7} if read else set(),
        )
    group = tag_writer._Group(intent, stored, False)
    group.values = draw_values
    group.keys = draw_keys
    return group


def _twins(values, stored, keys, stored_none, stored_keys) -> tuple[tag_writer._Group, tag_writer._Group]:
    """Two groups in the same state (deep copies): one for the C path, one for the Python."""

    def one() -> tag_writer._Group:
        return _group(
            copy.deepcopy(values), copy.deepcopy(stored), copy.deepcopy(keys), stored_none, stored_keys
        )

    return one(), one()


def _same_types(in_c: tag_writer._Group, in_python: tag_writer._Group) -> None:
    assert [type(x) for row in in_c.values.values() for x in row] == [
        type(x) for row in in_python.values.values() for x in row
    ]


def _left_alike(in_c: tag_writer._Group, in_python: tag_writer._Group, step: Callable[[Any], object]) -> None:
    """``step`` (the Python of the item C left) done to both groups: the same error, or the same rows after."""
    try:
        step(in_python)
    except Exception as error:
        with pytest.raises(type(error)):
            step(in_c)
    else:
        step(in_c)
        assert in_c.values == in_python.values
        assert in_c.keys == in_python.keys


def _count_both(values, stored, keys, stored_none, tags, start, seen, stored_keys=_READ_KEYS) -> int | None:
    """``count_tags`` against ``_Group.count`` from the same state; returns where C stopped."""
    tags = tuple(tags)
    in_c, in_python = _twins(values, stored, keys, stored_none, stored_keys)
    stored_values = None if in_c.stored is None else in_c.stored.values
    done = native.count_tags(
        in_c.values, stored_values, in_c.stored_keys, in_c.keys, 7, tags, start, seen, 1000, 256
    )
    if done is None:  # nothing counted
        assert (in_c.values, in_c.keys) == (values, keys)
        return None
    assert start <= done <= max(start, len(tags))
    for key, value in tags[start:done]:
        in_python.count(key, value, seen)
    assert in_c.values == in_python.values and in_c.keys == in_python.keys
    _same_types(in_c, in_python)
    if done < len(tags):  # the tag C left is counted by Python, from the same state, as it would have been
        key, value = tags[done]
        _left_alike(in_c, in_python, lambda group: group.count(key, value, seen))
    return done


# A group's rows as the tag writer holds them: values counted in this commit, stored values, key rows.
_GROUP_VALUES = st.dictionaries(st.tuples(_TAG_KEYS, _TAG_VALUES), _VALUE_ROW, max_size=6)
_GROUP_STORED = st.dictionaries(st.tuples(_TAG_KEYS, _TAG_VALUES), _STORED_ROW, max_size=8)
_GROUP_KEYS = _mostly(
    st.fixed_dictionaries(dict.fromkeys(("a", "b", "c", TEXT_KEY), _KEY_ROW)),
    st.dictionaries(_TAG_KEYS, _KEY_ROW, max_size=3),
)


@needs_native
@settings(max_examples=700, deadline=None)
@given(
    values=_GROUP_VALUES,
    stored=_GROUP_STORED,
    keys=_GROUP_KEYS,
    stored_none=st.booleans(),
    tags=_mostly(
        st.lists(st.tuples(_TAG_KEYS, _TAG_VALUES), max_size=8), st.lists(st.tuples(_ANY, _ANY), max_size=3)
    ),
    seen=_mostly(_SMALL, _ROW_INT),
    start=_mostly(st.just(0), st.integers(0, 9)),
    stored_keys=_STORED_KEYS,
)
def test_counting_tags_in_c_counts_as_python(
    values, stored, keys, stored_none, tags, seen, start, stored_keys
) -> None:
    _count_both(values, stored, keys, stored_none, tags, start, seen, stored_keys)


_USUAL_KEY_ROW = st.builds(
    lambda seen, other, state: [seen, other, state],
    st.integers(995, 1001) | st.integers(0, 3) | st.integers(250, 260),
    st.integers(0, 5),
    st.integers(0, 3),
)


@needs_native
@settings(max_examples=500, deadline=None)
@given(
    values=st.dictionaries(
        st.tuples(_TAG_KEYS, _TAG_VALUES),
        _VALUE_ROW.filter(
            lambda row: (
                None not in row
                and all(type(x) is int for x in row)
                and 0 <= row[3] <= 3
                and abs(row[0]) < 2**62
                and all(abs(x) < 2**63 for x in row)
            )
        ),
        max_size=6,
    ),
    stored=st.dictionaries(
        st.tuples(_TAG_KEYS, _TAG_VALUES), st.tuples(st.integers(0, 5), _SMALL, _SMALL), max_size=8
    ),
    keys=st.fixed_dictionaries(dict.fromkeys(("a", "b", "c", TEXT_KEY), _USUAL_KEY_ROW)),
    stored_none=st.booleans(),
    tags=st.lists(st.tuples(_TAG_KEYS, _TAG_VALUES), max_size=10),
    seen=_SMALL,
)
def test_counting_the_usual_tags_is_done_in_c(values, stored, keys, stored_none, tags, seen) -> None:
    """Rows as tag_writer makes them and every key read: C counts every tag."""
    assert _count_both(values, stored, keys, stored_none, tags, 0, seen) == len(tags)


def _mark_both(
    values, stored, keys, stored_none, items, key, known, start, stored_keys=_READ_KEYS
) -> int | None:
    """``mark_tags`` against ``_Group._mark_unknown`` of each item (``mark`` of those not in ``known``) from the
    same state; returns where C stopped."""
    items = tuple(items)
    in_c, in_python = _twins(values, stored, keys, stored_none, stored_keys)
    stored_values = None if in_c.stored is None else in_c.stored.values
    done = native.mark_tags(
        in_c.values, stored_values, in_c.stored_keys, in_c.keys, 7, items, key, start, known, 1000, 256
    )
    if done is None:  # nothing marked
        assert (in_c.values, in_c.keys) == (values, keys)
        return None
    assert start <= done <= max(start, len(items))
    for item in items[start:done]:
        in_python._mark_unknown(key, item, known)
    assert (in_c.values, in_c.keys, in_c.full_marked) == (
        in_python.values,
        in_python.keys,
        in_python.full_marked,
    )
    _same_types(in_c, in_python)
    if done < len(items):  # the item C left is marked by Python, from the same state, as it would have been
        _left_alike(in_c, in_python, lambda group: group._mark_unknown(key, items[done], known))
    return done


_KNOWN = st.sets(st.tuples(st.just(7), _TAG_KEYS, _TAG_VALUES), max_size=5)


@needs_native
@settings(max_examples=700, deadline=None)
@given(
    values=_GROUP_VALUES,
    stored=_GROUP_STORED,
    keys=_GROUP_KEYS,
    stored_none=st.booleans(),
    key=_mostly(st.sampled_from([None, None, TEXT_KEY, "a"]), _ANY),
    data=st.data(),
    known=_mostly(_KNOWN, st.frozensets(st.tuples(st.just(7), _TAG_KEYS, _TAG_VALUES), max_size=3)),
    start=_mostly(st.just(0), st.integers(0, 9)),
    stored_keys=_STORED_KEYS,
)
def test_marking_tags_in_c_marks_as_python(
    values, stored, keys, stored_none, key, data, known, start, stored_keys
) -> None:
    item = st.tuples(_TAG_KEYS, _TAG_VALUES) if key is None else _TAG_VALUES
    odd = st.tuples(_ANY, _ANY) | _ANY if key is None else _ANY
    items = data.draw(_mostly(st.lists(item, max_size=8), st.lists(odd, max_size=3)))
    _mark_both(values, stored, keys, stored_none, items, key, known, start, stored_keys)


@needs_native
@settings(max_examples=500, deadline=None)
@given(
    values=st.dictionaries(st.tuples(_TAG_KEYS, _TAG_VALUES), _VALUE_ROW, max_size=6),
    stored=st.dictionaries(
        st.tuples(_TAG_KEYS, _TAG_VALUES), st.tuples(st.integers(0, 5), _SMALL, _SMALL), max_size=8
    ),
    keys=st.fixed_dictionaries(
        dict.fromkeys(
            ("a", "b", "c", TEXT_KEY),
            st.builds(
                lambda seen, other, state: [seen, other, state],
                st.integers(0, 1001),
                _SMALL,
                st.integers(0, 3),
            ),
        )
    ),
    stored_none=st.booleans(),
    pairs=st.booleans(),
    data=st.data(),
    known=_KNOWN,
)
def test_marking_the_usual_tags_is_done_in_c(values, stored, keys, stored_none, pairs, data, known) -> None:
    """Rows as tag_writer makes them, every key read, the group's words not full: C marks every item."""
    keys[TEXT_KEY][0] = min(keys[TEXT_KEY][0], 256 - 10)  # room for every item
    item = st.tuples(_TAG_KEYS, _TAG_VALUES) if pairs else _TAG_VALUES
    key = None if pairs else data.draw(st.sampled_from([TEXT_KEY, "a"]))
    items = data.draw(st.lists(item, max_size=10))
    assert _mark_both(values, stored, keys, stored_none, items, key, known, 0) == len(items)


@needs_native
@settings(max_examples=500, deadline=None)
@given(
    values=st.dictionaries(st.tuples(_TAG_KEYS, _TAG_VALUES), _VALUE_ROW, max_size=6),
    group_id=_PLAIN,
    times=st.dictionaries(st.integers(-5, 5), st.text(max_size=3), max_size=3),
)
def test_writing_value_rows_in_c_writes_as_python(values, group_id, times) -> None:
    intent = intents.IndexOccurrence(
        group_id=group_id, organization_id=1, project_id=2, occurrence_id="o", seen=0, tags=()
    )
    results = []
    for use_c in (True, False):
        group = tag_writer._Group(intent, None, False)
        group.values = copy.deepcopy(values)
        plan, result, cache = CommitPlan(), tag_writer.TagPlan(), dict(times)
        planned, updated = (
            plan.upserts.setdefault(tag_writer.VALUES, {}),
            plan.updates.setdefault(tag_writer.VALUES, set()),
        )
        try:
            if use_c:
                if not native.write_values(
                    group.values, group_id, 1, 2, planned, updated, result.known, cache
                ):
                    assert (planned, updated, result.known, cache) == ({}, set(), [], times)
                    return
            else:
                saved, tag_writer._native = tag_writer._native, None
                try:
                    group.write(plan, cache, result)
                finally:
                    tag_writer._native = saved
        except Exception as error:
            results.append(type(error))
            continue
        results.append((planned, updated, result.known, cache))
    assert results[0] == results[1]


_COLUMNS = [("GroupId", "Type"), ("GroupId", "Seq"), spanner_rows.GROUP_STATE_COLUMNS, ("GroupId", "Type")]


@needs_native
@settings(max_examples=400, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.tuples(st.integers(0, 8)) | st.tuples(st.integers(0, 3), _TEXT), st.integers(0, 3), _ANY
        ),
        max_size=12,
    ),
    new=st.sets(st.tuples(st.integers(0, 8)), max_size=3),
    updated=st.sets(st.tuples(st.integers(0, 8)), max_size=3),
    groups=st.booleans(),
)
def test_grouping_rows_in_c_groups_as_python(rows, new, updated, groups) -> None:
    planned = {key: (_COLUMNS[columns], (value,)) for key, columns, value in rows}
    new_, updated_ = new or (), updated or ()
    answer = native.group_rows("T", planned, new_, updated_, groups)
    assert answer is not None
    assert answer == commit_plan._group_rows("T", planned, new_, updated_, groups)
    order, _ = answer
    assert [id(columns) for _kind, _table, columns, _rows in order] == [
        id(columns)
        for _kind, _table, columns, _rows in commit_plan._group_rows("T", planned, new_, updated_, groups)[0]
    ]


@needs_native
def test_grouping_rows_of_odd_shapes_is_left_to_python() -> None:
    assert native.group_rows("T", {(1,): ["not", "a tuple"]}, (), (), False) is None
    assert native.group_rows("T", {(1,): (["cols"], ())}, (), (), False) is None
    assert native.group_rows("T", {(1.5,): (("A",), ())}, (), (), False) is None
    many = {(n,): (tuple(f"c{n}"), ()) for n in range(40)}  # more groups than C keeps
    assert native.group_rows("T", many, (), (), False) is None


def test_without_the_extension_the_python_path_runs_and_says_so() -> None:
    run_without_extension(
        "_planning",
        "Commit planning",
        "from transforms.storage import spanner_rows, tag_writer, commit_plan, spanner_writer\n"
        "assert spanner_rows.planning is None and tag_writer._native is None\n"
        "assert commit_plan._native is None and spanner_writer._native is None\n",
    )


@needs_native
def test_a_build_of_another_source_is_not_used(monkeypatch, caplog) -> None:
    monkeypatch.setattr(native, "SOURCE_SHA256", "0" * 64)
    with caplog.at_level(logging.INFO, logger=spanner_rows.__name__):
        assert spanner_rows.load_native("_planning", "Commit planning") is None
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "built from another version of _planning.c" in caplog.records[0].getMessage()


@needs_native
def test_a_current_build_is_used_and_says_so(caplog) -> None:
    with caplog.at_level(logging.INFO, logger=spanner_rows.__name__):
        assert spanner_rows.load_native("_planning", "Commit planning") is native
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == ["Commit planning: C path"]


def test_the_worker_package_carries_the_c_source(tmp_path: Path) -> None:
    with tarfile.open(_sdist(ROOT, tmp_path)) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "transforms/storage/_planning.c" in names


_WORDS = st.sampled_from(["a", "b", "@text", "é"])
_INDEX = st.builds(
    intents.IndexOccurrence,
    group_id=_mostly(st.integers(1, 3), _ANY),
    organization_id=st.just(1),
    project_id=st.just(2),
    occurrence_id=st.just("o"),
    seen=st.just(0),
    tags=_mostly(st.lists(st.tuples(_WORDS, _WORDS), max_size=5).map(tuple), st.lists(_PAIR, max_size=2)),
    search_tags=_mostly(st.lists(st.tuples(_WORDS, _WORDS), max_size=3).map(tuple), st.just([("a", "b")])),
    terms=_mostly(st.lists(_WORDS, max_size=5).map(tuple), st.lists(_ANY, max_size=2).map(tuple)),
)
_INTENT = st.one_of(
    _INDEX,
    st.builds(
        intents.LinkHashes,
        project_id=st.just(1),
        group_id=st.just(2),
        hashes=_mostly(st.lists(_TEXT, max_size=3).map(tuple), st.lists(_TEXT, max_size=2)),
    ),
    st.builds(
        intents.DeleteGroup,
        group_id=st.just(2),
        project_id=st.just(1),
        hashes=st.lists(_TEXT, max_size=3).map(tuple),
    ),
    st.builds(intents.RecordGroupRelease, group_id=st.just(2), release=st.just("r")),
    st.builds(intents.DeleteActivity, group_id=st.just(2), activity_id=st.just("a")),
)


@needs_native
@settings(max_examples=400, deadline=None)
@given(
    writes=st.lists(
        st.lists(_INTENT, max_size=4).map(lambda found: intents.KeyWrite("1:k", 1, tuple(found))), max_size=5
    ),
    known=st.none() | st.sets(st.tuples(st.integers(1, 3), _WORDS, _WORDS), max_size=20),
)
def test_estimating_writes_in_c_estimates_as_python(writes, known) -> None:
    """``spanner_writer._write_costs`` (C) against ``estimate_mutations`` (Python), with or without known rows."""
    from transforms.storage import spanner_writer

    tag_cost = None
    if known is not None:
        rows_known = tag_writer.KnownRows()
        rows_known.add_all(known)
        tag_cost = tag_writer.TagCost(rows_known)
    try:
        expected: list | None = [spanner_writer.estimate_mutations(write, tag_cost) for write in writes]
    except (TypeError, ValueError):
        expected = None
    answer = native.write_costs(
        writes,
        spanner_writer._fixed_costs(),
        spanner_writer._special_costs(),
        None if tag_cost is None else tag_cost.known.rows,
        tag_writer.tag_cells(),
    )
    if answer is not None:
        assert answer == expected
    usual = all(
        not isinstance(i, intents.IndexOccurrence)
        or (
            type(i.tags) is type(i.search_tags) is type(i.terms) is tuple
            and type(i.group_id) is int
            and _usual((i.group_id,), i.tags + i.search_tags, True)
            and _usual((), i.terms, False)
        )
        for write in writes
        for i in write.intents
    ) and all(type(i.hashes) is tuple for write in writes for i in write.intents if hasattr(i, "hashes"))
    if usual:
        assert answer is not None
    if expected is not None:  # the writer's estimate, by whichever path
        assert spanner_writer._write_costs(writes, tag_cost) == expected


@needs_native
@pytest.mark.parametrize("count", [0, 1, 21, 22, 40, 70])
def test_estimating_many_tags_in_c_estimates_as_python(count: int) -> None:
    """An intent's lookups are made together up to _planning's BATCH (64) items, one by one past it."""
    from transforms.storage import spanner_writer

    pairs = tuple((f"k{n % 7}", f"v{n}") for n in range(count))
    intent = intents.IndexOccurrence(
        3, 1, 2, "o", 0, pairs, pairs[: count // 2], tuple(f"w{n}" for n in range(count))
    )
    rows_known = tag_writer.KnownRows()
    rows_known.add_all({(3, key, value) for key, value in pairs[::2]})
    rows_known.add_all({(3, TEXT_KEY, f"w{n}") for n in range(0, count, 3)})
    rows_known.add_all({(n, "k", "v") for n in range(5000)})  # a table of many slots
    writes = [intents.KeyWrite("1:k", 1, (intent,))]
    cost = tag_writer.TagCost(rows_known)
    expected = [spanner_writer.estimate_mutations(write, cost) for write in writes]
    assert (
        native.write_costs(
            writes,
            spanner_writer._fixed_costs(),
            spanner_writer._special_costs(),
            rows_known.rows,
            tag_writer.tag_cells(),
        )
        == expected
    )


_COSTS_LEAK_SCRIPT = """
import gc, sys
from transforms.core import intents
from transforms.storage import spanner_writer as sw, tag_writer as tw
known = tw.KnownRows()
known.add_all({(3, "k", "v"), (3, "@text", "w")})
many = tuple(("k", str(n)) for n in range(70))
writes = [
    intents.KeyWrite("1:k", 1, (intents.IndexOccurrence(3, 1, 2, "o", 0, (("k", "v"), ("k", "x")), (), ("w", "z")),)),
    intents.KeyWrite("1:k", 2, (intents.IndexOccurrence(3, 1, 2, "o", 0, many, (), ()),)),
]
odd = [intents.KeyWrite("1:k", 1, (intents.IndexOccurrence(3, 1, 2, "o", 0, (("k", 1.5),), (), ()),))]
def call():
    sw._write_costs(writes, tw.TagCost(known))
    sw._write_costs(odd, tw.TagCost(known))
"""


@needs_native
def test_estimating_writes_in_c_leaks_nothing() -> None:
    calls = 10_000
    assert leaked_blocks(_COSTS_LEAK_SCRIPT, calls) < calls // 20


@needs_native
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_PLAIN, _TEXT, _TEXT)
        | st.tuples(_ANY, _ANY)
        | st.tuples(st.lists(_TEXT, max_size=2))
        | _ANY,
        max_size=8,
    )
)
def test_untracking_rows_untracks_only_tuples_of_str_and_int(found: list) -> None:
    """``untrack_rows`` (``KnownRows.add_all``) untracks a tuple of exact str and int, as CPython's collector
    would; a tuple holding anything else stays as it was, and the list is not changed."""
    before = list(found)
    tracked = [gc.is_tracked(row) for row in found]
    assert native.untrack_rows(found) is None
    assert found == before and all(a is b for a, b in zip(found, before, strict=True))
    for row, was in zip(found, tracked, strict=True):
        if type(row) is tuple and all(type(item) in (str, int) for item in row):
            assert not gc.is_tracked(row)
        else:
            assert gc.is_tracked(row) == was
    assert native.untrack_rows(tuple(found)) is None  # not a list: nothing done


def test_known_rows_answer_the_same_untracked() -> None:
    """Rows added from a list (as the tag writer adds them) are found as before, and where the extension is built
    the collector no longer tracks them."""
    known = tag_writer.KnownRows()
    found = [(7, "k", str(n)) for n in range(10)] + [(7, "@text", "w")]
    known.add_all(found)
    assert known.rows == set(found) and (7, "k", "3") in known.rows and (7, "k", "x") not in known.rows
    assert all(gc.is_tracked(row) is (native is None) for row in found)
