"""``groupless.occurrence``, the path of one occurrence on a key without a group, against the general path.

Every call of a generated stream is applied twice, by ``engine.apply`` and by the general path alone
(``engine._Application``), each run with its own quota: the states, writes, counters (in order), events and dead letters must be the same, and so
must the quota's asks. The streams are given one message a call, in any order (late messages), with
redeliveries (duplicates), so that the path both applies and declines.
"""

from __future__ import annotations

import itertools
from array import array

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.engine.builders import (
    ERROR,
    NO_NOISE,
    NOISY,
    T0,
    UNRELEASED,
    MemoryQuota,
    context,
    occurrence,
    status_change,
)
from tests.engine.sequences import PAIRS, sequences
from tests.engine.test_properties import PROPERTY_SETTINGS
from transforms.core.engine import dedup, groupless
from transforms.core.engine import engine as engine_module
from transforms.core.engine.application import KeyApplication
from transforms.core.engine.ids import occurrence_memory_id
from transforms.core.engine.state import KeyState, encode_state
from transforms.core.intents import KeyWrite, Outputs, SaveKeyState


def _run(calls, make_context, lean: bool, state=None):
    context = make_context()
    results = []
    for messages in calls:
        if lean:
            state, outputs = engine_module.apply(state, messages, context)
        else:
            if state is None:
                payload = messages[0].payload
                state = engine_module.new_state(payload.project_id, payload.hashes[0])
            state, outputs = engine_module._Application(state, context).process(messages)
        results.append((encode_state(state), outputs, list(outputs.counters.items())))
    return results, context.quota.calls if context.quota is not None else None


def _same(calls, make_context, state=None) -> None:
    assert _run(calls, make_context, True, state) == _run(calls, make_context, False, state)


@PROPERTY_SETTINGS
@given(sequence=sequences(), data=st.data())
def test_the_path_gives_what_the_general_path_gives(sequence, data):
    messages = data.draw(st.permutations(sequence.messages))
    redelivered = data.draw(st.lists(st.sampled_from(messages), max_size=4))
    for message in redelivered:
        messages.insert(data.draw(st.integers(0, len(messages))), message)
    # a backfill's calls: occurrences already stored (the path declines them all)
    occurrence_ids = sorted({m.payload.id for m in messages if m.payload.__class__.__name__ == "Occurrence"})
    stored = data.draw(st.sets(st.sampled_from(occurrence_ids)) if occurrence_ids else st.just(set()))

    def make_context():
        return msgspec.structs.replace(sequence.context(), stored_occurrence_ids=frozenset(stored))

    _same([[message] for message in messages], make_context)


