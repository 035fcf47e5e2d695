"""``DecodedStates``: a key state read back as the very bytes object written is not decoded again; any other
bytes are."""

from __future__ import annotations

import msgspec

from transforms.core import engine
from transforms.core.engine.state import new_state
from transforms.per_group.key_context import DecodedStates


def _written(project_id: int, seq: int) -> tuple[bytes, engine.KeyState]:
    state = msgspec.structs.replace(new_state(project_id, "a" * 32), seq=seq)
    return engine.encode_state(state), state


def test_the_bytes_written_are_read_back_without_decoding() -> None:
    states = DecodedStates()
    data, state = _written(1, 5)
    states.wrote("1:a", data, state)
    assert states.decode("1:a", data) is state
    assert states.decode("1:a", data) is state  # and again, once read


def test_equal_bytes_that_are_another_object_are_decoded() -> None:
    states = DecodedStates()
    data, state = _written(1, 5)
    states.wrote("1:a", data, state)
    copy = bytes(bytearray(data))
    decoded = states.decode("1:a", copy)
    assert decoded == state and decoded is not state
    assert states.decode("1:a", copy) is decoded  # now the copy is the one kept


def test_other_bytes_of_the_key_are_decoded_as_they_are() -> None:
    states = DecodedStates()
    data, state = _written(1, 5)
    states.wrote("1:a", data, state)
    newer, _ = _written(1, 6)
    assert states.decode("1:a", newer).seq == 6
    assert states.decode("2:a", data) == state and states.decode("2:a", data) is not state


def test_the_least_recently_used_keys_are_dropped_beyond_the_capacity() -> None:
    states = DecodedStates(capacity=2)
    written = {key: _written(1, seq) for seq, key in enumerate(("k1", "k2", "k3"))}
    states.wrote("k1", *written["k1"])
    states.wrote("k2", *written["k2"])
    assert states.decode("k1", written["k1"][0]) is written["k1"][1]  # k1 used: k2 is now the oldest
    states.wrote("k3", *written["k3"])
    assert states.decode("k1", written["k1"][0]) is written["k1"][1]
    assert states.decode("k2", written["k2"][0]) is not written["k2"][1]  # dropped: decoded again
