"""Terms on the releases and environments a group was seen in: ``release``, ``first_release``,
``regressed_in_release``, ``release.version``/``.package``/``.build`` (semver conditions) and
``environment``."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from api.query.comparisons import NEGATED_OPERATOR, split_operator
from api.query.conditions import (
    ENVIRONMENT_FIRST_RELEASES,
    ENVIRONMENTS,
    REGRESSIONS,
    RELEASES,
    Related,
    Wildcard,
)
from api.query.filter_builder import FilterBuilder
from api.query.syntax import Term, is_wildcard, unescape
from api.query.vocabulary import refuse_wildcards
from transforms.core.engine.releases import parse_semver

_SEMVER_QUERY_RE = re.compile(
    r"(?P<major>\d{1,18})(?:\.(?P<minor>\d{1,18}))?(?:\.(?P<patch>\d{1,18}))?(?:-(?P<pre>[0-9A-Za-z.\-]+))?"
    r"(?:\+[0-9A-Za-z.\-]+)?"
)

INVALID_SEMVER = (
    'Invalid format of semantic version. For searching non-semver releases, use "release:" instead.'
)


@dataclass(frozen=True, slots=True)
class SemverCondition:
    """``release.version``: a release that is semver (E14) compares with ``key`` by ``operator``, or starts
    with ``prefix`` (a wildcard such as ``1.2.*``); ``package`` narrows to releases of that package."""

    operator: str | None = None
    key: tuple | None = None
    prefix: tuple[int, ...] = ()
    package: str | None = None

    def __call__(self, version: str) -> bool:
        parsed = parse_semver(version)
        if parsed is None:
            return False
        package, key = parsed
        if self.package is not None and package != self.package:
            return False
        if self.key is None:
            return tuple(key[: len(self.prefix)]) == self.prefix
        return {
            "=": key == self.key,
            "!=": key != self.key,
            ">": key > self.key,
            ">=": key >= self.key,
            "<": key < self.key,
            "<=": key <= self.key,
        }[self.operator or "="]


@dataclass(frozen=True, slots=True)
class PackageCondition:
    """``release.package``: the release's package (the text before its last ``@``) is ``name``."""

    name: str

    def __call__(self, version: str) -> bool:
        package, at, _ = version.rpartition("@")
        return bool(at) and package == self.name


@dataclass(frozen=True, slots=True)
class BuildCondition:
    """``release.build``: the build metadata of a semver release (after ``+``): compared as a number with
    ``operator``, equal to ``code``, or starting with ``prefix``."""

    operator: str | None = None
    number: int | None = None
    code: str | None = None
    prefix: str | None = None

    def __call__(self, version: str) -> bool:
        if parse_semver(version) is None:
            return False
        rest = version.rpartition("@")[2]
        _, plus, build = rest.partition("+")
        if not plus:
            return False
        if self.number is not None:
            if not (build.isascii() and build.isdigit()):
                return False
            value = int(build)
            return {
                "=": value == self.number,
                ">": value > self.number,
                ">=": value >= self.number,
                "<": value < self.number,
                "<=": value <= self.number,
            }[self.operator or "="]
        if self.prefix is not None:
            return build.startswith(self.prefix)
        return build == self.code


def _release_values(builder: FilterBuilder, term: Term) -> frozenset[str]:
    """Literal release names; ``latest`` is each searched project's latest release (Sentry's parse_release)."""
    refuse_wildcards(term)
    values: set[str] = set()
    for raw in term.values:
        if raw == "latest" and not term.quoted:
            values |= builder.latest_releases()
        else:
            values.add(unescape(raw) if not term.quoted else raw)
    return frozenset(values)


def _wildcard_related(term: Term, source: str, key: str) -> Related | None:
    """The condition of a term whose value is a wildcard (matched on the ``source`` values), or None when it
    has no wildcard; a list cannot hold one."""
    wildcards = [raw for raw in term.values if not term.quoted and is_wildcard(raw)]
    if not wildcards:
        return None
    if term.is_list:
        raise term.error(f"a list cannot hold wildcards here; use one {key}:pattern term")
    return Related(source, matcher=Wildcard(wildcards[0]), negated=term.negated)


