"""The structs the engine builds by position (a call of more than 15 keywords is slow: docs/performance.md)
get every value in the field of its name."""

from __future__ import annotations

import msgspec

from tests.engine.builders import PROJECT
from transforms.core.engine.rows import group_data, group_row, search_message
from transforms.core.engine.state import STATE_VERSION, MutableGroup, new_state
from transforms.core.grouptypes import GROUP_TYPES


def _distinct_group() -> MutableGroup:
    """A group whose fields all hold different values, so that a value in the wrong field shows."""
    return MutableGroup(
        group_id=101,
        fingerprint="fp",
        type=1018,
        status=2,
        substatus=3,
        priority=50,
        initial_priority=75,
        level=40,
        title="the title",
        subtitle="the subtitle",
        culprit="the culprit",
        platform="python",
        first_seen=1_001,
        last_seen=1_002,
        active_at=1_003,
        active_at_from_creation=False,
        resolved_at=1_004,
        resolution_type="in_release",
        resolution_version="1.0",
        resolution_first_seen=1_005,
        times_seen=7,
        first_release="0.9",
        assignee="user:1",
        last_received=1_006,
        feedback=None,
        latest_time=1_007,
        latest_id="latest",
        creator_time=1_008,
        creator_id="creator",
        last_status_change_time=1_009,
        environments={},
        releases={},
    )


def test_group_row_takes_each_column_from_the_field_of_its_name():
    group = _distinct_group()
    row = msgspec.structs.asdict(group_row(group, PROJECT, "hash", 4))
    same_names = {name: value for name, value in msgspec.structs.asdict(group).items() if name in row}
    assert {name: row[name] for name in same_names} == same_names
    assert row["project_id"] == PROJECT.project_id
    assert row["organization_id"] == PROJECT.organization_id
    assert (row["primary_hash"], row["generation"]) == ("hash", 4)
    assert row["category"] == int(GROUP_TYPES[1018].category)
    assert row["message"] == search_message("the title", "the subtitle", "the culprit")
    assert row["data"] == group_data(group)


def test_new_state_starts_every_field_empty():
    assert msgspec.structs.asdict(new_state(7, "hash")) == {
        "version": STATE_VERSION,
        "project_id": 7,
        "primary_hash": "hash",
        "seq": 0,
        "generation": 0,
        "last_time": None,
        "last_id": "",
        "group": None,
        "noise_count": 0,
        "noise_last": 0,
        "run": 0,
        "run_open": False,
        "member": None,
        "held": (),
        "waiting": (),
        "seen_ids": b"",
        "seen_times": b"",
        "releases": {},
        "generation_start_time": None,
        "generation_start_id": "",
    }
