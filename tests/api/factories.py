"""Rows as the pipeline and ``pipeline.admin`` write them, for issue-index tests (written directly to Spanner)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from google.cloud.spanner_v1 import COMMIT_TIMESTAMP

from transforms.core import intents
from transforms.core.engine.tags import TEXT_KEY, text_terms
from transforms.core.enums import GroupStatus, GroupSubStatus, Priority
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.limits import TERMS_PER_GROUP
from transforms.core.model import MICROS, to_datetime
from transforms.storage import org_words, registry, spanner_rows

# 2026-01-01T00:00:00Z: test times are offsets from here.
T0 = 1_767_225_600 * MICROS
HOUR = 3600 * MICROS
DAY = 24 * HOUR


@dataclass
class G:
    """A group row with test defaults: unresolved/ongoing, high priority, error level, type error."""

    group_id: int
    project_id: int
    organization_id: int
    last_seen: int = T0
    first_seen: int | None = None
    times_seen: int = 1
    status: int = GroupStatus.UNRESOLVED
    substatus: int | None = GroupSubStatus.ONGOING
    priority: int | None = Priority.HIGH
    type: int = 1
    level: int = 40
    title: str | None = None
    message: str | None = None
    culprit: str = "app.views in handler"
    fingerprint: str | None = None
    first_release: str | None = None
    assignee: str | None = None
    resolution_type: str | None = None
    resolution_version: str | None = None
    resolved_at: int | None = None
    data: dict[str, Any] | None = None
    # (key, value) tags of its occurrences, each counted once; its words come from the title and message
    tags: tuple[tuple[str, str], ...] = ()

    def group_row(self) -> intents.GroupRow:
        """The row as the engine would hand it to the writer."""
        first_seen = self.last_seen if self.first_seen is None else self.first_seen
        group_type = GROUP_TYPES[self.type]
        title = self.title if self.title is not None else f"Issue {self.group_id}"
        fingerprint = self.fingerprint or f"fp-{self.group_id}"
        data = self.data if self.data is not None else {"type": "generic", "metadata": {"title": title}}
        return intents.GroupRow(
            group_id=self.group_id,
            project_id=self.project_id,
            organization_id=self.organization_id,
            primary_hash=hashlib.md5(fingerprint.encode()).hexdigest(),
            fingerprint=fingerprint,
            generation=0,
            type=self.type,
            category=int(group_type.category),
            status=int(self.status),
            substatus=None if self.substatus is None else int(self.substatus),
            priority=None if self.priority is None else int(self.priority),
            level=self.level,
            title=title,
            subtitle="subtitle",
            culprit=self.culprit,
            message=self.message if self.message is not None else title,
            platform="python",
            first_seen=first_seen,
            last_seen=self.last_seen,
            active_at=self.last_seen,
            resolved_at=self.resolved_at,
            times_seen=self.times_seen,
            first_release=self.first_release,
            assignee=self.assignee,
            resolution_type=self.resolution_type,
            resolution_version=self.resolution_version,
            data=data,
        )

    def row(self) -> tuple[Any, ...]:
        """The Groups row's values in ``spanner_rows.GROUP_COLUMNS`` order, built as the writer builds them."""
        return spanner_rows.group_values(self.group_row(), seq=1, state=None)


