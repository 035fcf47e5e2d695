"""The filter a query's terms build, term by term (``FilterBuilder``), and how its status and substatus
terms combine into (status, substatus) pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.query.conditions import Interval, Related, TextMatch, ValueSet
from api.query.issue_filter import ALL_STATUS_PAIRS, FOR_REVIEW_PAIRS, PRIORITY_VALUES, QueryContext
from api.query.vocabulary import STATUS_OF_SUBSTATUS


@dataclass(slots=True)
class StatusTerm:
    """A status or substatus term; ``values`` in the order the term named them (Sentry takes the first)."""

    substatus: bool
    values: tuple[int, ...]
    negated: bool


@dataclass(slots=True)
class FilterBuilder:
    now: int
    context: QueryContext
    status_terms: list[StatusTerm] = field(default_factory=list)
    for_review: list[bool] = field(default_factory=list)
    priorities: frozenset[int | None] = frozenset(PRIORITY_VALUES)
    categories: ValueSet = field(default_factory=ValueSet)
    types: ValueSet = field(default_factory=ValueSet)
    levels: ValueSet = field(default_factory=ValueSet)
    first_releases: ValueSet = field(default_factory=ValueSet)
    has_first_release: bool | None = None
    project_ids: ValueSet = field(default_factory=ValueSet)
    group_ids: ValueSet = field(default_factory=ValueSet)
    group_projects: dict[int, int] = field(default_factory=dict)
    first_seen: Interval = field(default_factory=Interval)
    last_seen: Interval = field(default_factory=Interval)
    times_seen: Interval = field(default_factory=Interval)
    assigned: bool | None = None
    related: list[Related] = field(default_factory=list)
    texts: list[TextMatch] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)
    contradiction: bool = False
    names_type: bool = False
    latest: frozenset[str] | None = None

    def latest_releases(self) -> frozenset[str]:
        if self.latest is None:
            # Sentry: no release at all gives no results (its parse_release returns [""]).
            self.latest = self.context.latest_releases() or frozenset({""})
        return self.latest

    def restrict_assigned(self, value: bool) -> None:
        if self.assigned is not None and self.assigned != value:
            self.contradiction = True
        self.assigned = value


def status_pairs(builder: FilterBuilder) -> frozenset[tuple[int, int | None]]:
    """The allowed (status, substatus) pairs, as Sentry's issue search derives them.

    Every status and substatus term restricts the pairs (a pair without a substatus is kept by a negated
    substatus term, as Django's exclude keeps NULLs). Without any status term, the first substatus term adds
    its status (Sentry's expand_substatus_query_values): ``is:ongoing`` is unresolved and ongoing, and
    ``!is:ongoing`` excludes every unresolved issue, also when another negated substatus follows.
    """
    pairs = set(ALL_STATUS_PAIRS)
    for term in builder.status_terms:
        position = 1 if term.substatus else 0
        if term.negated:
            pairs = {p for p in pairs if p[position] is None or p[position] not in term.values}
        else:
            pairs = {p for p in pairs if p[position] in term.values}
    if not any(not t.substatus for t in builder.status_terms):
        positive = next((t for t in builder.status_terms if t.substatus and not t.negated), None)
        negative = next((t for t in builder.status_terms if t.substatus and t.negated), None)
        if positive is not None:
            status = STATUS_OF_SUBSTATUS[positive.values[0]]
            pairs = {p for p in pairs if p[0] == status}
        elif negative is not None:
            status = STATUS_OF_SUBSTATUS[negative.values[0]]
            pairs = {p for p in pairs if p[0] != status}
    for wanted in builder.for_review:
        pairs = pairs & FOR_REVIEW_PAIRS if wanted else pairs - FOR_REVIEW_PAIRS
    return frozenset(pairs)
