"""Tag filters and free text in issue search: the terms that read the per-group tag storage.

Terms (parsed by ``api.query``, which hands every key that is not built in to ``tag_condition``):

* ``key:value``, ``tags[key]:value``, ``key:[a, b]`` (any of them), ``!key:value`` (none of them);
  ``user.email:``, ``user.id:``, ``sdk.name:``... answer from their search-only keys (``api.tag_index.search_key``);
* ``key:prefix*``, ``key:*middle*``, ``key:a*b`` (Sentry's wildcards: ``*`` is any text, ``\\*`` a literal
  asterisk, the whole value matched case-insensitively);
* ``has:key`` / ``!has:key``, and ``key:""`` (the group has no value of the key) / ``!key:""``;
* free text and ``message:`` without wildcards: every word of the text, the last one as a prefix, each in any
  occurrence of the group (``WordCondition``; the words as ``transforms.core.engine.tags.query_terms`` splits
  them);
* a free-text wildcard of word characters (``*timeout*``: ``word_wildcard``) is matched on titles and messages
  like any text wildcard, but may be driven by the organization's word vocabulary when that is small
  (``word_wildcard_candidates``): the groups with a word holding the pattern are the only ones that can match.

Execution (``TagSearcher``, a ``Searcher`` whose lookups also check these conditions). A page of a query with
a positive tag or word condition first asks the tag indexes for that condition's groups, reading at most
``CANDIDATE_LIMIT + 1`` index rows (``api.tag_index.TagIndex``). When they all fit (the condition is selective),
those groups are the only ones the query can return: their index columns are read by key (one Read), the
conditions of the index row are tested in memory, the rest are sorted in the page's order and the remaining
conditions (other tags, negations, environments, releases...) are checked on them in batches, stopping as
soon as the page is full. Otherwise (every positive condition matches more than the limit, or there is none:
negations alone) the issue-index ranges drive the page as for any other query, and each batch of their
candidates is checked against the tag conditions by key or key-range reads (``TagIndex.with_*``). A condition
checked on many candidates at once (X-Hits, a loose page), negated or not, is first read, the same bounded way,
as the set of the organization's groups that have it, and then tested in memory when that set is complete. Either way a page costs reads bounded by the limit or by the page, never by the number
of groups. A wildcard with a literal start reads the ranges of that start's case variants, one starting with
``*`` the key's range; past the limit of rows, the key's values there are listed one Read a value (a key with
few values) and the matching ones read as an IN list.

Uncertainty. A key keeps at most ``TAG_VALUES_PER_KEY`` values per group (words: ``TERMS_PER_GROUP``); a
value seen after that is counted but not kept, so it is not found (docs/limits.md "Tags").
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from google.cloud.spanner_v1 import KeyRange, KeySet

from api.search import INDEX_COLUMNS, GroupRow, HitCount, Page, Searcher, SearchPlan, sort_key
from api.tag_index import CANDIDATE_LIMIT, VALUES_INDEX, Candidates, TagIndex, search_key
from transforms.core.engine.tags import query_terms
from transforms.core.limits import TERM_MAX_CHARS

if TYPE_CHECKING:
    from api.query import IssueFilter, Term, TextMatch

# Case variants of a wildcard's literal start read as separate ranges (a case-insensitive prefix over a
# case-sensitive index): at most this many letters of it are varied, the rest is checked on the values read.
MAX_CASED_LETTERS = 4
# More named values than this are checked by reading each candidate's values of the key instead of looking
# each (candidate, value) pair up by key.
MAX_POINT_VALUES = 4
# A condition checked on more candidates than this at once is resolved to its set of groups first (one bounded
# index read, reused by the rest of the request) when that set is small: see TagSearcher._lookup.
RESOLVE_AT = 64
# ... reading at most this many index rows: a longer range read costs less than thousands of key lookups.
RESOLVE_LIMIT = 5000
# A wildcard whose ranges hold more than the limit of rows lists the key's values there, one Read a value, up to
# this many (see _pattern_candidates).
MAX_VALUE_SKIPS = 16


@dataclass(frozen=True, slots=True)
class TagCondition:
    """The group has (``negated``: has not) a value of ``key`` that is one of ``values``, or matches
    ``pattern`` (a Sentry wildcard, whole value, case-insensitive), or any value at all (both empty: ``has:``).
    ``key`` is the stored key (``@user.email`` for ``user.email``); ``name`` the key as typed."""

    key: str
    name: str
    values: frozenset[str] = frozenset()
    pattern: str | None = None
    negated: bool = False

    @property
    def lead(self) -> str:
        """The pattern's literal start (before its first wildcard), unescaped: what an index range can seek."""
        assert self.pattern is not None
        out, i = [], 0
        while i < len(self.pattern):
            char = self.pattern[i]
            if char == "\\" and i + 1 < len(self.pattern):
                out.append(self.pattern[i + 1])
                i += 2
                continue
            if char == "*":
                break
            out.append(char)
            i += 1
        return "".join(out)

    def regex(self) -> re.Pattern[str]:
        from api.query import wildcard_regex

        assert self.pattern is not None
        return wildcard_regex(self.pattern, anchored=True)


