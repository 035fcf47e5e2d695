"""Keyset cursors: round trips, the previous-page history, and refusal of anything malformed."""

from __future__ import annotations

import base64
import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.cursor import HISTORY, Cursor, CursorError, decode, first_page


def test_cursor_round_trips():
    cursor = Cursor("priority", (75, 1_767_225_600_000_000, 42), ((50, 1, 2), None))
    assert decode(cursor.encode(), "priority") == cursor


def test_cursor_is_url_safe():
    text = Cursor("date", (2**62, 2**62), (None,)).encode()
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_next_remembers_where_this_page_started_and_previous_goes_back():
    page1 = first_page("date")
    page2 = page1.next((100, 9))
    page3 = page2.next((90, 7))
    assert page3.previous() == page2
    assert page2.previous() == page1
    assert page1.previous() is None


def test_history_is_bounded_and_previous_then_leads_to_the_first_page():
    cursor = first_page("freq")
    for n in range(HISTORY + 5):
        cursor = cursor.next((1000 - n, n))
    assert len(cursor.back) == HISTORY
    steps = 0
    while cursor.previous() is not None:
        cursor = cursor.previous()
        steps += 1
    assert cursor == first_page("freq")
    assert steps == HISTORY + 1


def test_cursor_of_another_sort_is_refused():
    text = first_page("date").next((1, 2)).encode()
    with pytest.raises(CursorError, match="sort=date"):
        decode(text, "freq")


def _raw(body: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "nonsense!",
        "",
        _raw([1, "date", [1], []]),
        _raw([1, "date", [1, "x"], []]),
        _raw([1, "date", [1, 2**63], []]),
        _raw([2, "date", None, []]),
        _raw([1, "user", None, []]),
        _raw([1, "date", None, [None] * (HISTORY + 1)]),
        _raw({"sort": "date"}),
        "A" * 5000,
    ],
)
def test_malformed_cursors_are_refused(text: str):
    with pytest.raises(CursorError):
        decode(text, "date")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_cursor_strings_never_crash(text: str):
    with contextlib.suppress(CursorError):
        decode(text, "date")
