"""The registry of organizations, projects and API tokens in Spanner (tables Organizations, Projects, ApiTokens).

Reads: :func:`read_projects` gives the pipeline's view of every registered project, a
:class:`~transforms.core.model.ProjectInfo` whose ``features`` are its organization's: the union of the features
given to any project of that organization (E10). Writes (used by ``pipeline.admin`` and by tests):
:func:`register_project` and :func:`issue_api_token`. Only the SHA-256 of a token is stored.

Slugs follow Sentry's rules (lowercase letters, digits, ``-`` and ``_``, at most 50 characters, not all
digits), so an organization can be named by id or by slug without ambiguity.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from transforms.core.model import ProjectInfo

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database
    from google.cloud.spanner_v1.transaction import Transaction

TOKEN_PREFIX = "sntryu_"
TOKEN_HEX_CHARS = 64
SCOPES = ("read", "write")  # write implies read
MAX_ID = 2**63 - 1

_SLUG = re.compile(r"^(?![0-9]+$)[a-z0-9][a-z0-9_-]{0,49}$")
_FEATURE = re.compile(r"^[a-z][a-z0-9_-]*:[a-z0-9][a-z0-9._:-]*$")
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}[0-9a-f]{{{TOKEN_HEX_CHARS}}}$")


class RegistryError(ValueError):
    """A registration the registry refuses (invalid value, or a conflict with what is registered)."""


@dataclass(frozen=True)
class Organization:
    organization_id: int
    slug: str


@dataclass(frozen=True)
class ProjectRecord:
    """A Projects row as stored: ``features`` are the ones given to this project (not the union)."""

    project_id: int
    organization_id: int
    slug: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class ApiToken:
    """What a token grants: one organization, one scope."""

    token_hash: str
    organization_id: int
    scope: str
    name: str | None


# ---------------------------------------------------------------------------------------------------------------
# Reads


def read_organizations(database: Database) -> dict[int, Organization]:
    from google.cloud.spanner import KeySet

    with database.snapshot() as snapshot:
        rows = snapshot.read("Organizations", ["OrganizationId", "Slug"], KeySet(all_=True))
        return {org_id: Organization(org_id, slug) for org_id, slug in rows}


def read_project_records(database: Database) -> dict[int, ProjectRecord]:
    from google.cloud.spanner import KeySet

    with database.snapshot() as snapshot:
        rows = snapshot.read(
            "Projects", ["ProjectId", "OrganizationId", "Slug", "Features"], KeySet(all_=True)
        )
        return {
            pid: ProjectRecord(pid, org, slug, tuple(features or ())) for pid, org, slug, features in rows
        }


def read_projects(database: Database) -> dict[int, ProjectInfo]:
    """Every registered project by id, with its organization's slug and feature union (one consistent read)."""
    from google.cloud.spanner import KeySet

    with database.snapshot(multi_use=True) as snapshot:
        orgs = dict(snapshot.read("Organizations", ["OrganizationId", "Slug"], KeySet(all_=True)))
        records = [
            ProjectRecord(pid, org, slug, tuple(features or ()))
            for pid, org, slug, features in snapshot.read(
                "Projects", ["ProjectId", "OrganizationId", "Slug", "Features"], KeySet(all_=True)
            )
        ]
    return projects_with_org_features(records, orgs)


def projects_with_org_features(
    records: Iterable[ProjectRecord], org_slugs: dict[int, str]
) -> dict[int, ProjectInfo]:
    """Turn stored rows into ``ProjectInfo``s whose features are the union over each organization's projects."""
    records = list(records)
    union: dict[int, set[str]] = {}
    for r in records:
        union.setdefault(r.organization_id, set()).update(r.features)
    return {
        r.project_id: ProjectInfo(
            project_id=r.project_id,
            organization_id=r.organization_id,
            slug=r.slug,
            organization_slug=org_slugs.get(r.organization_id, ""),
            features=frozenset(union[r.organization_id]),
        )
        for r in records
    }