@dataclass(frozen=True, slots=True)
class WordCondition:
    """Free text (or ``message:``): the group has every one of ``words`` (the last one as a prefix) in the
    words of its occurrences' titles, subtitles and culprits; ``negated``: it has not all of them."""

    words: tuple[str, ...]
    text: str
    negated: bool = False
    prefix_last: bool = True


Condition = TagCondition | WordCondition


# ---------------------------------------------------------------------------------------------------------------
# Terms to conditions (called by api.query)


def tag_condition(term: Term, key: str) -> TagCondition:
    """The condition of ``key:value`` for a key that is not built in (``key`` already de-aliased), or a 400
    (``QueryError``) naming the term: a key no tag can have, a list with a wildcard."""
    from api.query import clip, is_wildcard, unescape

    assert term.key is not None
    stored = search_key(key)
    if stored is None:
        raise term.error(f'"{clip(term.key, 40)}" is not a valid tag key')
    wildcards = [raw for raw in term.values if not term.quoted and is_wildcard(raw)]
    if wildcards:
        if term.is_list:
            raise term.error("a list cannot hold wildcards here; use one key:pattern term")
        return TagCondition(stored, term.key, pattern=wildcards[0], negated=term.negated)
    values = frozenset(raw if term.quoted else unescape(raw) for raw in term.values)
    if values == {""}:
        # Sentry: key:"" is an issue without the tag, !key:"" one with it
        return TagCondition(stored, term.key, negated=not term.negated)
    return TagCondition(stored, term.key, values - {""}, negated=term.negated)


def has_condition(term: Term, name: str) -> TagCondition:
    """``has:key`` / ``!has:key`` for a key that is not built in."""
    from api.query import clip

    stored = search_key(name)
    if stored is None:
        raise term.error(f'"{clip(name, 40)}" is not a valid tag key')
    return TagCondition(stored, name, negated=term.negated)


def word_condition(text: str, negated: bool = False) -> WordCondition | None:
    """Free text as a word condition; None when it has no word to look up (punctuation alone)."""
    words = query_terms(text)
    if not words:
        return None
    return WordCondition(words, text, negated)


# ---------------------------------------------------------------------------------------------------------------
# Reads


def candidates(
    index: TagIndex,
    organization_id: int,
    condition: Condition,
    projects: Iterable[int] | None,
    limit: int | None = None,
) -> Candidates:
    """The groups a positive condition selects, from bounded index reads of at most ``limit`` rows
    (``CANDIDATE_LIMIT`` by default) each (``Candidates``)."""
    limit = CANDIDATE_LIMIT if limit is None else limit
    if isinstance(condition, WordCondition):
        return index.text_candidates(organization_id, condition.text, projects, limit, condition.prefix_last)
    if condition.pattern is not None:
        return _pattern_candidates(index, organization_id, condition, projects, limit)
    if condition.values:
        return index.value_candidates(
            organization_id, condition.key, sorted(condition.values), projects, limit
        )
    return index.key_candidates(organization_id, condition.key, projects, limit)


