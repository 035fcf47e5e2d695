"""The last line of defence around the engine (``transforms.applier.apply_around_failures``): when the engine
raises for a message, that message is set aside (``internal_error``, stage ``apply``) and the batch gives what
the engine gives without it. The failure is injected for chosen messages (the engine's own occurrence step
raises for their ids); everything else is the real engine."""

from __future__ import annotations

import random

import msgspec
import pytest

from tests.engine import builders as b
from transforms import internal_errors
from transforms.applier import _counts_of, apply_around_failures
from transforms.core import engine, metrics, reasons
from transforms.core.engine import engine as engine_module
from transforms.core.enums import GroupStatus
from transforms.core.reencode import payload_json


class Poison:
    """Makes the engine raise for the occurrences whose ids are in ``ids``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ids: set[str] = set()
        original = engine_module._Application._occurrence

        def occurrence(application, message, payload):
            if payload.id in self.ids:
                raise RuntimeError(f"injected failure for {payload.id}")
            return original(application, message, payload)

        monkeypatch.setattr(engine_module._Application, "_occurrence", occurrence)


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> Poison:
    return Poison(monkeypatch)


def _apply(state, messages, ctx):
    """``(state, outputs, dead letters)`` as ``GroupApplier.apply`` makes them."""
    try:
        new_state, outputs = engine.apply(state, messages, ctx)
        return new_state, outputs, []
    except Exception as error:
        new_state, outputs, failed = apply_around_failures(b.occurrence().key, state, messages, ctx, error)
        dead = [internal_errors.for_message(message, reasons.STAGE_APPLY, e) for message, e in failed]
        return new_state, outputs, dead


def test_a_message_the_engine_raises_for_is_set_aside_and_the_rest_applied_as_without_it(poison) -> None:
    messages = [b.occurrence(b.T0 + i * b.SECOND) for i in range(6)]
    bad = messages[3]
    poison.ids.add(bad.payload.id)
    state, outputs, refused = _apply(None, list(reversed(messages)), b.context())
    poison.ids.clear()
    expected_state, expected = engine.apply(None, [m for m in messages if m is not bad], b.context())
    assert engine.encode_state(state) == engine.encode_state(expected_state)
    assert outputs.write == expected.write and outputs.counters == expected.counters
    (dead,) = refused
    assert (dead.message_id, dead.reason, dead.stage) == (
        bad.message_id,
        reasons.INTERNAL_ERROR,
        reasons.STAGE_APPLY,
    )
    assert "RuntimeError" in dead.error and "injected failure" in dead.error
    assert dead.data == bad.data and dead.project_id == b.PROJECT.project_id


def test_without_its_bytes_a_set_aside_message_carries_its_payload_as_json(poison) -> None:
    message = b.occurrence()
    bare = msgspec.structs.replace(message, data=b"", attributes={})
    poison.ids.add(message.payload.id)
    _state, _outputs, (dead,) = _apply(None, [bare], b.context())
    assert dead.data == payload_json(message.payload)


def test_several_failing_messages_from_an_existing_state(poison) -> None:
    first = b.run([b.occurrence(b.T0)]).state
    messages = [b.occurrence(b.T0 + i * b.SECOND) for i in range(1, 30)]
    messages.append(b.status_change(b.T0 + 40 * b.SECOND, GroupStatus.RESOLVED))
    bad = {messages[0].payload.id, messages[13].payload.id, messages[28].payload.id}
    poison.ids.update(bad)
    state, outputs, refused = _apply(first, messages, b.context())
    assert sorted(d.message_id for d in refused) == sorted(
        m.message_id for m in messages if m.payload.id in bad
    )
    poison.ids.clear()
    kept = [m for m in messages if m.payload.id not in bad]
    expected_state, expected = engine.apply(first, kept, b.context())
    assert engine.encode_state(state) == engine.encode_state(expected_state)
    assert outputs.write == expected.write


@pytest.mark.parametrize("seed", range(20))
def test_any_failing_subset_gives_the_result_without_it(poison, seed: int) -> None:
    rng = random.Random(seed)
    messages = [b.occurrence(b.T0 + rng.randrange(0, 100) * b.SECOND) for _ in range(rng.randrange(1, 25))]
    bad = {m.payload.id for m in messages if rng.random() < 0.3}
    poison.ids.update(bad)
    state, outputs, refused = _apply(None, messages, b.context())
    assert {d.message_id for d in refused} == {m.message_id for m in messages if m.payload.id in bad}
    poison.ids.clear()
    kept = [m for m in messages if m.payload.id not in bad]
    if kept:
        expected_state, expected = engine.apply(None, kept, b.context())
        assert engine.encode_state(state) == engine.encode_state(expected_state)
        assert outputs.write == expected.write
    else:
        assert outputs.write is None and state.seq == 0


def test_a_state_the_engine_cannot_take_is_not_blamed_on_a_message(monkeypatch) -> None:
    state = b.run([b.occurrence(b.T0)]).state
    original = engine_module._Application.process

    def broken(application, messages):
        raise RuntimeError("the state is broken")

    monkeypatch.setattr(engine_module._Application, "process", broken)
    with pytest.raises(RuntimeError, match="the state is broken"):
        _apply(state, [b.occurrence(b.T0 + b.SECOND)], b.context())
    monkeypatch.setattr(engine_module._Application, "process", original)


def test_a_group_update_is_counted_once_for_a_write_with_the_group_row_and_never_without_one() -> None:
    """``_counts_of``: the engine's counters, plus ``group.updated`` when the write updates the group's row."""
    first = b.occurrence(b.T0)
    state, outputs = engine.apply(None, [first], b.context())
    assert _counts_of(outputs)[metrics.GROUP_UPDATES] == 1
    assert _counts_of(outputs) == {**outputs.counters, metrics.GROUP_UPDATES: 1}
    _state, again = engine.apply(state, [first], b.context())  # a redelivery: nothing to write
    assert again.write is None and metrics.GROUP_UPDATES not in _counts_of(again)
    refused = b.occurrence(b.T0, fingerprint=["refused by the quota"])
    _state, dropped = engine.apply(None, [refused], b.context(quota=b.MemoryQuota(limit=0)))
    assert dropped.write is not None  # its event and the key's state are written, not the group's row
    assert _counts_of(dropped) == dropped.counters


def test_a_rebuild_counts_the_group_updates_as_the_first_application_counted_them() -> None:
    """``GroupApplier.apply`` counts one ``group.updated`` per UpsertGroup of the write; a rebuild takes the
    flush's counts back and counts ``_counts_of`` instead, so both must count the same for the same outputs
    (a write with two group rows: a group deleted and created again in one call)."""
    _state, outputs = engine.apply(None, [b.occurrence(b.T0)], b.context())
    twice = msgspec.structs.replace(outputs, group_updates=2)
    assert _counts_of(twice)[metrics.GROUP_UPDATES] == 2
