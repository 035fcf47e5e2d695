"""Each organization's word vocabulary (``OrgWords``, ``schemas/spanner.sql``): its distinct ``@text`` words.

A free-text infix wildcard (``*timeout*``) cannot seek a range of ``GroupTagValuesByValue``; the issue index
(``api.tag_index.TagIndex.word_candidates``) matches it against the organization's distinct words instead and
reads the groups of the matching ones by value.

Contract:

* Writes. The tag writer (``transforms.storage.tag_writer``) plans an ``OrgWords`` row with insert_or_update for
  every word of every occurrence a commit indexes (``IndexOccurrence.terms``), unless it has seen the word
  stored already (``KnownWords``): the words of all the organization's attached occurrences, including those
  a group does not keep (past ``TERMS_PER_GROUP``) and those of groups deleted since, in the commit that
  attached them or later. A set of what the engine attached: retries, replays, bundle and commit boundaries,
  restarts and a backfill over streamed data write the same rows. Rows are never deleted (a word whose groups
  went finds none), so what a cache says stored stays stored, and the vocabulary holds every stored ``@text``
  word.
* Complete. The row ``COMPLETE`` says that every ``@text`` word of every organization is in the table. It is
  written when ``pipeline.admin create-database`` creates the database (nothing is stored yet), or by
  ``fill`` (``pipeline.admin fill-vocabularies``) for a database whose ``@text`` rows predate the table, once
  the pipeline writing vocabularies runs (rows written meanwhile by an older pipeline would be missed). Without
  it the issue index does not use the vocabulary (``is_complete``), so old data is never answered wrongly.
* Full groups. A group keeps ``TERMS_PER_GROUP`` words: one that drops a word is marked with the search-only
  value ``FULL_KEY: FULL_VALUE`` (a ``GroupTagValues`` row), so a wildcard takes it as a candidate whatever its
  stored words (its title is then checked).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.cloud.spanner_v1 import KeySet, param_types

from transforms.core.engine.tags import TEXT_KEY
from transforms.core.limits import TERMS_PER_GROUP

TABLE = "OrgWords"
COLUMNS: tuple[str, ...] = ("OrganizationId", "Word")
COMPLETE = (0, "")  # no word is empty
FULL_KEY = "@text.full"
FULL_VALUE = "1"
_BATCH = 5000  # rows per commit of ``fill``


class KnownWords:
    """(organization, word) pairs known to be stored, bounded, emptied when full (rows are never deleted)."""

    def __init__(self, max_entries: int = 300_000) -> None:
        self.words: set[tuple[int, str]] = set()
        self._max_entries = max_entries

    def add_all(self, found: Iterable[tuple[int, str]]) -> None:
        if len(self.words) > self._max_entries:
            self.words.clear()
        self.words.update(found)


def rows_of(organization_id: int, words: Iterable[str]) -> list[tuple[int, str]]:
    """The vocabulary rows of ``words`` of one organization (for writers of ``@text`` rows outside the tag
    writer: test factories, benchmarks)."""
    return [(organization_id, word) for word in dict.fromkeys(words)]


def is_complete(snapshot: Any) -> bool:
    """Whether the ``COMPLETE`` row is stored (one point read)."""
    return bool(list(snapshot.read(TABLE, COLUMNS, KeySet(keys=[list(COMPLETE)]))))


def mark_complete(database: Any) -> None:
    with database.batch() as batch:
        batch.insert_or_update(TABLE, COLUMNS, [list(COMPLETE)])


def fill(database: Any) -> tuple[int, int]:
    """Write the vocabulary of every stored ``@text`` row, mark the groups holding ``TERMS_PER_GROUP`` words
    as full (they may have dropped one), then write ``COMPLETE``: the migration of a database whose ``@text``
    rows predate ``OrgWords``. Scans the tables once (an administrative step); idempotent. Returns (vocabulary
    rows, full groups)."""
    with database.snapshot(multi_use=True) as snapshot:
        words = [
            (organization_id, word)
            for organization_id, word in snapshot.execute_sql(
                "SELECT DISTINCT OrganizationId, TagValue FROM GroupTagValues WHERE TagKey = @key",
                params={"key": TEXT_KEY},
                param_types={"key": param_types.STRING},
            )
        ]
        full = list(
            snapshot.execute_sql(
                "SELECT GroupId, OrganizationId, ProjectId FROM GroupTagKeys WHERE TagKey = @key AND ValuesSeen >= @cap",
                params={"key": TEXT_KEY, "cap": TERMS_PER_GROUP},
                param_types={"key": param_types.STRING, "cap": param_types.INT64},
            )
        )
    for start in range(0, len(words), _BATCH):
        with database.batch() as batch:
            batch.insert_or_update(TABLE, COLUMNS, [list(row) for row in words[start : start + _BATCH]])
    for start in range(0, len(full), _BATCH):
        with database.batch() as batch:
            chunk = full[start : start + _BATCH]
            batch.insert_or_update(
                "GroupTagValues",
                ("GroupId", "TagKey", "TagValue", "OrganizationId", "ProjectId"),
                [[group_id, FULL_KEY, FULL_VALUE, org, project] for group_id, org, project in chunk],
            )
            batch.insert_or_update(
                "GroupTagKeys",
                ("GroupId", "TagKey", "OrganizationId", "ProjectId", "ValuesSeen", "OtherCount"),
                [[group_id, FULL_KEY, org, project, 1, 0] for group_id, org, project in chunk],
            )
    mark_complete(database)
    return len(words), len(full)
