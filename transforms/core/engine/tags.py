"""The tags and the free-text terms of an attached occurrence (the issue index's tag search, its tags
endpoints and its free text).

Tags are what Sentry stores as an event's tags, built from the event fields we keep (rule 1.3), in Sentry's
order, a later source replacing an earlier one of the same key:

1. the event's ``tags`` as Relay normalizes them (``normalize_event_tags``): an ``environment`` tag is taken
   out (it names the environment when the event has none), the keys Sentry sets itself (``release``,
   ``dist``, ``user``, ``filename``, ``function``) are dropped, and of a repeated key the first wins;
2. ``server_name`` (Relay moves the field into the tags);
3. ``level``, ``environment``, ``transaction`` (Sentry's event manager);
4. ``release``, ``dist`` (only with a release) and ``user``: the first of the user's id, username, email and
   IP address (a valid one) as ``id:…``, ``username:…``, ``email:…``, ``ip:…`` (Sentry's ``EventUser``);
5. ``url``: the request's URL without its query and fragment, unless the event has a ``url`` tag (Sentry's
   URL plugin never overrides a tag);
6. the contexts Sentry turns into tags (``ContextType.iter_tags``): ``browser`` ("name version") and
   ``browser.name``, ``os``, ``os.name``, ``os.rooted``, ``runtime``, ``runtime.name``, ``device`` (model),
   ``device.family``, ``gpu.name``, ``gpu.vendor``, ``app.device``, ``monitor.id``, named by the context's
   key and chosen by its ``type`` (the key when absent).

A tag whose key is not 1 to 200 characters of ``[a-zA-Z0-9_.:-]``, or whose value is empty, longer than 200
characters or holds a newline, is dropped, as Relay drops it (``TagEntry``). Relay's user-agent parsing, the
``logger`` and ``site`` fields and exception mechanisms (``handled``, ``mechanism``) have no source here.

Search tags are stored for search only and never listed as a group's tags: the user's ``id``, ``email``,
``username`` and ``ip`` (Sentry's ``user.email:`` and friends match any of them, not only the one the
``user`` tag shows) and the SDK's ``name`` and ``version``. Their keys start with ``@``, which no tag key
can (``SEARCH_KEYS`` maps Sentry's search key to ours).

Terms are the words of an occurrence's search text (title, subtitle and culprit, as ``rows.search_message``
joins them: what Sentry's free text matches): runs of Unicode letters, digits and underscores, lower-cased,
cut to ``TERM_MAX_CHARS``, each once, in order. ``query_terms`` splits a search the same way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from transforms.core.extensions import load_extension
from transforms.core.limits import TAG_KEY_MAX_CHARS, TAG_VALUE_MAX_CHARS, TERM_MAX_CHARS
from transforms.core.model import Event, EventTrees, event_trees, full_event

# Keys of search-only rows start with this, which a tag key cannot (see ``valid_tag``).
SEARCH_PREFIX = "@"
# The free-text terms of a group are stored as the values of this search key.
TEXT_KEY = "@text"
# Sentry's search keys that are answered by a search-only key.
SEARCH_KEYS: dict[str, str] = {
    "user.id": "@user.id",
    "user.email": "@user.email",
    "user.username": "@user.username",
    "user.ip": "@user.ip",
    "sdk.name": "@sdk.name",
    "sdk.version": "@sdk.version",
}

# Keys Sentry sets itself and never takes from an event's tags (sentry.tagstore.base.INTERNAL_TAG_KEYS).
RESERVED_KEYS = frozenset({"release", "dist", "user", "filename", "function"})

_KEY = re.compile(r"[a-zA-Z0-9_.:-]+")
_WORD = re.compile(r"\w+")

# The user fields that make the ``user`` tag, in Sentry's order of priority, with the tag's prefix.
_USER_FIELDS = (("id", "id"), ("username", "username"), ("email", "email"), ("ip_address", "ip"))
# The search keys of the user's fields and of the SDK's, each with the field it takes.
_USER_SEARCH_KEYS = tuple((field, f"{SEARCH_PREFIX}user.{name}") for field, name in _USER_FIELDS)
_SDK_SEARCH_KEYS = (("name", f"{SEARCH_PREFIX}sdk.name"), ("version", f"{SEARCH_PREFIX}sdk.version"))
# Context type -> (tag suffix, fields joined by a space); "" is the tag named by the context's key itself.
_CONTEXT_TAGS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "app": (("device", ("device_app_hash",)),),
    "device": (("", ("model",)), ("family", ("family",))),
    "runtime": (("", ("name", "version")), ("name", ("name",))),
    "browser": (("", ("name", "version")), ("name", ("name",))),
    "os": (("", ("name", "version")), ("name", ("name",)), ("rooted", ("rooted",))),
    "gpu": (("name", ("name",)), ("vendor", ("vendor_name",))),
    "monitor": (("id", ("id",)),),
}

Tags = tuple[tuple[str, str], ...]


def valid_tag(key: str, value: str) -> bool:
    """Relay's rule for a tag: a key of 1 to 200 characters of ``[a-zA-Z0-9_.:-]``, a value of 1 to 200
    characters without a newline."""
    return valid_key(key) and valid_value(value)


def valid_key(key: str) -> bool:
    valid = _VALID_KEYS.get(key)
    if valid is None:
        valid = 0 < len(key) <= TAG_KEY_MAX_CHARS and _KEY.fullmatch(key) is not None
        if len(_VALID_KEYS) > 10_000:
            _VALID_KEYS.clear()
        _VALID_KEYS[key] = valid
    return valid


def valid_value(value: str) -> bool:
    return 0 < len(value) <= TAG_VALUE_MAX_CHARS and "\n" not in value


# Keys already checked (most events repeat a few keys): the regular expression costs more than the lookup.
_VALID_KEYS: dict[str, bool] = {}


def occurrence_tags(level: str, event: Event) -> Tags:
    """The tags Sentry stores for an occurrence of ``level`` with ``event`` (see the module docstring), a whole
    event (not a carried one: ``index_tags`` takes its ``model.full_event``)."""
    tags: dict[str, str] = {}
    environment = event.environment
    for key, value in event.tags:
        if key == "environment":
            if environment is None and value:
                environment = value
            continue
        if key in RESERVED_KEYS or key in tags:
            continue
        tags[key] = value
    if event.server_name is not None:
        tags["server_name"] = event.server_name
    tags["level"] = level
    if environment:
        tags["environment"] = environment
    if event.transaction:
        tags["transaction"] = event.transaction
    if event.release:
        tags["release"] = event.release
        if event.dist:
            tags["dist"] = event.dist
    if event.user:
        user = user_tag(event.user)
        if user is not None:
            tags["user"] = user
    if event.request and "url" not in tags:
        url = event.request.get("url")
        if type(url) is str and url:
            tags["url"] = url.split("#", 1)[0].split("?", 1)[0]
    if event.contexts:
        from_contexts = context_tags(event.contexts)
        if from_contexts:
            tags.update(from_contexts)
    valid_keys = _VALID_KEYS
    # valid_tag in one comprehension: the value's rule, then the key's (its usual case a key already checked)
    return tuple(
        [
            (key, value)
            for key, value in tags.items()
            if 0 < len(value) <= TAG_VALUE_MAX_CHARS
            and "\n" not in value
            and (valid_keys.get(key) or (key not in valid_keys and valid_key(key)))
        ]
    )


def user_tag(user: Mapping[str, Any]) -> str | None:
    """Sentry's ``EventUser.tag_value``: ``id:…``, ``username:…``, ``email:…`` or ``ip:…``, the first present."""
    for field, prefix in _USER_FIELDS:
        value = _user_field(user, field)
        if value is not None:
            return f"{prefix}:{value}"
    return None


