"""Deleting a group through a status change (rule 6.4, 1.4 extension)."""

from __future__ import annotations

from tests.engine.builders import DELETE, NOISY, PROJECT, SECOND, T0, md5_hex, occurrence, run, status_change
from transforms.core import metrics
from transforms.core.engine.ids import group_id
from transforms.core.intents import DeleteGroup, SaveKeyState

HASH = md5_hex("slow-endpoint:/api/0/checkout")


def test_delete_removes_the_group_its_rows_and_its_hash_and_moves_to_the_next_generation():
    result = run([occurrence(T0), occurrence(T0 + SECOND)], [status_change(T0 + 2 * SECOND, DELETE)])
    assert result.tables.groups == {} and result.tables.occurrences == {} and result.tables.hashes == {}
    assert result.tables.environments == {}
    delete_write = result.writes[-1]
    (delete,) = [intent for intent in delete_write.intents if isinstance(intent, DeleteGroup)]
    assert delete.hashes == (HASH,) and delete.group_id == group_id(PROJECT.project_id, HASH, 0)
    save = delete_write.intents[-1]
    assert isinstance(save, SaveKeyState)
    assert save.relink and save.group_id is None and save.generation == 1
    assert result.state.group is None and result.state.generation == 1
    assert result.count(metrics.GROUPS_DELETED) == 1


def test_after_a_delete_the_key_starts_over_at_the_noise_gate_and_gets_a_new_id():
    noisy = [occurrence(T0 + index * SECOND, type=NOISY) for index in range(3)]
    result = run(noisy)
    first_id = result.group.group_id
    result.apply([status_change(T0 + 10 * SECOND, DELETE)])
    result.apply([occurrence(T0 + 11 * SECOND, type=NOISY), occurrence(T0 + 12 * SECOND, type=NOISY)])
    assert result.tables.groups == {}
    assert result.count(metrics.DROPPED_NOISE) == 4
    result.apply([occurrence(T0 + 13 * SECOND, type=NOISY)])
    assert result.group.group_id == group_id(PROJECT.project_id, HASH, 1) != first_id
    assert result.group.generation == 1 and result.group.times_seen == 1


def test_the_duplicate_memory_survives_a_delete():
    first = occurrence(T0)
    result = run([first], [status_change(T0 + SECOND, DELETE)], [first])
    assert result.count(metrics.DUPLICATES) == 1
    assert result.tables.groups == {}


def test_a_group_created_and_deleted_in_one_call_leaves_no_rows():
    result = run([occurrence(T0), occurrence(T0 + SECOND), status_change(T0 + 2 * SECOND, DELETE)])
    assert result.tables.groups == {} and result.tables.occurrences == {} and result.tables.hashes == {}
    assert result.state.generation == 1


def test_a_delete_then_an_occurrence_in_one_call_recreates_the_group_with_the_next_id():
    result = run([occurrence(T0), status_change(T0 + SECOND, DELETE), occurrence(T0 + 2 * SECOND)])
    assert result.group.group_id == group_id(PROJECT.project_id, HASH, 1)
    assert result.tables.hashes == {(PROJECT.project_id, HASH): result.group.group_id}
    assert len(result.tables.occurrences) == 1
