"""The issue search language (rule 7): a query string becomes an ``IssueFilter``.

Sentry's structured search, as its issue index parses it (``sentry.api.event_search`` with the issue search
config: no boolean operators). Terms are separated by whitespace and all must hold (AND)::

    term   := ["!"] key ":" value           a filter; "!" negates it
            | word+ | '"' phrase '"'        free text: consecutive words are one phrase, as in Sentry
    key    := [A-Za-z0-9_.-]+ | "tags[" key "]"
    value  := bare | '"' quoted '"' | "[" item ("," item)* "]"    (a list matches any of its items)

A value with an unescaped ``*`` is a wildcard (``\\*`` is a literal asterisk), matched as Sentry does: anchored
and case-insensitive for a field (``release:14.*``), anywhere in the text for free text and ``message:``. A
field that cannot take a wildcard (``is``, ``status``, ``issue.priority``, ``first_release``...) answers a 400.

Every term, what it means here and the terms this index cannot answer (a 400 that says why) are listed in
docs/issue-index.md. Terms that need data outside the query (the organization's projects for ``project:`` and
``issue:``, the latest releases for ``release:latest``, the request's ``environment`` parameters for
``first_release``) take it from a ``QueryContext``. Every error raises ``QueryError`` naming the offending term
and its position (0-based character offset), so the HTTP service answers 400 with a message a user can act on;
``parse_query`` never raises anything else.

Extension: a new kind of term is a key in ``parser.HANDLERS`` whose handler adds to the builder: a restriction on
index-row columns (``ValueSet``, ``Interval``), a ``Related`` condition (a value the group has in a related
table, checked by lookups on the page's candidates), or a ``TextMatch``. Every other key (and ``tags[...]``,
``has:`` of one, free text and ``message:`` without wildcards) becomes a condition on the per-group tag
storage (``api.tag_search``).

Modules: ``syntax`` (terms as written, values, ``QueryError``), ``parser`` (terms to a filter), ``group_terms``
and ``release_terms`` (the handlers), ``vocabulary`` (names and the terms this index cannot answer),
``comparisons`` (times and counts), ``conditions`` and ``issue_filter`` (what a query asks for),
``filter_builder`` (the filter as terms add to it). This package re-exports what the rest of the code uses.
"""

from __future__ import annotations

from api.query.comparisons import MAX_TIME, MIN_TIME, parse_relative_period, parse_timestamp
from api.query.conditions import (
    ENVIRONMENT_FIRST_RELEASES,
    ENVIRONMENTS,
    REGRESSIONS,
    RELEASES,
    SET_REGRESSION,
    Interval,
    Related,
    TextMatch,
    ValueMatcher,
    ValueSet,
    Wildcard,
)
from api.query.group_terms import parse_short_id
from api.query.issue_filter import (
    ALL_STATUS_PAIRS,
    FOR_REVIEW_PAIRS,
    HIDDEN_TYPES,
    IGNORED_SUBSTATUSES,
    LISTED_STATUSES,
    PRIORITY_VALUES,
    UNRESOLVED_SUBSTATUSES,
    IssueFilter,
    QueryContext,
)
from api.query.parser import DEFAULT_QUERY, SUPPORTED_KEYS, parse_query
from api.query.release_terms import INVALID_SEMVER, BuildCondition, PackageCondition, SemverCondition
from api.query.syntax import (
    BOOLEAN_OPERATORS,
    QueryError,
    Term,
    clip,
    is_wildcard,
    normalize_event_id,
    tokenize,
    unescape,
    wildcard_regex,
)

__all__ = [
    "ALL_STATUS_PAIRS",
    "BOOLEAN_OPERATORS",
    "DEFAULT_QUERY",
    "ENVIRONMENTS",
    "ENVIRONMENT_FIRST_RELEASES",
    "FOR_REVIEW_PAIRS",
    "HIDDEN_TYPES",
    "IGNORED_SUBSTATUSES",
    "INVALID_SEMVER",
    "LISTED_STATUSES",
    "MAX_TIME",
    "MIN_TIME",
    "PRIORITY_VALUES",
    "REGRESSIONS",
    "RELEASES",
    "SET_REGRESSION",
    "SUPPORTED_KEYS",
    "UNRESOLVED_SUBSTATUSES",
    "BuildCondition",
    "Interval",
    "IssueFilter",
    "PackageCondition",
    "QueryContext",
    "QueryError",
    "Related",
    "SemverCondition",
    "Term",
    "TextMatch",
    "ValueMatcher",
    "ValueSet",
    "Wildcard",
    "clip",
    "is_wildcard",
    "normalize_event_id",
    "parse_query",
    "parse_relative_period",
    "parse_short_id",
    "parse_timestamp",
    "tokenize",
    "unescape",
    "wildcard_regex",
]