def _user_field(user: Mapping[str, Any], field: str) -> str | None:
    value = user.get(field)
    if value is None or value == "" or type(value) in (dict, list, bool):
        return None
    value = str(value)
    if field == "ip_address" and not _valid_ip(value):
        return None
    return value


def _valid_ip(value: str) -> bool:
    """An IPv4 or IPv6 address as Python's ``ipaddress`` reads one (Sentry's ``EventUser`` validates so)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def context_tags(contexts: Mapping[str, Any]) -> Tags:
    """The tags Sentry derives from an event's contexts (``ContextType.iter_tags``)."""
    tags: list[tuple[str, str]] = []
    for alias, context in contexts.items():
        if type(context) is not dict:
            continue
        kind = context.get("type", alias)
        specs = _CONTEXT_TAGS.get(kind) if type(kind) is str else None
        if specs is None:  # most contexts (trace, ...) give no tag
            continue
        for suffix, fields in specs:
            parts = [_context_field(context.get(field)) for field in fields]
            if None in parts:
                continue
            value = " ".join(parts).strip()  # type: ignore[arg-type]
            if value:
                tags.append((f"{alias}.{suffix}" if suffix else alias, value))
    return tuple(tags)


def _context_field(value: Any) -> str | None:
    """A context field as Sentry formats it (booleans as yes/no); missing, empty or nested: None."""
    if value is None or value == "":
        return None
    if value is True or value is False:
        return "yes" if value else "no"
    if type(value) in (str, int, float):
        return str(value)
    return None


