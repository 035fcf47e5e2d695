"""Terms on a group's own row and text: ``is``, ``status``, ``substatus``, ``issue.priority``,
``issue.category``, ``issue.type``, ``level``, ``has``, ``project``, ``issue``, ``issue.id``, ``title``,
``message``, free text, and the times and counts (``first_seen``, ``last_seen``, ``timestamp``,
``times_seen``)."""

from __future__ import annotations

from dataclasses import replace

from api import request_limits
from api.query.comparisons import date_interval, number_interval
from api.query.conditions import ENVIRONMENTS, RELEASES, Interval, Related, TextMatch, Wildcard
from api.query.filter_builder import FilterBuilder, StatusTerm
from api.query.issue_filter import PRIORITY_VALUES
from api.query.syntax import Term, clip, is_wildcard, unescape
from api.query.vocabulary import (
    ALWAYS_PRESENT,
    CATEGORY_BY_NAME,
    IS_VALUES,
    KEY_ALIASES,
    PRIORITY_BY_NAME,
    STATUS_BY_NAME,
    SUBSTATUS_BY_NAME,
    UNANSWERABLE_IS,
    lookup_names,
    refuse_unanswerable,
    refuse_wildcards,
)
from transforms.core.enums import LOG_LEVELS
from transforms.core.grouptypes import GROUP_TYPES, GROUP_TYPES_BY_SLUG


def _text_values(term: Term) -> tuple[tuple[str, bool], ...]:
    """The term's values as (text, is a wildcard): quoted values are literal, bare ones may be wildcards."""
    out = []
    for raw in term.values:
        wildcard = not term.quoted and is_wildcard(raw)
        out.append((raw if wildcard or term.quoted else unescape(raw), wildcard))
    return tuple(out)


def apply_free_text(builder: FilterBuilder, term: Term) -> None:
    _words_or_text(builder, term, TextMatch(_text_values(term)))


def _words_or_text(builder: FilterBuilder, term: Term, text: TextMatch) -> None:
    """Free text and ``message:`` through the word index (every word, the last as a prefix, in any
    occurrence); a wildcard, a list or text without words is matched on the group's title and message."""
    from api.tag_search import word_condition

    words = None
    if not term.is_list and not any(wildcard for _, wildcard in text.values):
        words = word_condition(text.values[0][0], term.negated)
    if words is None:
        builder.texts.append(text)
    else:
        builder.tags.append(words)


def apply_is(builder: FilterBuilder, term: Term) -> None:
    if term.is_list:
        raise term.error('"in" syntax invalid for "is" search')
    raw = term.value
    name = raw.lower() if not is_wildcard(raw) else raw
    if name in UNANSWERABLE_IS:
        raise term.error(f'"is:{name}" cannot be searched here: {UNANSWERABLE_IS[name]}')
    if name in STATUS_BY_NAME:
        builder.status_terms.append(StatusTerm(False, (int(STATUS_BY_NAME[name]),), term.negated))
    elif name in SUBSTATUS_BY_NAME:
        builder.status_terms.append(StatusTerm(True, (int(SUBSTATUS_BY_NAME[name]),), term.negated))
    elif name in ("assigned", "unassigned"):
        builder.restrict_assigned((name == "assigned") != term.negated)
    elif name == "for_review":
        builder.for_review.append(not term.negated)
    else:
        raise term.error(f'Invalid value for "is" search, valid values are {sorted(IS_VALUES)}')


def apply_status(builder: FilterBuilder, term: Term) -> None:
    values = tuple(dict.fromkeys(int(s) for s in lookup_names(term, STATUS_BY_NAME, "status")))
    builder.status_terms.append(StatusTerm(False, values, term.negated))


def apply_substatus(builder: FilterBuilder, term: Term) -> None:
    values = tuple(dict.fromkeys(int(s) for s in lookup_names(term, SUBSTATUS_BY_NAME, "substatus")))
    builder.status_terms.append(StatusTerm(True, values, term.negated))


def apply_priority(builder: FilterBuilder, term: Term) -> None:
    values = frozenset(lookup_names(term, PRIORITY_BY_NAME, "priority"))
    allowed = frozenset(PRIORITY_VALUES) - values if term.negated else values
    builder.priorities = builder.priorities & allowed


def apply_category(builder: FilterBuilder, term: Term) -> None:
    values = frozenset(lookup_names(term, CATEGORY_BY_NAME, "category"))
    builder.categories = builder.categories.restrict(values, term.negated)
    builder.names_type = True


def apply_type(builder: FilterBuilder, term: Term) -> None:
    slugs = {group_type.slug for group_type in lookup_names(term, GROUP_TYPES_BY_SLUG, "type")}
    ids = frozenset(type_id for type_id, group_type in GROUP_TYPES.items() if group_type.slug in slugs)
    builder.types = builder.types.restrict(ids, term.negated)
    builder.names_type = True


def apply_level(builder: FilterBuilder, term: Term) -> None:
    levels: set[int] = set()
    for raw in term.values:
        if is_wildcard(raw):
            pattern = Wildcard(raw)
            levels |= {number for name, number in LOG_LEVELS.items() if pattern(name)}
            continue
        name = unescape(raw).lower()
        if name not in LOG_LEVELS:
            raise term.error(
                f"Invalid level value of '{clip(raw, 40)}' (expected one of: {', '.join(LOG_LEVELS)})"
            )
        levels.add(LOG_LEVELS[name])
    builder.levels = builder.levels.restrict(frozenset(levels), term.negated)


