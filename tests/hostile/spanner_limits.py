"""The limits of real Spanner that a planned row must respect, checked against our schema (a test oracle).

The emulator enforces some of them (key size, STRING(MAX) length) and not others (JSON nesting and size, the
RFC 3339 form of a timestamp it is sent as text): ``violations`` checks them all on the rows the writer
plans, in their wire form (``transforms.storage.spanner_rows``), so the fast hostile tests need no server.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

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
        create = re.match(r"CREATE TABLE `?(\w+)`? \((.*)\) PRIMARY KEY \(([^)]*)\)", statement, re.S)
        if create:
            name, body, key = create.groups()
            columns = {}
            for line in body.splitlines():
                column = _column(line)
                if column:
                    columns[column.name] = column
            primary = tuple(part.strip().strip("`") for part in key.split(","))
            tables[name] = Table(name, columns, primary, ())
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
            tables[table.name] = Table(table.name, table.columns, table.primary_key, (*table.indexes, entry))
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
    table = schema()[table_name]
    row = dict(zip(columns, values))
    found = []
    for name, value in row.items():
        column = table.columns[name]
        where = f"{table_name}.{name}"
        if value is None:
            if column.not_null:
                found.append(f"{where} is NOT NULL, got null")
            continue
        found.extend(f"{where} {problem}" for problem in _value_problems(column, value))
    for key in (table.primary_key, *table.indexes):
        size = _key_bytes(table, key, row)
        if size is not None and size > limits.SPANNER_MAX_KEY_BYTES:
            found.append(f"{table_name} key {key} is {size} bytes, more than {limits.SPANNER_MAX_KEY_BYTES}")
    return found


def _value_problems(column: Column, value: Any) -> list[str]:
    kind = column.type
    if kind == "INT64":
        number = int(value)
        return [] if _MIN_INT64 <= number <= _MAX_INT64 else [f"{number} is out of INT64's range"]
    if kind == "STRING":
        return _string_problems(value, column.length)
    if kind == "ARRAY<STRING>":
        problems = [problem for item in value for problem in _string_problems(item, column.length)]
        total = sum(len(item.encode("utf-8", "surrogatepass")) for item in value)
        if total > limits.SPANNER_MAX_CELL_BYTES:
            problems.append(
                f"is an array of {total} bytes, more than a cell's {limits.SPANNER_MAX_CELL_BYTES}"
            )
        return problems
    if kind == "BYTES":
        size = len(base64.b64decode(value))
        return [] if size <= limits.SPANNER_MAX_CELL_BYTES else [f"is {size} bytes, more than a cell holds"]
    if kind == "JSON":
        return _json_problems(value)
    if kind == "TIMESTAMP":
        if value == COMMIT_TIMESTAMP:
            return []
        match = _TIMESTAMP.fullmatch(value)
        if not match or not 1 <= int(match.group(1)) <= 9999:
            return [f"{value!r} is not an RFC 3339 UTC timestamp within years 0001 to 9999"]
        return []
    return []


def _string_problems(value: str, length: int | None) -> list[str]:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return ["is not valid UTF-8 (a lone surrogate)"]
    limit = length if length is not None else limits.SPANNER_MAX_STRING_CHARS
    problems = []
    if len(value) > limit:
        problems.append(f"has {len(value)} characters, more than {limit}")
    if size > limits.SPANNER_MAX_CELL_BYTES:
        problems.append(f"is {size} bytes, more than a cell's {limits.SPANNER_MAX_CELL_BYTES}")
    return problems


def _json_problems(text: str) -> list[str]:
    size = len(text.encode("utf-8"))
    problems = []
    if size > limits.SPANNER_MAX_JSON_BYTES:
        problems.append(f"is a JSON document of {size} bytes, more than {limits.SPANNER_MAX_JSON_BYTES}")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return [*problems, f"is not a JSON document Spanner can read: {error}"]
    depth = limits.nesting_depth(document, limits.SPANNER_MAX_JSON_DEPTH)
    if depth > limits.SPANNER_MAX_JSON_DEPTH:
        problems.append(f"is JSON nested {depth} levels deep, more than {limits.SPANNER_MAX_JSON_DEPTH}")
    return problems
