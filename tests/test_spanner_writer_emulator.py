"""Engine writes through the guarded writer into the Spanner emulator, and read back for hydration."""

from __future__ import annotations

from transforms.core import engine
from transforms.core.engine import EngineConfig, EngineContext
from transforms.core.model import Event, Message, Occurrence, ProjectInfo, StatusChange
from transforms.storage import state_store
from transforms.storage.spanner_writer import SpannerWriter

PROJECT = ProjectInfo(1, 1, "backend")
SECOND = 1_000_000
T0 = 1_780_000_000 * SECOND
PRIMARY = "0cc175b9c0f1b6a831c399e269772661"  # md5("a")


def occurrence(
    n: int, *, event: bool = True, release: str | None = "1.0.0", event_id: str | None = None
) -> Message:
    event_id = event_id or f"{n:032x}"
    payload = Occurrence(
        id=f"{n + 1000:032x}",
        project_id=1,
        event_id=event_id,
        fingerprint=("a",),
        hashes=(PRIMARY,),
        issue_title="Boom",
        subtitle="it broke",
        type=1,
        detection_time=T0 + n * SECOND,
        level="error",
        event=Event(
            event_id=event_id, project_id=1, platform="python", timestamp=T0 + n * SECOND, release=release
        )
        if event
        else None,
    )
    return Message(f"m{n:04d}", T0 + n * SECOND, payload)


def resolve(n: int) -> Message:
    change = StatusChange(
        id=f"{n + 5000:032x}", project_id=1, fingerprint=("a",), hashes=(PRIMARY,), new_status=1
    )
    return Message(f"m{n:04d}", T0 + n * SECOND, change)


def context(**events: Event) -> EngineContext:
    return EngineContext(project=PROJECT, config=EngineConfig(), events=events)


def rows(database, sql: str) -> list:
    with database.snapshot() as snapshot:
        return list(snapshot.execute_sql(sql))


def test_written_state_hydrates_to_the_same_state_and_rows_match(spanner_db):
    database = spanner_db.database
    writer = SpannerWriter(database)
    state, out1 = engine.apply(None, [occurrence(1), occurrence(2)], context())
    state, out2 = engine.apply(state, [resolve(3), occurrence(4)], context())
    stats = writer.write([out1.write, out2.write])
    assert stats.commits == 1
    key = out1.write.key
    hydrated = state_store.read_key_states(database, [key])
    assert hydrated[key] == engine.encode_state(state)
    group = rows(database, "SELECT TimesSeen, Status, Substatus, Seq FROM `Groups`")
    assert group == [[3, 0, 6, state.seq]]  # regressed after the resolve
    assert len(rows(database, "SELECT OccurrenceId FROM Occurrences")) == 3
    assert [r[0] for r in rows(database, "SELECT Type FROM Activities ORDER BY Type")] == [1, 6]


def test_replaying_and_reordering_writes_leaves_the_newest_state(spanner_db):
    database = spanner_db.database
    writer = SpannerWriter(database)
    state, out1 = engine.apply(None, [occurrence(1)], context())
    state, out2 = engine.apply(state, [occurrence(2)], context())
    writer.write([out2.write])
    writer.write([out1.write])  # an older write committed late
    writer.write([out2.write])  # and a retry of the newer one
    assert rows(database, "SELECT TimesSeen, Seq FROM `Groups`") == [[2, state.seq]]
    assert len(rows(database, "SELECT OccurrenceId FROM Occurrences")) == 2
    assert state_store.read_key_states(database, [out2.write.key])[out2.write.key] == engine.encode_state(
        state
    )


def test_events_are_found_where_they_were_stored(spanner_db):
    database = spanner_db.database
    writer = SpannerWriter(database)
    _state, out = engine.apply(None, [occurrence(1)], context())
    writer.write([out.write])
    found = state_store.read_events(database, [(1, f"{1:032x}"), (1, f"{9:032x}")])
    assert list(found) == [(1, f"{1:032x}")]
    assert found[(1, f"{1:032x}")].release == "1.0.0"
    # A lookup occurrence of the same key finds it through the engine's prefetch.
    event = found[(1, f"{1:032x}")]
    lookup = occurrence(7, event=False, event_id=event.event_id)
    _state, out = engine.apply(_state, [lookup], context(**{event.event_id: event}))
    assert out.counters.get("occurrences.attached") == 1


def test_release_first_seen_keeps_the_earliest_time(spanner_db):
    database = spanner_db.database
    writer = SpannerWriter(database)
    _state, late = engine.apply(None, [occurrence(50)], context())
    writer.write([late.write])
    _other, early = engine.apply(None, [Message("m0001", T0 + SECOND, occurrence(1).payload)], context())
    writer.write([early.write])
    assert state_store.read_release_first_seen(database, [(1, "1.0.0")]) == {(1, "1.0.0"): T0 + SECOND}


def test_an_old_write_committed_late_still_records_its_environment(spanner_db):
    database = spanner_db.database
    writer = SpannerWriter(database)
    staging = Event(
        event_id=f"{1:032x}", project_id=1, platform="python", timestamp=T0 + SECOND, environment="staging"
    )
    first = Message("m0001", T0 + SECOND, Occurrence(**{**_payload(occurrence(1)), "event": staging}))
    state, out1 = engine.apply(None, [first], context())
    _state, out2 = engine.apply(state, [occurrence(2)], context())
    writer.write([out2.write])
    writer.write([out1.write])  # created the group and its "staging" row, committed after the newer write
    environments = rows(database, "SELECT Environment FROM GroupEnvironments ORDER BY Environment")
    assert [row[0] for row in environments] == ["", "staging"]


def _payload(message: Message) -> dict:
    payload = message.payload
    return {name: getattr(payload, name) for name in payload.__struct_fields__}
