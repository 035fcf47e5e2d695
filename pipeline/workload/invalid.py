"""Invalid messages: each fails exactly one check of the pipeline, with the dead-letter reason it must get."""

from __future__ import annotations

import random
from typing import Any

import orjson

from pipeline.workload.config import JSON, WorkloadConfig
from pipeline.workload.keys import Key
from pipeline.workload.payloads import JSON_ATTRIBUTES, PROTOBUF_ATTRIBUTES
from transforms.core import reasons
from transforms.core.decode import CONTENT_TYPE_ATTRIBUTE
from transforms.core.encode import encode_protobuf

INVALID_ROTATION: tuple[str, ...] = tuple(r for r in reasons.ALL_REASONS if r != reasons.OVERSIZED)


def reason_for(count: int) -> tuple[str, int]:
    """The reason and variant of the ``count``-th invalid message: reasons in a fixed rotation, ``oversized``
    every 10th round."""
    rotation = INVALID_ROTATION
    round_, position = divmod(count, len(rotation) + 1)
    if position == len(rotation):
        if round_ % 10:
            position = count % len(rotation)
        else:
            return reasons.OVERSIZED, round_
    return rotation[position], round_


def invalidate(
    reason: str, variant: int, payload: dict[str, Any], key: Key, config: WorkloadConfig, rng: random.Random
) -> tuple[dict[str, Any], bytes | None, dict[str, str] | None]:
    """``payload`` (an occurrence of ``key`` with its event) changed to fail the check of ``reason``, in one of
    several ways (``variant``): the payload, and the message's bytes and attributes when they are not the
    payload's usual encoding."""
    event = payload["event"]
    protobuf = config.encoding != JSON
    data: bytes | None = None
    attributes: dict[str, str] | None = None
    if reason == reasons.OVERSIZED:
        payload["evidence_data"] = {"padding": "x" * config.oversized_bytes}
    elif reason == reasons.UNDECODABLE:
        choice = variant % (7 if protobuf else 6)
        encoded = orjson.dumps(payload)
        if choice == 0:
            data = b"\x00\x9f" + encoded[:40]  # not UTF-8, not JSON
        elif choice == 1:
            data = encoded[: len(encoded) // 2]  # truncated
        elif choice == 2:
            data = orjson.dumps([payload["id"], payload["project_id"]])  # not an object
        elif choice == 3:
            data = b'"not a payload"'
        elif choice == 4:
            data = encoded
            attributes = {CONTENT_TYPE_ATTRIBUTE: "text/plain"}  # unsupported content type
        elif choice == 5:
            data = b""
            attributes = JSON_ATTRIBUTES  # Pub/Sub needs data or an attribute
        else:
            data = encode_protobuf(payload)[:-7]  # a truncated protobuf message
            attributes = PROTOBUF_ATTRIBUTES
    elif reason == reasons.INVALID_PAYLOAD_TYPE:
        choice = variant % (4 if protobuf else 3)
        if choice == 3:
            data = b""  # an IngestMessage with neither payload set
            attributes = PROTOBUF_ATTRIBUTES
        else:
            payload["payload_type"] = ("event", "transaction", 7)[choice]
    elif reason == reasons.MISSING_FIELD:
        choice = variant % 4
        if choice == 0:
            del payload["issue_title"]
        elif choice == 1:
            payload["detection_time"] = None
        elif choice == 2:
            del payload["event_id"]
            del event["event_id"]
        else:
            payload = {
                "payload_type": "status_change",
                "project_id": key.project_id,
                "fingerprint": key.fingerprint,
            }
    elif reason == reasons.INVALID_FIELD:
        choice = variant % 6
        if choice == 0:
            payload["fingerprint"] = []
        elif choice == 1:
            payload["level"] = "verbose"
        elif choice == 2:
            payload["priority"] = 60
        elif choice == 3:
            payload["id"] = "not-a-uuid"
        elif choice == 4:
            payload["evidence_display"] = [{"name": "Exception", "value": "boom"}]
        else:
            payload["project_id"] = str(key.project_id)  # a numeric string is not a number
    elif reason == reasons.UNKNOWN_GROUP_TYPE:
        payload["type"] = (9999, 1005, 3001)[variant % 3]
    elif reason == reasons.UNKNOWN_PROJECT:
        project = config.unknown_projects[variant % len(config.unknown_projects)]
        payload["project_id"] = project
        event["project_id"] = project
    elif reason == reasons.PROJECT_MISMATCH:
        if variant % 2:
            del event["project_id"]
        else:
            others = [p for p in config.projects if p != key.project_id]
            event["project_id"] = others[0] if others else key.project_id + 1000
    elif reason == reasons.INVALID_EVENT:
        choice = variant % 3
        if choice == 0:
            del event["platform"]
        elif choice == 1:
            event["timestamp"] = "yesterday"
        else:
            event["tags"] = "tagged"
    elif reason == reasons.EVENT_ID_MISMATCH:
        event["event_id"] = f"{rng.getrandbits(128):032x}"
    elif reason == reasons.INVALID_STATUS_CHANGE:
        pairs = ((0, 7), (2, None), (1, 5), (9, None), (0, None))
        status, substatus = pairs[variant % len(pairs)]
        payload = {
            "payload_type": "status_change",
            "id": f"{rng.getrandbits(128):032x}",
            "project_id": key.project_id,
            "fingerprint": key.fingerprint,
            "new_status": status,
            "new_substatus": substatus,
        }
    elif reason == reasons.EVENT_NOT_FOUND:
        del payload["event"]  # a lookup of an event that no occurrence carries
    return payload, data, attributes
