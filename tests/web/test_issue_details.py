"""The issue page's reads on the Spanner emulator: exact counts per bucket from the stored occurrences, reading
only the window's index entries, across read chunks and within a row budget; the latest event; the activity
history newest first; environments."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from api import issue_details
from api.issue_details import DAY, HOUR, Buckets, ReadCost
from tests.api.factories import T0, G, add_environments, write_groups
from transforms.core.enums import ActivityType
from transforms.core.model import MICROS
from web.demo import occurrence_row, write_activity, write_occurrences

WINDOW = Buckets.covering(T0 - DAY, T0, HOUR)


def expected_counts(times: list[int], buckets: Buckets) -> list[int]:
    found = Counter((t - buckets.start) // buckets.size for t in times if buckets.start <= t < buckets.end)
    return [found.get(i, 0) for i in range(buckets.count)]


@pytest.fixture
def groups(spanner_db) -> dict[int, list[int]]:
    """Three groups; each has occurrences inside the window and many before it."""
    rnd = random.Random(5)
    database = spanner_db.database
    times: dict[int, list[int]] = {}
    for group_id, inside in ((101, 40), (202, 3), (303, 25)):
        moments = [T0 - rnd.randrange(DAY) for _ in range(inside)] + [
            T0 - DAY - rnd.randrange(1, 9 * DAY) for _ in range(60)
        ]
        moments.append(T0 - DAY)  # the window's first instant is in it
        moments.append(T0)  # its end is not
        times[group_id] = moments
    write_groups(database, [G(gid, 1, 1, last_seen=T0) for gid in times])
    write_occurrences(
        database, [occurrence_row(gid, 1, t) for gid, moments in times.items() for t in moments]
    )
    return times


def test_counts_are_exact_and_read_only_the_windows_index_entries(spanner_db, groups):
    cost = ReadCost()
    with spanner_db.database.snapshot(multi_use=True) as snapshot:
        series = issue_details.event_counts(snapshot, [303, 101, 202, 999], WINDOW, budget=10_000, cost=cost)
    for group_id, times in groups.items():
        assert series[group_id].complete
        assert series[group_id].counts == expected_counts(times, WINDOW)
    assert series[999].counts == [0] * WINDOW.count and series[999].complete
    in_window = sum(1 for times in groups.values() for t in times if WINDOW.start <= t < WINDOW.end)
    assert cost.rows == in_window  # none of the 180 older occurrences was read
    assert cost.reads == 1


def test_counts_resume_across_read_chunks_and_stop_at_the_budget(spanner_db, groups, monkeypatch):
    monkeypatch.setattr(issue_details, "READ_CHUNK", 7)
    with spanner_db.database.snapshot(multi_use=True) as snapshot:
        chunked = issue_details.event_counts(snapshot, list(groups), WINDOW, budget=10_000)
        assert all(chunked[gid].counts == expected_counts(t, WINDOW) for gid, t in groups.items())
        # 101's window holds 41 entries: a budget of 30 counts none of them fully, and says so
        cost = ReadCost()
        short = issue_details.event_counts(snapshot, list(groups), WINDOW, budget=30, cost=cost)
    assert cost.rows <= 30
    assert not short[101].complete and not short[202].complete and not short[303].complete


def test_latest_event_activities_and_environments(spanner_db):
    database = spanner_db.database
    write_groups(database, [G(7, 1, 1, last_seen=T0)])
    write_occurrences(
        database,
        [
            occurrence_row(7, 1, T0 - 3 * HOUR, release="1.0", environment="staging"),
            occurrence_row(
                7, 1, T0 - HOUR, release="1.1", environment="production", tags=[("browser", "Chrome")]
            ),
            occurrence_row(7, 1, T0 - 2 * HOUR, release="1.0", environment="production"),
        ],
    )
    for hours, kind in (
        (5, ActivityType.SET_RESOLVED),
        (4, ActivityType.SET_REGRESSION),
        (2, ActivityType.SET_IGNORED),
    ):
        write_activity(database, 7, 1, kind, T0 - hours * HOUR, {"version": "1.0"})
    add_environments(database, [(7, "production"), (7, "staging")])
    with database.snapshot(multi_use=True) as snapshot:
        latest = issue_details.latest_event(snapshot, 7)
        history, older = issue_details.activities(snapshot, 7, limit=2)
        everything, none_older = issue_details.activities(snapshot, 7, limit=10)
        environments = issue_details.environments(snapshot, [7, 8])
        row = issue_details.group_row(snapshot, 7)
        assert issue_details.latest_event(snapshot, 8) is None
    assert latest.event_time == T0 - HOUR and latest.release == "1.1" and latest.environment == "production"
    assert latest.event["tags"] == [["browser", "Chrome"]]
    assert [a.type for a in history] == [ActivityType.SET_IGNORED, ActivityType.SET_REGRESSION] and older
    assert [a.time for a in everything] == [T0 - 2 * HOUR, T0 - 4 * HOUR, T0 - 5 * HOUR] and not none_older
    assert everything[1].data == {"version": "1.0"}
    assert environments == {7: ["production", "staging"]}
    assert row.group_id == 7 and row.detail.title == "Issue 7"
    assert MICROS == 1_000_000
