"""``GroupApplier`` on the in-memory store (tests/memory_store.py) writes the rows it writes on the emulator."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import msgspec
import pytest
from google.api_core import exceptions

from tests.engine.builders import (
    NOISY,
    PROJECT,
    SECOND,
    T0,
    MemoryQuota,
    event_of,
    occurrence,
    status_change,
)
from tests.memory_store import (
    SCHEMA,
    MemoryApplierFactory,
    MemoryGroupStore,
    emulator_tables,
    memory_store,
    memory_tables,
)
from transforms.applier import ApplierConfig, GroupApplier, SpannerTarget
from transforms.core.engine import EngineConfig, KeyState
from transforms.core.enums import GroupStatus, GroupSubStatus
from transforms.core.model import Message
from transforms.storage import org_words, registry, spanner_rows

# The tables the pipeline writes (the registry's and the API's aside).
TABLES = sorted(set(SCHEMA) - {"Organizations", "Projects", "ApiTokens", "WaitingKeys"})
CONFIG = EngineConfig(wait_for_events=True, lookup_retry_window=60 * SECOND)


def lifecycle() -> list[list[Message]]:
    """Creation, attachment with tags, users and environments, a resolution in a release, a regression, an
    ignore, a delete, and the next generation."""
    return [
        [
            occurrence(T0, release="backend@1.0.0", environment="production", tags=(("browser", "Chrome"),)),
            occurrence(T0 + SECOND, environment="staging", user={"id": "7", "email": "a@example.com"}),
        ],
        [
            status_change(T0 + 2 * SECOND, GroupStatus.RESOLVED, resolution=("in_release", "backend@1.0.0")),
            occurrence(T0 + 3 * SECOND, release="backend@1.1.0", tags=(("browser", "Firefox"),)),
        ],
        [status_change(T0 + 4 * SECOND, GroupStatus.IGNORED, GroupSubStatus.FOREVER)],
        [status_change(T0 + 5 * SECOND, GroupStatus.PENDING_DELETION)],
        [occurrence(T0 + 6 * SECOND, release="backend@1.1.0", environment="production")],
    ]


def lookups_and_noise() -> list[list[Message]]:
    """A noisy type below and then past its gate (events of the first ones stored alone), a lookup whose event
    a previous flush stored, a status change before its group, and one after."""
    carrier = occurrence(T0, type=NOISY, release="backend@2.0.0")
    lookup = occurrence(T0 + 3 * SECOND, type=NOISY, lookup=True, with_event=event_of(carrier))
    return [
        [status_change(T0 - SECOND, GroupStatus.RESOLVED), carrier],
        [occurrence(T0 + SECOND, type=NOISY), occurrence(T0 + 2 * SECOND, type=NOISY)],
        [lookup],
        [occurrence(T0 + 4 * SECOND, type=NOISY, environment="production")],
        [status_change(T0 + 5 * SECOND, GroupStatus.RESOLVED)],
    ]


def run(applier: GroupApplier, batches: list[list[Message]], *, replay: bool = False) -> dict[str, KeyState]:
    """Each batch one flush; with ``replay``, every write is committed again afterwards, in reverse order."""
    states: dict[str, KeyState] = {}
    written = []
    for batch in batches:
        key = batch[0].key
        states[key], _dead = applier.apply(key, states.get(key), batch, PROJECT)
        if replay:
            written.append(applier.last_write)
        applier.flush()
    for write in reversed(written):
        if write is not None:
            applier.writer.write([write])
    return states


def on_both(
    spanner_db, batches: list[list[Message]], quota: Callable[[], MemoryQuota | None] = lambda: None, **kwargs
):
    registry.register_project(spanner_db.database, project_id=1, organization_id=10, slug="backend")
    config = ApplierConfig(
        spanner=SpannerTarget(spanner_db.project, spanner_db.instance, spanner_db.database_id), engine=CONFIG
    )
    clock = lambda: 1_000.0  # noqa: E731
    on_emulator = GroupApplier(config, lambda name, amount: None, clock, quota=quota())
    store = MemoryGroupStore()
    in_memory = GroupApplier(config, lambda name, amount: None, clock, store=store, quota=quota())
    emulator_states = run(on_emulator, batches, **kwargs)
    memory_states = run(in_memory, batches, **kwargs)
    assert memory_states == emulator_states
    assert in_memory.hydrate(memory_states) == on_emulator.hydrate(emulator_states)
    emulator = emulator_tables(spanner_db.database, TABLES)
    emulator["OrgWords"].pop(org_words.COMPLETE)  # written by create-database, not by the writer
    if not emulator["OrgWords"]:
        del emulator["OrgWords"]
    return emulator, memory_tables(store)


@pytest.mark.integration
@pytest.mark.parametrize("replay", [False, True])
def test_a_group_s_lifecycle_gives_the_same_rows(spanner_db, replay):
    emulator, memory = on_both(spanner_db, lifecycle(), replay=replay)
    assert {"Groups", "Occurrences", "GroupTagValues", "GroupHashes", "Releases"} <= set(memory)
    assert_same(memory, emulator)


@pytest.mark.integration
def test_lookups_noise_and_held_changes_give_the_same_rows(spanner_db):
    emulator, memory = on_both(spanner_db, lookups_and_noise())
    assert {"Events", "Activities"} <= set(memory)  # events the noise gate held back; the resolve
    assert_same(memory, emulator)


@pytest.mark.integration
def test_a_quota_of_one_gives_the_same_rows(spanner_db):
    emulator, memory = on_both(spanner_db, lifecycle(), quota=lambda: MemoryQuota(limit=1))
    # The group is deleted and the next generation finds no room in the window: its event is stored alone.
    assert "Groups" not in memory and "Events" in memory
    assert_same(memory, emulator)


def test_the_applier_factory_pickles_and_finds_the_process_s_store():
    factory = pickle.loads(pickle.dumps(MemoryApplierFactory("factory-test", quota=None)))
    config = ApplierConfig(spanner=SpannerTarget("p", "i", "d"), engine=CONFIG)
    applier = factory(config, lambda name, amount: None)
    state, dead = applier.apply(occurrence(T0).key, None, [occurrence(T0)], PROJECT)
    applier.flush()
    assert dead == []
    assert applier.store is memory_store("factory-test")
    assert factory(config, lambda name, amount: None).hydrate([occurrence(T0).key]) == {
        occurrence(T0).key: state
    }


def test_the_applier_makes_its_events_json_ahead_and_their_rows_take_it():
    """``spanner_rows.keep_payloads`` after the engine's call; the flush's rows take that text, once."""
    factory = MemoryApplierFactory("payloads-test", quota=None)
    applier = factory(ApplierConfig(spanner=SpannerTarget("p", "i", "d"), engine=CONFIG), lambda n, a: None)
    message = occurrence(T0)
    event = event_of(message)
    applier.apply(message.key, None, [message], PROJECT)
    kept = spanner_rows._PAYLOADS.get(event.event_id)
    assert kept is not None and kept[0] is event
    assert kept[1] == msgspec.json.encode(event).decode()
    applier.flush()
    assert event.event_id not in spanner_rows._PAYLOADS
    (row,) = memory_store("payloads-test").rows.tables["Occurrences"].values()
    assert row["EventPayload"] == kept[1]


def assert_same(memory: dict, emulator: dict) -> None:
    """Equal tables, compared row by row so that a failure names the first differing columns."""
    assert set(memory) == set(emulator)
    for table, rows in emulator.items():
        assert set(memory[table]) == set(rows), table
        for key, row in rows.items():
            differing = {
                c: (memory[table][key].get(c), v) for c, v in row.items() if memory[table][key].get(c) != v
            }
            assert not differing and set(memory[table][key]) == set(row), (table, key, differing)


# Rows Spanner refuses, one for each limit the emulator enforces.
REFUSED_ROWS = {
    "key over 8 KiB": (
        "Releases",
        ("ProjectId", "Version", "FirstSeen"),
        (1, "é" * 4500, "2026-01-01T00:00:00Z"),
    ),
    "STRING(32) too long": ("GroupHashes", ("ProjectId", "Hash", "GroupId"), (1, "h" * 33, 5)),
    "null in NOT NULL": ("GroupHashes", ("ProjectId", "Hash", "GroupId"), (1, None, 5)),
    "STRING(MAX) too long": (
        "Events",
        ("ProjectId", "EventId", "Platform", "EventTime", "Level", "Payload"),
        (1, "e1", "p" * 2_621_441, "2026-01-01T00:00:00Z", "error", "{}"),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_ROWS))
def test_the_memory_store_refuses_a_row_with_the_error_the_emulator_gives(spanner_db, case: str) -> None:
    table, columns, values = REFUSED_ROWS[case]
    refused = []
    for database in (spanner_db.database, MemoryGroupStore().database):
        with pytest.raises(exceptions.GoogleAPICallError) as caught, database.batch() as batch:
            batch.insert_or_update(table, columns, [values])
        refused.append((type(caught.value), caught.value.message.split(", request_id")[0]))
    emulator, memory = refused
    assert memory == emulator
