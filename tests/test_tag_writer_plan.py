"""Planning tag rows without a database (``transforms.storage.tag_writer.plan_tags``, ``estimate_mutations``)."""

from __future__ import annotations

from tests.engine.builders import T0, Run, occurrence
from transforms.storage import org_words, tag_writer
from transforms.storage import spanner_rows as rows
from transforms.storage.spanner_writer import (
    CommitPlan,
    StoredVersions,
    chunk_writes,
    estimate_mutations,
    new_keys,
    plan_commit,
)


def planned(run: Run, existing=frozenset(), stored=None, known=None):
    plan = plan_commit(run.writes, StoredVersions(), new_keys(run.writes))
    result = tag_writer.plan_tags(run.writes, plan, existing, stored, known or tag_writer.KnownRows())
    return plan, result


def test_a_new_group_gets_every_row_inserted_with_counts_summed_within_the_commit():
    run = Run().apply(
        [occurrence(T0, tags=(("k", "a"),)), occurrence(T0 + 5, tags=(("k", "a"),), event_time=T0 - 5)]
    )
    plan, result = planned(run)
    group = run.group.group_id
    assert result.counted == 2
    assert plan.row(tag_writer.VALUES, (group, "k", "a")) == {
        "GroupId": group,
        "TagKey": "k",
        "TagValue": "a",
        "OrganizationId": 10,
        "ProjectId": 1,
        "TimesSeen": 2,
        "FirstSeen": "2024-06-01T11:59:59.999995Z",
        "LastSeen": "2024-06-01T12:00:00Z",
    }
    assert plan.row(tag_writer.KEYS, (group, "k"))["ValuesSeen"] == 1
    assert not plan.updates.get(tag_writer.VALUES)


def test_a_stored_row_is_updated_with_its_count_and_last_seen_only_unless_it_was_seen_earlier():
    run = Run().apply([occurrence(T0 + 10, tags=(("k", "a"), ("m", "b")), event_time=T0 - 20)])
    group = run.group.group_id
    stored = tag_writer.StoredTags(
        values={
            (group, "k", "a"): (3, T0, T0 + 1),
            (group, "m", "b"): (1, T0 - 100, T0),
            (group, "level", "warning"): (4, T0, T0),
        },
        key_groups={group},
    )
    plan, _ = planned(run, {group}, stored)
    assert plan.upserts[tag_writer.VALUES][(group, "k", "a")][0] == rows.TAG_VALUE_UPDATE_COLUMNS  # moved
    assert plan.row(tag_writer.VALUES, (group, "k", "a"))["TimesSeen"] == 4
    assert (group, "k", "a") in plan.updates[tag_writer.VALUES]
    assert plan.upserts[tag_writer.VALUES][(group, "m", "b")][0] == rows.TAG_VALUE_COUNT_COLUMNS
    assert len(plan.updates[tag_writer.VALUES]) == 3  # k (moved), m and level (counted)
    written_keys = plan.upserts.get(tag_writer.KEYS, {})
    assert (group, "k") not in written_keys and (group, "m") not in written_keys  # no new value: untouched


def test_an_occurrence_whose_row_is_stored_is_not_counted_again():
    run = Run().apply([occurrence(T0, tags=(("k", "a"),))])
    group = run.group.group_id
    occurrence_id = next(iter(run.tables.occurrences))[1]
    stored = tag_writer.StoredTags(occurrences={(group, occurrence_id)})
    plan, result = planned(run, {group}, stored)
    assert result.counted == 0 and not plan.upserts.get(tag_writer.VALUES)


def test_estimates_count_known_rows_as_updates_and_known_search_rows_as_nothing():
    run = Run().apply([occurrence(T0, tags=(("k", "a"),), user={"id": "1"}, title="one")])
    (intent,) = [
        i for w in run.writes for i in w.intents if isinstance(i, tag_writer.intents.IndexOccurrence)
    ]
    insert = rows.mutation_cells(tag_writer.VALUES, len(rows.TAG_VALUE_COLUMNS)) + rows.mutation_cells(
        tag_writer.KEYS, len(rows.TAG_KEY_COLUMNS)
    )
    rows_of_intent = len(intent.tags) + len(intent.search_tags)
    # each word also a vocabulary row, and the full-group mark a new word may bring
    words = len(intent.terms) * (insert + len(org_words.COLUMNS)) + insert
    assert tag_writer.estimate_mutations(intent) == rows_of_intent * insert + words
    known = tag_writer.KnownRows()
    group = intent.group_id
    known.add_all([(group, key, value) for key, value in (*intent.tags, *intent.search_tags)])
    known.add_all([(group, "@text", term) for term in intent.terms])
    assert tag_writer.estimate_mutations(intent, known) == len(intent.tags) * len(
        rows.TAG_VALUE_UPDATE_COLUMNS
    )
    write = run.writes[0]
    assert estimate_mutations(write, lambda i: 0) < estimate_mutations(write)
    assert len(chunk_writes([write], 1, lambda i: 0)) == 1


