"""Tags and words written by the guarded writer into the Spanner emulator (``transforms.storage.tag_writer``): counted
once per occurrence row whatever the retries, replays and commit order, capped, and deleted with the group."""

from __future__ import annotations

import pytest
from google.cloud.spanner_v1 import KeySet

from tests.engine.builders import DAY, T0, Run, context, occurrence, status_change
from tests.engine.tables import Tables
from transforms.core.engine import apply
from transforms.core.enums import GroupStatus
from transforms.core.model import from_datetime
from transforms.storage import org_words, tag_writer
from transforms.storage.spanner_writer import SpannerWriter

SECOND = 1_000_000


def tag_rows(database) -> dict[tuple, list]:
    """{(group, key, value): [times seen, first seen, last seen]} as stored (times in µs)."""
    with database.snapshot() as snapshot:
        rows = snapshot.execute_sql(
            "SELECT GroupId, TagKey, TagValue, TimesSeen, FirstSeen, LastSeen FROM GroupTagValues"
        )
        return {
            (group, key, value): [
                count,
                None if first is None else from_datetime(first),
                None if last is None else from_datetime(last),
            ]
            for group, key, value, count, first, last in rows
        }


def key_rows(database) -> dict[tuple, list]:
    with database.snapshot() as snapshot:
        rows = snapshot.execute_sql("SELECT GroupId, TagKey, ValuesSeen, OtherCount FROM GroupTagKeys")
        return {(group, key): [seen, other] for group, key, seen, other in rows}


def written(run: Run) -> Tables:
    return run.tables


def test_tags_are_counted_once_per_occurrence_whatever_retries_replays_and_commit_order(spanner_db):
    database = spanner_db.database
    run = Run()
    run.apply([occurrence(T0, tags=(("server", "web-1"),)), occurrence(T0 + 5, tags=(("server", "web-2"),))])
    run.apply([occurrence(T0 + 9, tags=(("server", "web-1"),), event_time=T0 - 7)])
    run.apply([occurrence(T0 + 12, tags=(("server", "web-2"),))])
    first, second, third = run.writes
    writer = SpannerWriter(database)
    writer.write([second])  # an older write overtaken by a newer one...
    writer.write([third])
    writer.write([first])  # ...committed late,
    writer.write([first, second, third])  # and a retry of everything
    SpannerWriter(database).write([second, first])  # and a replay by another writer
    group = run.group.group_id
    stored = tag_rows(database)
    assert stored[(group, "server", "web-1")] == [2, T0 - 7, T0]
    assert stored[(group, "server", "web-2")] == [2, T0 + 5, T0 + 12]
    assert stored[(group, "level", "warning")] == [4, T0 - 7, T0 + 12]
    assert stored == {key: row for key, row in run.tables.tag_values.items()}
    assert key_rows(database) == {key: row for key, row in run.tables.tag_keys.items()}


def test_an_occurrence_applied_again_after_its_duplicate_memory_expired_is_counted_once(spanner_db):
    database = spanner_db.database
    writer = SpannerWriter(database)
    again = occurrence(T0, occurrence_id="a" * 32, tags=(("server", "web-1"),))
    state, first = apply(None, [again], context())
    writer.write([first.write])
    later = type(again)(
        message_id="m-redelivered", message_time=T0 + 2 * DAY, payload=again.payload, data=again.data
    )
    state, second = apply(state, [later], context(now=T0 + 2 * DAY))
    assert second.counters.get("occurrences.attached") == 1  # the engine took it in again (times_seen 2)
    writer.write([second.write])
    group = state.group.group_id
    assert tag_rows(database)[(group, "server", "web-1")][0] == 1


def test_deleting_a_group_deletes_its_tags_and_words(spanner_db):
    database = spanner_db.database
    run = Run()
    run.apply([occurrence(T0, tags=(("server", "web-1"),), user={"id": "1"})])
    writer = SpannerWriter(database)
    writer.write(run.writes)
    assert tag_rows(database) and key_rows(database)
    run.apply([status_change(T0 + SECOND, GroupStatus.PENDING_DELETION)])
    writer.write(run.writes[-1:])
    assert tag_rows(database) == {} and key_rows(database) == {}


def test_a_group_deleted_in_the_same_commit_writes_no_tags(spanner_db):
    database = spanner_db.database
    run = Run()
    run.apply([occurrence(T0, tags=(("server", "web-1"),))])
    run.apply([status_change(T0 + SECOND, GroupStatus.PENDING_DELETION)])
    SpannerWriter(database).write(run.writes)
    assert tag_rows(database) == {} and key_rows(database) == {}


def test_search_values_and_words_are_recorded_without_counts_and_found_again_without_writes(spanner_db):
    database = spanner_db.database
    run = Run()
    run.apply([occurrence(T0, title="Slow query", user={"id": "1", "email": "a@example.com"})])
    run.apply([occurrence(T0 + SECOND, title="Slow query", user={"id": "1", "email": "a@example.com"})])
    writer = SpannerWriter(database)
    writer.write(run.writes[:1])
    stats = writer.write(run.writes[1:])
    group = run.group.group_id
    stored = tag_rows(database)
    assert stored[(group, "@user.email", "a@example.com")] == [None, None, None]
    assert stored[(group, "@text", "slow")] == [None, None, None]
    assert stored[(group, "user", "id:1")][0] == 2
    # The second commit updated only counted rows: the search rows were known to this writer.
    assert all(row[0] is not None for key, row in stored.items() if key[1].startswith("@") is False)
    assert stats.rows_by_table["GroupTagValues"] == len([key for key in stored if not key[1].startswith("@")])