def _rich_state():
    """A key without a group whose every field the path carries or books is away from its default: a later
    generation (known from an old state version, so without its start time), a run, held status changes, a
    noise count, releases and a duplicate memory."""
    hour = 3_600_000_000
    calls = [
        [status_change(T0, *PAIRS[0], message_id="s0")],
        [status_change(T0 + hour // 2, *PAIRS[-1], message_id="s1")],
        [occurrence(T0 + hour // 2, message_id="m0", type=NOISY, release="backend@1.0.0")],
    ]
    state = None
    the_context = context(quota=MemoryQuota(limit=0))
    for messages in calls:
        state, _outputs = engine_module.apply(state, messages, the_context)
    assert state.group is None and state.held and state.noise_count and state.releases and state.seen_ids
    return msgspec.structs.replace(state, generation=2, generation_start_id="m0", run=state.run + 3)


@pytest.mark.parametrize(
    ("type_", "buffered", "release", "late", "limit"),
    itertools.product(
        (NOISY, NO_NOISE, UNRELEASED, ERROR),
        (False, True),
        (None, "backend@1.0.0", "backend@2.0.0"),
        (False, True),
        (0, 10**9, None),
    ),
)
def test_each_shape_of_call_on_a_rich_state_gives_what_the_general_path_gives(
    type_, buffered, release, late, limit
):
    hour = 3_600_000_000
    time = T0 + (hour // 4 if late else 2 * hour)
    message = occurrence(time, message_id="m1", type=type_, buffered=buffered, release=release)

    def make_context():
        return context(quota=MemoryQuota(limit=limit) if limit is not None else None)

    _same([[message], [occurrence(time, message_id="m2", type=type_)]], make_context, _rich_state())


def test_the_path_was_written_against_these_fields():
    """``occurrence`` builds the state, the write and the outputs positionally and re-does parts of
    ``application`` (``_take_in``, ``_finish``) and ``occurrence_path`` (``_try_create``): a field added to the
    state, to the working copy (something a call carries, books or counts) or to the outputs must be given there
    as ``_finish`` gives it, and then added here; the comparisons above only see fields their calls set."""
    assert KeyState.__struct_fields__ == (
        "version", "project_id", "primary_hash", "seq", "generation", "last_time", "last_id", "group",
        "noise_count", "noise_last", "run", "run_open", "member", "held", "waiting", "seen_ids", "seen_times",
        "releases", "generation_start_time", "generation_start_id",
    )  # fmt: skip
    assert sorted(KeyApplication.__slots__) == [
        "activity_slots", "attached", "config", "context", "counters", "dead_letters", "features_allowed",
        "first_indexed", "generation", "generation_start_id", "generation_start_time", "group", "group_slot",
        "group_updates", "held", "held_earliest", "holes", "indexed", "intents", "last_id", "last_time",
        "member", "memory", "noise_count", "noise_last", "occurrence_messages", "primary_hash", "project_id",
        "recorded_events", "releases", "relink", "run", "run_open", "seq", "state", "waiting",
    ]  # fmt: skip
    assert Outputs.__struct_fields__ == ("write", "dead_letters", "counters", "events", "group_updates")
    assert KeyWrite.__struct_fields__ == ("key", "seq", "intents", "base_seq")
    assert SaveKeyState.__struct_fields__ == (
        "project_id", "primary_hash", "generation", "group_id", "state", "relink",
    )  # fmt: skip


def test_a_noisy_key_held_back_then_refused_then_created():
    messages = [[occurrence(T0 + index, message_id=f"m{index}", type=NOISY)] for index in range(8)]
    for limit in (0, 1, None):

        def make_context(limit=limit):
            return context(quota=MemoryQuota(limit=limit) if limit is not None else None)

        _same(messages, make_context)


def test_held_status_changes_expire_as_in_the_general_path():
    hour = 3_600_000_000
    calls = [
        [status_change(T0, *PAIRS[0], message_id="s0")],
        [status_change(T0 + hour // 2, *PAIRS[-1], message_id="s1")],
        [occurrence(T0 + hour + hour // 4, message_id="m0", type=NOISY)],
        [occurrence(T0 + 3 * hour, message_id="m1", type=NOISY)],
    ]
    _same(calls, lambda: context(quota=MemoryQuota(limit=0)))


def test_a_granted_creation_is_asked_once():
    quota = MemoryQuota()
    message = occurrence(T0, message_id="m0")
    the_context = context(quota=quota)
    state = engine_module.new_state(message.payload.project_id, message.payload.hashes[0])
    given_context = groupless.occurrence(state, message, the_context)
    assert given_context.__class__ is not tuple and given_context is not None
    state, _outputs = engine_module._Application(state, given_context).process([message])
    assert state.group is not None
    assert len(quota.calls) == 1


def _memory(times: list[int]) -> tuple[bytes, bytes]:
    ids = b"".join(occurrence_memory_id(f"o{index}") for index in range(len(times)))
    return ids, array("q", times).tobytes()


@pytest.mark.parametrize("size", [0, 3, dedup.INDEX_THRESHOLD + 1])
@given(known=st.integers(-1, 5), time=st.integers(0, 10**6), retention=st.integers(0, 10**6))
def test_remember_one_gives_the_memorys_answer(size, known, time, retention):
    ids, times = _memory([index * 1000 for index in range(size)])
    memory_id = occurrence_memory_id(f"o{known}" if 0 <= known < size else "new")
    memory = dedup.DuplicateMemory(ids, times)
    if memory.is_duplicate(memory_id, time, retention):
        expected = None
    else:
        memory.remember(memory_id, time)
        expected = memory.freeze()
    assert dedup.remember_one(ids, times, memory_id, time, retention) == expected


def test_a_message_of_another_key_is_refused_as_by_the_general_path():
    mine = occurrence(T0, message_id="m0")
    other = occurrence(T0, message_id="m1", fingerprint=("another",))
    state = engine_module.new_state(mine.payload.project_id, mine.payload.hashes[0])
    assert groupless.occurrence(state, other, context()) is None
    with pytest.raises(ValueError, match="belongs to key"):
        engine_module.apply(state, [other], context())
