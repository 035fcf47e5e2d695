"""Hand-written hostile messages: one named case a line, with what must become of it.

``CASES`` is the table both layers of the hostile suite run: the fast one (``test_cases.py``: reading the
timestamp attribute, decoding and everything after it, no server) and the end-to-end one
(``test_end_to_end.py``: the streaming pipeline on the emulators, then a backfill of the same messages).
``expect`` is ``APPLIED`` (the message is taken in: stored, counted, held or waiting, never dead-lettered) or
the dead-letter reason it must get, ``stage`` the stage its dead letter names (checked when given);
``removed`` the counters of what decoding removed from it. Adding a case is adding a line; every case has a
key of its own (its fingerprint is its name), so cases never interfere. A case of ``copies`` messages is that
many messages, each with a name (and key) of its own, published one after the other (so that they are pulled
together).

Two kinds of failure cannot be written as bytes, because the code refuses them before they happen: a
message the engine raises for, and a write Spanner refuses. ``inject`` names them: the end-to-end layer makes
the real code fail for that case's message (``ENGINE_RAISES``: the group engine raises for it;
``SPANNER_REFUSES``: after decoding, its event's release is replaced by one longer than a Spanner key holds,
which the emulator refuses), as ``tests/stream/test_last_line.py`` does; decoding takes such a message.

Messages carry their message time in the ``ts`` attribute (``TIMESTAMP_ATTRIBUTE``), as the end-to-end
layer's runs read it (``--timestamp_attribute ts``); a case that sets ``ts`` itself keeps its own value.

Messages are written by builders: ``occurrence(**fields)`` and ``status_change(**fields)`` start from a valid
payload of the case's own key and override fields (``event={...}`` merges into the event, ``DELETE`` removes
a field); a ``Text`` value is written as that JSON text, for what orjson cannot write (nesting past 254 levels,
NaN, numbers as written, duplicate keys, escapes); ``encoding=PROTOBUF`` writes the payload as protobuf;
``data(bytes)`` is a message of exactly those bytes; ``with_attributes(builder, {...})`` adds attributes and
``attribute_count(builder, n)`` gives a message exactly ``n`` attributes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.decode.payloads import name_of, nested_dict, override
from transforms.core import limits, metrics, reasons
from transforms.core.decode import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE
from transforms.core.encode import encode_protobuf

APPLIED = "applied"
PROTOBUF = PROTOBUF_CONTENT_TYPE
MIB = 1 << 20  # the default --max_payload_bytes, which the end-to-end runs keep
KIB = 1 << 10
PROJECT = 1
TIMESTAMP_ATTRIBUTE = "ts"  # what the end-to-end runs read the message time from
ENGINE_RAISES = "the engine raises"
SPANNER_REFUSES = "Spanner refuses the write"


class Text(bytes):
    """A JSON value given as the text to write for it."""


Message = tuple[bytes, dict[str, str]]  # data and attributes
Builder = Callable[[str], Message]


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # APPLIED or a reason of transforms.core.reasons
    build: Builder
    removed: tuple[str, ...] = field(default=())
    stage: str | None = None  # the stage the dead letter must name (None: not checked)
    inject: str | None = None  # ENGINE_RAISES or SPANNER_REFUSES (end-to-end only; decoding takes it)
    copies: int = 1

    def names(self) -> list[str]:
        """The name of each of its messages (its fingerprint, so its key)."""
        return [self.name] if self.copies == 1 else [f"{self.name} #{n}" for n in range(self.copies)]

    def message(self) -> Message:
        return self.build(self.name)

    def messages(self) -> list[tuple[str, Message]]:
        return [(name, self.build(name)) for name in self.names()]

    @property
    def decoded_expect(self) -> str:
        """What reading and decoding make of it: an injected failure happens after decoding."""
        return APPLIED if self.inject else self.expect


def _hex(name: str, salt: str) -> str:
    return hashlib.md5(f"{salt}:{name}".encode()).hexdigest()


def base_occurrence(name: str) -> dict[str, Any]:
    event_id = _hex(name, "event")
    return {
        "id": _hex(name, "occurrence"),
        "project_id": PROJECT,
        "event_id": event_id,
        "fingerprint": [f"hostile:{name}"],
        "issue_title": f"hostile {name}",
        "subtitle": "a hostile message",
        "culprit": "hostile.py",
        "type": 1,
        "detection_time": 1_780_000_000,
        "evidence_display": [{"name": "case", "value": name[:100], "important": True}],
        "level": "error",
        "evidence_data": {"case": name[:100]},
        "event": {
            "event_id": event_id,
            "project_id": PROJECT,
            "platform": "python",
            "timestamp": "2026-05-28T20:26:40Z",
            "release": "hostile@1.0.0",
            "environment": "production",
        },
    }


def base_status_change(name: str) -> dict[str, Any]:
    return {
        "payload_type": "status_change",
        "id": _hex(name, "status-change"),
        "project_id": PROJECT,
        "fingerprint": [f"hostile:{name}"],
        "new_status": 1,
        "new_substatus": None,
    }


def write_json(payload: Any) -> bytes:
    """Compact JSON, with every ``Text`` value written as its text (and integers of any size)."""
    texts: list[bytes] = []

    def mark(value: Any) -> Any:
        if type(value) is int and not -(1 << 63) <= value < 1 << 64:  # past what orjson writes
            value = Text(str(value).encode())
        if isinstance(value, Text):
            texts.append(bytes(value))
            return f"@@text{len(texts) - 1}@@"
        if isinstance(value, dict):
            return {key: mark(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mark(item) for item in value]
        return value

    data = orjson.dumps(mark(payload))
    for index, text in enumerate(texts):
        data = data.replace(f'"@@text{index}@@"'.encode(), text)
    return data


def _builder(base: Callable[[str], dict[str, Any]], encoding: str, fields: dict[str, Any]) -> Builder:
    def build(name: str) -> Message:
        payload = override(base(name), fields)
        data = write_json(payload) if encoding == JSON_CONTENT_TYPE else encode_protobuf(payload)
        return data, {"content_type": encoding}

    return build


def occurrence(encoding: str = JSON_CONTENT_TYPE, **fields: Any) -> Builder:
    return _builder(base_occurrence, encoding, fields)


def status_change(encoding: str = JSON_CONTENT_TYPE, **fields: Any) -> Builder:
    return _builder(base_status_change, encoding, fields)


def data(value: bytes, content_type: str = JSON_CONTENT_TYPE) -> Builder:
    return lambda name: (value, {"content_type": content_type})


def sized(size: int, char: str = "a", *, whitespace: bool = False) -> Builder:
    """A valid occurrence of exactly ``size`` bytes: its title padded with ``char``, or with spaces after it."""

    def build(name: str) -> Message:
        payload = base_occurrence(name)
        written = write_json(payload)
        if whitespace:
            return written[:-1] + b" " * (size - len(written)) + b"}", {"content_type": JSON_CONTENT_TYPE}
        room = size - len(write_json({**payload, "issue_title": ""}))
        width = len(char.encode())
        payload["issue_title"] = char * (room // width) + "a" * (room % width)
        written = write_json(payload)
        assert len(written) == size
        return written, {"content_type": JSON_CONTENT_TYPE}

    return build


def with_attributes(build: Builder, attributes: dict[str, str]) -> Builder:
    """The builder's message with these attributes added (or replaced)."""

    def add(name: str) -> Message:
        data, own = build(name)
        return data, {**own, **attributes}

    return add