def apply_has(builder: FilterBuilder, term: Term) -> None:
    if term.is_list or term.value.startswith("["):
        raise term.error('Invalid format for "has" search: was expecting a field or tag instead')
    raw = term.value
    key = KEY_ALIASES.get(raw, raw)
    if key == "release":
        builder.related.append(Related(RELEASES, negated=term.negated))
    elif key == "environment":
        builder.related.append(Related(ENVIRONMENTS, negated=term.negated))
    elif key == "first_release":
        wanted = not term.negated
        if builder.has_first_release is not None and builder.has_first_release != wanted:
            builder.contradiction = True
        builder.has_first_release = wanted
    elif key == "issue.priority":
        allowed = frozenset({None}) if term.negated else frozenset(PRIORITY_VALUES) - {None}
        builder.priorities = builder.priorities & allowed
    elif key in ("assigned", "assigned_to", "assignee"):
        builder.restrict_assigned(not term.negated)
    elif key in ALWAYS_PRESENT:
        if term.negated:
            builder.contradiction = True
    else:
        refuse_unanswerable(replace(term, key=raw), key)
        from api.tag_search import has_condition

        builder.tags.append(has_condition(term, raw))


def apply_project(builder: FilterBuilder, term: Term) -> None:
    refuse_wildcards(term)
    ids, unknown = set(), []
    for raw in term.values:
        project = builder.context.projects.get(unescape(raw).lower())
        if (
            project is None
            and raw.isascii()
            and raw.isdigit()
            and int(raw) in builder.context.projects.values()
        ):
            project = int(raw)
        if project is None:
            unknown.append(raw)
        else:
            ids.add(project)
    if unknown:
        raise term.error(
            f"Invalid query. Project(s) {clip(', '.join(unknown), 60)} do not exist or are not actively selected."
        )
    builder.project_ids = builder.project_ids.restrict(frozenset(ids), term.negated)


def apply_issue(builder: FilterBuilder, term: Term) -> None:
    refuse_wildcards(term)
    ids = set()
    for raw in term.values:
        parsed = parse_short_id(raw)
        project = builder.context.projects.get(parsed[0].lower()) if parsed else None
        if parsed is None or project is None:
            raise term.error(f"Invalid value '{clip(raw, 40)}' for 'issue:' filter")
        ids.add(parsed[1])
        if not term.negated:
            builder.group_projects[parsed[1]] = project
    builder.group_ids = builder.group_ids.restrict(frozenset(ids), term.negated)


def apply_issue_id(builder: FilterBuilder, term: Term) -> None:
    ids = set()
    for raw in term.values:
        if not (
            raw.isascii()
            and raw.isdigit()
            and len(raw) <= 19
            and 1 <= int(raw) <= request_limits.MAX_ISSUE_ID
        ):
            raise term.error(
                f"Invalid value '{clip(raw, 40)}' for 'issue.id:' filter (an issue id is expected)"
            )
        ids.add(int(raw))
    builder.group_ids = builder.group_ids.restrict(frozenset(ids), term.negated)


def apply_title(builder: FilterBuilder, term: Term) -> None:
    builder.texts.append(TextMatch(_text_values(term), ("title",), exact=True, negated=term.negated))


def apply_message(builder: FilterBuilder, term: Term) -> None:
    _words_or_text(builder, term, TextMatch(_text_values(term), negated=term.negated))


def apply_times(builder: FilterBuilder, term: Term) -> None:
    key = KEY_ALIASES.get(term.key or "", term.key)
    interval = date_interval(term, builder.now)
    if key == "first_seen":
        builder.first_seen = builder.first_seen.intersect(interval)
    else:
        builder.last_seen = builder.last_seen.intersect(interval)


def apply_timestamp(builder: FilterBuilder, term: Term) -> None:
    """``timestamp:``/``date:``: the group has an event in the interval. Its first and last seen times say it
    exactly for a bound on one side (an event after t: last seen after t); for a range, the group's seen
    interval overlaps it."""
    interval = date_interval(term, builder.now)
    if interval.lo is not None:
        builder.last_seen = builder.last_seen.intersect(Interval(interval.lo, None))
    if interval.hi is not None:
        builder.first_seen = builder.first_seen.intersect(Interval(None, interval.hi))


def apply_times_seen(builder: FilterBuilder, term: Term) -> None:
    builder.times_seen = builder.times_seen.intersect(number_interval(term))


def parse_short_id(text: str) -> tuple[str, int] | None:
    """(project slug upper-cased, group id) of a short id (``BACKEND-1A2B``), or None when ``text`` is not one
    (a code outside the id range of groups, 1 to 2^63 - 1, is not one either)."""
    slug, dash, code = text.strip().rpartition("-")
    if not dash or not slug or not code or len(code) > 13 or not (code.isascii() and code.isalnum()):
        return None
    group_id = int(code, 36)
    if not 1 <= group_id <= request_limits.MAX_ISSUE_ID:
        return None
    return slug.upper(), group_id
