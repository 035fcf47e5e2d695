"""``_planning.index_tags`` and ``plan_words`` (the loops of ``tag_writer.plan_tags`` in C) plan what the
Python loops plan.

They count and mark a commit's occurrences, and plan their words, up to one they leave to Python (wholly,
or from an item on); the plan is the same whatever they leave: compared here on generated commits (groups stored or new, rows read
or known stored, caps small enough to be reached, and odd types), with the extension and without.
"""

from __future__ import annotations

import copy
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.core import intents
from transforms.core.engine.tags import TEXT_KEY
from transforms.storage import tag_writer
from transforms.storage.commit_plan import CommitPlan
from transforms.storage.org_words import FULL_KEY, FULL_VALUE, KnownWords

native = tag_writer._native
needs_native = pytest.mark.skipif(native is None, reason="the C extension _planning is not built here")

_GROUPS = st.sampled_from([7, 8, 9])
_KEYS = st.sampled_from(["a", "b", "c", "@s"])
_VALUES = st.sampled_from(["1", "2", "é"])
_SEARCH_KEYS = st.sampled_from(["@s", "@t", "a"])
_WORDS = st.sampled_from(["w1", "w2", "w3", "w4"])
_ODD = st.sampled_from([None, 5, 1.5, True, b"x", ("a",), ("a", 5)])
_SMALL = st.integers(-5, 5)


def _mostly(usual: st.SearchStrategy, odd: st.SearchStrategy, times: int = 9) -> st.SearchStrategy:
    """``usual`` ``times`` times in ``times + 1``, else ``odd``."""
    return st.one_of([usual] * times + [odd])