def members(index: TagIndex, condition: Condition, group_ids: Sequence[int]) -> set[int]:
    """The groups among ``group_ids`` that have what ``condition`` asks for (ignoring its negation)."""
    if isinstance(condition, WordCondition):
        return index.with_terms(group_ids, condition.words, condition.prefix_last)
    if condition.pattern is not None:
        # the candidates' values of the key (a range each: a group has few values of a key, at most 1,000)
        regex = condition.regex()
        return {
            group_id
            for group_id, values in index.values_of(group_ids, condition.key).items()
            if any(regex.fullmatch(value) for value in values)
        }
    if condition.values:
        if len(condition.values) > MAX_POINT_VALUES:
            return {
                group_id
                for group_id, values in index.values_of(group_ids, condition.key).items()
                if condition.values.intersection(values)
            }
        return index.with_values(group_ids, condition.key, sorted(condition.values))
    return index.with_key(group_ids, condition.key)


def _pattern_candidates(
    index: TagIndex, organization_id: int, condition: TagCondition, projects: Iterable[int] | None, limit: int
) -> Candidates:
    """Groups with a value of the key matching a wildcard: the index ranges of the case variants of its
    literal start (the key's whole range for a pattern starting with ``*``), the values read checked against
    the whole pattern. When those ranges hold more than the limit of rows, the key's other values in them
    are listed by skipping from one value to the next (one Read of one row each, at most ``MAX_VALUE_SKIPS``:
    a key with few values, such as a browser or a server), and the groups of the matching ones are read as an
    IN list; a key with more values than that gives incomplete candidates."""
    regex = condition.regex()
    wanted = None if projects is None else set(projects)
    if condition.lead:
        bounds: list[tuple[str | None, str | None]] = list(_case_ranges(condition.lead))
    else:
        bounds = [(None, None)]
    prefix = [organization_id, condition.key]
    rows = _read_values(index, prefix, bounds, limit + 1)
    if len(rows) <= limit:
        ids = (
            g
            for g, value, project_id in rows
            if regex.fullmatch(value) and (wanted is None or project_id in wanted)
        )
        return Candidates(tuple(dict.fromkeys(ids)), True)
    values = dict.fromkeys(value for _, value, _ in rows)
    last = rows[-1][1]
    for _ in range(MAX_VALUE_SKIPS):
        after = last + "\x00"  # the first string after ``last`` and every row of it
        rest = [
            (after if lo is None or lo < after else lo, hi) for lo, hi in bounds if hi is None or after < hi
        ]
        following = _read_values(index, prefix, rest, 1) if rest else []
        if not following:
            matching = sorted(value for value in values if regex.fullmatch(value))
            if not matching:
                return Candidates((), True)
            return index.value_candidates(organization_id, condition.key, matching, projects, limit)
        last = following[0][1]
        values[last] = None
    return Candidates((), False)


def _read_values(
    index: TagIndex, prefix: list, bounds: list[tuple[str | None, str | None]], limit: int
) -> list[list]:
    """(GroupId, TagValue, ProjectId) rows of the values index under ``prefix`` (organization, key) whose value
    is in one of ``bounds`` ([start, end), None: unbounded), in index order, at most ``limit``."""
    ranges = []
    for start, end in bounds:
        lower = {"start_closed": prefix if start is None else [*prefix, start]}
        upper = {"end_closed": prefix} if end is None else {"end_open": [*prefix, end]}
        ranges.append(KeyRange(**lower, **upper))
    index.stats.ranges += len(ranges)
    return index._read(
        "GroupTagValues",
        ("GroupId", "TagValue", "ProjectId"),
        KeySet(ranges=ranges),
        index=VALUES_INDEX,
        limit=limit,
    )


