"""The text of a query: terms as written (``tokenize``), the values inside them (wildcards and escapes),
and the errors a query can raise (``QueryError``, a 400 naming the term and its position)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from api import request_limits

_KEY_RE = re.compile(r"(!?)(tags\[[^\]\s]*\]|[A-Za-z0-9_.\-]+):")
_AGGREGATE_RE = re.compile(r"!?([A-Za-z0-9_.\-]+)\(([^()\s]*)\):")
_EVENT_ID_RE = re.compile(
    r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# A wildcard is an asterisk after an even number of backslashes (Sentry's WILDCARD_CHARS).
_WILDCARD_RE = re.compile(r"(?<!\\)(\\\\)*\*")
BOOLEAN_OPERATORS = 'Boolean statements containing "OR" or "AND" are not supported in this search'


class QueryError(ValueError):
    """A query the index cannot run; ``str()`` is the message for the user (an HTTP 400 ``detail``)."""

    def __init__(self, message: str, position: int | None = None, term: str | None = None) -> None:
        self.message = message
        self.position = position
        self.term = term
        if position is None:
            detail = message
        else:
            detail = f'{message} at position {position} ("{clip(term or "")}")'
        super().__init__(f"Invalid search query: {detail}")


def clip(text: str, width: int = 60) -> str:
    """``text`` shortened for an error message."""
    return text if len(text) <= width else text[: width - 3] + "..."


def is_wildcard(value: str) -> bool:
    return bool(_WILDCARD_RE.search(value))


def unescape(value: str) -> str:
    """A value that is not a wildcard, with ``\\*`` read as a literal asterisk (Sentry's escape sequences)."""
    return value.replace("\\*", "*")


def wildcard_regex(value: str, *, anchored: bool) -> re.Pattern[str]:
    """Sentry's translate_wildcard: ``*`` is any text, a backslash escapes the next character; matched
    case-insensitively, against the whole value when ``anchored``, anywhere in it otherwise."""
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else re.escape(char))
        i += 1
    body = "".join(out)
    return re.compile(f"^{body}$" if anchored else body, re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class Term:
    """One term as written: ``key`` is None for free text; ``values`` has one item unless ``is_list``."""

    key: str | None
    values: tuple[str, ...]
    negated: bool
    quoted: bool
    is_list: bool
    start: int
    text: str

    def error(self, message: str) -> QueryError:
        return QueryError(message, self.start, self.text)

    @property
    def value(self) -> str:
        """The single value of a term that takes no list."""
        if self.is_list:
            raise self.error(f'a list is not allowed for "{clip(self.key or "", 30)}"')
        return self.values[0]


def normalize_event_id(query: str) -> str | None:
    """The event id a whole query is (32 hex digits, or a UUID with dashes), in lower-case hex; else None.
    Sentry looks such a query up as an event before searching."""
    text = query.strip()
    if _EVENT_ID_RE.fullmatch(text):
        return text.replace("-", "").lower()
    return None


def tokenize(query: str) -> list[Term]:
    """Split ``query`` into terms (syntax only; keys and values are checked by ``parse_query``). Consecutive
    free-text words are one term (one phrase), as in Sentry."""
    if len(query) > request_limits.MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is {len(query)} characters long (at most {request_limits.MAX_QUERY_CHARS})"
        )
    terms: list[Term] = []
    words: list[tuple[int, int]] = []  # (start, end) of the free-text words of the current phrase

    def flush() -> None:
        if words:
            start, end = words[0][0], words[-1][1]
            text = query[start:end]
            terms.append(Term(None, (text,), False, False, False, start, text))
            words.clear()

    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        start = i
        aggregate = _AGGREGATE_RE.match(query, i)
        if aggregate:
            raise QueryError(
                f"Aggregate filters ({clip(aggregate.group(1), 30)}({clip(aggregate.group(2), 20)})) are not "
                "supported in issue searches",
                start,
                query[start : aggregate.end()],
            )
        match = _KEY_RE.match(query, i)
        if match:
            flush()
            negated, key = match.group(1) == "!", match.group(2)
            i = match.end()
            if i >= n or query[i].isspace():
                raise QueryError(f'missing value after "{clip(key, 40)}:"', start, query[start:i])
            quoted = is_list = False
            if query[i] == '"':
                value, i = _read_quoted(query, i, start)
                values: tuple[str, ...] = (value,)
                quoted = True
            elif query[i] == "[":
                values, i = _read_list(query, i, start)
                is_list = True
            else:
                j = i
                while j < n and not query[j].isspace():
                    j += 1
                values, i = (query[i:j],), j
            if i < n and not query[i].isspace():
                j = i
                while j < n and not query[j].isspace():
                    j += 1
                raise QueryError("unexpected characters after a quoted value or list", start, query[start:j])
            for value in values:
                if len(value.encode("utf-8", "surrogatepass")) > request_limits.MAX_VALUE_BYTES:
                    raise QueryError(
                        f"a value is longer than {request_limits.MAX_VALUE_BYTES} bytes",
                        start,
                        query[start:i],
                    )
            terms.append(Term(key, values, negated, quoted, is_list, start, query[start:i]))
        elif query[i] == '"':
            flush()
            value, i = _read_quoted(query, i, start)
            if i < n and not query[i].isspace():
                raise QueryError("unexpected characters after a quoted phrase", start, query[start : i + 1])
            terms.append(Term(None, (value,), False, True, False, start, query[start:i]))
        else:
            j = i
            while j < n and not query[j].isspace():
                j += 1
            word = query[i:j]
            if word.upper() in ("OR", "AND"):
                raise QueryError(BOOLEAN_OPERATORS, start, word)
            words.append((i, j))
            i = j
    flush()
    return terms


def _read_quoted(query: str, i: int, term_start: int) -> tuple[str, int]:
    """The string quoted at ``query[i] == '"'`` and the index after it. ``\\"`` is a quote; other backslashes
    stay (``\\*`` is then a literal asterisk, as in Sentry)."""
    chars: list[str] = []
    j = i + 1
    while j < len(query):
        char = query[j]
        if char == "\\" and j + 1 < len(query) and query[j + 1] == '"':
            chars.append('"')
            j += 2
            continue
        if char == '"':
            return "".join(chars), j + 1
        chars.append(char)
        j += 1
    raise QueryError("unterminated quoted string", term_start, query[term_start:])


def _read_list(query: str, i: int, term_start: int) -> tuple[tuple[str, ...], int]:
    """The items of the list opened at ``query[i] == '['`` and the index after its ``]``."""
    items: list[str] = []
    j = i + 1
    n = len(query)
    while True:
        while j < n and query[j].isspace():
            j += 1
        if j >= n:
            raise QueryError("unterminated list (missing ']')", term_start, query[term_start:])
        if query[j] == '"':
            item, j = _read_quoted(query, j, term_start)
        else:
            k = j
            while k < n and query[k] not in ",]":
                k += 1
            item, j = query[j:k].strip(), k
        while j < n and query[j].isspace():
            j += 1
        if j >= n:
            raise QueryError("unterminated list (missing ']')", term_start, query[term_start:])
        if not item:
            raise QueryError("Lists should not have empty values", term_start, query[term_start : j + 1])
        items.append(item)
        if len(items) > request_limits.MAX_LIST_VALUES:
            raise QueryError(
                f"a list holds at most {request_limits.MAX_LIST_VALUES} values",
                term_start,
                query[term_start:j],
            )
        if query[j] == "]":
            return tuple(items), j + 1
        if query[j] != ",":
            raise QueryError("expected ',' or ']' in list", term_start, query[term_start : j + 1])
        j += 1
