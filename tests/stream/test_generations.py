"""Streaming and a backfill of the same messages give the same groups across a delete (rule 6.4; issue 17,
point 6): a message belongs to the group generation of its message time, however late streaming takes it in.

The script, on one key: an occurrence creates the group (t+1), an occurrence that looks its event up (t+10)
waits for it in streaming, the group is deleted (t+20) and created again (t+30). After that has been applied,
streaming receives the rest: another key's occurrence that carries the awaited event (t+40), and a resolve
(t+15) and an occurrence (t+12) of the first generation, both published late. A backfill of the same
messages applies them in key order (the lookup joined with the event at once), so everything before the
delete goes with the first group: the second has ``times_seen`` 1 and ``first_seen`` t+30.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.stream import harness, script
from tests.stream.environment import StreamEnv, backfill_scripted
from transforms.core import metrics
from transforms.core.engine.ids import group_id
from transforms.core.enums import GroupStatus
from transforms.core.model import from_datetime

SECOND = script.SECOND
KEY = "generations"
CARRIER = "generations-carrier"
# What both runs must agree on. Left out: commit times, message ids (Pub/Sub's in streaming, the archive's
# in a backfill), the versions (streaming takes a waiting lookup in twice: when it waits, when it settles),
# the key state itself (the waiting lookup's processing times) and events stored on occurrences.
COMPARED = {
    "Groups": (
        "GroupId",
        "Generation",
        "Status",
        "Substatus",
        "TimesSeen",
        "FirstSeen",
        "LastSeen",
        "ActiveAt",
    ),
    "Occurrences": ("GroupId", "OccurrenceId", "EventTime"),
    "Activities": ("GroupId", "Type", "ActivityTime"),
    "GroupHashes": ("ProjectId", "Hash", "GroupId"),
    "KeyStates": ("ProjectId", "PrimaryHash", "Generation", "GroupId"),
    "Events": ("ProjectId", "EventId"),
}


def build(t0: int) -> tuple[script.Script, str]:
    s = script.Script(t0)
    event_id = script.uuid(1, "awaited-event")
    s.add(1, "create", 1, s.occurrence("create", KEY, 1))
    s.add(1, "waiting", 10, s.occurrence("waiting", KEY, 10, lookup_event=event_id))
    s.add(1, "delete", 20, s.status_change(KEY, GroupStatus.PENDING_DELETION))
    s.add(1, "recreate", 30, s.occurrence("recreate", KEY, 30))
    carrier = s.occurrence("carrier", CARRIER, 40)
    carrier["event_id"] = carrier["event"]["event_id"] = event_id
    s.add(2, "carrier", 40, carrier)
    s.add(2, "late-resolve", 15, s.status_change(KEY, GroupStatus.RESOLVED))
    s.add(2, "late-occurrence", 12, s.occurrence("late-occurrence", KEY, 12))
    return s, event_id


def comparable(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[tuple]]:
    return {
        table: sorted(tuple(row[column] for column in columns) for row in rows[table])
        for table, columns in COMPARED.items()
    }


def run_streaming(env: StreamEnv, scripted: script.Script) -> tuple[dict, dict[str, int]]:
    published = harness.Published()
    recreated = script.key_group_id(KEY, generation=1)
    carried = script.key_group_id(CARRIER)
    harness.publish(env.input_topic, scripted.phase1, published)
    with harness.StreamRun(env.args("--lookup_retry_window=120s", quota=False)) as run:
        run.wait_until(
            lambda: (
                run.counter(metrics.EVENT_LOOKUP_WAITING) >= 1
                and harness.read_row(env.database.database, "Groups", ("GroupId",), [recreated]) is not None
            ),
            "the re-creation to be applied while the lookup waits",
        )
        harness.publish(env.input_topic, scripted.phase2, published)
        run.wait_until(
            lambda: (
                harness.read_row(env.database.database, "Groups", ("GroupId",), [carried]) is not None
                and run.counter(metrics.OCCURRENCE_MESSAGES) >= 5
                and run.counter(metrics.STATUS_CHANGE_MESSAGES) >= 2
                and not _waiting(env)
            ),
            "the awaited event and the late messages to be applied",
        )
        counters = run.settled_counters()
    return harness.read_tables(env.database.database), counters


def _waiting(env: StreamEnv) -> bool:
    """Whether the key's stored state still has an occurrence waiting for its event."""
    row = harness.read_row(
        env.database.database, "Groups", ("State",), [script.key_group_id(KEY, generation=1)]
    )
    state = harness.decoded_state(row["State"]) if row else None
    return state is None or bool(state.waiting)


def test_streaming_and_backfill_agree_across_a_delete_with_a_waiting_and_late_messages(
    env: StreamEnv, spanner_db_factory, tmp_path: Path
) -> None:
    t0 = (int(time.time()) - 2 * 3600) * SECOND
    scripted, _event_id = build(t0)
    streamed, counters = run_streaming(env, scripted)

    backfilled = backfill_scripted(spanner_db_factory(), [*scripted.phase1, *scripted.phase2], tmp_path)

    recreated = script.key_group_id(KEY, generation=1)
    (group,) = [row for row in backfilled["Groups"] if row["GroupId"] == recreated]
    assert (group["TimesSeen"], group["Status"]) == (1, GroupStatus.UNRESOLVED)
    assert from_datetime(group["FirstSeen"]) == scripted.at(30)
    assert comparable(streamed) == comparable(backfilled)
    assert counters.get(metrics.DROPPED_GROUP_DELETED) == 2  # the waiting and the late occurrence
    assert counters.get(metrics.STATUS_CHANGE_STALE) == 1  # the late resolve
    assert group_id(1, script.primary_hash(KEY), 0) not in {row["GroupId"] for row in streamed["Groups"]}
