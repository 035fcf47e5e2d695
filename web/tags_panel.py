"""The issue page's tags panel: one read (``stored_tags``) and one call (``tag_panel``) feeding one template
block (``_tags_panel.html``).

Sentry's panel shows, for each tag key, the top values over all of the issue's events with their shares. They
come from the per-group tag storage the pipeline writes (``GroupTagKeys``/``GroupTagValues``, read through
``api.tag_index.TagIndex``): each key with its top ``TOP_VALUES`` values, their counts and their shares of the
key's total (Sentry's ``totalValues``: the values' counts plus the occurrences whose value was not kept), and
what the shown values leave as "Other". Keys are ordered by total, the most frequent first.

An issue with no stored tags (written before tag storage, or whose occurrences carried none) shows what is
stored for its latest event instead, labelled as such: its environment, release, level, platform and the other
tag-like fields of the event, then the event's own tags, each with one value and no share.

Cost: one range read of the group's key rows and one Read of the value rows of its keys, at most
``VALUE_ROWS`` rows (a key holds at most 1,000 values): keys past that budget are listed with their number of
values but no top values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.group_tags import key_label, top_order, value_label
from api.issue_details import LatestEvent
from api.tag_index import TagIndex
from api.tag_index import TagKey as StoredKey
from api.tag_index import TagValue as StoredValue

ALL_EVENTS, LATEST_EVENT = "all_events", "latest_event"
TOP_VALUES = 5
VALUE_ROWS = 5000


@dataclass(frozen=True, slots=True)
class TagValue:
    value: str
    count: int | None = None  # None: not counted (latest event only)
    share: float | None = None  # of the key's total, 0..1
    label: str | None = None  # Sentry's label (a user tag without its "id:" prefix); None: the value
    other: bool = False  # the occurrences of the key's other values (not among the top ones, or not kept)


@dataclass(frozen=True, slots=True)
class TagKey:
    key: str
    values: list[TagValue] = field(default_factory=list)
    total: int | None = None  # events carrying the key, when counted
    name: str | None = None  # Sentry's label of the key (Server, User, URL...)
    unique: int | None = None  # distinct values kept


@dataclass(frozen=True, slots=True)
class TagPanel:
    source: str  # ALL_EVENTS or LATEST_EVENT
    keys: list[TagKey]


StoredTags = list[tuple[StoredKey, list[StoredValue] | None]]


def stored_tags(snapshot: Any, group_id: int) -> StoredTags:
    """The group's tag keys with their values (None for keys past the ``VALUE_ROWS`` budget), read on
    ``snapshot``."""
    index = TagIndex(snapshot)
    keys = index.group_keys(group_id)
    budget, wanted = VALUE_ROWS, []
    for key in keys:
        if key.values_seen <= budget:
            wanted.append(key.key)
            budget -= key.values_seen
    values = index.group_values(group_id, wanted)
    return [(key, values.get(key.key)) for key in keys]


def tag_panel(latest: LatestEvent | None, event: dict[str, Any] | None, stored: StoredTags = ()) -> TagPanel:
    """The panel's content: the stored tags of the issue when it has any, else its latest occurrence's
    (``latest``, with its stored ``event``)."""
    if stored:
        return TagPanel(ALL_EVENTS, _counted(stored))
    if latest is None:
        return TagPanel(LATEST_EVENT, [])
    fields: list[tuple[str, Any]] = [
        ("environment", latest.environment or (event or {}).get("environment")),
        ("release", latest.release or (event or {}).get("release")),
        ("level", latest.level),
    ]
    if event:
        sdk = event.get("sdk") if isinstance(event.get("sdk"), dict) else {}
        fields += [
            ("platform", event.get("platform")),
            ("server_name", event.get("server_name")),
            ("transaction", event.get("transaction")),
            ("dist", event.get("dist")),
            ("sdk", " ".join(str(part) for part in (sdk.get("name"), sdk.get("version")) if part) or None),
        ]
    keys = [TagKey(key, [TagValue(str(value))]) for key, value in fields if value not in (None, "")]
    seen = {key.key for key in keys}
    for pair in (event or {}).get("tags") or ():
        if isinstance(pair, list | tuple) and len(pair) == 2 and str(pair[0]) not in seen:
            seen.add(str(pair[0]))
            keys.append(TagKey(str(pair[0]), [TagValue(str(pair[1]))]))
    return TagPanel(LATEST_EVENT, keys)


def _counted(stored: StoredTags) -> list[TagKey]:
    """Each key's top values with their shares of its total, and "Other" for the rest; most frequent first."""
    out = []
    for key, values in stored:
        if values is None:
            out.append(TagKey(key.key, [], None, key_label(key.key), key.values_seen))
            continue
        total = sum(value.times_seen for value in values) + key.other
        top = sorted(values, key=top_order)[:TOP_VALUES]
        shown = [
            TagValue(
                v.value, v.times_seen, v.times_seen / total if total else 0.0, value_label(key.key, v.value)
            )
            for v in top
        ]
        rest = total - sum(v.times_seen for v in top)
        if rest > 0:
            shown.append(TagValue("", rest, rest / total, "Other", other=True))
        out.append(TagKey(key.key, shown, total, key_label(key.key), key.values_seen))
    out.sort(key=lambda k: (-(k.total or 0), k.key))
    return out