def _case_ranges(lead: str) -> list[tuple[str, str]]:
    """Key ranges [start, end) covering every value that starts with ``lead`` in any case: one per case
    variant of its first ``MAX_CASED_LETTERS`` cased characters (the text up to the last of them)."""
    cut, cased = len(lead), 0
    for position, char in enumerate(lead):
        if char.lower() != char.upper():
            cased += 1
            if cased > MAX_CASED_LETTERS:
                cut = position
                break
    choices = []
    for char in lead[:cut]:
        variants = dict.fromkeys(v for v in (char, char.lower(), char.upper()) if len(v) == 1)
        choices.append(tuple(variants))
    starts = sorted({"".join(parts) for parts in itertools.product(*choices)})
    return [(start, _after(start)) for start in starts]


def _after(prefix: str) -> str:
    """The first string after every string starting with ``prefix`` (code point order is Spanner's)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# A free-text wildcard such as ``*timeout*`` through the word index (see word_wildcard): the organization's
# vocabulary (``OrgWords``) is read up to VOCABULARY_WORDS words in one Read (docs/limits.md "Tags"); in a
# database whose vocabularies are not complete yet, its ``@text`` rows are read instead, up to VOCABULARY_READS
# Reads of VOCABULARY_CHUNK rows. An organization whose vocabulary is larger is not read again for
# VOCABULARY_RETRY_SECONDS (a hint of this process, which only chooses how the condition is checked, never the
# answer).
VOCABULARY_WORDS = 20_000
VOCABULARY_READS = 2
VOCABULARY_CHUNK = 500
VOCABULARY_RETRY_SECONDS = 600.0
_large_vocabularies: dict[int, float] = {}


@dataclass(frozen=True, slots=True)
class WordWildcard:
    """A free-text wildcard whose every match lies inside one stored word: ``literal`` (word characters
    only) anywhere in a title or message, case-insensitively (``*timeout*``, ``timeout*``, ``*timeout``)."""

    literal: str
    pattern: re.Pattern[str]

    def matches(self, word: str) -> bool:
        """Whether a group with the stored ``word`` may match: the word holds the literal, or it is
        ``TERM_MAX_CHARS`` long, so it may have been cut, and the literal may lie in what was cut off."""
        return len(word) >= TERM_MAX_CHARS or bool(self.pattern.search(word))


def word_wildcard(text: TextMatch) -> WordWildcard | None:
    """The word-index form of a free-text term, when it has one: a single, positive wildcard over title and
    message whose pattern is one run of word characters (``\\w``, as the stored words are split) between
    optional leading and trailing ``*``. Such a pattern cannot match across a separator, so every group whose
    title or message matches has a stored word that holds it (the words of every occurrence's title,
    subtitle and culprit, lower-cased; ``WordWildcard.matches`` takes in the words cut at 64 characters). A pattern with a
    separator, a ``*`` or an escape inside, a list, a negation or ``title:`` has none (None): it is checked on
    the candidates' title and message."""
    from api.query import wildcard_regex

    if text.negated or text.exact or text.fields != ("title", "message") or len(text.values) != 1:
        return None
    value, wildcard = text.values[0]
    literal = value.strip("*")
    if not wildcard or not literal or len(literal) > TERM_MAX_CHARS or not _WORD.fullmatch(literal):
        return None
    if len(literal.lower()) != len(literal):
        return None  # a letter whose lower case is longer (Turkish dotted I) would not be in one stored word
    return WordWildcard(literal, wildcard_regex(literal, anchored=False))