def search_tags(event: Event) -> Tags:
    """The search-only tags of ``event`` (a whole event, as for ``occurrence_tags``): ``@user.id``,
    ``@user.email``, ``@user.username``, ``@user.ip``, ``@sdk.name``, ``@sdk.version`` (values that would not be
    valid tag values are left out)."""
    found: list[tuple[str, str]] = []
    user = event.user
    if user:
        for field, key in _USER_SEARCH_KEYS:
            value = _user_field(user, field)
            if value is not None and 0 < len(value) <= TAG_VALUE_MAX_CHARS and "\n" not in value:
                found.append((key, value))
    sdk = event.sdk
    if sdk:
        for field, key in _SDK_SEARCH_KEYS:  # valid_value, inlined
            value = sdk.get(field)
            if type(value) is str and 0 < len(value) <= TAG_VALUE_MAX_CHARS and "\n" not in value:
                found.append((key, value))
    return tuple(found)


def index_tags_python(level: str, event: Event) -> tuple[Tags, Tags]:
    """``(occurrence_tags(level, event), search_tags(event))`` of the whole event (``model.full_event``: a
    carried event's trees are in its JSON text): what an attached occurrence indexes."""
    event = full_event(event)
    return occurrence_tags(level, event), search_tags(event)


def index_tags_native(level: str, event: Event) -> tuple[Tags, Tags]:
    """``index_tags_python``'s answer, by the C extension where it is sure of it (the usual event), else by
    ``index_tags_python`` itself: never a different answer (tests/engine/test_native_tags.py)."""
    found: tuple[Tags, Tags] | None = _native.index_tags(level, event)
    return index_tags_python(level, event) if found is None else found


# The C extension (``_tags.c``, built by setup.py where a compiler exists) or None; it takes this module's
# rules and tables, so each lives here only.
_native: Any = load_extension(__package__ or "transforms.core.engine", "_tags", "Occurrence tags")
if _native is not None:
    _native.configure(
        Event,
        _valid_ip,
        TAG_KEY_MAX_CHARS,
        TAG_VALUE_MAX_CHARS,
        RESERVED_KEYS,
        _CONTEXT_TAGS,
        _USER_FIELDS,
        _USER_SEARCH_KEYS,
        _SDK_SEARCH_KEYS,
        EventTrees,
        event_trees,  # a carried event's trees, without decoding its whole event
    )
# An attached occurrence's tags and search tags: C where built, else the Python functions. One INFO line
# (load_extension) says which.
index_tags = index_tags_python if _native is None else index_tags_native


def text_terms(text: str) -> tuple[str, ...]:
    """The distinct words of ``text``, lower-cased and cut to ``TERM_MAX_CHARS``, in order."""
    terms = _TERMS.get(text)
    if terms is None:
        terms = tuple(dict.fromkeys(word[:TERM_MAX_CHARS] for word in _WORD.findall(text.lower())))
        if len(_TERMS) > 20_000:
            _TERMS.clear()
        _TERMS[text] = terms
    return terms


# The words of recent texts: a group's occurrences mostly repeat its title, subtitle and culprit.
_TERMS: dict[str, tuple[str, ...]] = {}


def query_terms(text: str) -> tuple[str, ...]:
    """A free-text search split as the stored terms are (``text_terms``): a group matches a word when one of
    its terms equals it (or starts with it, for a prefix search)."""
    return text_terms(text)
