"""The issue page's tags panel: one call (``tag_panel``) feeding one template block (``_tags_panel.html``).

Sentry's panel shows, for each tag key, the top values over all of the issue's events with their shares.
That needs per-group tag counts, which are not stored yet (the issue-search work adds them). Until then the
panel shows what is stored for the issue's latest event, clearly labelled as such: its environment, release,
level, platform and the other tag-like fields of the event, then the event's own tags, each with one value and
no share. When per-group tag storage lands, ``tag_panel`` reads it and fills ``TagKey.values`` with the top
values and their counts (``source = "all_events"``); the template already draws shares when they are present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.issue_details import LatestEvent

ALL_EVENTS, LATEST_EVENT = "all_events", "latest_event"


@dataclass(frozen=True, slots=True)
class TagValue:
    value: str
    count: int | None = None  # None: not counted (latest event only)
    share: float | None = None  # of the issue's events, 0..1


@dataclass(frozen=True, slots=True)
class TagKey:
    key: str
    values: list[TagValue] = field(default_factory=list)
    total: int | None = None  # events carrying the key, when counted


@dataclass(frozen=True, slots=True)
class TagPanel:
    source: str  # ALL_EVENTS or LATEST_EVENT
    keys: list[TagKey]


def tag_panel(latest: LatestEvent | None, event: dict[str, Any] | None) -> TagPanel:
    """The panel's content for an issue whose latest occurrence is ``latest`` with its stored ``event``."""
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
