"""The names a query may use (statuses, substatuses, priorities, categories, key aliases) and the terms of
Sentry's that this index cannot answer, with the 400 that says why."""

from __future__ import annotations

from api.query.issue_filter import IGNORED_SUBSTATUSES, UNRESOLVED_SUBSTATUSES
from api.query.syntax import Term, clip, is_wildcard, unescape
from transforms.core.enums import CATEGORY_NAMES, GroupStatus, GroupSubStatus, Priority

PRIORITY_BY_NAME = {"high": Priority.HIGH, "medium": Priority.MEDIUM, "low": Priority.LOW}
CATEGORY_BY_NAME = {name: number for number, name in CATEGORY_NAMES.items()}
# Sentry's STATUS_QUERY_CHOICES (reprocessing is a status no group here has).
STATUS_BY_NAME = {
    "resolved": GroupStatus.RESOLVED,
    "unresolved": GroupStatus.UNRESOLVED,
    "ignored": GroupStatus.IGNORED,
    "archived": GroupStatus.IGNORED,
    "muted": GroupStatus.IGNORED,
    "reprocessing": GroupStatus.REPROCESSING,
}
# Sentry's SUBSTATUS_UPDATE_CHOICES, and the status each substatus belongs to.
SUBSTATUS_BY_NAME = {
    "archived_until_escalating": GroupSubStatus.UNTIL_ESCALATING,
    "archived_until_condition_met": GroupSubStatus.UNTIL_CONDITION_MET,
    "archived_forever": GroupSubStatus.FOREVER,
    "escalating": GroupSubStatus.ESCALATING,
    "ongoing": GroupSubStatus.ONGOING,
    "regressed": GroupSubStatus.REGRESSED,
    "new": GroupSubStatus.NEW,
}
STATUS_OF_SUBSTATUS = {
    **{int(s): GroupStatus.UNRESOLVED for s in UNRESOLVED_SUBSTATUSES},
    **{int(s): GroupStatus.IGNORED for s in IGNORED_SUBSTATUSES},
}
IS_VALUES = (
    *STATUS_BY_NAME,
    *SUBSTATUS_BY_NAME,
    "assigned",
    "unassigned",
    "for_review",
    "linked",
    "unlinked",
)

# Sentry's issue search key mappings (first-release, firstRelease, age...) and our own aliases.
KEY_ALIASES = {
    "first-release": "first_release",
    "firstRelease": "first_release",
    "firstSeen": "first_seen",
    "age": "first_seen",
    "lastSeen": "last_seen",
    "timesSeen": "times_seen",
    "date": "timestamp",
    "event.timestamp": "timestamp",
    "issue.id": "issue.id",
}
# Keys every group has a value for: has: is true of all groups, !has: of none.
ALWAYS_PRESENT = frozenset(
    {
        "status",
        "substatus",
        "issue.category",
        "issue.type",
        "level",
        "first_seen",
        "last_seen",
        "times_seen",
        "timestamp",
        "project",
        "issue",
        "issue.id",
        "title",
        "message",
    }
)
# Terms Sentry has that this index cannot answer, and why (each a 400 naming the term).
_NO_USERS = "this index has no users or teams (assignees are ids from the occurrences): use is:assigned or is:unassigned"
_EVENT_FIELD = (
    "it searches a field of the issue's events that the pipeline does not keep (no tag or stored column "
    "holds it)"
)
_UNANSWERABLE_KEYS = {
    "assigned": _NO_USERS,
    "assigned_or_suggested": _NO_USERS,
    "bookmarks": "this index has no users, so no bookmarks",
    "subscribed": "this index has no users, so no subscriptions",
    "release.stage": "release stages (adopted, low_adoption, replaced) come from release health data, which this index does not have",
    "error.handled": _EVENT_FIELD,
    "error.unhandled": _EVENT_FIELD,
    "error.type": _EVENT_FIELD,
    "error.value": _EVENT_FIELD,
    "error.mechanism": _EVENT_FIELD,
    "trace": _EVENT_FIELD,
    "platform": _EVENT_FIELD,
    "device.class": _EVENT_FIELD,
}
UNANSWERABLE_IS = {
    "linked": "this index has no integrations, so issues are never linked to external issues",
    "unlinked": "this index has no integrations, so issues are never linked to external issues",
}


def refuse_unanswerable(term: Term, key: str) -> None:
    """A 400 for a key of Sentry's that this index has no data for, saying why."""
    assert term.key is not None
    if key in _UNANSWERABLE_KEYS:
        raise term.error(f'"{clip(term.key, 40)}" cannot be searched here: {_UNANSWERABLE_KEYS[key]}')


def refuse_wildcards(term: Term) -> None:
    for value in term.values:
        if is_wildcard(value):
            raise term.error(f'"{clip(term.key or "", 40)}" does not take wildcards')


def lookup_names(term: Term, table: dict, what: str) -> list:
    """The table entries named by the term's values (case-insensitive); an unknown name is an error."""
    refuse_wildcards(term)
    found = []
    for raw in term.values:
        name = unescape(raw).lower()
        if name not in table:
            choices = ", ".join(sorted(table))
            raise term.error(f"Invalid {what} value of '{clip(raw, 40)}' (expected one of: {choices})")
        found.append(table[name])
    return found