def _rarely(usual: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    return _mostly(usual, odd, 40)


_INTENT = st.builds(
    intents.IndexOccurrence,
    group_id=_rarely(_GROUPS, st.sampled_from([True, 2**70])),
    organization_id=_rarely(st.sampled_from([1, 2]), st.sampled_from([True, 2**70])),
    project_id=st.just(2),
    occurrence_id=_rarely(st.sampled_from(["o1", "o2", "o3", "o4"]), st.sampled_from([5, 1.5])),
    seen=_rarely(_SMALL, st.sampled_from([2**70, None])),
    tags=_rarely(st.tuples(*[st.tuples(_KEYS, _VALUES)] * 2), st.tuples(_ODD, st.tuples(_KEYS, _VALUES))),
    search_tags=_rarely(
        st.lists(st.tuples(_SEARCH_KEYS, _VALUES), max_size=3).map(tuple), st.tuples(_ODD) | st.just([])
    ),
    terms=_rarely(st.lists(_WORDS, max_size=4).map(tuple), st.tuples(_ODD) | st.just(["w1"])),
)
_STORED_VALUE = _mostly(
    st.tuples(st.integers(0, 3), _SMALL, _SMALL), st.just((None, None, None)) | st.tuples(_ODD)
)
_STORED_KEY = _mostly(st.tuples(st.integers(0, 3), st.integers(0, 2)), st.tuples(_ODD, _ODD))


@st.composite
def _commits(draw: Any) -> tuple:
    """A commit's occurrences, the plan's Occurrences rows, what is stored and known; the caps."""
    indexed = draw(st.lists(_INTENT, max_size=8))
    row_keys = [(intent.group_id, intent.occurrence_id) for intent in indexed]
    planned = {row_key: None for row_key in row_keys if draw(_mostly(st.just(True), st.just(False)))}
    existing = draw(st.sets(_GROUPS))
    full_keys = st.tuples(_GROUPS, _KEYS | _SEARCH_KEYS | st.just(TEXT_KEY) | st.just(FULL_KEY))
    stored = tag_writer.StoredTags(
        occurrences={row_key for row_key in row_keys if draw(st.sampled_from([False] * 4 + [True]))},
        values={
            (group, key, value): row
            for (group, key), value, row in draw(
                st.lists(
                    st.tuples(full_keys, _VALUES | _WORDS | st.just(FULL_VALUE), _STORED_VALUE), max_size=8
                )
            )
        },
        keys=dict(draw(st.lists(st.tuples(full_keys, _STORED_KEY), max_size=6))),
        key_groups=draw(_mostly(st.just(existing), st.sets(_GROUPS))),
    )
    words_or_values = _VALUES | _WORDS | st.just(FULL_VALUE)
    known = draw(
        st.sets(st.tuples(_GROUPS, _SEARCH_KEYS | st.just(TEXT_KEY) | st.just(FULL_KEY), words_or_values))
    )
    caps = draw(
        st.tuples(
            st.sampled_from([1, 2, 1000]), st.sampled_from([1, 2, 256]), st.sampled_from([0, 1, 2, 100])
        )
    )
    words = draw(st.sets(st.tuples(st.sampled_from([1, 2]), _WORDS)))
    return indexed, planned, existing, stored, known, words, caps


@contextmanager
def _caps(values: int, terms: int, keys: int) -> Iterator[None]:
    saved = tag_writer.TAG_VALUES_PER_KEY, tag_writer.TERMS_PER_GROUP, tag_writer.TAG_KEYS_PER_GROUP
    tag_writer.TAG_VALUES_PER_KEY, tag_writer.TERMS_PER_GROUP, tag_writer.TAG_KEYS_PER_GROUP = (
        values,
        terms,
        keys,
    )
    try:
        yield
    finally:
        tag_writer.TAG_VALUES_PER_KEY, tag_writer.TERMS_PER_GROUP, tag_writer.TAG_KEYS_PER_GROUP = saved


def _plan(commit: tuple, use_c: bool) -> Any:
    """plan_tags of ``commit`` (deep copies), with or without the extension: its plan, or its error's type."""
    indexed, planned, existing, stored, known_rows, known_words, caps = copy.deepcopy(commit)
    plan = CommitPlan()
    plan.upserts["Occurrences"] = planned
    known = tag_writer.KnownRows()
    known.rows = known_rows
    words = KnownWords()
    words.words = known_words
    saved = tag_writer._native
    tag_writer._native = saved if use_c else None
    try:
        with _caps(*caps):
            result = tag_writer.plan_tags([], plan, existing, stored, known, indexed, words)
    except Exception as error:
        return type(error)
    finally:
        tag_writer._native = saved
    return plan.upserts, plan.updates, result.counted, result.known, result.words


@needs_native
@settings(max_examples=1500, deadline=None)
@given(commit=_commits())
def test_the_loop_in_c_plans_what_the_python_loop_plans(commit) -> None:
    assert _plan(commit, True) == _plan(commit, False)


@needs_native
def test_usual_occurrences_are_done_wholly_in_c() -> None:
    """New and stored groups, new tag keys up to the group's cap, a group whose words are full."""
    indexed = [
        intents.IndexOccurrence(7, 1, 2, "o1", 5, (("a", "1"), ("b", "2")), (("@s", "1"),), ("w1", "w2")),
        intents.IndexOccurrence(7, 1, 2, "o2", 3, (("a", "1"), ("c", "2")), (), ("w2", "w3")),
        intents.IndexOccurrence(8, 1, 2, "o1", 4, (("a", "1"), ("n", "2")), (("@s", "1"),), ("w9",)),
        intents.IndexOccurrence(8, 1, 2, "o1", 4, (("a", "1"),), (), ()),  # the same row: counted once
    ]
    stored = tag_writer.StoredTags(
        values={(8, "a", "1"): (4, 1, 9)},
        keys={(8, "a"): (1, 0), (8, TEXT_KEY): (256, 0), (8, "@s"): (3, 0)},
        key_groups={8},
    )
    groups: dict[int, tag_writer._Group] = {}

    def make_group(intent: intents.IndexOccurrence) -> tag_writer._Group:
        group = groups[intent.group_id] = tag_writer._Group(
            intent, stored if intent.group_id == 8 else None, False
        )
        return group

    planned = {(7, "o1"): None, (7, "o2"): None, (8, "o1"): None}
    done: set = set()
    answer = native.index_tags(
        indexed, 0, groups, make_group, planned, set(), done, set(), (FULL_KEY, FULL_VALUE), 1000, 256, 2
    )
    assert answer == (4, 0, 0, 3)
    assert done == set(planned)
    assert groups[7].values[("a", "1")] == [2, 3, 5, tag_writer._NEW] and groups[7].tag_keys == 2
    assert ("c", "2") not in groups[7].values  # past the group's two tag keys
    assert groups[8].values[("a", "1")] == [5, 1, 9, tag_writer._COUNTED]
    assert groups[8].full_marked and (FULL_KEY, FULL_VALUE) in groups[8].values


def _many_items(odd_at: int | None) -> tuple[tuple, tuple]:
    """45 search tags and 45 words (more than the C looks up ahead: 32), with an odd one at ``odd_at``."""
    search: tuple = tuple(("@s", f"v{i}") for i in range(45))
    terms: tuple = tuple(f"w{i}" for i in range(45))
    if odd_at is not None:
        search = (*search[:odd_at], (5, "x"), *search[odd_at:])
        terms = (*terms[:odd_at], 5, *terms[odd_at:])
    return search, terms


@needs_native
@pytest.mark.parametrize("odd_at", [None, 0, 3, 31, 32, 40])
def test_occurrences_with_more_items_than_looked_up_ahead_are_planned_as_in_python(odd_at) -> None:
    """``mark_items`` and ``words_of`` make and look up the first 32 items' keys ahead: past them, and with an
    odd item among or after them (left to Python from there), the plan is the Python's."""
    search, terms = _many_items(odd_at)
    indexed = [
        intents.IndexOccurrence(7, 1, 2, "o1", 5, (("a", "1"),), search, terms),
        intents.IndexOccurrence(8, 1, 2, "o2", 6, (), search, terms),
    ]
    known = {(7, "@s", f"v{i}") for i in range(0, 45, 3)} | {(8, TEXT_KEY, f"w{i}") for i in range(1, 45, 4)}
    words = {(1, f"w{i}") for i in range(0, 45, 5)}
    stored = tag_writer.StoredTags(keys={(8, "@s"): (40, 0)}, key_groups={8})
    commit = (indexed, {(7, "o1"): None, (8, "o2"): None}, {8}, stored, known, words, (1000, 256, 100))
    assert _plan(commit, True) == _plan(commit, False)


_LEAK_CASES = [
    # answered, with new and stored groups, new keys and a full group's word
    [intents.IndexOccurrence(7, 1, 2, "o1", 5, (("a", "1"), ("b", "2")), (("@s", "1"),), ("w1", "w2"))],
    # more items than looked up ahead, with an odd one among or after them
    *([intents.IndexOccurrence(7, 1, 2, "o1", 5, (), *_many_items(odd_at))] for odd_at in (None, 3, 40)),
    [intents.IndexOccurrence(8, 1, 2, "o1", 5, (("a", "1"), ("n", "2")), (("@s", "1"),), ("w9",))],
    # left to Python: an odd tag, an odd word, an odd occurrence id
    [intents.IndexOccurrence(7, 1, 2, "o1", 5, (("a", "1"), ("b", 5)), (), ())],
    [intents.IndexOccurrence(7, 1, 2, "o1", 5, (), (), ("w1", 5))],
    [intents.IndexOccurrence(7, 1, 2, 1.5, 5, (), (), ())],
]


def _maker(groups: dict, stored: tag_writer.StoredTags) -> Any:
    def make_group(intent: intents.IndexOccurrence) -> tag_writer._Group:
        group = groups[intent.group_id] = tag_writer._Group(intent, stored, False)
        return group

    return make_group


@needs_native
def test_the_loops_in_c_leak_nothing() -> None:
    stored = tag_writer.StoredTags(
        values={(8, "a", "1"): (4, 1, 9)}, keys={(8, "a"): (1, 0), (8, TEXT_KEY): (256, 0)}, key_groups={8}
    )

    def once() -> None:
        for indexed in _LEAK_CASES:
            groups: dict[int, tag_writer._Group] = {}
            make_group = _maker(groups, stored)
            row_keys = {(intent.group_id, intent.occurrence_id): None for intent in indexed}
            native.index_tags(
                indexed,
                0,
                groups,
                make_group,
                row_keys,
                set(),
                set(),
                set(),
                (FULL_KEY, FULL_VALUE),
                1000,
                256,
                100,
            )
            native.plan_words(indexed, 0, {(1, "w1")}, {}, "OrgWords", ("OrganizationId", "Word"), [])
            native.value_keys(indexed, 0, {(8, "o1")}, {(7, "@s", "1")}, set())
        for keys in ({"a": [1, 0, 3], "b": [2, 1, 1], "c": [1, 0, 0]}, {"a": [1, 0, 3], "b": [1, 0]}):
            native.write_keys(keys, 7, 1, 2, {}, set(), ("N",), ("U",))
        for stored_keys in (
            {(7, "a"): (1, 0), (7, "@s"): (1, 0), (8, "a"): (1, 0)},
            {(7, "a"): 1, (7, 5): 1},
        ):
            native.count_tag_keys(stored_keys)
        with pytest.raises(ZeroDivisionError):  # make_group raising
            native.index_tags(_LEAK_CASES[0], 0, {}, lambda intent: 1 / 0, {(7, "o1"): None}, set(), set(), set(),
                              (FULL_KEY, FULL_VALUE), 1000, 256, 100)  # fmt: skip

    for _ in range(200):
        once()
    assert native.plan_words([], 0, set(), {"OrgWords": []}, "OrgWords", (), []) is None  # not a dict
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(5000):
        once()
    gc.collect()
    assert sys.getallocatedblocks() - before < 250


@needs_native
def test_usual_words_are_planned_wholly_in_c() -> None:
    indexed = [
        intents.IndexOccurrence(7, 1, 2, "o1", 5, (), (), ("w1", "w2", "w1")),
        intents.IndexOccurrence(8, 3, 2, "o1", 5, (), (), ("w1",)),
    ]
    upserts: dict = {"Occurrences": {}}
    words: list = []
    assert native.plan_words(indexed, 0, {(1, "w2")}, upserts, "OrgWords", ("O", "W"), words) == 2
    assert words == [(1, "w1"), (3, "w1")]
    assert upserts["OrgWords"] == {word: (("O", "W"), word) for word in words}
    upserts = {}
    assert native.plan_words(indexed, 0, {(1, "w1"), (1, "w2"), (3, "w1")}, upserts, "OrgWords", (), []) == 2
    assert upserts == {}  # no word to write: no table


@needs_native
def test_key_rows_are_written_in_c_as_in_python() -> None:
    keys = {"a": [1, 0, tag_writer._NEW], "b": [2, 1, tag_writer._COUNTED], "c": [1, 0, tag_writer._STORED]}
    planned: dict = {}
    updated: set = set()
    assert native.write_keys(keys, 7, 1, 2, planned, updated, ("N",), ("U",))
    assert planned == {(7, "a"): (("N",), (7, "a", 1, 2, 1, 0)), (7, "b"): (("U",), (7, "b", 2, 1))}
    assert updated == {(7, "b")}
    assert not native.write_keys({"a": [1, 0, 3], "b": [1, 0, True]}, 7, 1, 2, planned := {}, set(), (), ())
    assert planned == {}


@needs_native
@settings(max_examples=300, deadline=None)
@given(
    keys=st.dictionaries(
        _mostly(st.tuples(_GROUPS, _KEYS | _SEARCH_KEYS), st.tuples(_ODD, _KEYS) | st.tuples(_GROUPS, _ODD)),
        st.just((1, 0)),
        max_size=8,
    )
)
def test_stored_tag_keys_are_counted_in_c_as_in_python(keys) -> None:
    in_c = tag_writer.StoredTags(keys=keys)
    in_python = tag_writer.StoredTags(keys=keys)
    saved = tag_writer._native
    tag_writer._native = None
    try:
        expected: Any = [in_python.tag_key_count(group) for group in (7, 8, 9)]
    except Exception as error:
        expected = type(error)
    finally:
        tag_writer._native = saved
    try:
        answer: Any = [in_c.tag_key_count(group) for group in (7, 8, 9)]
    except Exception as error:
        answer = type(error)
    assert answer == expected


class _Reads:
    """A transaction answering the Occurrences rows of ``stored`` and recording every key asked for."""

    def __init__(self, stored: set) -> None:
        self.stored = stored
        self.asked: list = []

    def read(self, table: str, columns: Any, keyset: Any) -> list:
        keys = [tuple(key) for key in keyset.keys]
        self.asked.append((table, keys, [key_range.start_closed for key_range in keyset.ranges]))
        return [list(key) for key in keys if table == "Occurrences" and key in self.stored]


def _reads(commit: tuple, use_c: bool) -> Any:
    """What read_stored asks for ``commit``, with or without the extension (or its error's type)."""
    indexed, planned, existing, stored, known_rows, _words, _caps = copy.deepcopy(commit)
    plan = CommitPlan()
    plan.upserts["Occurrences"] = planned
    known = tag_writer.KnownRows()
    known.rows = known_rows
    reads = _Reads(stored.occurrences)
    saved = tag_writer._native
    tag_writer._native = saved if use_c else None
    try:
        tag_writer.read_stored(reads, indexed, plan, existing, known)
    except Exception as error:
        return type(error)
    finally:
        tag_writer._native = saved
    return reads.asked


@needs_native
@settings(max_examples=800, deadline=None)
@given(commit=_commits())
def test_the_rows_read_are_chosen_in_c_as_in_python(commit) -> None:
    assert _reads(commit, True) == _reads(commit, False)