def apply_release(builder: FilterBuilder, term: Term) -> None:
    condition = _wildcard_related(term, RELEASES, "release")
    if condition is None:
        condition = Related(RELEASES, _release_values(builder, term), negated=term.negated)
    builder.related.append(condition)


def apply_first_release(builder: FilterBuilder, term: Term) -> None:
    values = _release_values(builder, term)
    environments = builder.context.environments
    if environments:
        # Sentry: with environments selected, the group's first release in one of them (GroupEnvironment)
        builder.related.append(
            Related(
                ENVIRONMENT_FIRST_RELEASES, values, negated=term.negated, environments=frozenset(environments)
            )
        )
    else:
        builder.first_releases = builder.first_releases.restrict(values, term.negated)


def apply_regressed_in_release(builder: FilterBuilder, term: Term) -> None:
    builder.related.append(Related(REGRESSIONS, _release_values(builder, term), negated=term.negated))


def apply_environment(builder: FilterBuilder, term: Term) -> None:
    condition = _wildcard_related(term, ENVIRONMENTS, "environment")
    if condition is None:
        values = frozenset(raw if term.quoted else unescape(raw) for raw in term.values)
        condition = Related(ENVIRONMENTS, values, negated=term.negated)
    builder.related.append(condition)


def apply_release_version(builder: FilterBuilder, term: Term) -> None:
    if term.is_list:
        raise term.error("Invalid operation 'IN' for semantic version filter.")
    operator, value = split_operator(term)
    package = None
    version = value
    if "@" in value:
        package, _, version = value.rpartition("@")
    if is_wildcard(version) or version.endswith((".X", ".x")) or version in ("X", "x"):
        prefix: list[int] = []
        for part in version.split(".", 3):
            if part in ("*", "X", "x"):
                break
            if not (part.isascii() and part.isdigit()):
                raise term.error(INVALID_SEMVER)
            prefix.append(int(part))
        condition = SemverCondition(prefix=tuple(prefix), package=package or None)
    else:
        match = _SEMVER_QUERY_RE.fullmatch(version)
        if match is None:
            raise term.error(INVALID_SEMVER)
        text = f"{int(match['major'])}.{int(match['minor'] or 0)}.{int(match['patch'] or 0)}"
        if match["pre"]:
            text += f"-{match['pre']}"
        parsed = parse_semver(text)
        if parsed is None:
            raise term.error(INVALID_SEMVER)
        condition = SemverCondition(operator or "=", parsed[1], package=package or None)
    negated = term.negated
    if condition.key is not None and negated:
        # !release.version:>1.0 is release.version:<=1.0 (Sentry's handle_operator_negation)
        condition = replace(condition, operator=NEGATED_OPERATOR.get(condition.operator or "=", "!="))
        negated = False
    builder.related.append(Related(RELEASES, matcher=condition, negated=negated))


def apply_release_package(builder: FilterBuilder, term: Term) -> None:
    refuse_wildcards(term)
    if term.is_list:
        raise term.error("Invalid operation 'IN' for semantic version filter.")
    builder.related.append(
        Related(RELEASES, matcher=PackageCondition(unescape(term.value)), negated=term.negated)
    )


def apply_release_build(builder: FilterBuilder, term: Term) -> None:
    if term.is_list:
        raise term.error("Invalid operation 'IN' for semantic version filter.")
    operator, value = split_operator(term)
    if value.isascii() and value.isdigit() and len(value) <= 18:
        condition = BuildCondition(operator or "=", int(value))
    elif operator not in (None, "="):
        raise term.error("a comparison needs a numeric build (e.g. release.build:>100)")
    elif value.endswith("*") and not is_wildcard(value[:-1]):
        condition = BuildCondition(prefix=unescape(value[:-1]))
    elif is_wildcard(value):
        raise term.error('"release.build" takes a wildcard only at the end (e.g. release.build:abc*)')
    else:
        condition = BuildCondition(code=unescape(value))
    builder.related.append(Related(RELEASES, matcher=condition, negated=term.negated))