def word_wildcard_candidates(
    index: TagIndex,
    organization_id: int,
    wildcard: WordWildcard,
    projects: Iterable[int] | None,
    limit: int = CANDIDATE_LIMIT,
) -> Candidates | None:
    """The groups with a stored word ``wildcard`` may match, from a bounded read of the organization's
    vocabulary (``TagIndex.word_candidates``); None when that is too large to read."""
    now = time.monotonic()
    if _large_vocabularies.get(organization_id, 0.0) > now:
        return None
    found = index.word_candidates(
        organization_id,
        wildcard.matches,
        projects,
        limit,
        VOCABULARY_CHUNK,
        VOCABULARY_READS,
        VOCABULARY_WORDS,
    )
    if found is None:
        _large_vocabularies[organization_id] = now + VOCABULARY_RETRY_SECONDS
    return found


_WORD = re.compile(r"\w+")


def _drive_order(condition: Condition) -> tuple:
    """Which positive condition to ask for candidates first: the likeliest to be selective."""
    if isinstance(condition, WordCondition):
        return (1, 0)
    if condition.values:
        return (0, len(condition.values))
    if condition.pattern is not None:
        return (2, -len(condition.lead)) if condition.lead else (4, 0)
    return (3, 0)


def _drivable(condition: Condition) -> bool:
    return not condition.negated


# ---------------------------------------------------------------------------------------------------------------
# Search


@dataclass(slots=True)
class _Driven:
    """The rows of a query's candidate groups that pass the index-row conditions, in sort order, and the plan
    with the conditions left to check on them."""

    rows: list[GroupRow]
    plan: SearchPlan