def test_an_update_of_counts_costs_its_columns_and_no_index_entry():
    plan = CommitPlan()
    plan.upsert(tag_writer.VALUES, (1, "k", "a"), rows.TAG_VALUE_COUNT_COLUMNS, (1, "k", "a", 2, "t"))
    plan.updates[tag_writer.VALUES] = {(1, "k", "a")}
    plan.upsert(tag_writer.VALUES, (1, "k", "b"), rows.TAG_VALUE_COLUMNS, (1, "k", "b", 10, 1, 1, "t", "t"))
    index_cells = rows.index_cells_per_row()[tag_writer.VALUES]
    assert index_cells == 5
    assert (
        plan.mutation_count() == len(rows.TAG_VALUE_COUNT_COLUMNS) + len(rows.TAG_VALUE_COLUMNS) + index_cells
    )


def test_a_new_tag_key_is_kept_only_by_the_groups_of_the_commit_whose_stored_keys_leave_room(monkeypatch):
    monkeypatch.setattr(tag_writer, "TAG_KEYS_PER_GROUP", 3)
    full, roomy = 7, 8  # group 7 has three tag keys stored, group 8 two (and a search key, not counted)
    stored = tag_writer.StoredTags(
        keys={
            (full, "a"): (1, 0),
            (full, "b"): (1, 0),
            (full, "c"): (1, 0),
            (roomy, "a"): (1, 0),
            (roomy, "@user.id"): (1, 0),
            (roomy, "b"): (1, 0),
        },
        key_groups={full, roomy},
    )
    plan = CommitPlan()
    indexed = []
    for group in (full, roomy):
        plan.upsert("Occurrences", (group, f"o{group}"), ("GroupId", "OccurrenceId"), (group, f"o{group}"))
        indexed.append(
            tag_writer.intents.IndexOccurrence(group, 10, 1, f"o{group}", T0, (("new", "x"), ("newer", "y")))
        )
    result = tag_writer.plan_tags([], plan, {full, roomy}, stored, tag_writer.KnownRows(), indexed)
    assert result.counted == 2
    keys = plan.upserts[tag_writer.KEYS]
    assert (full, "new") not in keys and (full, "newer") not in keys
    assert (roomy, "new") in keys and (roomy, "newer") not in keys  # a, b, new: the group is full
    assert set(plan.upserts[tag_writer.VALUES]) == {(roomy, "new", "x")}


def _vocabulary(plan: CommitPlan) -> set:
    return set(plan.upserts.get(org_words.TABLE, {}))


def test_the_vocabulary_gets_every_word_of_every_indexed_occurrence_whatever_the_group_keeps(monkeypatch):
    """OrgWords holds the words of all attached occurrences: those of an occurrence already stored (its
    commit is replayed), and those a full group drops, as well as the stored ones. So a group deleted in the
    commit that attaches its occurrence leaves the words one deleted later leaves: the same vocabulary
    whatever the commits' boundaries (before, only a new @text row's word was written)."""
    monkeypatch.setattr(tag_writer, "TERMS_PER_GROUP", 2)
    run = Run().apply([occurrence(T0, title="alpha beta gamma")])
    group = run.group.group_id
    (intent,) = [
        i for w in run.writes for i in w.intents if isinstance(i, tag_writer.intents.IndexOccurrence)
    ]
    words = {(10, term) for term in intent.terms}
    assert {(10, "alpha"), (10, "beta"), (10, "gamma")} <= words

    plan, result = planned(run)
    kept = {(10, key[2]) for key in plan.upserts[tag_writer.VALUES] if key[1] == "@text"}
    assert len(kept) == 2 < len(words)  # the group keeps two words ...
    assert _vocabulary(plan) == words and set(result.words) == words  # ... the vocabulary gets them all

    occurrence_id = next(iter(run.tables.occurrences))[1]
    stored = tag_writer.StoredTags(occurrences={(group, occurrence_id)})
    replayed, _ = planned(run, {group}, stored)
    assert _vocabulary(replayed) == words  # counted nowhere, its words still in the vocabulary

    known = org_words.KnownWords()
    known.add_all(words)
    plan = plan_commit(run.writes, StoredVersions(), new_keys(run.writes))
    tag_writer.plan_tags(run.writes, plan, frozenset(), None, tag_writer.KnownRows(), None, known)
    assert _vocabulary(plan) == set()  # known stored: not written again