def write_groups(database: Any, groups: list[G]) -> None:
    """The groups' rows, with their tag rows and their words (as the pipeline's tag writer stores them:
    ``GroupTagValues``/``GroupTagKeys``, the words under ``@text``, the full-group mark of a group with more
    than ``TERMS_PER_GROUP`` words, and their organization's vocabulary ``OrgWords``)."""
    for start in range(0, len(groups), 2000):
        chunk = groups[start : start + 2000]
        values, keys, vocabulary_rows = [], [], []
        for g in chunk:
            group_row = g.group_row()
            title, message = group_row.title, group_row.message
            last_seen = to_datetime(g.last_seen)
            counted: dict[str, int] = {}
            for key, value in dict.fromkeys(g.tags):
                values.append(
                    [g.group_id, key, value, g.organization_id, g.project_id, 1, last_seen, last_seen]
                )
                counted[key] = counted.get(key, 0) + 1
            words = text_terms(f"{title} {message}")
            for word in words[:TERMS_PER_GROUP]:
                values.append([g.group_id, TEXT_KEY, word, g.organization_id, g.project_id, None, None, None])
            vocabulary_rows += org_words.rows_of(g.organization_id, words)  # all of them, as the writer
            if words:
                counted[TEXT_KEY] = min(len(words), TERMS_PER_GROUP)
            if len(words) > TERMS_PER_GROUP:
                full = (org_words.FULL_KEY, org_words.FULL_VALUE)
                values.append([g.group_id, *full, g.organization_id, g.project_id, None, None, None])
                counted[org_words.FULL_KEY] = 1
            keys += [[g.group_id, key, g.organization_id, g.project_id, n, 0] for key, n in counted.items()]
        with database.batch() as batch:
            batch.insert_or_update("Groups", spanner_rows.GROUP_COLUMNS, [g.row() for g in chunk])
            batch.insert_or_update("GroupTagValues", spanner_rows.TAG_VALUE_COLUMNS, values)
            batch.insert_or_update("GroupTagKeys", spanner_rows.TAG_KEY_COLUMNS, keys)
            batch.insert_or_update(org_words.TABLE, org_words.COLUMNS, sorted(set(vocabulary_rows)))


def add_organization(database: Any, organization_id: int, slug: str) -> None:
    """Name the organization (``pipeline.admin add-project --organization-slug`` does this)."""
    with database.batch() as batch:
        batch.insert_or_update(
            "Organizations",
            ["OrganizationId", "Slug", "CreatedAt"],
            [[organization_id, slug, COMMIT_TIMESTAMP]],
        )


def add_project(database: Any, project_id: int, organization_id: int, slug: str) -> None:
    """Register a project as ``pipeline.admin add-project`` does."""
    registry.register_project(database, project_id=project_id, organization_id=organization_id, slug=slug)


def add_token(database: Any, organization_id: int, scope: str = "read") -> str:
    """A token issued as ``pipeline.admin create-token`` issues it (stored as its SHA-256); returns the token."""
    token, _ = registry.issue_api_token(database, organization=organization_id, scope=scope, name="test")
    return token


def add_environments(database: Any, pairs: list[tuple[int, str]]) -> None:
    with database.batch() as batch:
        batch.insert_or_update(
            "GroupEnvironments",
            spanner_rows.ENVIRONMENT_COLUMNS,
            [
                spanner_rows.environment_values(
                    intents.RecordEnvironment(
                        group_id=group_id, environment=env, first_release=None, first_seen=T0
                    )
                )
                for group_id, env in pairs
            ],
        )


def add_group_releases(database: Any, pairs: list[tuple[int, str]]) -> None:
    with database.batch() as batch:
        batch.insert_or_update(
            "GroupReleases", spanner_rows.GROUP_RELEASE_COLUMNS, [list(pair) for pair in pairs]
        )


def add_release(database: Any, project_id: int, version: str, first_seen: int) -> None:
    with database.batch() as batch:
        batch.insert_or_update(
            "Releases",
            spanner_rows.RELEASE_COLUMNS,
            [spanner_rows.release_values(project_id, version, first_seen)],
        )


# ---------------------------------------------------------------------------------------------------------------
# A mixed data set for search tests: two organizations whose groups interleave in every index range.

ORG, OTHER_ORG = 1, 2
PROJECTS = {11: "backend", 12: "frontend", 13: "worker"}
OTHER_PROJECT = 21
ENVIRONMENTS = ("production", "staging")
RELEASES = ("1.0.0", "1.1.0", "2.0.0")
BROWSERS = ("Chrome 120", "Firefox 99", "Safari 17")
WORDS = ("database", "timeout", "connection refused", "null pointer", "slow query")


@dataclass
class World:
    groups: list[G]
    other: list[G]
    environments: dict[int, set[str]]
    releases: dict[int, set[str]]
    read_token: str
    write_token: str
    other_token: str


