"""The Spanner schema: reading ``schemas/spanner.sql`` and applying what a database does not have yet.

The DDL file is a list of statements separated by ``;``, with ``--`` comments. The schema evolves by appending
statements, never by editing applied ones: :func:`apply_schema` applies, in file order, each statement whose
object (table, index, or column added by ``ALTER TABLE ... ADD COLUMN``) does not exist yet, so running it on
an up-to-date database changes nothing. It does not compare definitions: an edited ``CREATE TABLE`` of an
existing table is not applied. Object names compare case-insensitively, as Spanner's do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database

DDL_TIMEOUT_S = 300.0


class SchemaError(ValueError):
    """The DDL file has a statement this module cannot apply safely."""


@dataclass(frozen=True)
class SchemaObject:
    """What one DDL statement creates: ``kind`` is ``table``, ``index`` or ``column`` (named ``Table.Column``)."""

    kind: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name.lower())


@dataclass(frozen=True)
class SchemaResult:
    """What :func:`apply_schema` did, and what the database has afterwards."""

    database: str
    created: bool
    applied: tuple[str, ...] = ()  # names of the objects created by this run
    tables: int = 0
    indexes: int = 0
    statements: tuple[str, ...] = field(default=(), repr=False)

    def summary(self) -> str:
        counts = f"{self.tables} tables, {self.indexes} indexes"
        if self.created:
            return f"database {self.database} created: {counts}"
        if self.applied:
            return f"database {self.database} updated: applied {', '.join(self.applied)}; now {counts}"
        return f"database {self.database} is up to date: {counts}"


def default_ddl_text() -> str:
    """The text of the packaged ``schemas/spanner.sql``."""
    return resources.files("schemas").joinpath("spanner.sql").read_text(encoding="utf-8")


def load_statements(path: str | Path | None = None) -> list[str]:
    """The statements of a DDL file (the packaged schema when ``path`` is None)."""
    text = default_ddl_text() if path is None else Path(path).read_text(encoding="utf-8")
    return split_statements(text)


def split_statements(text: str) -> list[str]:
    """Split DDL text on ``;`` and strip ``--`` / ``#`` comments, both ignored inside quotes and backticks."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif ch == "#" or text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [_normalise(s) for s in statements if s.strip()]


def _normalise(statement: str) -> str:
    lines = [line.rstrip() for line in statement.strip().splitlines()]
    return "\n".join(line for line in lines if line.strip())


_IDENT = r"`?([A-Za-z_][A-Za-z0-9_]*)`?"
_IF_NOT_EXISTS = r"(?:IF\s+NOT\s+EXISTS\s+)?"
_TABLE = re.compile(rf"^\s*CREATE\s+TABLE\s+{_IF_NOT_EXISTS}{_IDENT}", re.IGNORECASE)
_INDEX = re.compile(
    rf"^\s*CREATE\s+(?:UNIQUE\s+)?(?:NULL_FILTERED\s+)?INDEX\s+{_IF_NOT_EXISTS}{_IDENT}\s+ON\s+{_IDENT}",
    re.IGNORECASE,
)
_ADD_COLUMN = re.compile(
    rf"^\s*ALTER\s+TABLE\s+{_IDENT}\s+ADD\s+COLUMN\s+{_IF_NOT_EXISTS}{_IDENT}\s", re.IGNORECASE
)


def schema_object(statement: str) -> SchemaObject:
    """What ``statement`` creates. Raises :class:`SchemaError` for statements whose effect cannot be checked."""
    if m := _TABLE.match(statement):
        return SchemaObject("table", m.group(1))
    if m := _INDEX.match(statement):
        return SchemaObject("index", m.group(1))
    if m := _ADD_COLUMN.match(statement):
        return SchemaObject("column", f"{m.group(1)}.{m.group(2)}")
    first_line = statement.splitlines()[0] if statement else statement
    raise SchemaError(
        f"Cannot tell whether this DDL statement is applied already: {first_line!r}. The schema file may hold "
        "only CREATE TABLE, CREATE INDEX and ALTER TABLE ... ADD COLUMN statements (append new ones to evolve "
        "the schema)."
    )


def existing_objects(database: Database) -> set[tuple[str, str]]:
    """The (kind, lowercase name) of every user table, secondary index and column of ``database``."""
    found: set[tuple[str, str]] = set()
    with database.snapshot(multi_use=True) as snapshot:
        for (name,) in snapshot.execute_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '' AND table_type = 'BASE TABLE'"
        ):
            found.add(("table", name.lower()))
        for (name,) in snapshot.execute_sql(
            "SELECT index_name FROM information_schema.indexes WHERE table_schema = '' AND index_type = 'INDEX'"
        ):
            found.add(("index", name.lower()))
        for table, column in snapshot.execute_sql(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ''"
        ):
            found.add(("column", f"{table}.{column}".lower()))
    return found


def apply_schema(database: Database, statements: list[str] | None = None) -> SchemaResult:
    """Create ``database`` with ``statements`` if it does not exist, else apply the statements it lacks.

    ``statements`` defaults to the packaged schema. The instance must exist.
    """
    statements = load_statements() if statements is None else statements
    objects = [schema_object(s) for s in statements]
    if not database.exists():
        database.create().result(DDL_TIMEOUT_S)
        if statements:
            database.update_ddl(statements).result(DDL_TIMEOUT_S)
        return _result(database, created=True, applied=[o.name for o in objects], statements=statements)
    existing = existing_objects(database)
    missing = [(s, o) for s, o in zip(statements, objects) if o.key not in existing]
    if missing:
        database.update_ddl([s for s, _ in missing]).result(DDL_TIMEOUT_S)
    return _result(
        database, created=False, applied=[o.name for _, o in missing], statements=[s for s, _ in missing]
    )


def _result(database: Database, *, created: bool, applied: list[str], statements: list[str]) -> SchemaResult:
    kinds = [kind for kind, _ in existing_objects(database)]
    return SchemaResult(
        database=database.database_id,
        created=created,
        applied=tuple(applied),
        tables=kinds.count("table"),
        indexes=kinds.count("index"),
        statements=tuple(statements),
    )
