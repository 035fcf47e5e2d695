"""A query string becomes an ``IssueFilter``: each term goes to the handler of its key (``HANDLERS``);
any other key is a tag condition (``api.tag_search``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from api.query.filter_builder import FilterBuilder, status_pairs
from api.query.group_terms import (
    apply_category,
    apply_free_text,
    apply_has,
    apply_is,
    apply_issue,
    apply_issue_id,
    apply_level,
    apply_message,
    apply_priority,
    apply_project,
    apply_status,
    apply_substatus,
    apply_times,
    apply_times_seen,
    apply_timestamp,
    apply_title,
    apply_type,
)
from api.query.issue_filter import HIDDEN_TYPES, IssueFilter, QueryContext
from api.query.release_terms import (
    apply_environment,
    apply_first_release,
    apply_regressed_in_release,
    apply_release,
    apply_release_build,
    apply_release_package,
    apply_release_version,
)
from api.query.syntax import Term, tokenize
from api.query.vocabulary import KEY_ALIASES, refuse_unanswerable
from transforms.core.model import from_datetime

# What a missing ``query`` parameter means (Sentry's default issue stream).
DEFAULT_QUERY = "is:unresolved issue.priority:[high, medium]"


def parse_query(
    query: str | None, *, now: datetime | int | None = None, context: QueryContext | None = None
) -> IssueFilter:
    """The filter for ``query``: None means ``DEFAULT_QUERY``; an empty (or blank) string means no filter
    (every status and priority; hidden types stay hidden, as in Sentry). ``now`` anchors relative times
    (default: the wall clock)."""
    if query is None:
        query = DEFAULT_QUERY
    if not query.strip():
        return IssueFilter()
    if now is None:
        now_micros = from_datetime(datetime.now(UTC))
    elif isinstance(now, datetime):
        now_micros = from_datetime(now)
    else:
        now_micros = now
    builder = FilterBuilder(now=now_micros, context=context or QueryContext())
    for term in tokenize(query):
        apply_term(builder, term)
    types = builder.types
    if not builder.names_type and HIDDEN_TYPES:
        types = types.restrict(HIDDEN_TYPES, negated=True)
    return IssueFilter(
        status_pairs=status_pairs(builder),
        priorities=builder.priorities,
        categories=builder.categories,
        types=types,
        levels=builder.levels,
        first_releases=builder.first_releases,
        has_first_release=builder.has_first_release,
        project_ids=builder.project_ids,
        group_ids=builder.group_ids,
        group_projects=tuple(sorted(builder.group_projects.items())),
        first_seen=builder.first_seen,
        last_seen=builder.last_seen,
        times_seen=builder.times_seen,
        assigned=builder.assigned,
        related=tuple(builder.related),
        texts=tuple(builder.texts),
        tags=tuple(builder.tags),
        contradiction=builder.contradiction,
    )


def apply_term(builder: FilterBuilder, term: Term) -> None:
    if term.key is None:
        apply_free_text(builder, term)
        return
    key = KEY_ALIASES.get(term.key, term.key)
    handler = HANDLERS.get(key)
    if handler is None:
        refuse_unanswerable(term, key)
        # Sentry reads any other key as an event tag (api.tag_search; imported here: it builds on this module)
        from api.tag_search import tag_condition

        builder.tags.append(tag_condition(term, key))
        return
    handler(builder, term)


HANDLERS: dict[str, Callable[[FilterBuilder, Term], None]] = {
    "is": apply_is,
    "status": apply_status,
    "substatus": apply_substatus,
    "issue.priority": apply_priority,
    "issue.category": apply_category,
    "issue.type": apply_type,
    "level": apply_level,
    "release": apply_release,
    "first_release": apply_first_release,
    "regressed_in_release": apply_regressed_in_release,
    "release.version": apply_release_version,
    "release.package": apply_release_package,
    "release.build": apply_release_build,
    "environment": apply_environment,
    "has": apply_has,
    "project": apply_project,
    "issue": apply_issue,
    "issue.id": apply_issue_id,
    "title": apply_title,
    "message": apply_message,
    "first_seen": apply_times,
    "last_seen": apply_times,
    "timestamp": apply_timestamp,
    "times_seen": apply_times_seen,
}
# The keys and aliases a user can type, for error messages.
SUPPORTED_KEYS: tuple[str, ...] = tuple(sorted({*HANDLERS, *KEY_ALIASES}))