def build_world(database: Any, seed: int = 7, size: int = 150) -> World:
    """``size`` groups in organization 1 (projects 11-13) and a third as many in organization 2, with many
    ties in dates and counts, every status/substatus/priority (and no priority), several types and levels."""
    import random

    rnd = random.Random(seed)
    add_organization(database, ORG, "acme")
    add_organization(database, OTHER_ORG, "globex")
    for project_id, slug in PROJECTS.items():
        add_project(database, project_id, ORG, slug)
    add_project(database, OTHER_PROJECT, OTHER_ORG, "backend")

    pairs = [
        (GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING),
        (GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING),
        (GroupStatus.UNRESOLVED, GroupSubStatus.NEW),
        (GroupStatus.UNRESOLVED, GroupSubStatus.REGRESSED),
        (GroupStatus.UNRESOLVED, GroupSubStatus.ESCALATING),
        (GroupStatus.RESOLVED, None),
        (GroupStatus.IGNORED, GroupSubStatus.FOREVER),
        (GroupStatus.IGNORED, GroupSubStatus.UNTIL_ESCALATING),
    ]

    def make(group_id: int, project_id: int, organization_id: int) -> G:
        status, substatus = rnd.choice(pairs)
        first = T0 + rnd.randrange(0, 20) * DAY // 4
        return G(
            group_id,
            project_id,
            organization_id,
            first_seen=first,
            last_seen=first + rnd.randrange(0, 6) * HOUR,  # few distinct values: many ties
            times_seen=rnd.choice([1, 1, 2, 5, 5, 10, 100]),
            status=status,
            substatus=substatus,
            priority=rnd.choice([Priority.HIGH, Priority.MEDIUM, Priority.LOW, Priority.MEDIUM, None]),
            type=rnd.choice([1, 1, 1006, 4001, 6001]),
            level=rnd.choice([20, 30, 40, 40, 50]),
            title=f"{rnd.choice(WORDS).title()} in {rnd.choice(['checkout', 'login', 'search'])} #{group_id}",
            message=f"{rnd.choice(WORDS)} while handling request",
            first_release=rnd.choice([None, *RELEASES]),
            assignee=rnd.choice([None, None, "user:1", "team:2"]),
        )

    def tagged(g: G) -> G:
        """Tags derived from the id (not from ``rnd``, so the other fields stay as they were)."""
        tags = [("server_name", f"web-{g.group_id % 4}")]
        if g.group_id % 5:
            tags.append(("browser", BROWSERS[g.group_id % 3]))
        if g.group_id % 7 == 0:
            tags.append(("@user.email", f"u{g.group_id % 3}@example.com"))
        g.tags = tuple(tags)
        return g

    # Ids spread over the 63-bit space (like the pipeline's hashed ids), so id order is not creation order.
    ids = rnd.sample(range(1, 2**62), size + size // 3)
    groups = [tagged(make(group_id, rnd.choice(list(PROJECTS)), ORG)) for group_id in ids[:size]]
    other = [tagged(make(group_id, OTHER_PROJECT, OTHER_ORG)) for group_id in ids[size:]]
    write_groups(database, groups + other)
    environments: dict[int, set[str]] = {}
    releases: dict[int, set[str]] = {}
    for g in groups + other:
        environments[g.group_id] = set(rnd.sample(ENVIRONMENTS, rnd.randrange(0, 3)))
        releases[g.group_id] = set(rnd.sample(RELEASES, rnd.randrange(0, 3)))
    add_environments(database, [(gid, env) for gid, envs in environments.items() for env in envs])
    add_group_releases(database, [(gid, rel) for gid, rels in releases.items() for rel in rels])
    return World(
        groups,
        other,
        environments,
        releases,
        add_token(database, ORG, "read"),
        add_token(database, ORG, "write"),
        add_token(database, OTHER_ORG, "write"),
    )


def expected_order(groups: list[G], sort: str) -> list[G]:
    """The groups in ``sort`` order, computed independently of the service."""

    def last(g: G) -> int:
        return g.last_seen

    def first(g: G) -> int:
        return g.last_seen if g.first_seen is None else g.first_seen

    keys = {
        "date": lambda g: (last(g), g.group_id),
        "new": lambda g: (first(g), g.group_id),
        "freq": lambda g: (g.times_seen, g.group_id),
        "priority": lambda g: (-1 if g.priority is None else g.priority, last(g), g.group_id),
    }
    return sorted(groups, key=keys[sort], reverse=True)
