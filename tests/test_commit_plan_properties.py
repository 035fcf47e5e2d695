"""``plan_commit`` against the row model of the engine's tests (``tests/engine/tables.py``), over generated
sequences: the engine's writes of a key, committed in any grouping into commits (and with earlier commits
committed again, as retries and replays do), give through the planned rows (``tests/memory_store.py``) the
tables the model gives by applying the writes in order with the seq guard.

The one difference the model does not have: a replayed write whose occurrence's group was deleted since
stores its event on its own (an Events row), so with replays the stored events are a superset."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.sequences import key_order, sequences
from tests.engine.tables import Tables
from tests.engine.test_properties import apply_batches, splits
from tests.memory_store import MemoryGroupStore
from transforms.core.intents import KeyWrite
from transforms.core.model import from_rfc3339
from transforms.storage import commit_plan
from transforms.storage import spanner_rows as rows

SETTINGS = settings(
    max_examples=int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_GUARD_COLUMNS = ("Seq", "State", "UpdatedAt")


def _micros(value: str | None) -> int | None:
    return None if value is None else from_rfc3339(value)


def planned_tables(store: MemoryGroupStore, keys: set[str]) -> dict:
    """The store's rows in the model's terms."""
    table = store.rows.table
    events = {key: rows.event_from_payload(row["Payload"]) for key, row in table("Events").items()}
    for row in table("Occurrences").values():
        if row.get("StoredEventId") is not None:
            events[(row["ProjectId"], row["StoredEventId"])] = rows.event_from_payload(row["EventPayload"])
    return {
        "groups": {
            key[0]: {c: v for c, v in row.items() if c not in _GUARD_COLUMNS}
            for key, row in table("Groups").items()
        },
        "occurrences": {
            key: {c: row[c] for c in rows.OCCURRENCE_COLUMNS} for key, row in table("Occurrences").items()
        },
        "activities": dict(table("Activities")),
        "environments": {
            key: (from_rfc3339(row["FirstSeen"]), row["FirstRelease"])
            for key, row in table("GroupEnvironments").items()
        },
        "group_releases": set(table("GroupReleases")),
        "hashes": {key: row["GroupId"] for key, row in table("GroupHashes").items()},
        "events": events,
        "releases": {key: from_rfc3339(row["FirstSeen"]) for key, row in table("Releases").items()},
        "tag_values": {
            key: [row["TimesSeen"], _micros(row["FirstSeen"]), _micros(row["LastSeen"])]
            for key, row in table("GroupTagValues").items()
        },
        "tag_keys": {
            key: [row["ValuesSeen"], row["OtherCount"]] for key, row in table("GroupTagKeys").items()
        },
        "key_states": store.read_key_states(keys),
    }


def model_tables(tables: Tables) -> dict:
    """The model's tables as the writer's rows would hold them."""
    return {
        "groups": {
            group_id: {
                c: v
                for c, v in zip(rows.GROUP_COLUMNS, rows.group_values(row, 0, None), strict=True)
                if c not in _GUARD_COLUMNS
            }
            for group_id, row in tables.groups.items()
        },
        "occurrences": {
            key: dict(zip(rows.OCCURRENCE_COLUMNS, rows.occurrence_values(intent), strict=True))
            for key, intent in tables.occurrences.items()
        },
        "activities": {
            key: dict(zip(rows.ACTIVITY_COLUMNS, rows.activity_values(intent), strict=True))
            for key, intent in tables.activities.items()
        },
        "environments": tables.environments,
        "group_releases": tables.group_releases,
        "hashes": tables.hashes,
        "events": {key: record.event for key, record in tables.events.items()},
        "releases": tables.releases,
        "tag_values": tables.tag_values,
        "tag_keys": tables.tag_keys,
        "key_states": {key: state for key, (_generation, _group, state) in tables.key_states.items()},
    }


@st.composite
def with_replays(draw: st.DrawFn, commits: list[list]) -> list[list]:
    """The commits in order, each earlier one perhaps committed again after a later one."""
    done: list[list] = []
    for index, commit in enumerate(commits):
        done.append(commit)
        for again in draw(st.lists(st.integers(0, index), max_size=2)):
            done.append(commits[again])
    return done


@SETTINGS
@given(sequence=sequences(), data=st.data())
def test_planned_rows_of_any_grouping_into_commits_are_the_model_s_tables(sequence, data):
    run = apply_batches(sequence, data.draw(splits(key_order(sequence.messages))))
    if not run.writes:
        return
    store = MemoryGroupStore()
    for commit in data.draw(splits(run.writes)):
        stats = store.write(commit)
        assert stats.stale_writes == 0
    keys = {write.key for write in run.writes}
    assert planned_tables(store, keys) == model_tables(run.tables)


@SETTINGS
@given(sequence=sequences(), data=st.data())
def test_committing_writes_again_changes_no_row_but_may_store_an_event_alone(sequence, data):
    run = apply_batches(sequence, data.draw(splits(key_order(sequence.messages))))
    if not run.writes:
        return
    store = MemoryGroupStore()
    for commit in data.draw(with_replays(data.draw(splits(run.writes)))):
        store.write(commit)
    planned = planned_tables(store, {write.key for write in run.writes})
    model = model_tables(run.tables)
    planned_events, model_events = planned.pop("events"), model.pop("events")
    assert planned == model
    assert planned_events.items() >= model_events.items()


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["1:a", "1:b", "2:a", "10:a"]), st.integers(1, 4)),
        max_size=12,
    )
)
def test_the_plan_order_is_key_then_seq_whatever_the_order_writes_come_in(pairs):
    """``_in_plan_order`` sorts by key alone when each key's writes are in seq order, by key and seq otherwise:
    the same list, object for object (equal key and seq in their order), as sorting by key and seq."""
    writes = [KeyWrite(key, seq, ()) for key, seq in pairs]
    expected = sorted(writes, key=lambda write: (write.key, write.seq))
    ordered = commit_plan._in_plan_order(writes)
    assert len(ordered) == len(expected)
    assert all(a is b for a, b in zip(ordered, expected, strict=True))
