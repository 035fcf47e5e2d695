"""Hypothesis strategies: valid payloads, JSON values and ways to break payloads."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from transforms.core.enums import LOG_LEVELS, VALID_STATUS_CHANGES, ResolutionType
from transforms.core.grouptypes import GROUP_TYPES

# Struct carries numbers as doubles: integers beyond 2^53 do not survive protobuf (documented in the schema).
EXACT_INT = 1 << 53
MAX_EPOCH = 253_402_300_799


def json_values(exact_ints: bool = True) -> st.SearchStrategy[Any]:
    ints = st.integers(-EXACT_INT, EXACT_INT) if exact_ints else st.integers(-(1 << 64), 1 << 64)
    scalars = (
        st.none()
        | st.booleans()
        | ints
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )


def json_objects(exact_ints: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.text(max_size=8), json_values(exact_ints), max_size=5)


@st.composite
def uuids(draw: st.DrawFn, value: uuid.UUID | None = None) -> str:
    """A UUID (or the given one) written hex or dashed, in lower or upper case."""
    if value is None:
        value = draw(st.uuids())
    text = draw(st.sampled_from([value.hex, str(value)]))
    return text.upper() if draw(st.booleans()) else text


_offsets = st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["int", "float", "iso", "iso-naive"]))
    if kind == "int":
        return draw(st.integers(0, 4_000_000_000))
    if kind == "float":
        return draw(st.floats(0, 4_000_000_000, allow_nan=False))
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    if kind == "iso":
        moment = moment.replace(tzinfo=draw(_offsets))
    return moment.isoformat(sep=draw(st.sampled_from(["T", " "])))


non_empty_text = st.text(min_size=1, max_size=30)
fingerprints = st.lists(non_empty_text, min_size=1, max_size=4)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def _some_of(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """Some of ``fields`` (each present or not), each drawn from its strategy."""
    return {key: draw(strategy) for key, strategy in fields.items() if draw(st.booleans())}


evidence_items = st.fixed_dictionaries(
    {"name": st.text(max_size=20), "value": st.text(max_size=20), "important": st.booleans()}
)
tags = st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4) | st.lists(
    st.tuples(st.text(max_size=10), st.text(max_size=10)).map(list), max_size=4
)


@st.composite
def events(draw: st.DrawFn, project_id: int, event_id: uuid.UUID) -> dict[str, Any]:
    event: dict[str, Any] = {
        "project_id": project_id,
        "platform": draw(non_empty_text),
        "timestamp": draw(timestamps()),
    }
    if draw(st.booleans()):
        event["event_id"] = draw(uuids(event_id))  # the occurrence's id, maybe written differently
    optional = {
        "received": timestamps(),
        "tags": tags,
        "release": _optional(non_empty_text),
        "environment": _optional(non_empty_text),
        "dist": _optional(st.text(max_size=10)),
        "transaction": _optional(st.text(max_size=10)),
        "server_name": _optional(st.text(max_size=10)),
        "trace_id": _optional(st.text(max_size=32)),
        "sdk": _optional(json_objects()),
        "user": _optional(json_objects()),
        "request": _optional(json_objects()),
        "contexts": _optional(json_objects()),
        "breadcrumbs": json_values(),  # not a kept field: dropped
    }
    event.update(_some_of(draw, optional))
    return event


@st.composite
def occurrences(draw: st.DrawFn) -> dict[str, Any]:
    project_id = draw(st.integers(1, (1 << 63) - 1))
    payload: dict[str, Any] = {
        "id": draw(uuids()),
        "project_id": project_id,
        "fingerprint": draw(fingerprints),
        "issue_title": draw(st.text(max_size=30)),
        "subtitle": draw(st.text(max_size=30)),
        "type": draw(st.sampled_from(sorted(GROUP_TYPES))),
        "detection_time": draw(timestamps()),
        "evidence_display": draw(st.lists(evidence_items, max_size=3)),
    }
    if draw(st.booleans()):
        payload["payload_type"] = "occurrence"
    with_event = draw(st.booleans())
    event_id = draw(st.uuids())
    if not with_event or draw(st.booleans()):
        payload["event_id"] = draw(uuids(event_id))
    if with_event:
        payload["event"] = draw(events(project_id, event_id))
        if "event_id" not in payload:
            payload["event"]["event_id"] = draw(uuids(event_id))
    optional = {
        "level": _optional(st.sampled_from(list(LOG_LEVELS))),
        "culprit": _optional(st.text(max_size=250)),
        "resource_id": _optional(st.text(max_size=10)),
        "evidence_data": _optional(json_objects()),
        "priority": st.sampled_from([None, 25, 50, 75]),
        "initial_issue_priority": st.sampled_from([None, 25, 50, 75]),
        "assignee": _optional(st.sampled_from(["user:1", "team:2"])),
        "is_buffered_spans": _optional(st.booleans()),
        "transaction_duration": json_values(),  # not a field we keep: ignored
    }
    payload.update(_some_of(draw, optional))
    return payload


@st.composite
def status_changes(draw: st.DrawFn) -> dict[str, Any]:
    status, substatus = draw(st.sampled_from(sorted(VALID_STATUS_CHANGES, key=lambda p: (p[0], p[1] or 0))))
    payload: dict[str, Any] = {
        "payload_type": "status_change",
        "project_id": draw(st.integers(1, (1 << 63) - 1)),
        "fingerprint": draw(fingerprints),
        "new_status": int(status),
        "new_substatus": None if substatus is None else int(substatus),
    }
    if draw(st.booleans()):
        payload["id"] = draw(uuids() | non_empty_text)
    if status == 1 and draw(st.booleans()):
        payload["resolution"] = {
            "type": draw(st.sampled_from(ResolutionType.ALL)),
            "version": draw(non_empty_text),
        }
    return payload


valid_payloads = occurrences() | status_changes()


@st.composite
def mutated_payloads(draw: st.DrawFn, exact_ints: bool = True) -> dict[str, Any]:
    """A valid payload with a few fields removed or replaced by arbitrary JSON values, at any depth."""
    payload = draw(valid_payloads)
    for _ in range(draw(st.integers(1, 4))):
        target = payload
        if isinstance(payload.get("event"), dict) and draw(st.booleans()):
            target = payload["event"]
        if not target:
            break
        key = draw(st.sampled_from(sorted(target)) | st.text(max_size=8))
        action = draw(st.sampled_from(["delete", "replace", "null"]))
        if action == "delete":
            target.pop(key, None)
        elif action == "null":
            target[key] = None
        else:
            target[key] = draw(json_values(exact_ints))
    return payload
