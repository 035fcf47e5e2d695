"""``CommitPlan``'s rows: merging a row written twice (``merged_row``) and grouping rows into mutations with
their count (``mutation_groups``), against the plain definitions they stand for; an event's JSON text made
ahead (``spanner_rows.keep_payloads``) and taken by its rows (``event_payload``)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.core.model import Event
from transforms.storage import spanner_rows as rows
from transforms.storage.commit_plan import CommitPlan, merged_row, mutation_groups

NAMES = ("A", "B", "C", "D", "E", "F")


def _dict_merge(previous, columns, values):
    merged = dict(zip(*previous))
    merged.update(zip(columns, values))
    return tuple(merged), tuple(merged.values())


@st.composite
def two_writes(draw):
    old_columns = tuple(draw(st.permutations(NAMES))[: draw(st.integers(1, len(NAMES)))])
    new_columns = tuple(draw(st.permutations(NAMES))[: draw(st.integers(1, len(NAMES)))])
    if draw(st.booleans()):  # the shape a group's state after its row has: its first and last columns
        new_columns = (
            old_columns[0],
            *old_columns[len(old_columns) - draw(st.integers(0, len(old_columns) - 1)) :],
        )
        new_columns = tuple(dict.fromkeys(new_columns))
    old_values = tuple(f"old-{name}" for name in old_columns)
    new_values = tuple(f"new-{name}" for name in new_columns)
    return (old_columns, old_values), new_columns, new_values


@given(two_writes())
def test_a_row_written_twice_is_the_first_updated_by_the_second_in_the_first_s_column_order(case):
    previous, columns, values = case
    assert merged_row(previous, columns, values) == _dict_merge(previous, columns, values)


def test_a_group_s_state_after_its_row_keeps_the_row_s_columns_and_replaces_its_last_values():
    values = tuple(range(len(rows.GROUP_COLUMNS)))
    columns, merged = merged_row((rows.GROUP_COLUMNS, values), rows.GROUP_STATE_COLUMNS, (0, 9, "s", "t"))
    assert columns is rows.GROUP_COLUMNS
    assert merged == (*values[:-3], 9, "s", "t")


def _counted_row_by_row(plan: CommitPlan) -> int:
    index_cells = rows.index_cells_per_row()
    total = 0
    for table, planned in plan.upserts.items():
        updated = plan.updates.get(table, set())
        for key, (columns, _values) in planned.items():
            total += len(columns) + (0 if key in updated else index_cells.get(table, 0))
    for table, deleted in plan.deletes.items():
        total += len(deleted) * (2 if index_cells.get(table) else 1)
    return total


def test_rows_of_equal_columns_in_distinct_tuples_are_one_mutation_and_the_count_is_row_by_row():
    plan = CommitPlan()
    plan.upsert("Groups", (1,), rows.GROUP_COLUMNS, tuple(range(len(rows.GROUP_COLUMNS))))
    plan.upsert("Groups", (2,), tuple(list(rows.GROUP_COLUMNS)), tuple(range(len(rows.GROUP_COLUMNS))))
    plan.upsert("Groups", (3,), rows.GROUP_STATE_COLUMNS, (3, 1, "s", "t"))
    plan.upsert("GroupTagValues", (1, "k", "a"), rows.TAG_VALUE_COUNT_COLUMNS, (1, "k", "a", 2, "t"))
    plan.updates["GroupTagValues"] = {(1, "k", "a")}
    plan.upsert("GroupTagValues", (1, "k", "b"), rows.TAG_VALUE_COLUMNS, (1, "k", "b", 10, 1, 1, "t", "t"))
    plan.inserts.add(("KeyStates", (1, "h")))
    plan.upsert("KeyStates", (1, "h"), rows.KEY_STATE_COLUMNS, (1, "h", 0, 1, None, "s", "t"))
    plan.delete("Activities", (1, "x"))
    found, count = mutation_groups(plan)
    assert [(kind, table, columns, len(values)) for kind, table, columns, values in found] == [
        ("delete", "Activities", (), 1),
        ("insert_or_update", "Groups", rows.GROUP_COLUMNS, 2),
        ("update", "Groups", rows.GROUP_STATE_COLUMNS, 1),
        ("update", "GroupTagValues", rows.TAG_VALUE_COUNT_COLUMNS, 1),
        ("insert_or_update", "GroupTagValues", rows.TAG_VALUE_COLUMNS, 1),
        ("insert", "KeyStates", rows.KEY_STATE_COLUMNS, 1),
    ]
    assert count == plan.mutation_count() == _counted_row_by_row(plan)


_PAYLOAD_EVENT = Event("e" * 32, 1, "python", 5, tags=(("a", "b"),), contexts={"os": {"name": "Linux"}})


def test_an_event_s_payload_is_its_json_whether_made_ahead_or_when_its_row_is_built() -> None:
    text = msgspec.json.encode(_PAYLOAD_EVENT).decode()
    assert rows.event_payload(_PAYLOAD_EVENT) == text
    rows.keep_payloads([_PAYLOAD_EVENT])
    assert rows._PAYLOADS[_PAYLOAD_EVENT.event_id] == (_PAYLOAD_EVENT, text)
    assert rows.event_payload(_PAYLOAD_EVENT) == text
    assert _PAYLOAD_EVENT.event_id not in rows._PAYLOADS  # taken: each is used once
    assert rows.event_payload(_PAYLOAD_EVENT) == text


def test_a_payload_made_ahead_is_given_only_to_the_event_object_it_was_made_of() -> None:
    other = msgspec.structs.replace(_PAYLOAD_EVENT, platform="go")  # the same id, another event
    rows.keep_payloads([_PAYLOAD_EVENT])
    assert rows.event_payload(other) == msgspec.json.encode(other).decode()
    assert _PAYLOAD_EVENT.event_id not in rows._PAYLOADS


def test_payloads_made_ahead_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(rows, "MAX_KEPT_PAYLOADS", 3)
    monkeypatch.setattr(rows, "_PAYLOADS", {})
    events = [msgspec.structs.replace(_PAYLOAD_EVENT, event_id=f"{n:032x}") for n in range(6)]
    for event in events:
        rows.keep_payloads([event])
        assert len(rows._PAYLOADS) <= 4
    assert [rows.event_payload(event) for event in events] == [
        msgspec.json.encode(event).decode() for event in events
    ]


def test_an_event_that_cannot_be_encoded_is_left_to_its_row_whose_error_is_the_commit_s() -> None:
    bad = msgspec.structs.replace(_PAYLOAD_EVENT, event_id="b" * 32, user={"name": "\ud800"})
    rows.keep_payloads([bad, _PAYLOAD_EVENT])  # no error here
    assert bad.event_id not in rows._PAYLOADS and _PAYLOAD_EVENT.event_id in rows._PAYLOADS
    with pytest.raises(UnicodeEncodeError):
        rows.event_payload(bad)
    rows._PAYLOADS.clear()
