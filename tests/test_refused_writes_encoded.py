"""A kept write's ``Flush`` with its inputs kept encoded (``GroupApplier.apply``'s ``encoded``): it holds the
bytes, not the decoded messages and state, and a refused write is applied again from them exactly as from the
objects. The refusal is real: a release over Spanner's key limit, which the in-memory store refuses as Spanner
does (``tests/memory_store.py``)."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from tests.engine import builders as b
from tests.memory_store import MemoryGroupStore
from transforms import applier as applier_module
from transforms.applier import ApplierConfig, Encoded, GroupApplier, SpannerTarget
from transforms.core import engine
from transforms.core.model import Message
from transforms.refused_writes import Flush, SetAside

LONG = "r" * 9000  # a release Spanner refuses as a key (over 8 KiB)
_DECODE = msgspec.msgpack.Decoder(Message).decode


def _applier() -> GroupApplier:
    config = ApplierConfig(spanner=SpannerTarget("p", "i", f"d-{uuid.uuid4().hex[:8]}"))
    return GroupApplier(config, lambda name, amount: None, lambda: 1_000.0, store=MemoryGroupStore())


def _encoded(messages: list[Message], state: engine.KeyState | None) -> Encoded:
    data = None if state is None else engine.encode_state(state)
    return Encoded([msgspec.msgpack.encode(m) for m in messages], _DECODE, data)


def _flushes(applier: GroupApplier) -> list[Flush]:
    return [flush for _write, flush in applier._pending if flush is not None]


def test_a_flush_given_its_inputs_encoded_keeps_their_bytes_and_gives_them_back_equal() -> None:
    first = b.run([b.occurrence(b.T0)]).state
    messages = [b.occurrence(b.T0 + i * b.SECOND, release=f"1.{i}") for i in range(1, 4)]
    applier = _applier()
    applier.apply(b.occurrence().key, first, messages, b.PROJECT, encoded=_encoded(messages, first))
    (flush,) = _flushes(applier)
    assert flush.state is None and flush.messages == () and flush.encoded is not None
    state, again = flush.inputs()
    assert state is not None and engine.encode_state(state) == engine.encode_state(first)
    assert list(again) == messages


def test_a_flush_without_the_states_bytes_keeps_the_state_and_the_messages_bytes() -> None:
    first = b.run([b.occurrence(b.T0)]).state
    messages = [b.occurrence(b.T0 + b.SECOND)]
    applier = _applier()
    encoded = Encoded([msgspec.msgpack.encode(m) for m in messages], _DECODE)
    applier.apply(b.occurrence().key, first, messages, b.PROJECT, encoded=encoded)
    (flush,) = _flushes(applier)
    assert flush.state is first and flush.messages == ()
    assert flush.inputs() == (first, messages)


@pytest.mark.parametrize("bad_at", [0, 2, 4])
@pytest.mark.parametrize("with_state", [False, True])
def test_a_refused_write_is_applied_again_from_the_bytes_as_from_the_messages(
    monkeypatch: pytest.MonkeyPatch, bad_at: int, with_state: bool
) -> None:
    first = b.run([b.occurrence(b.T0)]).state if with_state else None
    messages = [b.occurrence(b.T0 + (i + 1) * b.SECOND, release=f"2.{i}") for i in range(5)]
    messages[bad_at] = b.occurrence(b.T0 + (bad_at + 1) * b.SECOND, release=LONG)
    key = b.occurrence().key
    results = []
    for encoded in (None, _encoded(messages, first)):
        # A process of its own each time: the first run's culprit would be set aside at once in the second.
        monkeypatch.setattr(applier_module, "SET_ASIDE", SetAside())
        applier = _applier()
        applier.apply(key, first, list(reversed(messages)), b.PROJECT, encoded=encoded)
        assert [flush.encoded is encoded for flush in _flushes(applier)] == [True]
        applier.flush()
        assert key in applier.refusals
        state, dead = applier.rebuild(key)
        assert state is not None
        results.append((engine.encode_state(state), [(d.message_id, d.reason, d.stage) for d in dead]))
    assert results[0] == results[1]
    expected, _outputs = engine.apply(first, [m for i, m in enumerate(messages) if i != bad_at], b.context())
    assert results[1][0] == engine.encode_state(expected)
    assert [message_id for message_id, _reason, _stage in results[1][1]] == [messages[bad_at].message_id]
