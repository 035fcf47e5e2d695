"""``plan_commit`` in C (``_planning.plan_writes``) plans as the Python planners do, or leaves the commit to them.

Compared on the engine's writes (``tests/engine/sequences.py``) committed in any grouping, with duplicates (as
retries replay them), against generated stored versions and keys taken for new; and on writes of odd shapes.
The whole plan is compared: rows with their column tuples and order, deletions, inserts, stale count, the
intents left for the tag writer and the environment checks, or the error raised.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.sequences import key_order, sequences
from tests.engine.test_properties import apply_batches, splits
from tests.native_paths import leaked_blocks
from transforms.core import intents
from transforms.core.model import Event, split_group_key
from transforms.storage import commit_plan, spanner_rows
from transforms.storage.commit_plan import StoredVersions, group_ids, plan_commit

native = spanner_rows.planning
needs_native = pytest.mark.skipif(native is None, reason="the C extension _planning is not built here")


def _snapshot(plan: commit_plan.CommitPlan) -> tuple:
    return (
        [(table, list(planned.items())) for table, planned in plan.upserts.items()],
        [(table, list(deleted)) for table, deleted in plan.deletes.items()],
        plan.inserts,
        plan.stale_writes,
        plan.indexed,
        plan.environment_checks,
        plan.updates,
    )


def _both(writes: Any, stored: StoredVersions, assumed_new: Any) -> tuple[Any, Any]:
    """The plan (or the error's type) with the C path, and with the Python planners alone."""
    found = []
    for path in (native, None):
        saved = commit_plan._native
        commit_plan._native = path
        try:
            found.append(_snapshot(plan_commit(writes, stored, assumed_new)))
        except Exception as error:
            found.append(type(error))
        finally:
            commit_plan._native = saved
    return found[0], found[1]


@needs_native
@settings(
    max_examples=int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(sequence=sequences(), data=st.data())
def test_planning_writes_in_c_plans_as_the_python_planners(sequence, data) -> None:
    run = apply_batches(sequence, data.draw(splits(key_order(sequence.messages))))
    if not run.writes:
        return
    writes = data.draw(st.lists(st.sampled_from(run.writes), max_size=len(run.writes) + 3))
    keys = sorted({split_group_key(write.key) for write in run.writes})
    groups = sorted(set().union(*(group_ids(write) for write in run.writes)))
    releases = sorted(
        {
            (intent.project_id, intent.version)
            for write in run.writes
            for intent in write.intents
            if isinstance(intent, intents.RecordRelease)
        }
    )
    seqs = st.integers(0, max(write.seq for write in run.writes) + 1)
    stored = StoredVersions(
        key_seq=data.draw(st.dictionaries(st.sampled_from(keys), seqs)),
        group_seq=data.draw(st.dictionaries(st.sampled_from(groups), seqs)) if groups else {},
        release_first_seen=(
            data.draw(st.dictionaries(st.sampled_from(releases), st.integers(0, 2**53) | st.none()))
            if releases
            else {}
        ),
    )
    assumed_new = data.draw(st.sets(st.sampled_from(keys)) | st.frozensets(st.sampled_from(keys)))
    in_c, in_python = _both(writes, stored, assumed_new)
    assert in_c == in_python


@needs_native
@settings(
    max_examples=int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "200")) // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(sequence=sequences(), data=st.data())
def test_events_json_made_ahead_is_what_both_paths_write_without_it(sequence, data) -> None:
    """``spanner_rows.keep_payloads`` (the applier's, for any of the events) changes no row of either path."""
    run = apply_batches(sequence, data.draw(splits(key_order(sequence.messages))))
    events = [
        intent.event
        for write in run.writes
        for intent in write.intents
        if isinstance(intent, intents.RecordEvent)
    ]
    if not events:
        return
    kept = data.draw(st.lists(st.sampled_from(events), unique_by=id))
    keys = sorted({split_group_key(write.key) for write in run.writes})
    stored, assumed_new = StoredVersions(), data.draw(st.sets(st.sampled_from(keys)))
    expected = _both(run.writes, stored, assumed_new)
    found = []
    for path in (native, None):
        spanner_rows.keep_payloads(kept)
        saved = commit_plan._native
        commit_plan._native = path
        try:
            found.append(_snapshot(plan_commit(run.writes, stored, assumed_new)))
        finally:
            commit_plan._native = saved
            spanner_rows._PAYLOADS.clear()
    assert tuple(found) == expected


@needs_native
def test_events_are_encoded_in_c_as_in_python_before_the_payloads_function_is_configured() -> None:
    writes, _odd = _writes()
    stored = StoredVersions({(1, "h"): 1}, {3: 1}, {(1, "v"): 9})
    native.configure_payloads(None)
    try:
        in_c, in_python = _both(writes, stored, {(1, "n")})
    finally:
        native.configure_payloads(spanner_rows.event_payload)
    assert in_c == in_python
    with pytest.raises(TypeError):
        native.configure_payloads(1)


_EVENT = Event("e" * 32, 1, "python", 5, received=None)
_RECORD = intents.RecordEvent(_EVENT, "error")


class _Other:
    """Not an intent class."""


@needs_native
@pytest.mark.parametrize(
    "write",
    [
        intents.KeyWrite("1:h", 1, [_RECORD]),  # intents in a list: the Python's
        intents.KeyWrite("x:h", 1, (_RECORD,)),  # int("x") raises in both
        intents.KeyWrite("7", 1, (_RECORD,)),  # no ":": (7, "")
        intents.KeyWrite(5, 1, (_RECORD,)),  # type: ignore[arg-type]  # not a str: split_group_key's error
        intents.KeyWrite("1:h", 1, (_RECORD, _Other())),  # type: ignore[arg-type]  # unknown intent
        intents.KeyWrite("1:h", 1, (intents.RecordEvent(Event(["?"], 1, "p", 1), "error"),)),  # type: ignore[arg-type]
        intents.KeyWrite("1:h", "2", (intents.SaveKeyState(1, "h", 0, None, b"s", False),)),  # type: ignore[arg-type]
        intents.KeyWrite("1:h", 2, (intents.SaveKeyState(1, "h", 0, 9, b"s", True),)),  # group 9 not alive
        intents.KeyWrite("1:h", 2, (intents.RecordRelease(1, "v", None),)),  # type: ignore[arg-type]
        intents.KeyWrite("1:h", 2, (intents.RecordRelease(1, "v", "late"),)),  # type: ignore[arg-type]
        intents.KeyWrite("1:h", 2, (intents.LinkHashes(1, 3, ["a", "b"]),)),  # type: ignore[arg-type]
        intents.KeyWrite("1:h", 2, (intents.LinkHashes(1, 3, 5),)),  # type: ignore[arg-type]
        intents.KeyWrite("1:h", 2, (intents.InsertActivity(3, 1, "a", 1, "m", 5, None),)),
        intents.KeyWrite(
            "1:h", 2, (intents.RecordEnvironment(3, "e", None, 1), intents.RecordGroupRelease(3, "r"))
        ),
    ],
)
def test_writes_of_odd_shapes_are_planned_as_python_plans_them(write) -> None:
    stored = StoredVersions(key_seq={(1, "h"): 1}, group_seq={3: 1}, release_first_seen={(1, "v"): 3})
    in_c, in_python = _both([write, write], stored, set())
    assert in_c == in_python


@needs_native
def test_a_planning_of_other_container_types_is_left_to_python() -> None:
    planning = commit_plan.Planning(StoredVersions(), [(1, "h")])  # type: ignore[arg-type]
    assert native.plan_writes(planning, [intents.KeyWrite("1:h", 1, (_RECORD,))]) is None
    assert planning.plan.upserts == {}
    assert native.plan_writes(commit_plan.Planning(StoredVersions(), set()), ()) is None


_LEAK_SCRIPT = """
import gc, sys
from transforms.core import intents
from transforms.core.model import Event
from transforms.storage import commit_plan
from transforms.storage.commit_plan import StoredVersions, plan_commit
from transforms.storage.spanner_rows import keep_payloads
from tests.test_commit_plan_native import _EVENT, _writes
writes, odd = _writes()
def raising(write):
    try:
        plan_commit([write], StoredVersions(), set())
    except (TypeError, ValueError, KeyError):
        pass
def call():
    keep_payloads([_EVENT])  # its rows take the JSON made ahead (the Events row's, then an occurrence's anew)
    plan_commit(writes, StoredVersions({(1, "h"): 1}, {3: 1}, {(1, "v"): 9}), {(1, "n")})
    for write in odd:
        raising(write)
"""


def _writes() -> tuple[list[intents.KeyWrite], list[intents.KeyWrite]]:
    """Writes through every C path (for the leak check), and writes that raise in it."""
    import msgspec
    from msgspec.structs import replace

    from transforms.core.model import EvidenceItem, Occurrence

    group = intents.GroupRow(
        3, 1, 1, "h", "f", 0, 1, 1, 0, None, None, 40, "t", "s", "c", "m", None, 1, 2, 3, None, 1, None, None,
        None, None, {"a": [1]},
    )  # fmt: skip
    occurrence = Occurrence("o", 1, "e" * 32, ("f",), ("h",), "t", "s", 1, 5, evidence_data={"k": [1]})
    occurrence2 = Occurrence("p", 1, "d" * 32, ("f",), ("h",), "t", "s", 1, 5)
    event = intents.RecordEvent(_EVENT, "error")
    attached = intents.InsertOccurrence(3, "m", 1, 2, occurrence, "r", None)
    alone = intents.InsertOccurrence(3, "m", 1, 2, occurrence2, None, "prod")
    # evidence as the shuffle keeps it (its msgpack bytes: model.EvidenceData)
    display = (EvidenceItem("n", "v", True),)
    encoded = msgspec.msgpack.encode(
        replace(occurrence, id="q", evidence_display=display, evidence_data={"k": [1, {"v": None}]})
    )
    shuffled = intents.InsertOccurrence(
        3, "m", 1, 2, msgspec.msgpack.decode(encoded, type=Occurrence), None, None
    )

    def group_rows(group_id: int) -> tuple[intents.Intent, ...]:
        return (
            intents.RecordEnvironment(group_id, "prod", None, 5),
            intents.RecordGroupRelease(group_id, "r"),
            intents.LinkHashes(1, group_id, ("h", "i")),
            intents.InsertActivity(group_id, 1, "a", 1, "m", 5, {"x": 1}),
        )

    writes = [
        intents.KeyWrite("1:h", 2, (event, intents.UpsertGroup(group), attached, alone, shuffled)),
        intents.KeyWrite(
            "1:h", 3, (intents.SaveKeyState(1, "h", 0, 3, b"s", True), intents.RecordRelease(1, "v", 4))
        ),
        intents.KeyWrite("1:n", 1, (intents.SaveKeyState(1, "n", 0, None, b"t", False), event)),
        intents.KeyWrite("1:n", 2, (intents.UpsertGroup(replace(group, group_id=4)), *group_rows(4))),
        intents.KeyWrite("1:s", 1, group_rows(3)),  # stale for group 3: its environment checked
        intents.KeyWrite("1:o", 1, (intents.DeleteGroup(3, 1, ("h",)), intents.RecordRelease(1, "w", 4))),
    ]
    odd = [
        intents.KeyWrite("x:h", 1, (event,)),
        intents.KeyWrite("1:h", 1, (intents.SaveKeyState(1, "h", 0, 9, b"s", True),)),
        intents.KeyWrite("1:h", 1, (intents.RecordEvent(Event(["?"], 1, "p", 1), "error"),)),  # type: ignore[arg-type]
    ]
    return writes, odd


@needs_native
def test_planning_in_c_leaks_nothing() -> None:
    calls = 5_000
    assert leaked_blocks(_LEAK_SCRIPT, calls) < calls // 20


def test_the_writes_of_the_leak_check_take_every_c_path() -> None:
    writes, _odd = _writes()
    plan = plan_commit(writes, StoredVersions({(1, "h"): 1}, {3: 1}, {(1, "v"): 9}), {(1, "n")})
    assert set(plan.upserts) == {
        "Groups",
        "Occurrences",
        "KeyStates",
        "Releases",
        "Events",
        "GroupEnvironments",
        "GroupReleases",
        "GroupHashes",
        "Activities",
    }
    assert plan.environment_checks
    assert plan.inserts == {("KeyStates", (1, "n")), ("Groups", (4,))}
    assert plan.indexed == []


@needs_native
@pytest.mark.parametrize("state", [b"", b"a", b"ab", b"abc", bytes(range(256)), bytearray(b"xy"), None])
def test_states_of_any_length_are_written_in_base64_as_python_writes_them(state) -> None:
    """A key's own state (no group) and a group's state, after its row (the row merged with it in C)."""
    group = _writes()[0][0].intents[1]
    write = intents.KeyWrite(
        "1:h",
        2,
        (
            intents.SaveKeyState(1, "h", 0, None, state, False),  # type: ignore[arg-type]
            group,
            intents.SaveKeyState(1, "h", 0, 3, state, False),  # type: ignore[arg-type]
        ),
    )
    in_c, in_python = _both([write], StoredVersions(), set())
    assert in_c == in_python
    assert not isinstance(in_c, type)


@needs_native
def test_a_source_whose_class_changes_after_its_slots_are_read_is_planned_as_python_plans_it() -> None:
    """The C path reads a row's source attributes from their slots, at offsets found once per class: a class
    changed since (here, a property over a field, then a member of another class) is looked up again."""
    from transforms.core.model import Occurrence

    class Shadowed(Occurrence):
        pass

    class Elsewhere:
        __slots__ = ("title",)

    occurrence = Shadowed("o", 1, "e" * 32, ("f",), ("h",), "t", "s", 1, 5)
    writes = [intents.KeyWrite("1:h", 2, (intents.InsertOccurrence(3, "m", 1, 2, occurrence, "r", None),))]
    stored = StoredVersions({(1, "h"): 1}, {3: 1})
    in_c, in_python = _both(writes, stored, set())
    assert in_c == in_python
    Shadowed.issue_title = property(lambda self: "shadowed")  # type: ignore[assignment]
    in_c, in_python = _both(writes, stored, set())
    assert in_c == in_python
    assert "shadowed" in in_c[0][0][1][0][1][1]
    Shadowed.issue_title = Elsewhere.__dict__["title"]  # type: ignore[assignment]
    in_c, in_python = _both(writes, stored, set())
    assert in_c is in_python is TypeError  # a member of another class refuses the instance
