"""The workload's message bodies: occurrence payloads with their events, release names, timestamps, and the
attributes and encodings of a message."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime
from typing import Any

from pipeline.workload.config import JSON, PROTOBUF, RELEASE_INTERVAL, WorkloadConfig
from pipeline.workload.keys import SERVERS, Key, semver_slot
from transforms.core.decode import CONTENT_TYPE_ATTRIBUTE, JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE
from transforms.core.encode import EncodeError, encode_protobuf
from transforms.core.model import MICROS, RawMessage

_ISO_SECONDS: dict[int, str] = {}  # epoch second -> "2026-05-28T20:26:40."
_MILLIS = tuple(f"{ms:03d}000" for ms in range(1000))


def iso(micros: int, suffix: str = "Z") -> str:
    """``2026-05-28T20:26:40.123000Z`` quickly: per-second prefixes are cached (times here are whole ms)."""
    second, fraction = divmod(micros, MICROS)
    prefix = _ISO_SECONDS.get(second)
    if prefix is None:
        if len(_ISO_SECONDS) > 65536:
            _ISO_SECONDS.clear()
        prefix = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _ISO_SECONDS[second] = prefix
    millis, rest = divmod(fraction, 1000)
    if rest:
        return f"{prefix}{fraction:06d}{suffix}"
    return prefix + _MILLIS[millis] + suffix


JSON_ATTRIBUTES = {CONTENT_TYPE_ATTRIBUTE: JSON_CONTENT_TYPE}
PROTOBUF_ATTRIBUTES = {CONTENT_TYPE_ATTRIBUTE: PROTOBUF_CONTENT_TYPE}
NO_ATTRIBUTES: dict[str, str] = {}


def protobuf_or_none(payload: dict[str, Any]) -> bytes | None:
    """The payload as a protobuf ``IngestMessage``, or None when protobuf cannot express it (wrong JSON types)."""
    try:
        return encode_protobuf(payload)
    except EncodeError:
        return None


def encoding_of(message: RawMessage) -> str:
    return PROTOBUF if message.attributes.get(CONTENT_TYPE_ATTRIBUTE) == PROTOBUF_CONTENT_TYPE else JSON


class Releases:
    """Each registered project ships a release every ``RELEASE_INTERVAL``; their names (semver, or a commit sha
    for every third project), made once each."""

    def __init__(self, config: WorkloadConfig) -> None:
        self.config = config
        self._names: dict[tuple[int, int], str] = {}

    def name(self, project_id: int, time: int, age: int) -> str:
        """The release ``age`` releases before the project's current one at ``time``."""
        index = max(0, (time - self.config.start) // RELEASE_INTERVAL - age)
        cached = self._names.get((project_id, index))
        if cached is not None:
            return cached
        slot = self.slot(project_id)
        if not semver_slot(slot):  # this project names releases by commit
            name = hashlib.sha1(f"{self.config.seed}:{project_id}:{index}".encode()).hexdigest()[:12]
        else:
            package = ("backend", "frontend")[slot % 3]
            name = f"{package}@{1 + slot % 3}.{4 + index // 10}.{index % 10}"
        self._names[(project_id, index)] = name
        return name

    def slot(self, project_id: int) -> int:
        """The project's position among the registered ones (0 for an unregistered project)."""
        projects = self.config.projects
        return projects.index(project_id) if project_id in projects else 0


def occurrence_payload(
    key: Key, time: int, rng: random.Random, releases: Releases, *, with_event: bool
) -> dict[str, Any]:
    """An occurrence of ``key`` sent at ``time``, with its event (``with_event``) or without (a lookup)."""
    # One draw of 384 bits gives the occurrence id, the event id and the trace id; one of 64 bits gives
    # every small choice below (bit fields), which keeps generation fast.
    ids = f"{rng.getrandbits(384):096x}"
    bits = rng.getrandbits(64)
    event_id = ids[32:64]
    payload: dict[str, Any] = {
        "payload_type": "occurrence",
        "id": ids[:32],
        "project_id": key.project_id,
        "event_id": event_id,
    }
    payload.update(key.template)
    type_id = key.type_id
    if type_id == 1018:
        before = 80 + (bits >> 44 & 255)
        payload["subtitle"] = f"P95 duration increased from {before}ms to {before * (2 + (bits >> 52 & 7))}ms"
    elif type_id == 6001:
        payload["subtitle"] = payload["evidence_data"]["message"]
    else:
        payload["subtitle"] = key.transaction if type_id != 1 else payload["culprit"]
    detection = time - (bits >> 33 & 2047) * 1000  # detected up to 2 s before it was sent
    payload["detection_time"] = detection / MICROS if bits & 7 else iso(detection, "+00:00")
    if not with_event:
        return payload
    event_time = time - (200 + (bits >> 4 & 0x3FFF)) * 1000  # the event happened 0.2 to 16.6 s before
    roll = bits >> 18 & 1023  # releases: 80% current, 13% previous, 2% a pre-release, 5% none
    if roll < 819:
        release: str | None = releases.name(key.project_id, time, 0)
    elif roll < 952:
        release = releases.name(key.project_id, time, 1)  # clients still on the previous release
    elif roll < 973 and key.semver:
        release = releases.name(key.project_id, time, -1) + "-rc.1"  # a pre-release of the next one
    else:
        release = None
    tags: Any = {"server_name": SERVERS[bits >> 28 & 7], "transaction": key.transaction}
    if bits >> 56 & 7 == 0:
        tags = [["server_name", tags["server_name"]], ["transaction", key.transaction]]
    event: dict[str, Any] = {
        "event_id": event_id,
        "project_id": key.project_id,
        "platform": key.platform,
        "timestamp": iso(event_time) if bits & 8 else event_time / MICROS,
        "received": iso(event_time + (50 + (bits >> 31 & 3) * 250) * 1000),
        "tags": tags,
        "release": release,
        "environment": "production" if bits >> 59 & 3 else "staging",
        "transaction": key.transaction,
        "sdk": key.sdk,
        "contexts": {"trace": {"trace_id": ids[64:], "op": "http.server"}},
    }
    if bits >> 61 & 3 == 0:
        event["user"] = {"id": str(1 + int(ids[64:68], 16))}
    payload["event"] = event
    return payload


# -- invalid messages -------------------------------------------------------------------------------
