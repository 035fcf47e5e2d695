"""What a term restricts, as values the search can test: bounds (``Interval``), sets of column values
(``ValueSet``), patterns (``Wildcard``), values of a group's related rows (``Related``) and text
(``TextMatch``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from api.query.syntax import wildcard_regex

# The activity type of a regression (Activities.Type), whose data names the release it regressed in.
SET_REGRESSION = 6


@dataclass(frozen=True, slots=True)
class Interval:
    """Inclusive integer bounds (microseconds for times); None is unbounded."""

    lo: int | None = None
    hi: int | None = None

    def intersect(self, other: Interval) -> Interval:
        lo = self.lo if other.lo is None else other.lo if self.lo is None else max(self.lo, other.lo)
        hi = self.hi if other.hi is None else other.hi if self.hi is None else min(self.hi, other.hi)
        return Interval(lo, hi)

    @property
    def empty(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo > self.hi

    @property
    def unbounded(self) -> bool:
        return self.lo is None and self.hi is None

    def contains(self, value: int) -> bool:
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)


@dataclass(frozen=True, slots=True)
class ValueSet:
    """Allowed values of one column: in ``include`` (unless None) and not in ``exclude``."""

    include: frozenset | None = None
    exclude: frozenset = frozenset()

    def restrict(self, values: frozenset, negated: bool) -> ValueSet:
        if negated:
            return ValueSet(self.include, self.exclude | values)
        include = values if self.include is None else self.include & values
        return ValueSet(include, self.exclude)

    def allows(self, value: object) -> bool:
        return (self.include is None or value in self.include) and value not in self.exclude

    @property
    def empty(self) -> bool:
        return self.include is not None and not (self.include - self.exclude)

    @property
    def unrestricted(self) -> bool:
        return self.include is None and not self.exclude


@dataclass(frozen=True, slots=True)
class Wildcard:
    """A value matches a wildcard pattern (compiled with ``wildcard_regex``)."""

    pattern: str
    anchored: bool = True

    def __call__(self, value: str) -> bool:
        return bool(wildcard_regex(self.pattern, anchored=self.anchored).search(value))


ValueMatcher = Callable[[str], bool]

# Where a Related condition's values live (api.search reads them for the page's candidates).
RELEASES, ENVIRONMENTS, ENVIRONMENT_FIRST_RELEASES, REGRESSIONS = (
    "release",
    "environment",
    "environment_first_release",
    "regression",
)


@dataclass(frozen=True, slots=True)
class Related:
    """The group has (``negated``: has none) a related value that matches: one of ``values``, or one that
    ``matcher`` accepts, or any at all when both are None (``has:``). ``source`` says which values: the
    releases it was seen in (GroupReleases), its environments (GroupEnvironments), the first release of each
    of ``environments`` (GroupEnvironments.FirstRelease), or the releases it regressed in (regression
    activities)."""

    source: str
    values: frozenset[str] | None = None
    matcher: ValueMatcher | None = None
    negated: bool = False
    environments: frozenset[str] | None = None

    def matches(self, value: str) -> bool:
        if self.values is not None:
            return value in self.values
        if self.matcher is not None:
            return self.matcher(value)
        return True

    def holds(self, present: Iterable[Any]) -> bool:
        """Whether the condition holds for a group's related items: values, or (environment, first release)
        pairs for ``ENVIRONMENT_FIRST_RELEASES``."""
        if self.source == ENVIRONMENT_FIRST_RELEASES:
            assert self.environments is not None
            hit = any(
                environment in self.environments and release is not None and self.matches(release)
                for environment, release in present
            )
        else:
            hit = any(self.matches(value) for value in present)
        return not hit if self.negated else hit

    @property
    def point_values(self) -> frozenset[str] | None:
        """The exact values to look up by key, when the condition is only a set of values."""
        return self.values if self.matcher is None and self.source in (RELEASES, ENVIRONMENTS) else None


@dataclass(frozen=True, slots=True)
class TextMatch:
    """Free text and ``message:`` (in ``fields`` title and message: contains, case-insensitive, or a wildcard
    found anywhere), or ``title:`` (``exact``: equal, or an anchored case-insensitive wildcard). ``values`` are
    (text, is a wildcard) pairs, any of which may match (a list)."""

    values: tuple[tuple[str, bool], ...]
    fields: tuple[str, ...] = ("title", "message")
    exact: bool = False
    negated: bool = False

    def holds(self, texts: Mapping[str, str]) -> bool:
        hit = any(self._matches(value, wildcard, texts) for value, wildcard in self.values)
        return not hit if self.negated else hit

    def _matches(self, value: str, wildcard: bool, texts: Mapping[str, str]) -> bool:
        if wildcard:
            pattern = wildcard_regex(value, anchored=self.exact)
            return any(pattern.search(texts[name]) for name in self.fields)
        if self.exact:
            return any(texts[name] == value for name in self.fields)
        needle = value.lower()
        return any(needle in texts[name].lower() for name in self.fields)