def attribute_count(build: Builder, count: int, *, key_bytes: int = 4, value_bytes: int = 1) -> Builder:
    """The builder's message with exactly ``count`` attributes: its own, a valid ``ts`` and ``xNNN`` ones
    (keys padded to ``key_bytes``, values of ``value_bytes``)."""

    def add(name: str) -> Message:
        data, own = build(name)
        attributes = {**own, TIMESTAMP_ATTRIBUTE: "2026-05-28T20:26:40Z"}
        for index in range(count - len(attributes)):
            attributes[f"x{index:03d}".ljust(key_bytes, "k")] = "v" * value_bytes
        assert len(attributes) == count
        return data, attributes

    return add


def nested(depth: int, opening: bytes = b'{"a":', closing: bytes = b"}", core: bytes = b"{}") -> Text:
    return Text(opening * (depth - 1) + core + closing * (depth - 1))


def nested_lists(depth: int) -> Text:
    return nested(depth, b"[", b"]", b"[]")


_GARBAGE = bytes(random.Random(17).getrandbits(8) for _ in range(4096))
_TS = TIMESTAMP_ATTRIBUTE
_UNDECODABLE = data(b"not a payload")  # a dead letter at decoding, whatever its attributes
_RELEASE, _ENVIRONMENT = limits.MAX_RELEASE_BYTES, limits.MAX_ENVIRONMENT_BYTES
_DEPTH = limits.MAX_JSON_FIELD_DEPTH
_PARTS = limits.MAX_FINGERPRINT_PARTS
_RELEASE_REMOVED = (metrics.EVENT_RELEASE_REMOVED,)
_ENVIRONMENT_REMOVED = (metrics.EVENT_ENVIRONMENT_REMOVED,)
_R = reasons