@pytest.fixture
def small_caps(monkeypatch):
    monkeypatch.setattr(tag_writer, "TAG_VALUES_PER_KEY", 2)
    monkeypatch.setattr(tag_writer, "TAG_KEYS_PER_GROUP", 3)
    monkeypatch.setattr(tag_writer, "TERMS_PER_GROUP", 4)
    monkeypatch.setattr(org_words, "TERMS_PER_GROUP", 4)
    from transforms.core import limits

    monkeypatch.setattr(limits, "TAG_VALUES_PER_KEY", 2)
    monkeypatch.setattr(limits, "TAG_KEYS_PER_GROUP", 3)
    monkeypatch.setattr(limits, "TERMS_PER_GROUP", 4)


@pytest.mark.parametrize("commits", ["one", "each"])
def test_values_past_a_full_key_are_counted_as_other_and_keys_past_the_cap_are_not_kept(
    spanner_db, small_caps, commits
):
    database = spanner_db.database
    run = Run()
    values = ["a", "b", "c", "a", "d", "b"]
    for n, value in enumerate(values):
        # level, server: two keys; the third and fourth keys arrive later
        tags = (("server", value),) + ((("k3", "x"),) if n >= 2 else ()) + ((("k4", "y"),) if n >= 3 else ())
        run.apply([occurrence(T0 + n * SECOND, tags=tags, title=f"word{n} again")])
    writer = SpannerWriter(database)
    if commits == "one":
        writer.write(run.writes)
    else:
        for write in run.writes:
            writer.write([write])
    group = run.group.group_id
    stored, keys = tag_rows(database), key_rows(database)
    assert {k[2]: row[0] for k, row in stored.items() if k[1] == "server"} == {"a": 2, "b": 2}
    assert keys[(group, "server")] == [2, 2]  # c and d: in the other bucket, so the total stays 6
    assert (group, "k3") in keys and (group, "k4") not in keys  # level, server, k3: the group is full
    terms = sorted(k[2] for k in stored if k[1] == "@text")
    assert len(terms) == 4 and keys[(group, "@text")] == [4, 0]
    assert stored[(group, org_words.FULL_KEY, org_words.FULL_VALUE)] == [None, None, None]  # dropped words
    assert stored == run.tables.tag_values and keys == run.tables.tag_keys


def vocabulary_rows(database) -> list[tuple[int, str]]:
    with database.snapshot() as snapshot:
        return sorted(tuple(row) for row in snapshot.execute_sql("SELECT OrganizationId, Word FROM OrgWords"))


def test_the_vocabulary_is_the_set_of_stored_words_whatever_retries_replays_and_writers(spanner_db):
    database = spanner_db.database
    one, other = Run(), Run()
    one.apply([occurrence(T0, title="Timeout in checkout"), occurrence(T0 + 5, title="Timeout again")])
    other.apply([occurrence(T0 + 7, title="checkout timeout", fingerprint=("other",))])
    writer = SpannerWriter(database)
    writer.write(one.writes[1:])
    writer.write([*one.writes, *other.writes])  # a retry of the first, with another group's
    SpannerWriter(database).write(other.writes)  # a replay by another writer, which knows no word
    words = {(10, key[2]) for key in tag_rows(database) if key[1] == "@text"}
    assert words >= {(10, "timeout"), (10, "checkout"), (10, "again")}
    assert vocabulary_rows(database) == sorted(words | {org_words.COMPLETE})


def test_fill_writes_what_the_writer_would_have_for_words_stored_before_the_vocabulary(
    spanner_db, small_caps
):
    """A database whose @text rows predate OrgWords: no vocabulary, no full marks, no COMPLETE row. ``fill``
    (``pipeline.admin fill-vocabularies``) writes the stored words, the full marks and the COMPLETE row the
    writer writes, and is idempotent. The writer's vocabulary also has the words a full group dropped, which
    no stored row recalls; the full mark makes that group a candidate of every wildcard all the same."""
    database = spanner_db.database
    full, fits = Run(), Run()
    full.apply([occurrence(T0 + n * SECOND, title=f"word{n} again") for n in range(6)])  # 7+ words, 4 kept
    fits.apply([occurrence(T0, title="x", subtitle="", culprit="y", fingerprint=("other",))])  # 2 words
    SpannerWriter(database).write([*full.writes, *fits.writes])
    written = vocabulary_rows(database), tag_rows(database), key_rows(database)
    mark = (org_words.FULL_KEY, org_words.FULL_VALUE)
    assert (full.group.group_id, *mark) in written[1] and (fits.group.group_id, *mark) not in written[1]
    with database.batch() as batch:  # as before the table: the words' rows only
        batch.delete(org_words.TABLE, KeySet(all_=True))
        batch.delete("GroupTagValues", KeySet(keys=[[full.group.group_id, *mark]]))
        batch.delete("GroupTagKeys", KeySet(keys=[[full.group.group_id, org_words.FULL_KEY]]))
    assert vocabulary_rows(database) == []
    stored_words = sorted({(10, key[2]) for key in written[1] if key[1] == "@text"} | {org_words.COMPLETE})
    assert set(stored_words) < set(written[0])  # the dropped words are the writer's only
    assert org_words.fill(database) == (len(stored_words) - 1, 1)  # the words, the full group
    filled = vocabulary_rows(database), tag_rows(database), key_rows(database)
    assert filled == (stored_words, *written[1:])
    org_words.fill(database)
    assert (vocabulary_rows(database), tag_rows(database), key_rows(database)) == filled
