"""What the stateful step receives through the shuffle: ``Routed`` and its coder (``transforms.per_group.routed``)."""

from __future__ import annotations

import msgspec
import pytest

from tests.engine import builders as b
from transforms.core.model import Message, Occurrence, full_event
from transforms.per_group.routed import (
    NO_PROJECT,
    WAKE_TIME,
    Routed,
    RoutedCoder,
    _EmbeddedRouted,
    decode_message,
    encode_project,
    project_info,
)

MESSAGES = [
    b.occurrence(b.T0),
    b.occurrence(b.T0 + 1, lookup=True, message_id="m-lookup"),
    b.status_change(b.T0 + 2, 1),
]


def _whole(message: Message) -> Message:
    """``message`` with its occurrence's event whole (it crosses carried: tests/stream/test_carried_events.py)."""
    payload = message.payload
    if payload.__class__ is not Occurrence or payload.event is None:
        return message
    return msgspec.structs.replace(
        message, payload=msgspec.structs.replace(payload, event=full_event(payload.event))
    )


@pytest.mark.parametrize("message", MESSAGES, ids=["occurrence", "lookup", "status_change"])
def test_a_routed_message_comes_out_of_the_shuffle_as_the_bytes_the_buffer_keeps(message) -> None:
    coder = RoutedCoder()
    routed = Routed.of(message, b.PROJECT)
    out = coder.decode(coder.encode(routed))
    assert out == routed
    assert type(out.encoded) is bytes
    assert _whole(decode_message(out.encoded)) == message
    assert project_info(out.project) == b.PROJECT
    assert out.lookup == (routed.lookup if message.payload.__class__.__name__ == "Occurrence" else None)


def test_a_wake_up_comes_out_of_the_shuffle_as_it_went_in() -> None:
    coder = RoutedCoder()
    for project in (b.PROJECT, None):
        wake = Routed.wake(project)
        out = coder.decode(coder.encode(wake))
        assert out == wake and out.message_time == WAKE_TIME
        assert project_info(out.project) == project


@pytest.mark.parametrize("message", MESSAGES, ids=["occurrence", "lookup", "status_change"])
def test_the_layout_before_the_bin_is_still_read(message) -> None:
    """An updated job may find elements of the earlier layout in flight: they decode to the same ``Routed``."""
    routed = Routed.of(message, b.PROJECT)
    earlier = msgspec.msgpack.encode(
        _EmbeddedRouted(msgspec.Raw(routed.encoded), routed.message_time, routed.lookup, routed.project)
    )
    assert earlier != RoutedCoder().encode(routed)
    out = RoutedCoder().decode(earlier)
    assert out == routed and type(out.encoded) is bytes
    wake = msgspec.msgpack.encode(_EmbeddedRouted(msgspec.Raw(b"\xc0"), WAKE_TIME, None, NO_PROJECT))
    assert RoutedCoder().decode(wake) == Routed.wake(None)


def test_a_routed_coder_refuses_what_is_no_routed_message() -> None:
    with pytest.raises(msgspec.DecodeError):
        RoutedCoder().decode(msgspec.msgpack.encode({"not": "routed"}))
    assert encode_project(None) == NO_PROJECT
