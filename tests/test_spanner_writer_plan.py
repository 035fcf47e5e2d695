"""The write guard and netting of ``transforms.storage.spanner_writer.plan_commit`` (pure, no Spanner)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import msgspec
import orjson

from transforms.core import intents
from transforms.core.model import EvidenceItem, Occurrence
from transforms.storage import spanner_rows
from transforms.storage.spanner_writer import (
    CommitPlanner,
    StoredVersions,
    chunk_writes,
    estimate_mutations,
    guarded_keys,
    new_keys,
    plan_commit,
)

KEY = "1:" + "a" * 32
PRIMARY = "a" * 32


def group_row(group_id: int = 11, times_seen: int = 1, generation: int = 0) -> intents.GroupRow:
    return intents.GroupRow(
        group_id=group_id,
        project_id=1,
        organization_id=1,
        primary_hash=PRIMARY,
        fingerprint="fp",
        generation=generation,
        type=1,
        category=1,
        status=0,
        substatus=7,
        priority=50,
        level=40,
        title="t",
        subtitle="s",
        culprit="",
        message="t s",
        platform="python",
        first_seen=1,
        last_seen=2,
        active_at=2,
        resolved_at=None,
        times_seen=times_seen,
        first_release=None,
        assignee=None,
        resolution_type=None,
        resolution_version=None,
        data={"metadata": {}},
    )


def occurrence(occurrence_id: str) -> Occurrence:
    return Occurrence(
        id=occurrence_id,
        project_id=1,
        event_id="e" * 32,
        fingerprint=("fp",),
        hashes=(PRIMARY,),
        issue_title="t",
        subtitle="s",
        type=1,
        detection_time=1,
    )


def attach(
    seq: int, group_id: int, occurrence_id: str, times_seen: int, relink: bool = False
) -> intents.KeyWrite:
    return intents.KeyWrite(
        KEY,
        seq,
        (
            intents.UpsertGroup(group_row(group_id, times_seen)),
            intents.InsertOccurrence(group_id, f"m{seq}", seq, seq, occurrence(occurrence_id), None, None),
            intents.SaveKeyState(1, PRIMARY, 0, group_id, f"state{seq}".encode(), relink),
        ),
    )


def test_newer_write_replaces_group_row_and_older_one_is_stale():
    first, second = attach(1, 11, "o1", 1, relink=True), attach(2, 11, "o2", 2)
    plan = plan_commit([second], StoredVersions())
    assert plan.row("Groups", (11,))["TimesSeen"] == 2
    # The older write arrives after the newer one committed: its group row is not written, but its
    # occurrence (append-only, idempotent) and the key's pointer to the group (never written yet) are.
    stale = plan_commit([first], StoredVersions(key_seq={}, group_seq={11: 2}))
    assert stale.stale_writes == 1
    assert "Groups" not in stale.upserts
    assert stale.row("KeyStates", (1, PRIMARY))["GroupId"] == 11
    assert (11, "o1") in stale.upserts["Occurrences"]


def test_replayed_write_changes_nothing_but_idempotent_rows():
    write = attach(3, 11, "o3", 3)
    plan = plan_commit([write], StoredVersions(group_seq={11: 3}))
    assert plan.stale_writes == 1
    assert set(plan.upserts) == {"Occurrences"}


def test_writes_of_one_key_in_one_commit_net_to_the_latest_state():
    plan = plan_commit([attach(2, 11, "o2", 2), attach(1, 11, "o1", 1, relink=True)], StoredVersions())
    group = plan.row("Groups", (11,))
    assert group["TimesSeen"] == 2
    assert group["Seq"] == 2
    assert group["State"] == base64.b64encode(b"state2").decode()
    assert plan.row("KeyStates", (1, PRIMARY))["GroupId"] == 11
    assert plan.row("KeyStates", (1, PRIMARY))["State"] is None
    assert {key[1] for key in plan.upserts["Occurrences"]} == {"o1", "o2"}


def test_delete_drops_children_and_unlinks_hashes_then_recreation_relinks():
    delete = intents.KeyWrite(
        KEY,
        5,
        (
            intents.DeleteGroup(11, 1, (PRIMARY, "b" * 32)),
            intents.SaveKeyState(1, PRIMARY, 1, None, b"dups", True),
        ),
    )
    recreate = intents.KeyWrite(
        KEY,
        6,
        (
            intents.UpsertGroup(group_row(22, 1, generation=1)),
            intents.LinkHashes(1, 22, (PRIMARY,)),
            intents.SaveKeyState(1, PRIMARY, 1, 22, b"s6", True),
        ),
    )
    plan = plan_commit(
        [attach(4, 11, "o4", 4), delete, recreate],
        StoredVersions(key_seq={(1, PRIMARY): 1}, group_seq={11: 3}),
    )
    assert (11,) in plan.deletes["Groups"]
    assert not any(key[0] == 11 for key in plan.upserts.get("Occurrences", {}))
    assert (1, "b" * 32) in plan.deletes["GroupHashes"]
    assert (1, PRIMARY) not in plan.deletes["GroupHashes"]
    assert plan.row("GroupHashes", (1, PRIMARY))["GroupId"] == 22
    assert plan.row("KeyStates", (1, PRIMARY))["Generation"] == 1
    assert plan.row("KeyStates", (1, PRIMARY))["GroupId"] == 22
    # Rows written, per table: every upserted and every deleted row, once.
    by_table = plan.rows_by_table()
    assert by_table["Groups"] == 2  # 11 deleted, 22 written
    assert by_table["GroupHashes"] == 2  # (1, b...) deleted, (1, PRIMARY) relinked
    assert by_table["KeyStates"] == 1
    assert sum(by_table.values()) == plan.row_count


def test_stale_write_does_not_resurrect_a_deleted_group():
    plan = plan_commit([attach(4, 11, "o4", 4)], StoredVersions(key_seq={(1, PRIMARY): 5}, group_seq={}))
    assert plan.stale_writes == 1
    assert plan.upserts == {}


def test_state_only_write_updates_group_state_columns():
    write = intents.KeyWrite(KEY, 7, (intents.SaveKeyState(1, PRIMARY, 0, 11, b"s7", False),))
    plan = plan_commit([write], StoredVersions(group_seq={11: 6}))
    assert plan.row("Groups", (11,)) == {
        "GroupId": 11,
        "Seq": 7,
        "State": base64.b64encode(b"s7").decode(),
        "UpdatedAt": "spanner.commit_timestamp()",
    }
    assert "KeyStates" not in plan.upserts


def test_release_first_seen_keeps_the_minimum():
    def record(seq: int, first_seen: int) -> intents.KeyWrite:
        return intents.KeyWrite(KEY, seq, (intents.RecordRelease(1, "1.0.0", first_seen),))

    assert (
        "Releases"
        not in plan_commit([record(1, 50)], StoredVersions(release_first_seen={(1, "1.0.0"): 40})).upserts
    )
    plan = plan_commit([record(1, 50), record(2, 30)], StoredVersions(release_first_seen={(1, "1.0.0"): 40}))
    assert plan.row("Releases", (1, "1.0.0"))["FirstSeen"] == "1970-01-01T00:00:00.000030Z"


def test_chunks_keep_a_key_together_and_respect_the_limit():
    writes = [attach(seq, 11, f"o{seq}", seq) for seq in range(1, 4)]
    writes += [intents.KeyWrite(f"1:{i:032x}", 1, attach(1, 100 + i, "x", 1).intents) for i in range(10)]
    # A budget just above KEY's own writes (their cost depends on the indexes of schemas/spanner.sql).
    key_cost = sum(estimate_mutations(w) for w in writes if w.key == KEY)
    chunks = chunk_writes(writes, max_mutations=key_cost + 10)
    for chunk in chunks:
        assert len({w.key for w in chunk}) >= 1
    keys_per_chunk = [{w.key for w in chunk} for chunk in chunks]
    assert sum(KEY in keys for keys in keys_per_chunk) == 1
    assert sorted(w.seq for chunk in chunks for w in chunk if w.key == KEY) == [1, 2, 3]


def test_group_releases_are_recorded_for_groups_that_exist():
    def with_release(seq: int, release: str) -> intents.KeyWrite:
        return intents.KeyWrite(
            KEY,
            seq,
            (
                intents.UpsertGroup(group_row(11, seq)),
                intents.InsertOccurrence(11, f"m{seq}", seq, seq, occurrence(f"o{seq}"), release, None),
                intents.RecordGroupRelease(11, release),
            ),
        )

    plan = plan_commit([with_release(1, "1.0.0"), with_release(2, "1.0.0")], StoredVersions())
    assert list(plan.upserts["GroupReleases"]) == [(11, "1.0.0")]
    assert plan.row("GroupReleases", (11, "1.0.0")) == {"GroupId": 11, "Release": "1.0.0"}
    deleted = plan_commit(
        [with_release(1, "2.0.0"), intents.KeyWrite(KEY, 2, (intents.DeleteGroup(11, 1, (PRIMARY,)),))],
        StoredVersions(),
    )
    assert not deleted.upserts.get("GroupReleases")


def _event(event_id: str = "e" * 32):
    from transforms.core.model import Event

    return Event(event_id=event_id, project_id=1, platform="python", timestamp=1)


def test_event_of_an_attached_occurrence_is_stored_on_its_row():
    write = attach(1, 11, "o1", 1, relink=True)
    write = intents.KeyWrite(KEY, 1, (intents.RecordEvent(_event(), "error"), *write.intents))
    plan = plan_commit([write], StoredVersions())
    assert "Events" not in plan.upserts
    row = plan.row("Occurrences", (11, "o1"))
    assert row["StoredEventId"] == "e" * 32
    assert '"platform":"python"' in row["EventPayload"]


def test_event_of_an_occurrence_that_was_not_attached_gets_an_events_row():
    write = intents.KeyWrite(
        KEY,
        1,
        (
            intents.RecordEvent(_event("f" * 32), "error"),
            intents.SaveKeyState(1, PRIMARY, 0, None, b"noise", False),
        ),
    )
    plan = plan_commit([write], StoredVersions())
    assert (1, "f" * 32) in plan.upserts["Events"]
    assert "Occurrences" not in plan.upserts


def test_rows_of_keys_new_to_the_database_are_inserted_without_reading():
    first = attach(1, 11, "o1", 1, relink=True)  # base_seq 0: the key had no stored state
    later = intents.KeyWrite(KEY, 2, attach(2, 11, "o2", 2).intents, base_seq=1)
    assumed = new_keys([later, first])
    assert assumed == {(1, PRIMARY)}
    plan = plan_commit([first, later], StoredVersions(), assumed)
    assert ("KeyStates", (1, PRIMARY)) in plan.inserts
    assert ("Groups", (11,)) in plan.inserts
    # A key whose earliest write here started from a stored state is read and guarded as usual.
    assert new_keys([later]) == set()


def test_only_keys_whose_seq_decides_a_row_are_read_and_counted_stale():
    other = "1:" + "b" * 32
    events_only = intents.KeyWrite(other, 5, (intents.RecordEvent(_event("f" * 32), "error"),), base_seq=4)
    grouped = attach(3, 11, "o1", 1)
    assert guarded_keys([events_only, grouped]) == {(1, PRIMARY)}
    # Whatever the stored seqs, the events-only write's row is written and the write is not stale.
    stored = StoredVersions(key_seq={(1, PRIMARY): 9, (1, "b" * 32): 9}, group_seq={11: 9})
    plan = plan_commit([events_only, grouped], stored)
    assert (1, "f" * 32) in plan.upserts["Events"]
    assert "Groups" not in plan.upserts and plan.stale_writes == 1  # the grouped write only


def test_occurrence_row_carries_evidence_display_as_json_objects_in_order():
    items = (
        EvidenceItem("Offending span", 'db - SELECT "x" \u00e9\u2028', True),
        EvidenceItem("n", "v\x01", False),
    )
    insert = intents.InsertOccurrence(
        11, "m1", 5, 6, msgspec.structs.replace(occurrence("o" * 32), evidence_display=items), None, None
    )
    values = dict(zip(spanner_rows.OCCURRENCE_COLUMNS, spanner_rows.occurrence_values(insert)))
    assert orjson.loads(values["EvidenceDisplay"]) == [
        {"name": "Offending span", "value": 'db - SELECT "x" \u00e9\u2028', "important": True},
        {"name": "n", "value": "v\x01", "important": False},
    ]
    assert (
        values["EvidenceDisplay"] == orjson.dumps([msgspec.structs.asdict(item) for item in items]).decode()
    )


class _Reads:
    """A transaction that records its reads and finds only ``releases`` ((project, version) -> datetime)."""

    def __init__(self, releases=None) -> None:
        self.reads: list[tuple[str, list]] = []
        self.releases = releases or {}

    def read(self, table, columns, keyset):
        self.reads.append((table, [tuple(key) for key in keyset.keys]))
        if table != "Releases":
            return []
        return [[*key, self.releases[tuple(key)]] for key in keyset.keys if tuple(key) in self.releases]


def test_a_commit_reads_the_releases_named_earlier_than_known_and_goes_by_the_known_bound_of_the_others():
    planner = CommitPlanner()
    planner._known_releases.update({(1, "a"): 10, (1, "b"): 20, (2, "z"): 5})
    write = intents.KeyWrite(
        KEY, 1, (intents.RecordRelease(1, "a", 15), intents.RecordRelease(1, "b", 12)), base_seq=0
    )
    stored_b = datetime(1970, 1, 1, tzinfo=UTC)  # 0 µs: earlier than the write's 12
    reads = _Reads({(1, "b"): stored_b})
    planned = planner.plan(reads, [write], new_keys([write]))
    assert reads.reads == [("Releases", [(1, "b")])]
    assert planned.releases == {(1, "a"): 10, (1, "b"): 0}  # the named releases only, not (2, "z")
    assert "Releases" not in planned.plan.upserts  # neither is earlier than what is stored


def test_the_writer_s_known_releases_stay_bounded_across_commits():
    planner = CommitPlanner()
    planner._known_releases.update({(2, str(n)): 5 for n in range(100_001)})
    write = intents.KeyWrite(KEY, 1, (intents.RecordRelease(1, "a", 15),), base_seq=0)
    planner.committed(planner.plan(_Reads(), [write], new_keys([write])))
    assert planner._known_releases == {(1, "a"): 15}  # emptied when full, then what this commit wrote
