"""Dead letters that Pub/Sub accepts: which part of a dead letter gives way when it cannot be kept whole (E11).

A dead letter on Pub/Sub is its original's bytes and attributes plus five of ours. Pub/Sub refuses a message of
more than 100 attributes, an attribute key over 256 bytes or value over 1024 bytes, and a publish request over
10 MB; its emulator refuses none of these, so they are enforced here, on what we build. ``fit_pubsub_message``
keeps everything that fits, and otherwise gives way in this order:

1. Our values are cut to 1024 bytes (at a character, ending in ``...``): ``dead_letter_error`` can be long.
2. An original attribute Pub/Sub could not carry (key over 256 or value over 1024 bytes: not from Pub/Sub,
   which refused it when it was published) is dropped.
3. Original attributes beyond the 100 (with our five, and one for ``dead_letter_truncated``) are dropped, the
   ``first`` ones kept first (``content_type`` and the timestamp attribute: the only ones the pipeline reads),
   then the others in the order of their keys.
4. A message over ``DEAD_LETTER_MAX_MESSAGE_BYTES`` (the publish request's limit, less room for the topic's
   name): ``dead_letter_error`` is cut to ``DEAD_LETTER_SHORT_ERROR_BYTES``, then original attributes other than
   the ``first`` ones are dropped from the last, then the data is cut at its end. (An original read from Pub/Sub
   is itself under the limit, so only an original within about a kilobyte of it can get there.)

Whatever gave way is named in one more attribute, ``dead_letter_truncated`` (e.g. ``attributes dropped (6):
k95, k96, k97, k98, k99, k100``). While the data is whole and the ``first`` attributes are kept, republishing
the dead letter's bytes and attributes to the input replays it as the pipeline saw it: decoding reads no other
attribute. The caller logs what was dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from transforms.core.limits import (
    DEAD_LETTER_MAX_MESSAGE_BYTES,
    DEAD_LETTER_SHORT_ERROR_BYTES,
    PUBSUB_MAX_ATTRIBUTE_KEY_BYTES,
    PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES,
    PUBSUB_MAX_ATTRIBUTES,
)

DEAD_LETTER_TRUNCATED = "dead_letter_truncated"
_ELLIPSIS = "..."


class FittedMessage(NamedTuple):
    data: bytes
    attributes: dict[str, str]
    dropped: dict[str, str]  # the original attributes that gave way, as they were
    truncated: str | None  # what gave way (the ``dead_letter_truncated`` attribute), None when nothing did


def fit_pubsub_message(
    data: bytes,
    originals: Mapping[str, str],
    ours: Mapping[str, str],
    *,
    first: Iterable[str | None] = (),
    error_key: str | None = None,
    max_bytes: int = DEAD_LETTER_MAX_MESSAGE_BYTES,
) -> FittedMessage:
    """The message to publish: ``data`` and the ``originals`` with ``ours`` (which win a shared key), within
    Pub/Sub's limits (see the module docstring). ``error_key``: the one of ``ours`` cut further for size."""
    ours = {key: cut_utf8(value, PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES) for key, value in ours.items()}
    protected = [
        key for key in dict.fromkeys(first) if key is not None and key in originals and key not in ours
    ]
    order = protected + sorted(key for key in originals if key not in ours and key not in protected)
    kept: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for key in order:
        value = originals[key]
        if (
            len(key.encode("utf-8", "surrogatepass")) > PUBSUB_MAX_ATTRIBUTE_KEY_BYTES
            or len(value.encode("utf-8", "surrogatepass")) > PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES
        ):
            dropped[key] = value
        else:
            kept[key] = value
    room = PUBSUB_MAX_ATTRIBUTES - len(ours)
    if len(kept) > room:
        names = list(kept)
        for key in names[room - 1 :]:  # one left for dead_letter_truncated
            dropped[key] = kept.pop(key)
    cut_data = data
    while True:
        truncated = _describe(dropped, len(data), len(cut_data))
        attributes = {**kept, **ours}
        if truncated is not None:
            attributes[DEAD_LETTER_TRUNCATED] = truncated
        excess = pubsub_message_bytes(len(cut_data), attributes) - max_bytes
        if excess <= 0:
            return FittedMessage(cut_data, attributes, dropped, truncated)
        error = ours.get(error_key) if error_key is not None else None
        if (
            error is not None
            and error_key is not None
            and len(error.encode("utf-8", "surrogatepass")) > DEAD_LETTER_SHORT_ERROR_BYTES
        ):
            ours[error_key] = cut_utf8(error, DEAD_LETTER_SHORT_ERROR_BYTES)
            continue
        droppable = [key for key in kept if key not in protected]
        if droppable:
            dropped[droppable[-1]] = kept.pop(droppable[-1])
            continue
        if not cut_data:  # cannot happen within Pub/Sub's limits (100 attributes are at most 130 KB)
            return FittedMessage(cut_data, attributes, dropped, truncated)
        # The data gives way last; a little more than the excess, as the description of the cut grows too.
        cut_data = cut_data[: max(0, len(cut_data) - excess - 32)]


def pubsub_message_bytes(data_bytes: int, attributes: Mapping[str, str]) -> int:
    """The size of a message in a publish request as Pub/Sub counts it: its serialized ``PubsubMessage`` with
    the framing of its place in the request's ``messages`` (protobuf: tag, length, bytes; map entries keep an
    empty key or value)."""
    body = _field(data_bytes) if data_bytes else 0
    for key, value in attributes.items():
        entry = _field(len(key.encode("utf-8", "surrogatepass"))) + _field(
            len(value.encode("utf-8", "surrogatepass"))
        )
        body += _field(entry)
    return _field(body)


def publish_request_bytes(topic: str) -> int:
    """The size of a publish request's ``topic`` field: a request's size is this plus its messages'."""
    return _field(len(topic.encode("utf-8")))


def cut_utf8(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes: cut at a character and ending in ``...`` when it was longer."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return text
    return encoded[: limit - len(_ELLIPSIS)].decode("utf-8", "ignore") + _ELLIPSIS


def _describe(dropped: Mapping[str, str], data_bytes: int, kept_bytes: int) -> str | None:
    parts = []
    if dropped:
        names = ", ".join(dropped)
        parts.append(f"attributes dropped ({len(dropped)}): {names}")
    if kept_bytes < data_bytes:
        parts.append(f"data cut from {data_bytes} to {kept_bytes} bytes")
    if not parts:
        return None
    # The data's part is kept whole when the names are too many to list.
    text = "; ".join(reversed(parts))
    return cut_utf8(text, PUBSUB_MAX_ATTRIBUTE_VALUE_BYTES)


def _field(payload_bytes: int) -> int:
    """A length-delimited protobuf field of a field number below 16: tag, length (varint) and payload."""
    return 1 + _varint_bytes(payload_bytes) + payload_bytes


def _varint_bytes(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size