# fmt: off
CASES: tuple[Case, ...] = (
    # JSON nesting (Spanner's JSON holds 80 levels; orjson writes 254, msgpack about 990, orjson reads 1024)
    Case("evidence_data nested 79 levels", APPLIED, occurrence(evidence_data=nested(_DEPTH))),
    Case("evidence_data nested 80 levels", _R.INVALID_FIELD, occurrence(evidence_data=nested(_DEPTH + 1))),
    Case("evidence_data nested 256 levels", _R.INVALID_FIELD, occurrence(evidence_data=nested(256))),
    Case("evidence_data nested 1023 levels", _R.INVALID_FIELD, occurrence(evidence_data=nested(1023))),
    Case("evidence_data nested 1100 levels", _R.UNDECODABLE, occurrence(evidence_data=nested(1100))),
    Case("evidence_data of lists nested 300", _R.INVALID_FIELD, occurrence(evidence_data={"a": nested_lists(300)})),
    Case("feedback evidence nested 79 levels", APPLIED, occurrence(type=6001, evidence_data={"message": nested(_DEPTH - 1)})),
    Case("event.contexts nested 79 levels", APPLIED, occurrence(event={"contexts": nested(_DEPTH)})),
    Case("event.contexts nested 80 levels", _R.INVALID_EVENT, occurrence(event={"contexts": nested(_DEPTH + 1)})),
    Case("event.user nested 500 levels", _R.INVALID_EVENT, occurrence(event={"user": nested(500)})),
    Case("ignored field nested 1000 levels", APPLIED, occurrence(breadcrumbs=nested_lists(1000))),
    Case("protobuf evidence nested 40 levels", _R.UNDECODABLE, occurrence(PROTOBUF, evidence_data=nested_dict(40))),
    Case("protobuf evidence nested 30 levels", APPLIED, occurrence(PROTOBUF, evidence_data=nested_dict(30))),
    # release and environment names: Sentry's limits, the name removed and the occurrence kept
    Case("release of 200 bytes", APPLIED, occurrence(event={"release": name_of(_RELEASE)})),
    Case("release of 201 bytes", APPLIED, occurrence(event={"release": name_of(_RELEASE + 1)}), _RELEASE_REMOVED),
    Case("release of 100,008 bytes", APPLIED, occurrence(event={"release": name_of(100_008)}), _RELEASE_REMOVED),
    Case("release of 67 three-byte characters", APPLIED, occurrence(event={"release": "€" * 67}), _RELEASE_REMOVED),
    Case("environment of 64 bytes", APPLIED, occurrence(event={"environment": name_of(_ENVIRONMENT)})),
    Case("environment of 65 bytes", APPLIED, occurrence(event={"environment": name_of(_ENVIRONMENT + 1)}), _ENVIRONMENT_REMOVED),
    Case("environment of 100,000 bytes", APPLIED, occurrence(event={"environment": name_of(100_000)}), _ENVIRONMENT_REMOVED),
    Case("environment of 33 two-byte characters", APPLIED, occurrence(event={"environment": "é" * 33}), _ENVIRONMENT_REMOVED),
    Case("protobuf release of 300 bytes", APPLIED, occurrence(PROTOBUF, event={"release": name_of(300)}), _RELEASE_REMOVED),
    # a resolution's release (a Releases key)
    Case("resolution version of 200 bytes", APPLIED, status_change(resolution={"type": "in_release", "version": name_of(_RELEASE)})),
    Case("resolution version of 201 bytes", _R.INVALID_FIELD, status_change(resolution={"type": "in_release", "version": name_of(_RELEASE + 1)})),
    Case("resolution version of 100,000 bytes", _R.INVALID_FIELD, status_change(resolution={"type": "in_next_release", "version": name_of(100_000)})),
    # fingerprints
    Case("fingerprint of 10,000 parts", APPLIED, lambda n: occurrence(fingerprint=[f"hostile:{n}", *map(str, range(_PARTS - 1))])(n)),
    Case("fingerprint of 10,001 parts", _R.INVALID_FIELD, lambda n: occurrence(fingerprint=[f"hostile:{n}", *map(str, range(_PARTS))])(n)),
    Case("fingerprint part of 100,000 characters", APPLIED, lambda n: occurrence(fingerprint=[f"hostile:{n}", "x" * 100_000])(n)),
    # sizes: the bytes as published, whitespace included, non-ASCII as its UTF-8 bytes
    Case("exactly 1 MiB with whitespace", APPLIED, sized(MIB, whitespace=True)),
    Case("1 MiB and 1 byte with whitespace", _R.OVERSIZED, sized(MIB + 1, whitespace=True)),
    Case("exactly 1 MiB of two-byte characters", APPLIED, sized(MIB, "é")),
    Case("1 MiB and 1 byte of four-byte characters", _R.OVERSIZED, sized(MIB + 1, "😀")),
    # bytes that are not a payload
    Case("garbage bytes", _R.UNDECODABLE, data(_GARBAGE)),
    Case("not UTF-8", _R.UNDECODABLE, data(b'{"id": "\xff\xfe"}')),
    Case("empty", _R.UNDECODABLE, data(b"")),
    Case("JSON null", _R.UNDECODABLE, data(b"null")),
    Case("JSON array", _R.UNDECODABLE, data(b"[1, 2, 3]")),
    Case("truncated JSON", _R.UNDECODABLE, lambda n: (occurrence()(n)[0][:-3], {})),
    Case("byte order mark before JSON", _R.UNDECODABLE, lambda n: (b"\xef\xbb\xbf" + occurrence()(n)[0], {})),
    Case("protobuf garbage", _R.UNDECODABLE, data(_GARBAGE, PROTOBUF)),
    Case("JSON sent as protobuf", _R.UNDECODABLE, lambda n: (occurrence()(n)[0], {"content_type": PROTOBUF})),
    Case("unknown content type", _R.UNDECODABLE, data(b"{}", "text/plain")),
    # numbers
    Case("NaN", _R.UNDECODABLE, occurrence(evidence_data={"x": Text(b"NaN")})),
    Case("Infinity", _R.UNDECODABLE, occurrence(evidence_data={"x": Text(b"Infinity")})),
    Case("1e400", _R.UNDECODABLE, occurrence(evidence_data={"x": Text(b"1e400")})),
    Case("project_id 2^63", _R.INVALID_FIELD, occurrence(project_id=1 << 63, event={"project_id": 1 << 63})),
    Case("project_id 2^64", _R.INVALID_FIELD, occurrence(project_id=Text(b"18446744073709551616"))),
    Case("type 2^63", _R.UNKNOWN_GROUP_TYPE, occurrence(type=1 << 63)),
    Case("detection_time 1e300", _R.INVALID_FIELD, occurrence(detection_time=1e300)),
    Case("priority 25.0", _R.INVALID_FIELD, occurrence(priority=25.0)),
    Case("huge and tiny numbers in evidence", APPLIED, occurrence(evidence_data={"n": Text(b"[18446744073709551615,1180591620717411303424,1e308,-0.0,5e-324,1e15]")})),
    Case("new_status 2^64", _R.INVALID_FIELD, status_change(new_status=Text(b"18446744073709551616"))),
    Case("new_status 2^63", _R.INVALID_STATUS_CHANGE, status_change(new_status=1 << 63)),
    # duplicate keys: the last one counts (orjson, as Python's json and Sentry)
    Case("duplicate level key, the last valid", APPLIED, occurrence(level=Text(b'"loud","level":"error"'))),
    Case("duplicate level key, the last invalid", _R.INVALID_FIELD, occurrence(level=Text(b'"error","level":"loud"'))),
    # strings
    Case("lone surrogate escaped in title", _R.UNDECODABLE, occurrence(issue_title=Text(b'"\\ud800"'))),
    Case("NUL and control characters in title", APPLIED, occurrence(issue_title="\x00\x01\x1f\x7f end")),
    Case("protobuf control characters in title", APPLIED, occurrence(PROTOBUF, issue_title="\x00\x01" * 1000)),
    Case("title of 100,000 emoji", APPLIED, occurrence(issue_title="😀" * 100_000)),
    Case("culprit of 10,000 characters", APPLIED, occurrence(culprit="c" * 10_000)),
    Case("status change id of 100,000 characters", APPLIED, status_change(id="i" * 100_000)),
    Case("10,000 tags", APPLIED, occurrence(event={"tags": {f"t{i}": "v" for i in range(10_000)}})),
    Case("10,000 evidence_display items", APPLIED, occurrence(evidence_display=[{"name": "n", "value": "v", "important": False}] * 10_000)),
    # times: years 1 to 9999 in UTC (what a Spanner TIMESTAMP holds)
    Case("detection_time in year 1", APPLIED, occurrence(detection_time="0001-01-01T00:00:00Z")),
    Case("event time in year 500", APPLIED, occurrence(event={"timestamp": "0500-06-01T12:00:00Z"})),
    Case("event time past 9999 by its offset", _R.INVALID_EVENT, occurrence(event={"timestamp": "9999-12-31T23:59:59-01:00"})),
    Case("detection_time before year 1 by its offset", _R.INVALID_FIELD, occurrence(detection_time="0001-01-01T00:00:00+01:00")),
    # pulls over gRPC's 4 MiB receive limit: a 5 MB message (Pub/Sub takes 10 MB) and 6 MB of valid messages
    Case("occurrence of 5 MB", _R.OVERSIZED, sized(5_000_000), stage=_R.STAGE_DECODE),
    Case("100 occurrences of 60 KiB", APPLIED, sized(60 * KIB), copies=100),
    # the timestamp attribute, read by the pipeline: a value it cannot read is a dead letter at stage read
    Case("timestamp attribute 'yesterday'", _R.INVALID_FIELD, with_attributes(occurrence(), {_TS: "yesterday"}), stage=_R.STAGE_READ),
    Case("timestamp attribute empty", _R.INVALID_FIELD, with_attributes(occurrence(), {_TS: ""}), stage=_R.STAGE_READ),
    Case("timestamp attribute month 13", _R.INVALID_FIELD, with_attributes(occurrence(), {_TS: "2026-13-45T00:00:00Z"}), stage=_R.STAGE_READ),
    Case("timestamp attribute past 9999 by its offset", _R.INVALID_FIELD, with_attributes(occurrence(), {_TS: "9999-12-31T23:59:59-01:00"}), stage=_R.STAGE_READ),
    Case("timestamp attribute of 20 digits", _R.INVALID_FIELD, with_attributes(occurrence(), {_TS: "9" * 20}), stage=_R.STAGE_READ),
    Case("timestamp attribute of 1,024 bytes", _R.INVALID_FIELD, with_attributes(occurrence(), {_TS: "x" * 1024}), stage=_R.STAGE_READ),
    Case("timestamp attribute in epoch milliseconds", APPLIED, with_attributes(occurrence(), {_TS: "1780000000123"})),
    Case("timestamp attribute without an offset", APPLIED, with_attributes(occurrence(), {_TS: "2026-05-28T20:26:40.5"})),
    # attributes of dead letters: a dead letter adds five (Pub/Sub carries 100, keys of 256 bytes, values of
    # 1,024); what does not fit is dropped and named in dead_letter_truncated
    Case("95 attributes on a dead letter", _R.UNDECODABLE, attribute_count(_UNDECODABLE, 95)),
    Case("96 attributes on a dead letter", _R.UNDECODABLE, attribute_count(_UNDECODABLE, 96)),
    Case("100 attributes on a dead letter", _R.UNDECODABLE, attribute_count(_UNDECODABLE, 100)),
    Case("101 attributes on a dead letter", _R.UNDECODABLE, attribute_count(_UNDECODABLE, 101)),
    Case("100 attributes of the largest keys and values on a dead letter", _R.UNDECODABLE, attribute_count(_UNDECODABLE, 100, key_bytes=256, value_bytes=1024)),
    Case("attribute key of 257 bytes on a dead letter", _R.UNDECODABLE, with_attributes(_UNDECODABLE, {"k" * 257: "v"})),
    Case("attribute value of 1,025 bytes on a dead letter", _R.UNDECODABLE, with_attributes(_UNDECODABLE, {"k": "v" * 1025})),
    Case("timestamp attribute 'yesterday' among 100 attributes", _R.INVALID_FIELD, with_attributes(attribute_count(occurrence(), 100), {_TS: "yesterday"}), stage=_R.STAGE_READ),
    Case("100 attributes on an applied occurrence", APPLIED, attribute_count(occurrence(), 100, key_bytes=256, value_bytes=1024)),
    # failures past decoding, injected into the real code (see the module docstring)
    Case("an occurrence the engine raises for", _R.INTERNAL_ERROR, occurrence(), stage=_R.STAGE_APPLY, inject=ENGINE_RAISES),
    Case("an occurrence whose write Spanner refuses", _R.INTERNAL_ERROR, occurrence(), stage=_R.STAGE_WRITE, inject=SPANNER_REFUSES),
)
# fmt: on
