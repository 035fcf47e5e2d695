"""Projects, organizations and API tokens: registration rules, the feature union, token shape and storage."""

from __future__ import annotations

import hashlib
import operator
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from google.cloud.spanner import KeySet

from transforms.core.model import ProjectInfo
from transforms.storage import registry
from transforms.storage.registry import RegistryError, register_project

REPO = Path(__file__).resolve().parents[2]
PROFILING = "organizations:profile-file-io-main-thread-ingest"
CRONS = "organizations:monitor-check-in-failure-ingest"


def test_features_of_a_project_are_the_union_over_its_organization(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="backend", features=[PROFILING])
    register_project(db, project_id=2, organization_id=10, slug="frontend", features=[CRONS])
    register_project(db, project_id=3, organization_id=20, slug="backend")

    projects = registry.read_projects(db)

    assert projects == {
        1: ProjectInfo(1, 10, "backend", "org-10", frozenset({PROFILING, CRONS})),
        2: ProjectInfo(2, 10, "frontend", "org-10", frozenset({PROFILING, CRONS})),
        3: ProjectInfo(3, 20, "backend", "org-20", frozenset()),
    }


def test_registration_returns_the_organization_union_seen_inside_its_transaction(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="a", features=[PROFILING])
    result = register_project(db, project_id=2, organization_id=10, slug="b", features=[CRONS])
    assert result.project_created and not result.organization_created
    assert result.project.features == frozenset({PROFILING, CRONS})
    assert result.project_features == (CRONS,)


def test_given_features_replace_the_projects_omitted_keep_them_empty_clears(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="a", features=[PROFILING, CRONS])
    register_project(db, project_id=1, organization_id=10, slug="renamed")
    assert registry.read_projects(db)[1].features == {PROFILING, CRONS}
    assert registry.read_projects(db)[1].slug == "renamed"
    register_project(db, project_id=1, organization_id=10, slug="renamed", features=[CRONS])
    assert registry.read_projects(db)[1].features == {CRONS}
    register_project(db, project_id=1, organization_id=10, slug="renamed", features=[])
    assert registry.read_projects(db)[1].features == frozenset()


def test_organization_slug_defaults_once_and_is_kept_unless_given(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="a")
    assert registry.read_organizations(db)[10].slug == "org-10"
    register_project(db, project_id=2, organization_id=10, slug="b", organization_slug="acme")
    register_project(db, project_id=3, organization_id=10, slug="c")
    assert registry.read_organizations(db)[10].slug == "acme"
    assert {p.organization_slug for p in registry.read_projects(db).values()} == {"acme"}


def test_project_slug_used_by_another_project_of_the_organization_is_refused(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="backend")
    register_project(db, project_id=2, organization_id=20, slug="backend")  # other organization: allowed
    with pytest.raises(RegistryError, match="'backend' is already used by project 1 of organization 10"):
        register_project(db, project_id=3, organization_id=10, slug="backend")
    assert set(registry.read_projects(db)) == {1, 2}


def test_organization_slug_used_by_another_organization_is_refused(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="a", organization_slug="acme")
    with pytest.raises(RegistryError, match="'acme' is already used by organization 10"):
        register_project(db, project_id=2, organization_id=20, slug="b", organization_slug="acme")
    assert set(registry.read_organizations(db)) == {10}


def test_a_project_cannot_move_to_another_organization(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="a")
    with pytest.raises(RegistryError, match="Project 1 belongs to organization 10, not 20"):
        register_project(db, project_id=1, organization_id=20, slug="a")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slug": "Back End"}, "Invalid project slug 'Back End'"),
        ({"slug": "123"}, "not only digits"),
        ({"slug": "a" * 51}, "Invalid project slug"),
        ({"organization_slug": "ACME"}, "Invalid organization slug 'ACME'"),
        ({"project_id": 0}, "Invalid project id 0"),
        ({"organization_id": -5}, "Invalid organization id -5"),
        ({"features": ["profiling"]}, "Invalid feature 'profiling'"),
        ({"features": ["organizations:Bad Feature"]}, "Invalid feature"),
    ],
)
def test_invalid_registrations_are_refused_before_touching_spanner(kwargs: dict, message: str) -> None:
    args = {"project_id": 1, "organization_id": 1, "slug": "ok", **kwargs}
    with pytest.raises(RegistryError, match=re.escape(message)):
        register_project(None, **args)  # type: ignore[arg-type]


def test_api_token_has_sentrys_user_token_shape_and_only_its_hash_is_stored(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="a", organization_slug="acme")

    token, record = registry.issue_api_token(db, organization="acme", scope="write", name="ci")
    other, _ = registry.issue_api_token(db, organization="10")

    assert re.fullmatch(r"sntryu_[0-9a-f]{64}", token)
    assert token != other
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
    with db.snapshot() as snapshot:
        rows = list(
            snapshot.read("ApiTokens", ["TokenHash", "OrganizationId", "Scope", "Name"], KeySet(all_=True))
        )
    assert sorted(rows) == sorted(
        [
            [record.token_hash, 10, "write", "ci"],
            [hashlib.sha256(other.encode()).hexdigest(), 10, "read", None],
        ]
    )
    assert not any(token in str(value) or token[7:] in str(value) for row in rows for value in row)


def test_issued_token_is_found_by_lookup_and_others_are_not(spanner_db) -> None:
    db = spanner_db.database
    register_project(db, project_id=1, organization_id=10, slug="a")
    token, record = registry.issue_api_token(db, organization=10, scope="read")
    assert registry.lookup_api_token(db, token) == record
    assert registry.lookup_api_token(db, "sntryu_" + "0" * 64) is None
    assert registry.lookup_api_token(db, token.upper()) is None
    assert registry.lookup_api_token(db, token[:-1]) is None


