"""Payloads for the decoding tests: the sample fixtures and ways to vary them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from transforms.core.decode import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, decode
from transforms.core.encode import raw_message
from transforms.core.model import DeadLetter, Message, ProjectInfo, RawMessage

FIXTURES = Path(__file__).parent / "fixtures"
ENCODINGS = (JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE)
MESSAGE_ID = "1001"
MESSAGE_TIME = 1_780_000_002_000_000
PROJECTS = {1: ProjectInfo(project_id=1, organization_id=10, slug="backend")}
DELETE = object()  # an override value that removes the key


def load(name: str) -> dict[str, Any]:
    return orjson.loads((FIXTURES / name).read_bytes())


def with_event(**overrides: Any) -> dict[str, Any]:
    """The sample occurrence with an event; ``event=...`` overrides merge into the event."""
    return override(load("occurrence-with-event.json"), overrides)


def lookup(**overrides: Any) -> dict[str, Any]:
    return override(load("occurrence-lookup.json"), overrides)


def status_change(**overrides: Any) -> dict[str, Any]:
    return override(load("status-change-resolve-in-next-release.json"), overrides)


def override(payload: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` with ``overrides``: ``event={...}`` merges into the event, ``DELETE`` removes a key."""
    payload = copy.deepcopy(payload)
    for key, value in overrides.items():
        if key == "event" and isinstance(value, dict) and isinstance(payload.get("event"), dict):
            payload["event"] = override(payload["event"], value)
        elif value is DELETE:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def nested_dict(depth: int) -> dict:
    """A JSON object nested ``depth`` levels deep: ``{"a": {"a": ... {}}}``."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def name_of(size: int, char: str = "a") -> str:
    """A string of exactly ``size`` UTF-8 bytes made of ``char`` (and ASCII padding)."""
    width = len(char.encode())
    return char * (size // width) + "a" * (size % width)


def raw(payload: dict[str, Any], encoding: str = JSON_CONTENT_TYPE, **kwargs: Any) -> RawMessage:
    return raw_message(
        payload,
        message_id=kwargs.pop("message_id", MESSAGE_ID),
        message_time=kwargs.pop("message_time", MESSAGE_TIME),
        content_type=encoding,
        **kwargs,
    )


def decoded(
    payload: dict[str, Any], encoding: str = JSON_CONTENT_TYPE, **kwargs: Any
) -> Message | DeadLetter:
    return decode(raw(payload, encoding), **kwargs)


def message(payload: dict[str, Any], encoding: str = JSON_CONTENT_TYPE) -> Message:
    result = decoded(payload, encoding)
    assert isinstance(result, Message), f"expected a message, got {result}"
    return result


def dead_letter(payload: dict[str, Any], encoding: str = JSON_CONTENT_TYPE, **kwargs: Any) -> DeadLetter:
    result = decoded(payload, encoding, **kwargs)
    assert isinstance(result, DeadLetter), f"expected a dead letter, got {result}"
    return result