@dataclass(slots=True)
class TagSearcher(Searcher):
    """A ``Searcher`` that also answers tag and word conditions (see the module docstring)."""

    # The last plan's candidate rows, for the count after its page (the same request and snapshot).
    _driven_for: Any = None
    _driven: _Driven | None = None
    tag_index: TagIndex | None = field(default=None)
    _sets: dict[Condition, frozenset[int] | None] = field(default_factory=dict)
    # Free-text wildcards' word candidates too many to drive (``_drive``): every group that may match.
    _supersets: dict[TextMatch, frozenset[int]] = field(default_factory=dict)

    def tags(self) -> TagIndex:
        if self.tag_index is None:
            self.tag_index = TagIndex(self.snapshot, self.stats)
        return self.tag_index

    def page(self, plan: SearchPlan, limit: int, after=None, *, bounded: bool = True) -> Page:
        driven = self._drive(plan)
        if driven is None:
            return Searcher.page(self, plan, limit, after, bounded=bounded)
        need = limit + 1
        rows = driven.rows
        if after is not None:
            rows = [row for row in rows if sort_key(row, plan.sort) < after]
        found = list(itertools.islice(self._filtered(driven.plan, iter(rows), need), need))
        if len(found) > limit:
            return Page(found[:limit], True, sort_key(found[limit - 1], plan.sort))
        return Page(found, False, sort_key(found[-1], plan.sort) if found else None)

    def count(self, plan: SearchPlan, cap: int, budget: int, lookup_budget: int | None = None) -> HitCount:
        driven = self._drive(plan)
        if driven is None:
            return Searcher.count(self, plan, cap, budget, lookup_budget)
        found = sum(
            1 for _ in itertools.islice(self._filtered(driven.plan, iter(driven.rows), cap + 1), cap + 1)
        )
        return HitCount(min(found, cap), capped=found > cap)

    def _drive(self, plan: SearchPlan) -> _Driven | None:
        """The candidate rows of the plan's first selective positive condition (see the module docstring), or
        None when the issue-index ranges must drive (no tag condition, none selective, ``issue:`` reads)."""
        flt = plan.filter
        wildcards = [matcher for matcher in map(word_wildcard, flt.texts) if matcher is not None]
        if not (_conditions(flt) or wildcards) or plan.group_ids is not None or not plan.ranges:
            return None
        if self._driven_for is plan.filter:
            return self._driven
        self._driven_for, self._driven = plan.filter, None
        projects = _plan_projects(plan)
        organization_id = plan.scope.organization_id
        for condition in sorted((c for c in _conditions(flt) if _drivable(c)), key=_drive_order):
            found = candidates(self.tags(), organization_id, condition, projects)
            if not found.complete:
                continue  # checked on the ranges' candidates, resolved from up to RESOLVE_LIMIT rows if it can
            rest = tuple(c for c in _conditions(flt) if c is not condition)
            self._driven = _Driven(self._rows_of(found, plan), replace(plan, filter=replace(flt, tags=rest)))
            return self._driven
        for text in flt.texts:
            matcher = word_wildcard(text)
            if matcher is None:
                continue
            found = word_wildcard_candidates(self.tags(), organization_id, matcher, projects, RESOLVE_LIMIT)
            if found is None or not found.complete:
                continue
            # a superset of the groups whose title or message matches: the text is checked on them
            if len(found.group_ids) <= CANDIDATE_LIMIT:
                self._driven = _Driven(self._rows_of(found, plan), plan)
                return self._driven
            # too many to drive: the ranges drive, and their candidates outside it are dropped unread (_lookup)
            self._supersets[text] = frozenset(found.group_ids)
        return None

    def _rows_of(self, found: Candidates, plan: SearchPlan) -> list[GroupRow]:
        """The candidates' issue-index rows (one Read by key) that pass the plan's index-row conditions, in
        the page's sort order."""
        flt = plan.filter
        projects = _plan_projects(plan)
        rows = [GroupRow.from_index(values) for values in self.by_ids(found.group_ids, INDEX_COLUMNS)]
        rows = [
            row
            for row in rows
            if (row.status, row.substatus) in flt.status_pairs
            and (projects is None or row.project_id in projects)
            and plan.accepts(row)
        ]
        rows.sort(key=lambda row: sort_key(row, plan.sort), reverse=True)
        return rows

    def _lookup(self, flt: IssueFilter, rows: list[GroupRow]) -> list[GroupRow]:
        """The candidates that meet the tag and word conditions, then the other lookups (``Searcher``).

        A condition checked on many candidates at once (more than ``RESOLVE_AT``: X-Hits, or a loose page) is
        first resolved, once per request, to the set of the organization's groups that have it, when one
        bounded index read finds them all (as a driving term's): it is then tested in memory, positive or
        negated. Otherwise it is checked by lookups of the candidates. A candidate outside a free-text
        wildcard's word candidates (``_supersets``) cannot match it: it is dropped before its title is read."""
        for text in flt.texts:
            superset = self._supersets.get(text)
            if superset is not None:
                rows = [row for row in rows if row.group_id in superset]
        conditions = sorted(_conditions(flt), key=lambda c: (c.negated, _drive_order(c)))
        if conditions and rows:
            organization_id = rows[0].organization_id
            ids = list(dict.fromkeys(row.group_id for row in rows))
            for condition in conditions:
                having = self._resolved(organization_id, condition) if len(ids) > RESOLVE_AT else None
                if having is None:
                    having = members(self.tags(), condition, ids)
                ids = [g for g in ids if (g in having) != condition.negated]
                if not ids:
                    break
            kept = set(ids)
            rows = [row for row in rows if row.group_id in kept]
        return Searcher._lookup(self, flt, rows)

    def _resolved(self, organization_id: int, condition: Condition) -> frozenset[int] | None:
        """The organization's groups that have what ``condition`` asks for (its negation aside), when one
        bounded read finds them all; None when there are more (then it is checked by lookups)."""
        positive = replace(condition, negated=False)
        if positive not in self._sets:
            found = candidates(self.tags(), organization_id, positive, None, RESOLVE_LIMIT)
            self._sets[positive] = frozenset(found.group_ids) if found.complete else None
        return self._sets[positive]


def _conditions(flt: IssueFilter) -> tuple[Condition, ...]:
    return flt.tags


def _plan_projects(plan: SearchPlan) -> frozenset[int] | None:
    """The projects a plan searches (None: the whole organization)."""
    if plan.ranges and plan.ranges[0].scope_column == "ProjectId":
        return frozenset(rng.prefix[0] for rng in plan.ranges)
    return plan.project_filter
