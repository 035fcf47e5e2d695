"""The tags and words of attached occurrences (``IndexOccurrence``), written in the commit of their rows.

Rows (``schemas/spanner.sql``): ``GroupTagValues (GroupId, TagKey, TagValue)`` with ``TimesSeen``,
``FirstSeen``, ``LastSeen`` (NULL for search-only rows: ``@`` keys and the ``@text`` terms), and
``GroupTagKeys (GroupId, TagKey)`` with ``ValuesSeen`` and ``OtherCount``; and the organization's vocabulary
(``OrgWords``, ``transforms.storage.org_words``): every word of every occurrence a commit indexes (a set: the
words of all attached occurrences, whatever their groups keep), and the full-group mark of a group that drops
a word.

Contract:

* Exact counts. An occurrence's tags are counted in the commit that writes its Occurrences row for the first
  time, and in no other: the commit reads, in its own read-write transaction, which of its occurrence rows
  exist already (a retried or replayed write, a stale write whose occurrences a newer write carried, a
  backfill over streamed data) and counts only the others. So ``TimesSeen`` is the number of the group's
  occurrence rows with the tag, ``FirstSeen``/``LastSeen`` the minimum/maximum of their event times, whatever
  the retries, replays, bundle boundaries and commit order; and rows go with their group (interleaved).
* Bounds (``transforms.core.limits``): a key keeps its first ``TAG_VALUES_PER_KEY`` values
  (``TERMS_PER_GROUP`` for ``@text``), in the order commits write occurrences (key order, so streaming and a
  backfill agree unless a message is late); an occurrence whose value comes after that is counted in the
  key's ``OtherCount`` (search-only values are not kept; a group that drops a word gets the search-only value
  ``org_words.FULL_KEY``). A group keeps its first ``TAG_KEYS_PER_GROUP`` tag keys (``@`` keys aside); later
  keys are not kept.
* Cost. Reads, inside the commit's transaction and only for groups that existed before it: one Read of the
  occurrence rows, one of the value rows to count, and, when some value or key is new to its group, one of
  those groups' key rows. A row that exists is updated with only its changing columns (no index entry is
  rewritten); a search-only row this writer has seen stored is neither read nor written again (rows are
  never removed but with their group, whose id is never used again). Occurrences of one commit are
  aggregated: a value seen ten times in a commit is one row write.

``plan_tags`` is pure (the CPU benchmark runs it); ``TagWriter`` adds the reads and the cache.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.cloud.spanner_v1 import KeyRange, KeySet

from transforms.core import intents
from transforms.core.engine.tags import SEARCH_PREFIX, TEXT_KEY
from transforms.core.limits import TAG_KEYS_PER_GROUP, TAG_VALUES_PER_KEY, TERMS_PER_GROUP
from transforms.core.model import from_datetime
from transforms.storage import org_words
from transforms.storage import spanner_rows as rows
from transforms.storage.org_words import FULL_KEY, FULL_VALUE, KnownWords

if TYPE_CHECKING:
    from transforms.storage.commit_plan import CommitPlan

VALUES, KEYS = "GroupTagValues", "GroupTagKeys"
_READ_BATCH = 5000  # keys per Read call
# Row states in a plan: read from the database and unchanged; read, counted (count and last seen changed);
# read, counted and seen earlier (first seen changed too); new.
_STORED, _COUNTED, _MOVED, _NEW = 0, 1, 2, 3
# Mutations of one value row (and of its key row) by what is known of it: an update of a row known to exist
# (no index entry), and an insert with its index entry plus its key row's insert.
_UPDATE_CELLS = len(rows.TAG_VALUE_UPDATE_COLUMNS)

# The C extension ``_planning.c`` (built by setup.py where a compiler exists) or None: the hot loops below
# (counting a commit's tags, writing its value rows, looking rows up in what is known stored) in C for the
# usual types, each answering None (or False) where the Python loop must decide; one INFO line says which.
_native = rows.planning
if _native is not None:
    _native.configure(
        TEXT_KEY,
        rows.TAG_VALUE_COLUMNS,
        rows.TAG_VALUE_COUNT_COLUMNS,
        rows.TAG_VALUE_UPDATE_COLUMNS,
        rows.rfc3339,
        (_STORED, _COUNTED, _MOVED, _NEW),
        SEARCH_PREFIX,
    )


def values_cap(key: str) -> int:
    """How many values of ``key`` one group keeps."""
    return TERMS_PER_GROUP if key == TEXT_KEY else TAG_VALUES_PER_KEY


@dataclass
class StoredTags:
    """What a commit's plan needs of the stored tags (read in its transaction): existing occurrence rows,
    value rows ``(count, first seen, last seen)`` (µs; None for search-only rows), and the whole key range of
    ``key_groups`` as ``(values seen, other count)``."""

    occurrences: set[tuple[int, str]] = field(default_factory=set)
    values: dict[tuple[int, str, str], tuple[int | None, int | None, int | None]] = field(
        default_factory=dict
    )
    keys: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    key_groups: set[int] = field(default_factory=set)
    _tag_keys: dict[int, int] | None = field(default=None, repr=False, compare=False)

    def tag_key_count(self, group_id: int) -> int:
        """How many tag keys (not ``@``) of ``group_id`` are stored, of ``keys``: counted for every group at
        the first call, in one pass over ``keys`` (which holds the whole key range of each of
        ``key_groups``), not once per group."""
        counts = self._tag_keys
        if counts is None and _native is not None:
            counts = self._tag_keys = _native.count_tag_keys(self.keys)  # None when C is not sure
        if counts is None:
            counts = self._tag_keys = {}
            for gid, key in self.keys:
                if not key.startswith(SEARCH_PREFIX):
                    counts[gid] = counts.get(gid, 0) + 1
        return counts.get(group_id, 0)


@dataclass
class TagPlan:
    """What ``plan_tags`` added to a commit: the value rows it wrote (and, from ``TagWriter``, those it found
    stored), for ``KnownRows`` once the commit is done."""

    counted: int = 0  # occurrences whose tags this commit counts
    known: list[tuple[int, str, str]] = field(default_factory=list)  # value rows written or found stored
    words: list[tuple[int, str]] = field(default_factory=list)  # vocabulary rows written


class KnownRows:
    """Value rows known to be stored, by (group, key, value): bounded, emptied when full. A stored row stays
    until its group is deleted, and group ids are never used again, so what it says stays true."""

    def __init__(self, max_entries: int = 300_000) -> None:
        self.rows: set[tuple[int, str, str]] = set()
        self._max_entries = max_entries

    def add_all(self, found: Iterable[tuple[int, str, str]]) -> None:
        if len(self.rows) > self._max_entries:
            self.rows.clear()
        if _native is not None:  # kept untracked: no work for the collector (``_planning.untrack_rows``)
            _native.untrack_rows(found)
        self.rows.update(found)


_NOTHING_KNOWN = KnownRows(0)
_FULL_TAG = (FULL_KEY, FULL_VALUE)
_NO_WORDS = KnownWords(0)


def index_intents(writes: Sequence[intents.KeyWrite]) -> list[intents.IndexOccurrence]:
    """The ``IndexOccurrence`` intents of a commit, in the order ``plan_commit`` applies writes."""
    found = []
    for write in sorted(writes, key=lambda w: (w.key, w.seq)):
        for intent in write.intents:
            if intent.__class__ is intents.IndexOccurrence:
                found.append(intent)
    return found


@functools.cache
def _insert_cells() -> int:
    return rows.mutation_cells(VALUES, len(rows.TAG_VALUE_COLUMNS)) + rows.mutation_cells(
        KEYS, len(rows.TAG_KEY_COLUMNS)
    )


@functools.cache
def _term_cells() -> int:
    """A new word: its value and key rows, and its vocabulary row."""
    return _insert_cells() + rows.mutation_cells(org_words.TABLE, len(org_words.COLUMNS))


def estimate_mutations(intent: intents.IndexOccurrence, known: KnownRows | None = None) -> int:
    """An upper bound of the mutations one ``IndexOccurrence`` costs: a value row ``known`` to be stored is
    an update (of a count) or nothing (search only); any other is an insert with its key row."""
    insert = _insert_cells()
    # the words' rows, and the full-group mark's a new word may bring
    words = len(intent.terms) * _term_cells() + (insert if intent.terms else 0)
    if known is None:
        return (len(intent.tags) + len(intent.search_tags)) * insert + words
    stored = known.rows
    group_id = intent.group_id
    total = 0
    for key, value in intent.tags:
        total += _UPDATE_CELLS if (group_id, key, value) in stored else insert
    for key, value in intent.search_tags:
        if (group_id, key, value) not in stored:
            total += insert
    new_terms = sum(1 for term in intent.terms if (group_id, TEXT_KEY, term) not in stored)
    if new_terms:  # and the full-group mark a new word may bring
        total += new_terms * _term_cells() + insert
    return total


class TagCost:
    """``estimate_mutations`` with the rows ``known`` to be stored, as a callable (``spanner_writer.chunk_writes``'
    ``tag_cost``, which then takes a whole write's estimate in C where the extension is built)."""

    __slots__ = ("known",)

    def __init__(self, known: KnownRows) -> None:
        self.known = known

    def __call__(self, intent: intents.IndexOccurrence) -> int:
        return estimate_mutations(intent, self.known)


def tag_cells() -> tuple[int, int, int]:
    """The cells ``estimate_mutations`` counts: a row inserted (with its key row), updated, a new word's."""
    return _insert_cells(), _UPDATE_CELLS, _term_cells()


class _Group:
    """One group's tag rows as a commit changes them."""

    __slots__ = (
        "full_marked",
        "group_id",
        "keys",
        "organization_id",
        "project_id",
        "stored",
        "stored_keys",
        "stored_values",
        "tag_keys",
        "values",
    )

    def __init__(self, intent: intents.IndexOccurrence, stored: StoredTags | None, full_marked: bool) -> None:
        self.group_id = intent.group_id
        self.organization_id = intent.organization_id
        self.project_id = intent.project_id
        self.stored = stored  # None: the group did not exist before this commit, nothing is stored
        self.stored_values = None if stored is None else stored.values
        # StoredTags.keys when the group's key rows were read, else None (for the C loops: see _key)
        self.stored_keys = None if stored is None or self.group_id not in stored.key_groups else stored.keys
        self.values: dict[tuple[str, str], list] = {}  # (key, value) -> [count, first, last, state]
        self.keys: dict[str, list] = {}  # key -> [values seen, other count, state]
        self.tag_keys = -1  # tag keys (not '@') the group has, once needed
        self.full_marked = full_marked  # the group's FULL_KEY mark is known to be stored or planned

    def _value(self, key: str, value: str) -> list | None:
        row = self.values.get((key, value))
        if row is None and self.stored is not None:
            stored = self.stored.values.get((self.group_id, key, value))
            if stored is not None:
                row = self.values[(key, value)] = [*stored, _STORED]
        return row

    def _key(self, key: str) -> list | None:
        row = self.keys.get(key)
        if row is None:
            stored = None
            if self.stored is not None:
                if self.group_id not in self.stored.key_groups:
                    raise AssertionError(f"the key rows of group {self.group_id} were not read")
                stored = self.stored.keys.get((self.group_id, key))
            if stored is not None:
                row = self.keys[key] = [*stored, _STORED]
            elif key.startswith(SEARCH_PREFIX):
                row = self.keys[key] = [0, 0, _NEW]
            else:
                if self.tag_keys < 0:
                    self.tag_keys = self._stored_tag_keys()
                if self.tag_keys >= TAG_KEYS_PER_GROUP:
                    return None
                self.tag_keys += 1
                row = self.keys[key] = [0, 0, _NEW]
        return row

    def _stored_tag_keys(self) -> int:
        return 0 if self.stored is None else self.stored.tag_key_count(self.group_id)

    def count(self, key: str, value: str, seen: int) -> None:
        """One more occurrence with ``key: value`` at event time ``seen``."""
        row = self._value(key, value)
        if row is not None:
            row[0] += 1
            if row[3] == _STORED:
                row[3] = _COUNTED
            if seen < row[1]:
                row[1] = seen
                if row[3] == _COUNTED:
                    row[3] = _MOVED
            if seen > row[2]:
                row[2] = seen
            return
        key_row = self._key(key)
        if key_row is None:
            return  # past the group's keys
        if key_row[2] == _STORED:
            key_row[2] = _COUNTED
        if key_row[0] < values_cap(key):
            key_row[0] += 1
            self.values[(key, value)] = [1, seen, seen, _NEW]
        else:
            key_row[1] += 1

    def index(
        self, intent: intents.IndexOccurrence, known: set[tuple[int, str, str]], stage: int = 1, item: int = 0
    ) -> None:
        """One occurrence counted (its tags) and marked (its search tags and words not in ``known``, the rows
        known stored), from item ``item`` of ``stage`` (1 its tags, 2 its search tags, 3 its words) on: where
        ``_planning.index_tags`` left it."""
        if stage == 1:
            self.count_all(intent.tags, intent.seen, item)
            item = 0
        if stage <= 2:
            if intent.search_tags:
                self.mark_all(None, intent.search_tags, known, item)
            item = 0
        if intent.terms:
            self.mark_all(TEXT_KEY, intent.terms, known, item)

    def count_all(self, tags: tuple[tuple[str, str], ...], seen: int, start: int = 0) -> None:
        """``count`` of each of ``tags[start:]``: in C (``_planning.count_tags``) up to a tag it leaves to
        ``count``."""
        if _native is None:
            for key, value in tags[start:]:
                self.count(key, value, seen)
            return
        stored = self.stored_values
        end = len(tags)
        while start < end:
            done = _native.count_tags(
                self.values,
                stored,
                self.stored_keys,
                self.keys,
                self.group_id,
                tags,
                start,
                seen,
                TAG_VALUES_PER_KEY,
                TERMS_PER_GROUP,
            )
            if done is None:  # not sure of the arguments: all of the rest in Python
                for key, value in tags[start:]:
                    self.count(key, value, seen)
                return
            if done < end:
                key, value = tags[done]
                self.count(key, value, seen)
            start = done + 1

    def mark(self, key: str, value: str) -> bool:
        """The group has ``key: value`` (search only); True when this commit writes its row. A word that
        comes after the group's words are full marks the group full (``org_words.FULL_KEY``)."""
        if self._value(key, value) is not None:
            return False
        key_row = self._key(key)
        if key_row is None:
            return False
        if key_row[0] >= values_cap(key):
            if key == TEXT_KEY and not self.full_marked:
                self.full_marked = True
                self.mark(FULL_KEY, FULL_VALUE)
            return False
        key_row[0] += 1
        if key_row[2] == _STORED:
            key_row[2] = _COUNTED
        self.values[(key, value)] = [None, None, None, _NEW]
        return True

    def mark_all(
        self, key: str | None, items: tuple, known: set[tuple[int, str, str]], start: int = 0
    ) -> None:
        """``mark`` of each of ``items[start:]`` whose row is not in ``known`` (rows known stored): ``(key,
        value)`` pairs when ``key`` is None, else values of ``key``. In C (``_planning.mark_tags``, which also
        does the lookups in ``known``) up to an item it leaves to ``_mark_unknown``."""
        stored = self.stored_values
        end = len(items)
        while start < end:
            done = (
                None
                if _native is None
                else _native.mark_tags(
                    self.values,
                    stored,
                    self.stored_keys,
                    self.keys,
                    self.group_id,
                    items,
                    key,
                    start,
                    known,
                    TAG_VALUES_PER_KEY,
                    TERMS_PER_GROUP,
                )
            )
            if done is None:  # not sure of the arguments: all of the rest in Python
                for item in items[start:]:
                    self._mark_unknown(key, item, known)
                return
            if done < end:
                self._mark_unknown(key, items[done], known)
            start = done + 1

    def _mark_unknown(self, key: str | None, item: Any, known: set[tuple[int, str, str]]) -> None:
        """``mark_all``'s Python for one item."""
        tag_key, value = item if key is None else (key, item)
        if (self.group_id, tag_key, value) not in known:
            self.mark(tag_key, value)

    def write(self, plan: CommitPlan, times: dict[int, str], result: TagPlan) -> None:
        """Plan the rows this commit changed; ``times`` caches RFC 3339 forms (an occurrence's tags share
        its time); the keys of the value rows written go to ``result.known``. Each tag row is planned once per commit, so it goes
        straight into the plan (``CommitPlan.upsert`` merges, which is not needed)."""
        group_id, organization_id, project_id = self.group_id, self.organization_id, self.project_id
        planned = plan.upserts.setdefault(VALUES, {})
        updated = plan.updates.setdefault(VALUES, set())
        written = result.known
        values = self.values
        if _native is not None and _native.write_values(
            values, group_id, organization_id, project_id, planned, updated, written, times
        ):
            values = {}  # written in C
        for (key, value), (count, first, last, state) in values.items():
            if state == _STORED:
                continue
            row_key = (group_id, key, value)
            written.append(row_key)
            if last is None:
                last_seen = first_seen = None
            else:
                last_seen = times.get(last)
                if last_seen is None:
                    last_seen = times[last] = rows.rfc3339(last)
                first_seen = times.get(first)
                if first_seen is None:
                    first_seen = times[first] = rows.rfc3339(first)
            if state == _NEW:
                planned[row_key] = (
                    rows.TAG_VALUE_COLUMNS,
                    (group_id, key, value, organization_id, project_id, count, first_seen, last_seen),
                )
            elif state == _COUNTED:
                planned[row_key] = (rows.TAG_VALUE_COUNT_COLUMNS, (group_id, key, value, count, last_seen))
                updated.add(row_key)
            else:
                planned[row_key] = (
                    rows.TAG_VALUE_UPDATE_COLUMNS,
                    (group_id, key, value, count, first_seen, last_seen),
                )
                updated.add(row_key)
        if not self.keys:
            return
        planned = plan.upserts.setdefault(KEYS, {})
        updated = plan.updates.setdefault(KEYS, set())
        if _native is not None and _native.write_keys(
            self.keys,
            group_id,
            organization_id,
            project_id,
            planned,
            updated,
            rows.TAG_KEY_COLUMNS,
            rows.TAG_KEY_UPDATE_COLUMNS,
        ):
            return  # written in C
        for key, (values_seen, other, state) in self.keys.items():
            if state == _STORED:
                continue
            row_key = (group_id, key)
            if state == _NEW:
                planned[row_key] = (
                    rows.TAG_KEY_COLUMNS,
                    (group_id, key, organization_id, project_id, values_seen, other),
                )
            else:
                planned[row_key] = (rows.TAG_KEY_UPDATE_COLUMNS, (group_id, key, values_seen, other))
                updated.add(row_key)


def _unknown(known: set, head: tuple, items: tuple, pairs: bool) -> list | None:
    """The items not in ``known`` as ``(*head, *item)`` (``pairs``) or ``(*head, item)``, by ``_planning.missing``;
    None without the extension or when it is not sure (the caller's Python loop decides)."""
    return None if _native is None else _native.missing(known, head, items, pairs)


def _first_write(
    intent: intents.IndexOccurrence,
    planned: dict,
    stored_occurrences: set[tuple[int, str]],
    done: set[tuple[int, str]],
) -> bool:
    """Whether this commit writes ``intent``'s occurrence row (a key of ``planned``, its Occurrences rows) for
    the first time, and not for an intent in ``done`` (to which it is added)."""
    row_key = (intent.group_id, intent.occurrence_id)
    if row_key in planned and row_key not in stored_occurrences and row_key not in done:
        done.add(row_key)
        return True
    return False


def plan_tags(
    writes: Sequence[intents.KeyWrite],
    plan: CommitPlan,
    existing_groups: set[int] | frozenset[int] = frozenset(),
    stored: StoredTags | None = None,
    known: KnownRows = _NOTHING_KNOWN,
    indexed: Sequence[intents.IndexOccurrence] | None = None,
    known_words: KnownWords = _NO_WORDS,
) -> TagPlan:
    """Add the tag rows of ``writes`` to ``plan`` (already planned by ``plan_commit``: only occurrences it
    writes count). ``existing_groups`` existed before the commit; ``stored`` holds what ``read_stored`` read
    of them; ``known`` search-only rows and ``known_words`` vocabulary rows need no write. Pure: no I/O."""
    stored = stored or StoredTags()
    if indexed is None:
        indexed = index_intents(writes)
    result = TagPlan()
    known_rows = known.rows
    groups: dict[int, _Group] = {}

    def make_group(intent: intents.IndexOccurrence) -> _Group:
        group_id = intent.group_id
        group = groups[group_id] = _Group(
            intent,
            stored if group_id in existing_groups else None,
            (group_id, FULL_KEY, FULL_VALUE) in known_rows,
        )
        return group

    planned = plan.upserts.get("Occurrences", {})
    done: set[tuple[int, str]] = set()
    native, start, end = _native, 0, len(indexed)
    while start < end:
        # in C (``_planning.index_tags``) up to an occurrence it leaves (stage 0) or leaves partly done
        at, stage, item = start, 0, 0
        if native is not None:
            answer = native.index_tags(
                indexed,
                start,
                groups,
                make_group,
                planned,
                stored.occurrences,
                done,
                known_rows,
                _FULL_TAG,
                TAG_VALUES_PER_KEY,
                TERMS_PER_GROUP,
                TAG_KEYS_PER_GROUP,
            )
            if answer is None:  # not sure of the arguments: all in Python
                native = None
            else:
                at, stage, item, counted = answer
                result.counted += counted
                if at == end:
                    break
        intent = indexed[at]
        if stage:
            groups[intent.group_id].index(intent, known_rows, stage, item)
        elif _first_write(intent, planned, stored.occurrences, done):
            result.counted += 1
            (groups.get(intent.group_id) or make_group(intent)).index(intent, known_rows)
        start = at + 1
    times: dict[int, str] = {}
    for group in groups.values():
        group.write(plan, times, result)
    _plan_words(plan, indexed, known_words.words, result)
    return result


def _plan_words(
    plan: CommitPlan, indexed: Sequence[intents.IndexOccurrence], known: set, result: TagPlan
) -> None:
    """The vocabulary rows (``OrgWords``) of every word of every occurrence this commit indexes, whether or
    not its group keeps the word (past ``TERMS_PER_GROUP``), is deleted in the same commit, or has the
    occurrence stored already: the words of all attached occurrences, the same set whatever the commits'
    boundaries (a group deleted in the commit that attaches its occurrence leaves its words as one deleted
    later does). Words in ``known`` are stored already. In C (``_planning.plan_words``) up to an occurrence
    it leaves to ``_words_of``."""
    start, end = 0, len(indexed)
    while start < end:
        at = None
        if _native is not None:
            at = _native.plan_words(
                indexed, start, known, plan.upserts, org_words.TABLE, org_words.COLUMNS, result.words
            )
        if at is None:  # not sure of the arguments: all of the rest in Python
            for intent in indexed[start:]:
                _words_of(plan, intent, known, result)
            return
        if at < end:
            _words_of(plan, indexed[at], known, result)
        start = at + 1


def _words_of(plan: CommitPlan, intent: intents.IndexOccurrence, known: set, result: TagPlan) -> None:
    """``_plan_words`` of one occurrence."""
    organization_id = intent.organization_id
    terms = _unknown(known, (organization_id,), intent.terms, False)
    if terms is None:
        terms = [term for term in intent.terms if (organization_id, term) not in known]
    for term in terms:
        word = (organization_id, term)
        planned = plan.upserts.setdefault(org_words.TABLE, {})
        if word not in planned:
            planned[word] = (org_words.COLUMNS, word)
            result.words.append(word)


def read_stored(
    transaction: Any,
    indexed: Sequence[intents.IndexOccurrence],
    plan: CommitPlan,
    existing_groups: set[int],
    known: KnownRows,
) -> StoredTags:
    """Read what ``plan_tags`` needs of the groups in ``existing_groups`` (see the module docstring)."""
    stored = StoredTags()
    planned = plan.upserts.get("Occurrences", {})
    wanted = [
        intent
        for intent in indexed
        if intent.group_id in existing_groups and (intent.group_id, intent.occurrence_id) in planned
    ]
    if not wanted:
        return stored
    occurrence_keys = sorted({(intent.group_id, intent.occurrence_id) for intent in wanted})
    for group_id, occurrence_id in _read(
        transaction, "Occurrences", ("GroupId", "OccurrenceId"), occurrence_keys
    ):
        stored.occurrences.add((group_id, occurrence_id))
    value_keys: set[tuple[int, str, str]] = set()
    known_rows = known.rows
    start, end = 0, len(wanted)
    while start < end:  # in C (``_planning.value_keys``) up to an occurrence it leaves to ``_value_keys_of``
        at = (
            None
            if _native is None
            else _native.value_keys(wanted, start, stored.occurrences, known_rows, value_keys)
        )
        if at is None:  # not sure of the arguments: all of the rest in Python
            for intent in wanted[start:]:
                _value_keys_of(intent, stored.occurrences, known_rows, value_keys)
            break
        if at < end:
            _value_keys_of(wanted[at], stored.occurrences, known_rows, value_keys)
        start = at + 1
    if not value_keys:
        return stored
    # a new word may come after the group's words are full: whether the group is marked so already. A group
    # needs the mark only when one of its words is new, so its key rows are read anyway (below).
    marks = {(key[0], FULL_KEY, FULL_VALUE) for key in value_keys if key[1] == TEXT_KEY}
    marks.difference_update(known_rows)
    columns = ("GroupId", "TagKey", "TagValue", "TimesSeen", "FirstSeen", "LastSeen")
    for group_id, key, value, count, first, last in _read(
        transaction, VALUES, columns, sorted(value_keys | marks)
    ):
        stored.values[(group_id, key, value)] = (
            count,
            None if first is None else from_datetime(first),
            None if last is None else from_datetime(last),
        )
    stored.key_groups = {key[0] for key in value_keys if key not in stored.values}
    if stored.key_groups:
        ranges = [
            KeyRange(start_closed=[group_id], end_closed=[group_id]) for group_id in sorted(stored.key_groups)
        ]
        columns = ("GroupId", "TagKey", "ValuesSeen", "OtherCount")
        for group_id, key, values_seen, other in transaction.read(KEYS, columns, KeySet(ranges=ranges)):
            stored.keys[(group_id, key)] = (values_seen, other)
    return stored


def _value_keys_of(
    intent: intents.IndexOccurrence,
    stored_occurrences: set[tuple[int, str]],
    known_rows: set[tuple[int, str, str]],
    value_keys: set[tuple[int, str, str]],
) -> None:
    """The value rows ``read_stored`` reads for ``intent`` (none when its occurrence is stored): its tags', and
    its search tags' and words' not in ``known_rows``, added to ``value_keys``."""
    group_id = intent.group_id
    if (group_id, intent.occurrence_id) in stored_occurrences:
        return
    for key, value in intent.tags:
        value_keys.add((group_id, key, value))
    for key, value in intent.search_tags:
        if (group_id, key, value) not in known_rows:
            value_keys.add((group_id, key, value))
    for term in intent.terms:
        if (group_id, TEXT_KEY, term) not in known_rows:
            value_keys.add((group_id, TEXT_KEY, term))


def _read(transaction: Any, table: str, columns: tuple[str, ...], keys: list[tuple]) -> Iterable[list]:
    for start in range(0, len(keys), _READ_BATCH):
        batch = KeySet(keys=[list(key) for key in keys[start : start + _READ_BATCH]])
        yield from transaction.read(table, columns, batch)


class TagWriter:
    """The tag rows of a ``SpannerWriter``'s commits, with its cache of stored search-only rows."""

    def __init__(self) -> None:
        self.known = KnownRows()
        self.words = KnownWords()
        # ``estimate_mutations`` with what this writer knows to be stored
        self.estimate = TagCost(self.known)

    def add_to_commit(
        self,
        transaction: Any,
        writes: Sequence[intents.KeyWrite],
        plan: CommitPlan,
        existing_groups: set[int],
    ) -> TagPlan:
        """Read (in ``transaction``) and plan the tag rows of ``writes`` into ``plan`` (made by ``plan_commit``,
        whose pass gathered their ``IndexOccurrence`` intents in ``index_intents`` order)."""
        indexed = plan.indexed
        if not indexed:
            return TagPlan()
        stored = read_stored(transaction, indexed, plan, existing_groups, self.known)
        result = plan_tags(writes, plan, existing_groups, stored, self.known, indexed, self.words)
        result.known.extend(stored.values)
        return result

    def committed(self, result: TagPlan | None) -> None:
        """After the commit: its search-only rows are stored."""
        if result is not None and result.known:
            self.known.add_all(result.known)
        if result is not None and result.words:
            self.words.add_all(result.words)