def test_token_for_an_unknown_organization_or_scope_is_refused(spanner_db) -> None:
    db = spanner_db.database
    with pytest.raises(RegistryError, match="Organization 'nobody' is not registered"):
        registry.issue_api_token(db, organization="nobody")
    register_project(db, project_id=1, organization_id=10, slug="a")
    with pytest.raises(RegistryError, match="Invalid scope 'admin'"):
        registry.issue_api_token(db, organization=10, scope="admin")


def _admin(spanner_db, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.admin", *args, *spanner_db.pipeline_args()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_admin_cli_registers_projects_lists_them_and_issues_a_token(spanner_db) -> None:
    first = _admin(
        spanner_db,
        "add-project",
        "--project-id=1",
        "--organization-id=10",
        "--slug=backend",
        "--organization-slug=acme",
        f"--feature={PROFILING}",
    )
    assert first.returncode == 0, first.stderr
    assert "project 1 (backend) registered in organization 10 (acme, new)" in first.stdout
    second = _admin(
        spanner_db,
        "add-project",
        "--project-id=2",
        "--organization-id=10",
        "--slug=web",
        f"--feature={CRONS}",
    )
    assert second.returncode == 0, second.stderr
    assert f"organization features: {CRONS}, {PROFILING}" in second.stdout

    listing = _admin(spanner_db, "list-projects")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[1].split() == ["1", "backend", "10", "acme", f"{CRONS},", PROFILING]
    assert lines[2].split() == ["2", "web", "10", "acme", f"{CRONS},", PROFILING]

    token = _admin(spanner_db, "create-token", "--organization=acme", "--scope=write", "--name=ci")
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"sntryu_[0-9a-f]{64}\n", token.stdout)
    assert "shown only this once" in token.stderr
    found = registry.lookup_api_token(spanner_db.database, token.stdout.strip())
    assert found is not None and (found.organization_id, found.scope, found.name) == (10, "write", "ci")


def test_admin_cli_rejects_a_conflicting_slug_with_a_clear_message(spanner_db) -> None:
    assert (
        _admin(spanner_db, "add-project", "--project-id=1", "--organization-id=10", "--slug=api").returncode
        == 0
    )
    result = _admin(spanner_db, "add-project", "--project-id=2", "--organization-id=10", "--slug=api")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "admin: Project slug 'api' is already used by project 1 of organization 10; choose another slug."
    )


def test_the_registry_view_is_what_beam_serialises_for_the_runner_and_a_beam_that_does_not_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``AsRegistry`` gives its side input a view of its own through Beam's ``_side_input_data`` hook: on the
    installed Beam that view is what ``to_runner_api`` carries (checked when the view is made); on a Beam that
    took views from elsewhere, building the pipeline fails and says why."""
    import apache_beam as beam
    from apache_beam import pvalue

    from transforms import registry_source
    from transforms.applier import SpannerTarget

    target = SpannerTarget("p", "i", "d", 1000)
    snapshots = beam.Pipeline() | beam.Create([registry_source.RegistrySnapshot(1.0, {})])
    monkeypatch.setattr(registry_source, "_view_hook_checked", threading.Event())
    registry_source.AsRegistry(snapshots, target)
    assert registry_source._view_hook_checked.is_set()

    monkeypatch.setattr(registry_source, "_view_hook_checked", threading.Event())
    monkeypatch.setattr(
        pvalue.AsSideInput,
        "to_runner_api",
        lambda self, context: pvalue.AsIter._side_input_data(self).to_runner_api(context),
    )
    with pytest.raises(RuntimeError, match="no longer takes the view from _side_input_data"):
        registry_source.AsRegistry(snapshots, target)


class _MappingView(Mapping):
    """What ``RegistryView`` was: a mapping whose ``in`` and ``get`` are ``Mapping``'s own."""

    def __init__(self, projects: dict) -> None:
        self._projects = projects

    def __getitem__(self, key):
        return self._projects[key]

    def __iter__(self):
        return iter(self._projects)

    def __len__(self) -> int:
        return len(self._projects)


def _outcome(function, *args):
    try:
        return "value", function(*args)
    except Exception as error:  # the kind of error is part of the semantics
        return "error", type(error)


def test_the_registry_views_in_and_get_are_mappings_for_every_key_and_follow_its_mapping() -> None:
    """``RegistryView``'s ``in`` and ``get`` go to the dict it wraps (one C call each): they answer as
    ``Mapping``'s own for any key (equal numbers, other types, unhashable ones), see the dict's later changes,
    and so does a copy of the view (pickled, copied or deep-copied) with its own dict."""
    import copy
    import pickle

    from transforms.registry_source import RegistryView

    project = ProjectInfo(1, 10, "backend")
    keys = [1, 1.0, True, 2, "1", None, (1,), b"1", [1], {1: 1}]
    projects = {1: project}
    view, reference = RegistryView(projects), _MappingView(projects)

    def same() -> None:
        for key in keys:
            assert _outcome(operator.contains, view, key) == _outcome(operator.contains, reference, key), key
            assert _outcome(view.get, key) == _outcome(reference.get, key), key
            assert _outcome(view.get, key, "absent") == _outcome(reference.get, key, "absent"), key

    same()
    projects[2] = ProjectInfo(2, 10, "api")  # the registry's dict, changed after the view was made
    same()
    assert view.get(2) is projects[2] and 2 in view
    for made in (pickle.loads(pickle.dumps(view)), copy.copy(view), copy.deepcopy(view)):
        own = made._projects
        own[3] = ProjectInfo(3, 10, "web")  # only this copy's dict has it
        assert (3 in made, made.get(3), made[3]) == (True, own[3], own[3])
        del own[3]
        assert (3 in made, made.get(3)) == (False, None)
