"""Tags and free text of groups: the reads issue search and the tags endpoints (``api.group_tags``) need.

What is stored (``schemas/spanner.sql``, written by ``transforms.storage.tag_writer``; docs/issue-index.md "Tags and free
text"): per group, ``GroupTagKeys (GroupId, TagKey)`` and ``GroupTagValues (GroupId, TagKey, TagValue)``, plus
search-only keys (``@user.email`` ...: ``search_key``) and the group's words (``@text``: ``TEXT_KEY``); per
organization, its distinct words (``OrgWords``: ``transforms.storage.org_words``).

Reads for search, each counted in a ``ReadStats`` (Read calls, rows; index rows for index reads):

* candidates (``TagIndex.value_candidates``, ``prefix_candidates``, ``key_candidates``, ``text_candidates``):
  the groups of an organization (or of a few of its projects) with a tag value, a value prefix, a key, or
  words, as key ranges of ``GroupTagValuesByValue`` / ``GroupTagKeysByKey`` read with a row limit. They come
  in index order (not in the page's sort order). ``complete`` says whether the limit held them all: a
  selective filter then drives the query (its few candidates are the only groups to look at); an
  unselective one (``complete`` False) is better checked on the candidates of the other ranges.
  ``word_candidates`` (an infix wildcard) reads the organization's vocabulary, then the matching words' ranges.
* membership (``with_values``, ``with_prefix``, ``with_key``, ``with_terms``): which of a page's candidate
  groups have the value, prefix, key or words, by primary-key reads (one Read for the whole batch);
  ``values_of`` gives a key's values of each candidate for predicates no range answers.
* ``beyond_caps``: the groups whose key kept no more values (docs/limits.md "Tags"): for them a value not
  found may still have been seen, so a negative answer is uncertain.

Every read is one Read call on one snapshot; none scans: cost is O(limit), O(candidates x values asked), or
O(vocabulary) up to a bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.cloud.spanner_v1 import KeyRange, KeySet

from api.search import ReadStats
from transforms.core.engine.tags import SEARCH_KEYS, SEARCH_PREFIX, TEXT_KEY, query_terms, valid_tag
from transforms.core.limits import TAG_VALUES_PER_KEY, TERMS_PER_GROUP
from transforms.core.model import from_datetime
from transforms.storage import org_words

# How many candidates a filter may bring before it counts as unselective (see the module docstring).
CANDIDATE_LIMIT = 1000
_BATCH = 5000  # keys per Read call
VALUES_INDEX = "GroupTagValuesByValue"
KEYS_INDEX = "GroupTagKeysByKey"


def search_key(name: str) -> str | None:
    """The stored key a search term names: ``tags[browser]`` and ``browser`` -> ``browser``, ``user.email``
    -> ``@user.email`` (search only); None for a name no tag can have."""
    if name.startswith("tags[") and name.endswith("]"):
        name = name[5:-1]
    elif name in SEARCH_KEYS:
        return SEARCH_KEYS[name]
    return name if valid_tag(name, "v") else None


def _after(prefix: str) -> str:
    """The first string after every string starting with ``prefix`` (code point order is Spanner's order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate group ids in index order, and whether they are all of them (the limit was not reached)."""

    group_ids: tuple[int, ...]
    complete: bool


@dataclass(frozen=True, slots=True)
class TagValue:
    key: str
    value: str
    times_seen: int
    first_seen: int
    last_seen: int


@dataclass(frozen=True, slots=True)
class TagKey:
    key: str
    values_seen: int
    other: int  # occurrences whose value came after the key was full


@dataclass(slots=True)
class TagIndex:
    """Tag and free-text reads on one snapshot (``database.snapshot(multi_use=True)``)."""

    snapshot: Any
    stats: ReadStats = field(default_factory=ReadStats)

    def _read(self, table: str, columns: Sequence[str], keyset: KeySet, **kwargs: Any) -> list[list]:
        rows = list(self.snapshot.read(table, list(columns), keyset, **kwargs))
        self.stats.reads += 1
        self.stats.rows += len(rows)
        if "index" in kwargs:
            self.stats.index_rows += len(rows)
        return rows

    # ---- candidates

    def _candidates(self, index: str, ranges: list[KeyRange], limit: int) -> Candidates:
        table = "GroupTagValues" if index == VALUES_INDEX else "GroupTagKeys"
        self.stats.ranges += len(ranges)
        rows = self._read(table, ("GroupId",), KeySet(ranges=ranges), index=index, limit=limit + 1)
        ids = tuple(dict.fromkeys(row[0] for row in rows[:limit]))
        return Candidates(ids, len(rows) <= limit)

    def value_candidates(
        self,
        organization_id: int,
        key: str,
        values: Sequence[str],
        projects: Iterable[int] | None = None,
        limit: int = CANDIDATE_LIMIT,
    ) -> Candidates:
        """Groups with ``key`` equal to one of ``values`` (an IN list), in the organization or ``projects``."""
        ranges = [
            KeyRange(start_closed=prefix, end_closed=prefix)
            for value in sorted(set(values))
            for prefix in _scoped([organization_id, key, value], projects)
        ]
        return self._candidates(VALUES_INDEX, ranges, limit)

    def prefix_candidates(
        self,
        organization_id: int,
        key: str,
        prefix: str,
        projects: Iterable[int] | None = None,
        limit: int = CANDIDATE_LIMIT,
    ) -> Candidates:
        """Groups with a value of ``key`` starting with ``prefix`` (``key:prefix*``), one range. With
        ``projects`` the range is the organization's and the rows of other projects are skipped by the limit:
        the project sits after the value in the index key."""
        if not prefix:
            return self.key_candidates(organization_id, key, projects, limit)
        rng = KeyRange(
            start_closed=[organization_id, key, prefix], end_open=[organization_id, key, _after(prefix)]
        )
        if projects is None:
            return self._candidates(VALUES_INDEX, [rng], limit)
        wanted = set(projects)
        self.stats.ranges += 1
        rows = self._read(
            "GroupTagValues",
            ("GroupId", "ProjectId"),
            KeySet(ranges=[rng]),
            index=VALUES_INDEX,
            limit=limit + 1,
        )
        ids = tuple(dict.fromkeys(row[0] for row in rows[:limit] if row[1] in wanted))
        return Candidates(ids, len(rows) <= limit)

    def key_candidates(
        self,
        organization_id: int,
        key: str,
        projects: Iterable[int] | None = None,
        limit: int = CANDIDATE_LIMIT,
    ) -> Candidates:
        """Groups that have ``key`` (``has:key``)."""
        ranges = [KeyRange(start_closed=p, end_closed=p) for p in _scoped([organization_id, key], projects)]
        return self._candidates(KEYS_INDEX, ranges, limit)

    def text_candidates(
        self,
        organization_id: int,
        text: str,
        projects: Iterable[int] | None = None,
        limit: int = CANDIDATE_LIMIT,
        prefix_last: bool = True,
    ) -> Candidates:
        """Groups having every word of ``text`` (the last one as a prefix when ``prefix_last``): the
        candidates of the first word whose range holds at most ``limit`` groups, checked for the other words.
        Words are tried rarest-looking first: those with digits (ids, numbers), then the whole words before
        a prefix, the longer ones first; a prefix of fewer than 3 characters last. Incomplete (and empty) when
        every word is in more than ``limit`` groups."""
        words = query_terms(text)
        if not words:
            return Candidates((), False)
        last = len(words) - 1

        def rarity(position: int) -> tuple:
            word = words[position]
            prefix = prefix_last and position == last
            return (prefix and len(word) < 3, not any(c.isdigit() for c in word), prefix, -len(word))

        for position in sorted(range(len(words)), key=rarity):
            word = words[position]
            if prefix_last and position == last:
                found = self.prefix_candidates(organization_id, TEXT_KEY, word, projects, limit)
            else:
                found = self.value_candidates(organization_id, TEXT_KEY, [word], projects, limit)
            if found.complete:
                having = set(found.group_ids)
                for other, rest in enumerate(words):  # the other words, on these candidates only
                    if other != position and having:
                        if prefix_last and other == last:
                            having = self.with_prefix(having, TEXT_KEY, rest)
                        else:
                            having = self.with_values(having, TEXT_KEY, [rest])
                return Candidates(tuple(g for g in found.group_ids if g in having), True)
        return Candidates((), False)

    def word_candidates(
        self,
        organization_id: int,
        matches: Callable[[str], bool],
        projects: Iterable[int] | None = None,
        limit: int = CANDIDATE_LIMIT,
        chunk: int = 500,
        max_reads: int = 2,
        max_words: int = 20_000,
    ) -> Candidates | None:
        """Groups with a stored word that ``matches`` accepts (an infix wildcard, which no range can seek),
        and the groups that dropped a word (``org_words.FULL_KEY``): a superset of those whose title may
        match. None when the organization's vocabulary is too large to read (then the caller checks the
        condition on candidates instead); otherwise the candidates, complete unless more than ``limit``.

        From the organization's distinct words (``OrgWords``, one Read of at most ``max_words``), when the
        database says its vocabularies are complete (``org_words.COMPLETE``, read in the same Read); else
        from its ``@text`` rows (``_scanned_word_candidates``)."""
        rows = self._read(
            org_words.TABLE,
            org_words.COLUMNS,
            KeySet(
                keys=[list(org_words.COMPLETE)],
                ranges=[KeyRange(start_closed=[organization_id], end_closed=[organization_id])],
            ),
            limit=max_words + 2,
        )
        if not any(tuple(row) == org_words.COMPLETE for row in rows):
            return self._scanned_word_candidates(organization_id, matches, projects, limit, chunk, max_reads)
        self.stats.ranges += 1
        self.stats.index_rows += len(rows)  # a range read of the words, as of an index
        words = [word for org, word in rows if org == organization_id and word]
        if len(words) > max_words:
            return None
        matching = [word for word in words if matches(word)]
        if len(matching) > limit:  # each word has a group, unless its groups were deleted
            return Candidates((), False)
        ranges = [
            KeyRange(start_closed=prefix, end_closed=prefix)
            for key, value in [
                *((TEXT_KEY, word) for word in matching),
                (org_words.FULL_KEY, org_words.FULL_VALUE),
            ]
            for prefix in _scoped([organization_id, key, value], projects)
        ]
        return self._candidates(VALUES_INDEX, ranges, limit)

    def _scanned_word_candidates(
        self,
        organization_id: int,
        matches: Callable[[str], bool],
        projects: Iterable[int] | None,
        limit: int,
        chunk: int,
        max_reads: int,
    ) -> Candidates | None:
        """``word_candidates`` for a database whose vocabularies may be incomplete (``@text`` rows stored
        before ``OrgWords``): the organization's ``@text`` range read in order, ``chunk`` rows a Read, each
        next Read starting after the last word seen (a word that filled the rest of a Read is skipped, and
        its groups are read by value if it matches). None when that takes more than ``max_reads`` Reads."""
        wanted = None if projects is None else set(projects)
        prefix = [organization_id, TEXT_KEY]
        found: dict[int, None] = {}
        heavy: list[str] = []
        words_of: dict[int, int] = {}  # word rows read of each group
        skipped = 0  # words whose other rows were skipped (at most one row of each per group)
        start: list = prefix
        for _ in range(max_reads):
            self.stats.ranges += 1
            rows = self._read(
                "GroupTagValues",
                ("TagValue", "GroupId", "ProjectId"),
                KeySet(ranges=[KeyRange(start_closed=start, end_closed=prefix)]),
                index=VALUES_INDEX,
                limit=chunk,
            )
            full = len(rows) == chunk
            last = rows[-1][0] if full else None
            for word, group_id, project_id in rows:
                if wanted is None or project_id in wanted:
                    words_of[group_id] = words_of.get(group_id, 0) + 1
                    if word != last and matches(word):
                        found[group_id] = None
            if not full:
                break
            skipped += 1
            if matches(last):
                heavy.append(last)
            start = [*prefix, last + "\x00"]  # the first word after ``last`` and all of its rows
        else:
            return None
        # A group with TERMS_PER_GROUP words stores no new one: a word of its title may be missing here, so it
        # stays a candidate (its title and message are checked, as for every candidate).
        for group_id, count in words_of.items():
            if count + skipped >= TERMS_PER_GROUP:
                found[group_id] = None
        if heavy:
            more = self.value_candidates(organization_id, TEXT_KEY, heavy, projects, limit)
            if not more.complete:
                return Candidates((), False)
            found.update(dict.fromkeys(more.group_ids))
        if len(found) > limit:
            return Candidates((), False)
        return Candidates(tuple(found), True)

    # ---- membership of candidate groups

    def with_values(self, group_ids: Iterable[int], key: str, values: Sequence[str]) -> set[int]:
        """The groups among ``group_ids`` with ``key`` equal to one of ``values``."""
        keys = [
            [group_id, key, value] for group_id in dict.fromkeys(group_ids) for value in sorted(set(values))
        ]
        found: set[int] = set()
        for start in range(0, len(keys), _BATCH):
            for (group_id,) in self._read(
                "GroupTagValues", ("GroupId",), KeySet(keys=keys[start : start + _BATCH])
            ):
                found.add(group_id)
        return found

    def with_prefix(self, group_ids: Iterable[int], key: str, prefix: str) -> set[int]:
        """The groups among ``group_ids`` with a value of ``key`` starting with ``prefix``."""
        if not prefix:
            return self.with_key(group_ids, key)
        ranges = [
            KeyRange(start_closed=[group_id, key, prefix], end_open=[group_id, key, _after(prefix)])
            for group_id in dict.fromkeys(group_ids)
        ]
        found: set[int] = set()
        for start in range(0, len(ranges), _BATCH):
            self.stats.ranges += len(ranges[start : start + _BATCH])
            for (group_id,) in self._read(
                "GroupTagValues", ("GroupId",), KeySet(ranges=ranges[start : start + _BATCH])
            ):
                found.add(group_id)
        return found

    def with_key(self, group_ids: Iterable[int], key: str) -> set[int]:
        """The groups among ``group_ids`` that have ``key`` (``has:key``)."""
        keys = [[group_id, key] for group_id in dict.fromkeys(group_ids)]
        found: set[int] = set()
        for start in range(0, len(keys), _BATCH):
            for (group_id,) in self._read(
                "GroupTagKeys", ("GroupId",), KeySet(keys=keys[start : start + _BATCH])
            ):
                found.add(group_id)
        return found

    def with_terms(
        self, group_ids: Iterable[int], words: Sequence[str], prefix_last: bool = True
    ) -> set[int]:
        """The groups among ``group_ids`` having every one of ``words`` (already split by ``query_terms``)."""
        having = set(dict.fromkeys(group_ids))
        for position, word in enumerate(words):
            if not having:
                break
            if prefix_last and position == len(words) - 1:
                having = self.with_prefix(having, TEXT_KEY, word)
            else:
                having = self.with_values(having, TEXT_KEY, [word])
        return having

    def values_of(self, group_ids: Iterable[int], key: str) -> dict[int, list[str]]:
        """{group: its values of ``key``} for ``group_ids`` (at most ``TAG_VALUES_PER_KEY`` each), for a
        predicate no range can answer (``key:*middle*``): a residual check, one range per group."""
        ranges = [
            KeyRange(start_closed=[group_id, key], end_closed=[group_id, key])
            for group_id in dict.fromkeys(group_ids)
        ]
        found: dict[int, list[str]] = {}
        for start in range(0, len(ranges), _BATCH):
            self.stats.ranges += len(ranges[start : start + _BATCH])
            for group_id, value in self._read(
                "GroupTagValues", ("GroupId", "TagValue"), KeySet(ranges=ranges[start : start + _BATCH])
            ):
                found.setdefault(group_id, []).append(value)
        return found

    def beyond_caps(self, group_ids: Iterable[int], key: str) -> set[int]:
        """The groups among ``group_ids`` whose ``key`` kept no more values (full, or with an other bucket)."""
        cap = TERMS_PER_GROUP if key == TEXT_KEY else TAG_VALUES_PER_KEY
        keys = [[group_id, key] for group_id in dict.fromkeys(group_ids)]
        found: set[int] = set()
        for start in range(0, len(keys), _BATCH):
            for group_id, values_seen, other in self._read(
                "GroupTagKeys",
                ("GroupId", "ValuesSeen", "OtherCount"),
                KeySet(keys=keys[start : start + _BATCH]),
            ):
                if other or values_seen >= cap:
                    found.add(group_id)
        return found

    # ---- one group (the tags endpoints)

    def group_keys(self, group_id: int, keys: Sequence[str] | None = None) -> list[TagKey]:
        """The group's tag keys (search-only keys left out), or those of ``keys`` it has."""
        if keys is None:
            keyset = KeySet(ranges=[KeyRange(start_closed=[group_id], end_closed=[group_id])])
        else:
            keyset = KeySet(keys=[[group_id, key] for key in dict.fromkeys(keys)])
        rows = self._read("GroupTagKeys", ("TagKey", "ValuesSeen", "OtherCount"), keyset)
        return [TagKey(key, seen, other) for key, seen, other in rows if not key.startswith(SEARCH_PREFIX)]

    def group_values(self, group_id: int, keys: Sequence[str]) -> dict[str, list[TagValue]]:
        """{key: its values} of the group, for ``keys``: one range read of at most ``TAG_VALUES_PER_KEY`` rows
        per key."""
        found: dict[str, list[TagValue]] = {key: [] for key in keys}
        if not keys:
            return found
        ranges = [KeyRange(start_closed=[group_id, key], end_closed=[group_id, key]) for key in found]
        self.stats.ranges += len(ranges)
        columns = ("TagKey", "TagValue", "TimesSeen", "FirstSeen", "LastSeen")
        for key, value, count, first, last in self._read("GroupTagValues", columns, KeySet(ranges=ranges)):
            if count is not None:
                found[key].append(TagValue(key, value, count, from_datetime(first), from_datetime(last)))
        return found


def _scoped(prefix: list, projects: Iterable[int] | None) -> list[list]:
    """``prefix`` as a key prefix, or one per project (the project follows it in the index key)."""
    if projects is None:
        return [prefix]
    return [[*prefix, project_id] for project_id in sorted(set(projects))]
