"""The stored key state: encoding, versioning, size, and apply's purity."""

from __future__ import annotations

import msgspec
import pytest

from tests.engine.builders import DAY, NOISY, SECOND, T0, context, occurrence, run, status_change
from transforms.core.engine import (
    STATE_VERSION,
    StateVersionError,
    apply,
    compact,
    decode_state,
    encode_state,
    new_state,
)
from transforms.core.enums import GroupStatus
from transforms.core.model import ProjectInfo


def busy_state():
    return run(
        [occurrence(T0, release="backend@1.0.0", environment="prod")],
        [status_change(T0 + SECOND, GroupStatus.RESOLVED, resolution=("in_release", "backend@1.0.1"))],
        [occurrence(T0 + 2 * SECOND, lookup=True), status_change(T0 + 3 * SECOND, GroupStatus.IGNORED, 5)],
    ).state


def test_state_round_trips_through_its_encoding():
    state = busy_state()
    assert state.waiting and state.member is not None and state.group is not None
    encoded = encode_state(state)
    assert decode_state(encoded) == state
    assert encode_state(decode_state(encoded)) == encoded


def test_held_changes_round_trip():
    state = run([status_change(T0, GroupStatus.RESOLVED)], [occurrence(T0 - DAY, type=NOISY)]).state
    assert state.held
    assert decode_state(encode_state(state)) == state


def test_decoding_another_layout_version_is_refused_with_a_clear_error():
    newer = msgspec.structs.replace(new_state(1, "a" * 32), version=STATE_VERSION + 1)
    with pytest.raises(StateVersionError, match=f"layout version {STATE_VERSION + 1}"):
        decode_state(encode_state(newer))
    other_layout = msgspec.msgpack.encode([STATE_VERSION + 1, "something", "else"])
    with pytest.raises(StateVersionError, match=f"layout version {STATE_VERSION + 1}"):
        decode_state(other_layout)


def test_a_state_of_version_2_is_read_with_no_generation_start():
    """Version 3 only appended the generation start: states stored by version 2 stay readable."""
    state = run([occurrence(T0)], [status_change(T0 + SECOND, GroupStatus.PENDING_DELETION)]).state
    assert (state.generation_start_time, state.generation_start_id) == (T0 + SECOND, state.last_id)
    stored_by_version_2 = msgspec.msgpack.decode(encode_state(state))[:-2]
    stored_by_version_2[0] = 2
    read = decode_state(msgspec.msgpack.encode(stored_by_version_2))
    assert read == msgspec.structs.replace(state, generation_start_time=None, generation_start_id="")
    assert read.version == STATE_VERSION


def test_decoding_garbage_is_refused():
    with pytest.raises(StateVersionError):
        decode_state(b"\x01\x02 not a state")


def test_an_idle_key_encodes_under_one_kibibyte_after_compact():
    releases = [f"backend@1.{minor}.0" for minor in range(40)]
    batches = [
        [occurrence(T0 + index * SECOND, release=release, environment="production")]
        for index, release in enumerate(releases)
    ]
    batches += [[occurrence(T0 + (40 + index) * SECOND)] for index in range(200)]
    state = run(*batches).state
    assert len(encode_state(state)) > 4096  # 240 remembered ids
    idle = compact(state, T0 + DAY)
    assert len(encode_state(idle)) < 1024
    assert idle.seq == state.seq
    assert idle.group == msgspec.structs.replace(state.group, releases={})


def test_compact_without_anything_to_drop_returns_the_same_state():
    state = run([occurrence(T0)]).state
    assert compact(state, T0) is state


def test_apply_does_not_mutate_its_input_state():
    state = busy_state()
    before = encode_state(state)
    apply(
        state,
        [occurrence(T0 + 10 * SECOND, environment="staging"), status_change(T0 + 11 * SECOND, 1)],
        context(),
    )
    apply(state, [status_change(T0 + 12 * SECOND, GroupStatus.PENDING_DELETION)], context())
    assert encode_state(state) == before


def test_a_new_state_knows_its_key_and_nothing_else():
    state = new_state(3, "b" * 32)
    assert (state.project_id, state.primary_hash, state.seq, state.generation) == (3, "b" * 32, 0, 0)
    assert state.group is None and state.seen_ids == b""


def test_apply_without_state_takes_the_key_from_the_first_message():
    state, _ = apply(None, [occurrence(T0, project_id=1)], context())
    assert state.project_id == 1


def test_apply_refuses_a_message_of_another_key():
    state = run([occurrence(T0)]).state
    with pytest.raises(ValueError, match="belongs to key"):
        apply(state, [occurrence(T0, fingerprint=("other",))], context())
    with pytest.raises(ValueError, match="needs a state"):
        apply(None, [], context())


def test_apply_refuses_a_context_of_another_project():
    state = run([occurrence(T0)]).state
    with pytest.raises(ValueError, match="context is for project 2"):
        apply(state, [], context(project=ProjectInfo(2, 10, "frontend")))


def test_apply_records_releases_in_a_copy_of_the_input_states_map():
    state = busy_state()
    known = dict(state.releases)
    new, _ = apply(
        state,
        [
            occurrence(T0 + 10 * SECOND, release="backend@2.0.0"),
            status_change(T0 - SECOND, 1, resolution=("in_release", "backend@0.9.0")),
        ],
        context(),
    )
    assert state.releases == known
    assert new.releases == {**known, "backend@2.0.0": T0 + 10 * SECOND, "backend@0.9.0": T0 - SECOND}
    unchanged, _ = apply(state, [occurrence(T0 + 11 * SECOND, release="backend@1.0.0")], context())
    assert unchanged.releases == known
