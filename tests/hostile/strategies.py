"""Hypothesis strategies for hostile messages: valid payloads with fields set to hostile values, and bytes.

``hostile_messages()`` draws ``(data, attributes)``: a valid occurrence or status change (``tests.decode.
strategies``) of which one to four fields, at the top or in the event, are removed or set to a hostile value
(nesting up to 1,200 levels, strings up to 300,000 characters of any plane, control characters and escapes,
integers to 2^70, floats to their extremes, NaN and 1e400 as text, long lists, times at the edges of years 1
and 9999 with offsets, names around Sentry's limits), written as JSON (with whitespace sometimes) or protobuf;
or a valid occurrence whose strings, objects and numbers are hostile but acceptable (so that generated
messages reach the engine and Spanner too); or plain bytes (garbage, truncated or non-UTF-8 JSON) under any
content type.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import strategies as st

from tests.decode import strategies as valid
from tests.hostile.cases import PROJECT, Text, write_json
from transforms.core import limits
from transforms.core.decode import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE
from transforms.core.encode import EncodeError, encode_protobuf

_CHARS = st.sampled_from(["a", "é", "€", "😀", "\x00", "\x01", "\x7f", '"', "\\", "\u2028", "\ufeff"])


@st.composite
def _strings(draw: st.DrawFn) -> Any:
    size = draw(
        st.sampled_from([0, 1, 63, 64, 65, 199, 200, 201, 1000, 100_000, 300_000]) | st.integers(0, 300)
    )
    return draw(_CHARS) * size


@st.composite
def _nested(draw: st.DrawFn) -> Text:
    depth = draw(
        st.sampled_from([78, 79, 80, 81, 254, 255, 256, 1023, 1024, 1025, 1200]) | st.integers(1, 120)
    )
    opening, closing, core = draw(
        st.sampled_from([(b'{"a":', b"}", b"{}"), (b"[", b"]", b"[]"), (b'{"a":[', b"]}", b'{"b":1}')])
    )
    return Text(opening * (depth - 1) + core + closing * (depth - 1))


_numbers = (
    st.integers(-(1 << 70), 1 << 70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([Text(b"NaN"), Text(b"Infinity"), Text(b"-Infinity"), Text(b"1e400"), Text(b"1e15")])
    | st.sampled_from([(1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64, -(1 << 63), 0, -1])
)


@st.composite
def _times(draw: st.DrawFn) -> Any:
    year = draw(st.sampled_from([1, 2, 999, 1000, 1969, 1970, 2026, 9998, 9999]))
    offset = draw(st.sampled_from(["Z", "+00:00", "+01:00", "-01:00", "+23:59", "-23:59", ""]))
    moment = draw(st.sampled_from(["01-01T00:00:00", "12-31T23:59:59.999999", "06-15T12:00:00.5"]))
    text = f"{year:04d}-{moment}{offset}"
    return draw(st.just(text) | st.integers(-62_135_596_900, 253_402_300_900) | st.floats(-1e12, 1e12))


_values = (
    _strings()
    | _nested()
    | _numbers
    | _times()
    | valid.json_values(exact_ints=False)
    | st.lists(_strings(), max_size=3)
    | st.integers(0, limits.MAX_FINGERPRINT_PARTS + 5).map(lambda n: [str(i) for i in range(1, n + 1)])
)
_FIELDS = [
    "id", "project_id", "fingerprint", "issue_title", "subtitle", "type", "detection_time", "evidence_display",
    "event_id", "level", "culprit", "resource_id", "assignee", "evidence_data", "priority", "new_status",
    "new_substatus", "resolution", "payload_type",
]  # fmt: skip
_EVENT_FIELDS = [
    "event_id", "project_id", "platform", "timestamp", "received", "tags", "release", "environment", "sdk",
    "user", "request", "contexts",
]  # fmt: skip


@st.composite
def hostile_payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload = draw(valid.valid_payloads)
    payload["project_id"] = PROJECT  # registered, so what is taken in goes on to the engine
    if isinstance(payload.get("event"), dict):
        payload["event"]["project_id"] = PROJECT
    for _ in range(draw(st.integers(1, 4))):
        target, fields = payload, _FIELDS
        if isinstance(payload.get("event"), dict) and draw(st.booleans()):
            target, fields = payload["event"], _EVENT_FIELDS
        key = draw(st.sampled_from(fields))
        if key in ("resolution",) and draw(st.booleans()):
            target[key] = {"type": "in_release", "version": draw(_strings())}
        elif draw(st.integers(0, 9)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(_values)
    return payload


@st.composite
def _encoded(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    payload = draw(hostile_payloads())
    if draw(st.integers(0, 3)) == 0:
        try:
            return encode_protobuf(payload), {"content_type": PROTOBUF_CONTENT_TYPE}
        except (EncodeError, TypeError, ValueError, OverflowError):
            pass
    data = write_json(payload)
    if draw(st.booleans()):
        data = data.replace(b",", b", ").replace(b":", b": ")
    return data, {"content_type": JSON_CONTENT_TYPE}


_STRING_FIELDS = ["issue_title", "subtitle", "culprit", "resource_id", "assignee"]
_EVENT_STRING_FIELDS = [
    "platform",
    "release",
    "environment",
    "dist",
    "transaction",
    "server_name",
    "trace_id",
]
_OBJECT_FIELDS = ["sdk", "user", "request", "contexts"]


@st.composite
def _accepted(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A valid occurrence of project 1 with its strings, objects and numbers at hostile sizes, depths and
    characters that decoding accepts: what reaches the engine, the coders and Spanner."""
    payload = draw(valid.occurrences())
    payload["project_id"] = PROJECT
    payload["type"] = 1  # no noise gate, released: the group is created and every row written
    event = payload.get("event")
    if not isinstance(event, dict):
        event = payload["event"] = {"project_id": PROJECT, "platform": "python", "timestamp": 1_780_000_000}
        event["event_id"] = payload.setdefault("event_id", "0" * 32)
    event["project_id"] = PROJECT
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.sampled_from(["string", "event string", "object", "evidence", "tags"]))
        text = draw(_strings()) or "x"
        if choice == "string":
            payload[draw(st.sampled_from(_STRING_FIELDS))] = text
        elif choice == "event string":
            event[draw(st.sampled_from(_EVENT_STRING_FIELDS))] = text
        elif choice == "object":
            depth = draw(st.integers(1, limits.MAX_JSON_FIELD_DEPTH))
            event[draw(st.sampled_from(_OBJECT_FIELDS))] = {
                "v": Text(b'{"a":' * (depth - 2) + b"1" + b"}" * (depth - 2)) if depth > 1 else 1
            }
        elif choice == "evidence":
            payload["evidence_data"] = {
                "n": draw(_numbers),
                "s": text,
                "d": draw(valid.json_values(exact_ints=False)),
            }
        else:
            event["tags"] = {text[:200] or "k": text}
    if len(write_json(payload)) > 1 << 20:
        payload["issue_title"] = "cut"
    # A key of its own unless the whole message is the same (hypothesis draws the same simple values often).
    payload["fingerprint"] = ["accepted:" + hashlib.md5(write_json(payload)).hexdigest()]
    return write_json(payload), {"content_type": JSON_CONTENT_TYPE}


_content_types = st.sampled_from(
    [JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, "text/plain", "application/json; x=1"]
)


@st.composite
def _bytes(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["binary", "truncated", "latin-1"]))
    if kind == "binary":
        data = draw(st.binary(max_size=2000))
    else:
        whole = write_json(draw(valid.valid_payloads))
        if kind == "truncated":
            data = whole[: draw(st.integers(0, len(whole)))]
        else:
            data = whole.replace(b'"', b'"\xe9', 1)
    return data, {"content_type": draw(_content_types)}


def hostile_messages() -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    return _encoded() | _accepted() | _bytes()
