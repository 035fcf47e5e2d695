"""Applying schemas/spanner.sql: every table and index is created, and re-running changes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import admin
from pipeline.options import spanner_args
from transforms.storage import clients, schema
from transforms.storage.schema import SchemaError, SchemaObject, schema_object, split_statements

REPO = Path(__file__).resolve().parents[2]


def test_split_statements_strips_comments_but_not_quoted_text() -> None:
    text = """
    -- a comment; with a semicolon
    CREATE TABLE A (
      X STRING(MAX) NOT NULL DEFAULT ('--not a comment; nor a separator'),  -- trailing comment
    ) PRIMARY KEY (X);
    # hash comment
    CREATE INDEX `AByX` ON A (X);
    """
    assert split_statements(text) == [
        "CREATE TABLE A (\n      X STRING(MAX) NOT NULL DEFAULT ('--not a comment; nor a separator'),\n"
        "    ) PRIMARY KEY (X)",
        "CREATE INDEX `AByX` ON A (X)",
    ]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "CREATE TABLE `Groups` (\n  GroupId INT64 NOT NULL,\n) PRIMARY KEY (GroupId)",
            SchemaObject("table", "Groups"),
        ),
        ("create table if not exists Foo (X INT64) PRIMARY KEY (X)", SchemaObject("table", "Foo")),
        (
            "CREATE UNIQUE INDEX OrganizationsBySlug ON Organizations (Slug)",
            SchemaObject("index", "OrganizationsBySlug"),
        ),
        ("CREATE NULL_FILTERED INDEX ByX ON T (X) STORING (Y)", SchemaObject("index", "ByX")),
        ("ALTER TABLE `Groups` ADD COLUMN Extra STRING(MAX)", SchemaObject("column", "Groups.Extra")),
    ],
)
def test_schema_object_names_what_a_statement_creates(statement: str, expected: SchemaObject) -> None:
    assert schema_object(statement) == expected


def test_statements_whose_effect_cannot_be_checked_are_refused() -> None:
    with pytest.raises(SchemaError, match="Cannot tell whether this DDL statement is applied"):
        schema_object("ALTER TABLE Groups DROP COLUMN Title")


def test_packaged_schema_is_only_statements_the_admin_can_apply() -> None:
    objects = [schema_object(s) for s in schema.load_statements()]
    assert len({o.key for o in objects}) == len(objects)
    assert {"Groups", "Projects", "Organizations", "ApiTokens"} <= {
        o.name for o in objects if o.kind == "table"
    }


def _ddl_objects() -> tuple[set[str], set[str]]:
    """Table and index names declared in the DDL file, read with a regex independent of transforms.storage.schema."""
    text = (REPO / "schemas" / "spanner.sql").read_text()
    tables = set(re.findall(r"^CREATE TABLE `?(\w+)`? \(", text, re.MULTILINE))
    indexes = set(re.findall(r"^CREATE (?:UNIQUE )?(?:NULL_FILTERED )?INDEX (\w+) ON", text, re.MULTILINE))
    return tables, indexes


def _admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.admin", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_create_database_creates_every_table_and_index_then_reports_up_to_date(spanner_instance: str) -> None:
    where = ["--spanner_project=test-project", f"--spanner_instance={spanner_instance}"]
    database_id = "admin-cli-create"
    tables, indexes = _ddl_objects()
    try:
        first = _admin("create-database", *where, f"--spanner_database={database_id}")
        assert first.returncode == 0, first.stderr
        assert (
            first.stdout.strip()
            == f"database {database_id} created: {len(tables)} tables, {len(indexes)} indexes"
        )

        existing = schema.existing_objects(
            clients.spanner_database("test-project", spanner_instance, database_id)
        )
        assert {name for kind, name in existing if kind == "table"} == {t.lower() for t in tables}
        assert {name for kind, name in existing if kind == "index"} == {i.lower() for i in indexes}

        second = _admin("create-database", *where, f"--spanner_database={database_id}")
        assert second.returncode == 0, second.stderr
        assert (
            second.stdout.strip()
            == f"database {database_id} is up to date: {len(tables)} tables, {len(indexes)} indexes"
        )
    finally:
        admin.drop_database("test-project", spanner_instance, database_id)


def test_appended_statements_are_applied_once_and_nothing_else(spanner_instance: str) -> None:
    statements = schema.load_statements()
    database_id = "admin-evolve"
    try:
        partial = admin.create_database("test-project", spanner_instance, database_id, statements[:-3])
        assert partial.created
        evolved = [*statements, "ALTER TABLE Releases ADD COLUMN Note STRING(MAX)"]
        result = admin.create_database("test-project", spanner_instance, database_id, evolved)
        assert not result.created
        assert list(result.applied) == [schema_object(s).name for s in statements[-3:]] + ["Releases.Note"]
        again = admin.create_database("test-project", spanner_instance, database_id, evolved)
        assert again.applied == ()
        tables, indexes = _ddl_objects()
        assert again.summary().endswith(f"is up to date: {len(tables)} tables, {len(indexes)} indexes")
    finally:
        admin.drop_database("test-project", spanner_instance, database_id)


def test_create_database_with_a_schema_file_reports_what_it_applied(spanner_db, tmp_path: Path) -> None:
    extra = tmp_path / "extra.sql"
    extra.write_text(
        (REPO / "schemas" / "spanner.sql").read_text()
        + "\n-- appended later\nCREATE INDEX ReleasesByTime ON Releases (FirstSeen);\n"
    )
    result = _admin(
        "create-database",
        *spanner_args(spanner_db.project, spanner_db.instance, spanner_db.database_id),
        f"--schema={extra}",
    )
    assert result.returncode == 0, result.stderr
    tables, indexes = _ddl_objects()
    assert result.stdout.strip() == (
        f"database {spanner_db.database_id} updated: applied ReleasesByTime; "
        f"now {len(tables)} tables, {len(indexes) + 1} indexes"
    )


def test_spanner_db_fixture_gives_each_test_an_empty_database_with_the_schema(spanner_db) -> None:
    with spanner_db.database.snapshot() as snapshot:
        rows = list(snapshot.execute_sql("SELECT COUNT(*) FROM `Groups`"))
    assert rows == [[0]]
    assert spanner_db.pipeline_args()[-1] == f"--spanner_database={spanner_db.database_id}"


def test_admin_commands_on_a_missing_database_say_how_to_create_it(spanner_instance: str) -> None:
    result = _admin(
        "list-projects",
        "--spanner_project=test-project",
        f"--spanner_instance={spanner_instance}",
        "--spanner_database=missing-db",
    )
    assert result.returncode == 2
    assert "Database missing-db does not exist" in result.stderr
    assert "create-database" in result.stderr


def test_admin_without_a_running_emulator_fails_fast_with_a_hint() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.admin", "create-database"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SPANNER_EMULATOR_HOST": f"localhost:{port}", "HOME": "/nonexistent"},
    )
    assert result.returncode == 2
    assert f"Cannot reach the Spanner emulator at SPANNER_EMULATOR_HOST=localhost:{port}" in result.stderr
    assert "python -m pipeline.stack start" in result.stderr
