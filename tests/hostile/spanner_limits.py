"""The limits of real Spanner that a planned row must respect, checked against our schema (a test oracle).

The emulator enforces some of them (key size, STRING(MAX) length) and not others (JSON nesting and size, the
RFC 3339 form of a timestamp it is sent as text): ``violations`` checks them all on the rows the writer
plans, in their wire form (``transforms.storage.spanner_rows``), so the fast hostile tests need no server.
``refusal`` gives the error Spanner answers such a row with (the emulator's type and text where it enforces
the limit), so that the in-memory store (``tests/memory_store.py``) refuses what Spanner refuses.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from google.api_core import exceptions as api_exceptions

from transforms.core import limits
from transforms.storage.spanner_rows import COMMIT_TIMESTAMP

_MIN_INT64, _MAX_INT64 = -(1 << 63), (1 << 63) - 1
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # INT64, STRING, BYTES, JSON, TIMESTAMP, BOOL, ARRAY<STRING>
    length: int | None  # STRING(n) / BYTES(n); None for MAX
    not_null: bool


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...]  # the key columns of each secondary index (base key appended)
    parent: str | None = None  # the table it is interleaved in (ON DELETE CASCADE)


@dataclass(frozen=True)
class Violation:
    """One limit a row breaks: ``problem`` in our words, and the error Spanner answers the commit with."""

    problem: str
    error: type[api_exceptions.GoogleAPICallError]
    spanner_message: str

    def refusal(self) -> api_exceptions.GoogleAPICallError:
        return self.error(self.spanner_message)


_TYPE = re.compile(r"(ARRAY<)?(\w+)(?:\((\d+|MAX)\))?>?")


def _column(text: str) -> Column | None:
    text = text.strip().rstrip(",")
    if not text or text.upper().startswith(("PRIMARY KEY", "CONSTRAINT", ")")):
        return None
    name, _, rest = text.replace("`", "").partition(" ")
    match = _TYPE.match(rest.strip())
    if not match:
        return None
    array, base, length = match.groups()
    kind = f"ARRAY<{base}>" if array else base
    return Column(name, kind, None if length in (None, "MAX") else int(length), "NOT NULL" in rest.upper())


@functools.cache
def schema() -> dict[str, Table]:
    ddl = resources.files("schemas").joinpath("spanner.sql").read_text()
    ddl = "\n".join(line.split("--", 1)[0] for line in ddl.splitlines())
    tables: dict[str, Table] = {}
    for statement in ddl.split(";"):
        statement = statement.strip()
        create = re.match(
            r"CREATE TABLE `?(\w+)`? \((.*)\) PRIMARY KEY \(([^)]*)\)(?:,\s*INTERLEAVE IN PARENT `?(\w+)`?)?",
            statement,
            re.S,
        )
        if create:
            name, body, key, parent = create.groups()
            columns = {}
            for line in body.splitlines():
                column = _column(line)
                if column:
                    columns[column.name] = column
            primary = tuple(part.strip().strip("`") for part in key.split(","))
            tables[name] = Table(name, columns, primary, (), parent)
            continue
        alter = re.match(r"ALTER TABLE `?(\w+)`? ADD COLUMN (.*)", statement, re.S)
        if alter:
            column = _column(alter.group(2))
            if column:
                tables[alter.group(1)].columns[column.name] = column
            continue
        index = re.match(
            r"CREATE (?:UNIQUE )?(?:NULL_FILTERED )?INDEX \w+ ON `?(\w+)`? \(([^)]*)\)", statement
        )
        if index:
            table = tables[index.group(1)]
            keys = tuple(part.split()[0].strip("`") for part in index.group(2).split(","))
            entry = tuple(dict.fromkeys(keys + table.primary_key))  # the base key completes the entry's key
            tables[table.name] = Table(
                table.name, table.columns, table.primary_key, (*table.indexes, entry), table.parent
            )
    return tables


def _key_bytes(table: Table, columns: tuple[str, ...], row: dict[str, Any]) -> int | None:
    total = 0
    for name in columns:
        if name not in row:
            return None  # a partial row (an update of some columns): its key was checked when it was written
        value = row[name]
        if value is None:
            continue
        total += len(value.encode("utf-8")) if table.columns[name].type == "STRING" else 8
    return total


def violations(table_name: str, columns: tuple[str, ...], values: tuple[Any, ...]) -> list[str]:
    """What real Spanner would refuse in one planned row (empty when it would accept it)."""
    return [violation.problem for violation in row_violations(table_name, columns, values)]


def refusal(
    table_name: str, columns: Sequence[str], values: Sequence[Any]
) -> api_exceptions.GoogleAPICallError | None:
    """The error Spanner refuses one written row with, or None when it takes it."""
    for violation in row_violations(table_name, columns, values):
        return violation.refusal()
    return None


def commit_refusal(mutation_count: int) -> api_exceptions.GoogleAPICallError | None:
    """The error Spanner refuses a commit of ``mutation_count`` mutations (index entries included) with."""
    if mutation_count <= limits.SPANNER_MAX_MUTATIONS_PER_COMMIT:
        return None
    return api_exceptions.InvalidArgument(
        f"The transaction contains too many mutations ({mutation_count}). Insert and update operations count "
        "with the multiplicity of the number of columns they affect; the total includes index changes. "
        f"(Maximum number: {limits.SPANNER_MAX_MUTATIONS_PER_COMMIT})"
    )


def row_violations(table_name: str, columns: Sequence[str], values: Sequence[Any]) -> list[Violation]:
    table = schema()[table_name]
    row = dict(zip(columns, values))
    found = []
    for name, value in row.items():
        column = table.columns[name]
        where = f"{table_name}.{name}"
        if value is None:
            if column.not_null:
                found.append(
                    Violation(
                        f"{where} is NOT NULL, got null",
                        api_exceptions.FailedPrecondition,
                        f"Cannot specify a null value for column: {where} in table: {table_name}",
                    )
                )
            continue
        for problem, size, limit in _value_problems(column, value):
            if size is None:
                found.append(
                    Violation(
                        f"{where} {problem}",
                        api_exceptions.InvalidArgument,
                        f"Invalid value for column {name} in table {table_name}: {problem}",
                    )
                )
            else:
                found.append(
                    Violation(
                        f"{where} {problem}",
                        api_exceptions.FailedPrecondition,
                        "New value exceeds the maximum size limit for this column: "
                        f"{where}, size: {size}, limit: {limit}.",
                    )
                )
    for key in (table.primary_key, *table.indexes):
        size = _key_bytes(table, key, row)
        if size is not None and size > limits.SPANNER_MAX_KEY_BYTES:
            of = f"table {table_name}" if key == table.primary_key else f"an index of table {table_name}"
            found.append(
                Violation(
                    f"{table_name} key {key} is {size} bytes, more than {limits.SPANNER_MAX_KEY_BYTES}",
                    api_exceptions.InvalidArgument,
                    f"Number of bytes for key of {of} is {size} which exceeds the maximum of "
                    f"{limits.SPANNER_MAX_KEY_BYTES}.",
                )
            )
    return found


# A problem of one value: what is wrong, and for a size over a limit the size and the limit (Spanner's units).
Problem = tuple[str, int | None, int | None]


def _value_problems(column: Column, value: Any) -> list[Problem]:
    kind = column.type
    if kind == "INT64":
        number = int(value)
        return (
            [] if _MIN_INT64 <= number <= _MAX_INT64 else [(f"{number} is out of INT64's range", None, None)]
        )
    if kind == "STRING":
        return _string_problems(value, column.length)
    if kind == "ARRAY<STRING>":
        problems = [problem for item in value for problem in _string_problems(item, column.length)]
        total = sum(len(item.encode("utf-8", "surrogatepass")) for item in value)
        if total > limits.SPANNER_MAX_CELL_BYTES:
            problems.append(
                (
                    f"is an array of {total} bytes, more than a cell's {limits.SPANNER_MAX_CELL_BYTES}",
                    total,
                    limits.SPANNER_MAX_CELL_BYTES,
                )
            )
        return problems
    if kind == "BYTES":
        size = len(base64.b64decode(value))
        if size <= limits.SPANNER_MAX_CELL_BYTES:
            return []
        return [(f"is {size} bytes, more than a cell holds", size, limits.SPANNER_MAX_CELL_BYTES)]
    if kind == "JSON":
        return _json_problems(value)
    if kind == "TIMESTAMP":
        if value == COMMIT_TIMESTAMP:
            return []
        match = _TIMESTAMP.fullmatch(value)
        if not match or not 1 <= int(match.group(1)) <= 9999:
            return [(f"{value!r} is not an RFC 3339 UTC timestamp within years 0001 to 9999", None, None)]
        return []
    return []


def _string_problems(value: str, length: int | None) -> list[Problem]:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return [("is not valid UTF-8 (a lone surrogate)", None, None)]
    limit = length if length is not None else limits.SPANNER_MAX_STRING_CHARS
    problems: list[Problem] = []
    if len(value) > limit:  # Spanner counts a STRING(n) in characters
        problems.append((f"has {len(value)} characters, more than {limit}", len(value), limit))
    if size > limits.SPANNER_MAX_CELL_BYTES:
        problems.append(
            (
                f"is {size} bytes, more than a cell's {limits.SPANNER_MAX_CELL_BYTES}",
                size,
                limits.SPANNER_MAX_CELL_BYTES,
            )
        )
    return problems


def _json_problems(text: str) -> list[Problem]:
    size = len(text.encode("utf-8"))
    problems: list[Problem] = []
    if size > limits.SPANNER_MAX_JSON_BYTES:
        problems.append(
            (
                f"is a JSON document of {size} bytes, more than {limits.SPANNER_MAX_JSON_BYTES}",
                size,
                limits.SPANNER_MAX_JSON_BYTES,
            )
        )
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return [*problems, (f"is not a JSON document Spanner can read: {error}", None, None)]
    if text.count("{") + text.count("[") <= limits.SPANNER_MAX_JSON_DEPTH:
        return problems  # too few brackets to be nested too deep
    depth = limits.nesting_depth(document, limits.SPANNER_MAX_JSON_DEPTH)
    if depth > limits.SPANNER_MAX_JSON_DEPTH:
        problems.append(
            (f"is JSON nested {depth} levels deep, more than {limits.SPANNER_MAX_JSON_DEPTH}", None, None)
        )
    return problems