def find_organization(database: Database, ref: str | int) -> Organization:
    """The organization named by id (digits) or by slug; :class:`RegistryError` when it is not registered."""
    from google.cloud.spanner import KeySet

    text = str(ref).strip()
    with database.snapshot() as snapshot:
        if text.isdigit():
            rows = list(
                snapshot.read("Organizations", ["OrganizationId", "Slug"], KeySet(keys=[[int(text)]]))
            )
        else:
            rows = list(
                snapshot.read(
                    "Organizations",
                    ["OrganizationId", "Slug"],
                    KeySet(keys=[[text]]),
                    index="OrganizationsBySlug",
                )
            )
    if not rows:
        raise RegistryError(
            f"Organization {text!r} is not registered. Register a project in it first: "
            "python -m pipeline.admin add-project --project-id N --organization-id N --slug SLUG"
        )
    return Organization(int(rows[0][0]), rows[0][1])


def hash_token(token: str) -> str:
    """The stored form of a token: the lowercase hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def lookup_api_token(database: Database, token: str) -> ApiToken | None:
    """What ``token`` grants, or None when it is malformed or unknown."""
    from google.cloud.spanner import KeySet

    if not _TOKEN.match(token):
        return None
    digest = hash_token(token)
    with database.snapshot() as snapshot:
        rows = list(
            snapshot.read(
                "ApiTokens", ["TokenHash", "OrganizationId", "Scope", "Name"], KeySet(keys=[[digest]])
            )
        )
    return ApiToken(rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None


# ---------------------------------------------------------------------------------------------------------------
# Writes


def validate_slug(slug: str, what: str) -> str:
    if not _SLUG.match(slug):
        raise RegistryError(
            f"Invalid {what} slug {slug!r}: use 1 to 50 lowercase letters, digits, '-' or '_', starting with a "
            "letter or digit, and not only digits."
        )
    return slug


def validate_id(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise RegistryError(f"Invalid {what} id {value!r}: it must be a positive 64-bit integer.")
    return value


def validate_feature(feature: str) -> str:
    if len(feature) > 200 or not _FEATURE.match(feature):
        raise RegistryError(
            f"Invalid feature {feature!r}: features look like 'organizations:profile-file-io-main-thread-ingest' "
            "(a scope, ':', then lowercase letters, digits, '.', '-' or '_'; at most 200 characters)."
        )
    return feature


def default_organization_slug(organization_id: int) -> str:
    return f"org-{organization_id}"


@dataclass(frozen=True)
class Registration:
    """What :func:`register_project` did."""

    project: ProjectInfo
    project_created: bool
    organization_created: bool
    project_features: tuple[str, ...]


def register_project(
    database: Database,
    *,
    project_id: int,
    organization_id: int,
    slug: str,
    organization_slug: str | None = None,
    features: Iterable[str] | None = None,
) -> Registration:
    """Insert or update a project and its organization in one transaction.

    The organization is created when missing, with ``organization_slug`` or ``org-<id>``; an existing
    organization keeps its slug unless ``organization_slug`` is given. ``features`` replace the project's
    features; None keeps them (none for a new project). A project cannot move to another organization, and
    slugs are unique (organizations globally, projects within their organization).
    """
    validate_id(project_id, "project")
    validate_id(organization_id, "organization")
    validate_slug(slug, "project")
    if organization_slug is not None:
        validate_slug(organization_slug, "organization")
    wanted_features = None if features is None else tuple(sorted({validate_feature(f) for f in features}))

    def work(transaction: Transaction) -> Registration:
        return _register(transaction, project_id, organization_id, slug, organization_slug, wanted_features)

    registration: Registration = database.run_in_transaction(work)
    return registration


def register_projects(database: Database, projects: Iterable[ProjectInfo]) -> None:
    """``register_project`` for each of ``projects``, with its organization's slug (when it has one); their
    features are left as they are."""
    for project in projects:
        register_project(
            database,
            project_id=project.project_id,
            organization_id=project.organization_id,
            slug=project.slug,
            organization_slug=project.organization_slug or None,
        )


def _register(
    transaction: Transaction,
    project_id: int,
    organization_id: int,
    slug: str,
    organization_slug: str | None,
    wanted_features: tuple[str, ...] | None,
) -> Registration:
    from google.cloud.spanner import COMMIT_TIMESTAMP, KeySet

    org_rows = list(
        transaction.read("Organizations", ["OrganizationId", "Slug"], KeySet(keys=[[organization_id]]))
    )
    org_slug = org_rows[0][1] if org_rows else None
    new_org_slug = organization_slug or org_slug or default_organization_slug(organization_id)
    if new_org_slug != org_slug:
        owners = list(
            transaction.read(
                "Organizations",
                ["OrganizationId"],
                KeySet(keys=[[new_org_slug]]),
                index="OrganizationsBySlug",
            )
        )
        if owners and owners[0][0] != organization_id:
            raise RegistryError(
                f"Organization slug {new_org_slug!r} is already used by organization {owners[0][0]}; "
                "choose another with --organization-slug."
            )

    project_rows = list(
        transaction.read("Projects", ["OrganizationId", "Slug", "Features"], KeySet(keys=[[project_id]]))
    )
    if project_rows and project_rows[0][0] != organization_id:
        raise RegistryError(
            f"Project {project_id} belongs to organization {project_rows[0][0]}, not {organization_id}: "
            "moving a project to another organization is not supported."
        )
    same_slug = list(
        transaction.read(
            "Projects",
            ["ProjectId"],
            KeySet(keys=[[organization_id, slug]]),
            index="ProjectsByOrganizationSlug",
        )
    )
    if same_slug and same_slug[0][0] != project_id:
        raise RegistryError(
            f"Project slug {slug!r} is already used by project {same_slug[0][0]} of organization "
            f"{organization_id}; choose another slug."
        )

    if not org_rows:
        transaction.insert(
            "Organizations",
            ["OrganizationId", "Slug", "CreatedAt"],
            [[organization_id, new_org_slug, COMMIT_TIMESTAMP]],
        )
    elif new_org_slug != org_slug:
        transaction.update("Organizations", ["OrganizationId", "Slug"], [[organization_id, new_org_slug]])

    if project_rows:
        features = wanted_features if wanted_features is not None else tuple(project_rows[0][2] or ())
        transaction.update(
            "Projects",
            ["ProjectId", "OrganizationId", "Slug", "Features"],
            [[project_id, organization_id, slug, list(features)]],
        )
    else:
        features = wanted_features or ()
        transaction.insert(
            "Projects",
            ["ProjectId", "OrganizationId", "Slug", "Features", "CreatedAt"],
            [[project_id, organization_id, slug, list(features), COMMIT_TIMESTAMP]],
        )

    # The organization's feature union, seen from inside the transaction (other projects + this one's new set).
    others = transaction.execute_sql(
        "SELECT ProjectId, Features FROM Projects WHERE OrganizationId = @org",
        params={"org": organization_id},
        param_types={"org": _int64()},
    )
    union = set(features)
    for other_id, other_features in others:
        if other_id != project_id:
            union.update(other_features or ())
    info = ProjectInfo(
        project_id=project_id,
        organization_id=organization_id,
        slug=slug,
        organization_slug=new_org_slug,
        features=frozenset(union),
    )
    return Registration(info, not project_rows, not org_rows, tuple(features))


def _int64():
    from google.cloud.spanner_v1 import param_types

    return param_types.INT64


def issue_api_token(
    database: Database, *, organization: str | int, scope: str = "read", name: str | None = None
) -> tuple[str, ApiToken]:
    """Create a token for an organization (by id or slug). Returns the token, to show once, and its record."""
    from google.cloud.spanner import COMMIT_TIMESTAMP

    if scope not in SCOPES:
        raise RegistryError(f"Invalid scope {scope!r}: use one of {', '.join(SCOPES)} (write implies read).")
    org = find_organization(database, organization)
    token = TOKEN_PREFIX + secrets.token_hex(TOKEN_HEX_CHARS // 2)
    record = ApiToken(hash_token(token), org.organization_id, scope, name)
    with database.batch() as batch:
        batch.insert(
            "ApiTokens",
            ["TokenHash", "OrganizationId", "Scope", "Name", "CreatedAt"],
            [[record.token_hash, record.organization_id, scope, name, COMMIT_TIMESTAMP]],
        )
    return token, record
