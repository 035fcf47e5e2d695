"""Organizations, projects and API tokens, read from Spanner and cached briefly in-process.

Organizations and projects are addressed by id or slug everywhere; a reference made only of digits is an id
(Sentry's slugs cannot be all digits). Entries are cached for ``ttl`` seconds (a project registered with
``pipeline.admin add-project`` is visible within that time); a token's lookup is cached for ``token_ttl``
seconds once found, so a revoked token (its row deleted) stops working within that time. Unknown tokens are not
cached: a token created a moment ago works at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.cloud.spanner_v1 import KeyRange, KeySet

from api.request_limits import MAX_ISSUE_ID
from transforms.core.model import from_datetime
from transforms.storage.registry import default_organization_slug


@dataclass(frozen=True, slots=True)
class Organization:
    id: int
    slug: str
    created_at: int | None = None  # microseconds; None for an organization known only from its projects

    def named_by(self, ref: str) -> bool:
        """Whether ``ref`` (from a URL or a flag) is this organization's id or slug; slugs are lowercase
        (``transforms.storage.registry.validate_slug``), so ``ACME`` names ``acme``."""
        return ref == str(self.id) or ref.lower() == self.slug


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    organization_id: int
    slug: str
    features: tuple[str, ...] = ()
    created_at: int | None = None  # microseconds

    @property
    def name(self) -> str:
        return self.slug


@dataclass(frozen=True, slots=True)
class ApiToken:
    organization_id: int
    scope: str  # "read" or "write"; write implies read


MAX_SLUG_CHARS = 100


def is_id(ref: str) -> bool:
    """Whether ``ref`` is an id: digits of a Spanner INT64 (anything else is a slug, and finds nothing)."""
    return ref.isascii() and ref.isdigit() and len(ref) <= 19 and int(ref) <= MAX_ISSUE_ID


class Directory:
    """Cached lookups of organizations, their projects and API tokens (thread-safe)."""

    def __init__(
        self,
        database: Any,
        *,
        ttl: float = 10.0,
        token_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._ttl = ttl
        self._token_ttl = token_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple, tuple[float, Any]] = {}

    def _cached(self, key: tuple, ttl: float, load: Callable[[], Any], keep_none: bool = True) -> Any:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if value is not None or keep_none:
            with self._lock:
                self._cache[key] = (now + ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    # ---- organizations

    def organization(self, ref: str | int) -> Organization | None:
        """The organization with this id or slug, or None."""
        ref = str(ref)
        if is_id(ref):
            return self._cached(("org-id", ref), self._ttl, lambda: self._load_organization_by_id(int(ref)))
        slug = ref.lower()
        if not slug or len(slug) > MAX_SLUG_CHARS:
            return None  # cannot be a stored slug (Organizations.Slug is STRING(100))
        return self._cached(("org-slug", slug), self._ttl, lambda: self._load_organization_by_slug(slug))

    def _load_organization_by_id(self, organization_id: int) -> Organization | None:
        with self._database.snapshot() as snapshot:
            rows = list(
                snapshot.read(
                    "Organizations", ["OrganizationId", "Slug", "CreatedAt"], KeySet(keys=[[organization_id]])
                )
            )
        if rows:
            return Organization(rows[0][0], rows[0][1], _micros(rows[0][2]))
        # Projects whose organization row is missing (written by hand): named as the registry would name it.
        if self.projects(organization_id):
            return Organization(organization_id, default_organization_slug(organization_id))
        return None

    def _load_organization_by_slug(self, slug: str) -> Organization | None:
        with self._database.snapshot() as snapshot:
            rows = list(
                snapshot.read(
                    "Organizations",
                    ["OrganizationId", "Slug"],
                    KeySet(keys=[[slug]]),
                    index="OrganizationsBySlug",
                )
            )
        return self._load_organization_by_id(rows[0][0]) if rows else None

    # ---- projects

    def projects(self, organization_id: int) -> dict[int, Project]:
        """{project id: project} of the organization (empty when it has none)."""
        return self._cached(
            ("projects", organization_id), self._ttl, lambda: self._load_projects(organization_id)
        )

    def _load_projects(self, organization_id: int) -> dict[int, Project]:
        keyset = KeySet(ranges=[KeyRange(start_closed=[organization_id], end_closed=[organization_id])])
        with self._database.snapshot(multi_use=True) as snapshot:
            ids = [
                row[0]
                for row in snapshot.read(
                    "Projects", ["ProjectId"], keyset, index="ProjectsByOrganizationSlug"
                )
            ]
            rows = []
            if ids:
                rows = list(
                    snapshot.read(
                        "Projects",
                        ["ProjectId", "OrganizationId", "Slug", "Features", "CreatedAt"],
                        KeySet(keys=[[project_id] for project_id in ids]),
                    )
                )
        return {
            row[0]: Project(row[0], row[1], row[2], tuple(row[3] or ()), _micros(row[4]))
            for row in sorted(rows, key=lambda row: row[2])
        }

    def features(self, organization_id: int) -> tuple[str, ...]:
        """The organization's features: the union of its projects' (``pipeline.admin add-project --feature``)."""
        return tuple(sorted({f for p in self.projects(organization_id).values() for f in p.features}))

    def project(self, organization_id: int, ref: str | int) -> Project | None:
        """The organization's project with this id or slug (in any case), or None (also for another
        organization's)."""
        ref = str(ref)
        number = int(ref) if is_id(ref) else None
        slug = ref.lower()
        for project in self.projects(organization_id).values():
            if project.id == number or project.slug == slug:
                return project
        return None

    # ---- tokens

    def token(self, token_hash: str) -> ApiToken | None:
        """The token whose SHA-256 hex is ``token_hash``, or None."""
        return self._cached(
            ("token", token_hash), self._token_ttl, lambda: self._load_token(token_hash), False
        )

    def _load_token(self, token_hash: str) -> ApiToken | None:
        with self._database.snapshot() as snapshot:
            rows = list(snapshot.read("ApiTokens", ["OrganizationId", "Scope"], KeySet(keys=[[token_hash]])))
        return ApiToken(rows[0][0], rows[0][1]) if rows else None


def _micros(value: Any) -> int | None:
    """A TIMESTAMP column's value in microseconds (None stays None)."""
    return None if value is None else from_datetime(value)
