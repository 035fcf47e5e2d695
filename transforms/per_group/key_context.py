"""One key of the stateful step: its bookkeeping (``KeyMeta``, the ``meta`` state) and, for one callback, its
state and timer handles together (``KeyHandles``).

``KeyMeta`` is encoded as a msgpack array into the ``meta`` state (``BytesCoder``): its fields are appended
at the end only, with defaults, so that a state written by an earlier version still decodes.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import msgspec
from apache_beam.utils.timestamp import Timestamp

from transforms.per_group.routed import NO_PROJECT

# Tokens of hydration reads: unique in this process (a counter) and across processes (a random prefix: a
# key's Beam state, with its token, may outlive the process that asked for the read). A counter rather than
# uuid4 per key: see docs/performance.md.
# ``new_token()`` gives the next one (``PREFIX-0``, ``PREFIX-1``...): an iterator built of C callables, so that
# a new key costs no Python call for it.
new_token = map((uuid.uuid4().hex[:16] + "-").__add__, map(str, itertools.count())).__next__


class KeyMeta(msgspec.Struct, array_like=True, gc=False):
    """The key's bookkeeping in its ``meta`` state, decoded and encoded once or more a message. ``gc=False``:
    its fields are flags, numbers, text and the project's bytes, never an object that could refer back to it,
    so the collector need not track it (decoding one took 448 ns tracked, 262 untracked: docs/performance.md).
    """

    hydrated: bool = False
    hydrate_token: str = ""  # names this key's batched read, asked for by the bundle that first saw it
    hold_passed: bool = False  # the processing-time hold of the current buffer has passed
    hold_armed: bool = False  # the hold timer is set (the buffer is not empty and its hold runs)
    ready_until: int | None = None  # the watermark has passed this message time (+ delay): µs
    event_target: int | None = None  # when the event-time flush timer is set for (µs)
    buffer_max: int | None = None  # the latest message time (+ delay) in the buffer (µs)
    max_time: int = 0  # greatest message time of the key seen by this pipeline (µs)
    project: msgspec.Raw = NO_PROJECT  # the project as Routed carried it: read it with project_info
    # A state of the key without a group that is not in KeyStates yet: the base_seq its save carries (None:
    # KeyStates is up to date); and whether the save_state timer is set.
    unsaved_base: int | None = None
    save_armed: bool = False
    waiting_marked: bool = False  # the key's row in WaitingKeys is (believed) written


META_ENCODER = msgspec.msgpack.Encoder()
META_DECODER = msgspec.msgpack.Decoder(KeyMeta)


def read_meta(meta_state: Any) -> KeyMeta:
    """The key's ``KeyMeta`` (a new one if the key has none)."""
    data = meta_state.read()
    return KeyMeta() if data is None else META_DECODER.decode(data)


class KeyHandles(msgspec.Struct, gc=False):
    """One callback's view of its key: the key, its state cells and timers (Beam's handles, or any object
    with their methods), and the key's ``KeyMeta`` as the callback decoded it. Built once per callback and
    handed to the flush and its helpers; a handle the callback was not given is None. A msgspec Struct
    because it is built in C (a callback builds one per flush); ``gc=False``: it holds no cycle."""

    key: str
    buffer: Any
    key_state: Any
    meta_state: Any
    meta: KeyMeta
    event_flush: Any = None
    lookup_retry: Any = None
    expire: Any = None
    confirm: Any = None
    save: Any = None

    def write_meta(self) -> None:
        self.meta_state.write(META_ENCODER.encode(self.meta))

    def buffer_empty(self) -> bool:
        return next(iter(self.buffer.read()), None) is None


def timestamp(micros: int) -> Timestamp:
    return Timestamp(micros=micros)


# A message time every message is before: a draining flush takes the whole buffer (the delay is added to
# message times before they are compared with it, so it leaves room for any delay).
END_OF_TIME = 1 << 62
