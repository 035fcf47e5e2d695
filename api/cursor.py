"""Keyset cursors for the issue list.

A page is identified by the sort key of the row it starts after (None: the first page). Sort keys are total:
they end with the group id, so rows with equal dates or counts still have one order and a page boundary never
drops or repeats a row, whatever is written between two requests. A cursor also carries the start keys of the
pages before it (at most ``HISTORY`` of them), so the ``previous`` link is served by the same forward range
read as ``next``: Spanner reads an index in one direction only, and reading backwards from a key would mean
reading everything before it. Past ``HISTORY`` pages back, ``previous`` leads to the first page.

The string form is opaque to clients (URL-safe base64 of a small JSON array), as Sentry's cursors are.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

VERSION = 1
HISTORY = 10
# The length of each sort's key: (sort value, group id), or (priority rank, last seen, group id).
KEY_LENGTHS = {"date": 2, "new": 2, "freq": 2, "priority": 3}
_MAX_CURSOR_CHARS = 4096
_INT64 = (-(2**63), 2**63 - 1)

SortKey = tuple[int, ...]


class CursorError(ValueError):
    """A cursor that cannot be used; ``str()`` is the message for the user (an HTTP 400 ``detail``)."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """The page starting after ``after`` (None: the first page) of a list sorted by ``sort``.

    ``back`` holds the ``after`` of the pages before this one, the nearest first.
    """

    sort: str
    after: SortKey | None = None
    back: tuple[SortKey | None, ...] = ()

    def next(self, last: SortKey) -> Cursor:
        """The cursor of the page after this one, which ends with the row keyed ``last``."""
        return Cursor(self.sort, last, ((self.after, *self.back))[:HISTORY])

    def previous(self) -> Cursor | None:
        """The cursor of the page before this one; None on the first page."""
        if self.after is None:
            return None
        if self.back:
            return Cursor(self.sort, self.back[0], self.back[1:])
        return Cursor(self.sort)

    def encode(self) -> str:
        body = orjson.dumps([VERSION, self.sort, self.after, list(self.back)])
        return base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")


def first_page(sort: str) -> Cursor:
    return Cursor(sort)


def decode(text: str, sort: str) -> Cursor:
    """The cursor ``text`` for a list sorted by ``sort``; raises ``CursorError`` for anything else."""
    if len(text) > _MAX_CURSOR_CHARS:
        raise CursorError("Invalid cursor parameter: too long.")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        body = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise CursorError("Invalid cursor parameter.") from None
    if not (isinstance(body, list) and len(body) == 4 and body[0] == VERSION):
        raise CursorError("Invalid cursor parameter.")
    _, cursor_sort, after, back = body
    if cursor_sort not in KEY_LENGTHS:
        raise CursorError("Invalid cursor parameter.")
    if cursor_sort != sort:
        raise CursorError(f"Invalid cursor parameter: it belongs to sort={cursor_sort}, not sort={sort}.")
    if not isinstance(back, list) or len(back) > HISTORY:
        raise CursorError("Invalid cursor parameter.")
    return Cursor(sort, _key(after, sort), tuple(_key(item, sort) for item in back))


def _key(value: object, sort: str) -> SortKey | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != KEY_LENGTHS[sort]
        or not all(type(part) is int and _INT64[0] <= part <= _INT64[1] for part in value)
    ):
        raise CursorError("Invalid cursor parameter.")
    return tuple(value)
