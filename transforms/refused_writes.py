"""Writes the store refused, and the messages that caused them (see ``transforms.applier``).

A refused write's key is held (``RefusedKeys``) with its writes not committed since, each with what it was
made from (``Flush``), until ``GroupApplier.rebuild`` applies them again without the message that caused the
refusal. That message is remembered process-wide (``SET_ASIDE``), so that wherever it comes back (a retried
bundle, a redelivery, a replay) it is a dead letter at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence

import msgspec

from transforms import internal_errors
from transforms.core import engine, reasons
from transforms.core.engine import EngineContext, KeyState
from transforms.core.intents import KeyWrite
from transforms.core.model import DeadLetter, Message
from transforms.storage.group_store import CommitWriter
from transforms.storage.spanner_writer import CommitStats

_LOG = logging.getLogger(__name__)


class Encoded(msgspec.Struct, frozen=True, gc=False):
    """The inputs of one ``GroupApplier.apply`` call as its caller holds them encoded (a flush's buffered
    messages and the key's stored state), for the call's ``Flush`` to keep instead of the decoded objects.
    Never encoded itself; untracked by the collector: bytes, a list of bytes and a function refer to nothing
    that could lead back to it."""

    messages: Sequence[bytes]  # the call's messages, in their order: ``decode(messages[i])`` is the i-th
    decode: Callable[[bytes], Message]
    state: bytes | None = None  # ``engine.encode_state`` of the call's state, when the caller has it


class Flush(msgspec.Struct, frozen=True):
    """What a kept write was made from, to apply it again without a message Spanner refused. A struct, not a
    NamedTuple: one is made for every kept write, and a struct's construction runs in C.

    Kept until the write's commit, and needed only when it is refused (rare): where the caller gave the call's
    inputs encoded (``encoded``), the flush keeps those bytes rather than the decoded messages and state, so
    that these die at the end of their flush, while the CPU's caches still hold them, instead of all at once
    at the commit. Read the inputs with ``inputs``."""

    state: KeyState | None  # the key's state before (None: new to the database, or kept encoded)
    # The messages the engine took (without those it failed for); () when kept encoded.
    messages: Sequence[Message]
    context: EngineContext
    # What the application counted (the engine's counters and the group update): taken back when the flush
    # is applied again, which counts what it commits instead, so a refused message is counted once, as a
    # dead letter.
    counts: Mapping[str, int] = {}
    encoded: Encoded | None = None  # the messages (and the state, if ``encoded.state``) as their bytes

    def inputs(self) -> tuple[KeyState | None, Sequence[Message]]:
        """The call's state before and its messages (decoded again when kept encoded)."""
        encoded = self.encoded
        if encoded is None:
            return self.state, self.messages
        decode = encoded.decode
        messages = [decode(data) for data in encoded.messages]
        return (self.state if encoded.state is None else engine.decode_state(encoded.state)), messages


Entry = tuple[KeyWrite, "Flush | None"]  # a kept write; no Flush for a key-state save made later (``keep``)


class RefusedKeys:
    """Keys with a write Spanner refused, each with its entries not committed since (the refused one first),
    until ``GroupApplier.rebuild`` applies them again. Shared by the thread that commits (``commit_entries``)
    and the one that applies: the local streaming runs' commit thread holds a step's, an applier its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, list[Entry]] = {}
        self._reasons: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._held)

    def __contains__(self, key: str) -> bool:
        return bool(self._held) and key in self._held

    def held_keys(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def hold(self, entries: list[Entry]) -> list[Entry]:
        """The entries to commit now: those of a held key are kept for its rebuild instead."""
        if not self._held:
            return entries
        kept = []
        with self._lock:
            for entry in entries:
                held = self._held.get(entry[0].key)
                if held is None:
                    kept.append(entry)
                else:
                    held.append(entry)
        return kept

    def refuse(self, refused: list[tuple[KeyWrite, str]], entries: list[Entry]) -> list[KeyWrite]:
        """Hold the keys of the refused writes (in ``entries``); returns the refused writes that cannot be made
        again (a key-state save alone, with no flush to apply again)."""
        by_identity = {id(entry[0]): entry for entry in entries}
        dropped = []
        with self._lock:
            for write, reason in refused:
                entry = by_identity[id(write)]
                held = self._held.get(write.key)
                if held is None:
                    if entry[1] is None:
                        dropped.append(write)
                        continue
                    held = self._held[write.key] = []
                    self._reasons[write.key] = reason
                held.append(entry)
        return dropped

    def take(self, key: str) -> tuple[list[Entry], str]:
        with self._lock:
            return self._held.pop(key, []), self._reasons.pop(key, "")


def commit_entries(writer: CommitWriter, refusals: RefusedKeys, entries: list[Entry]) -> CommitStats:
    """Commit the entries' writes, except those of held keys; hold the keys of the writes Spanner refuses."""
    entries = refusals.hold(entries)
    stats = writer.write([write for write, _flush in entries])
    if stats.refused:
        for write in refusals.refuse(stats.refused, entries):
            _LOG.error(
                "the key-state save of key %s (seq %d) was refused and is dropped: the key's next write "
                "carries its state",
                write.key,
                write.seq,
            )
    return stats


class SpannerRefused(Exception):
    """Why a message was set aside at stage ``write`` (its dead letter's error)."""


class SetAside:
    """Messages whose write Spanner refused, by (key, message id), with why, so that wherever they come back (a
    retried bundle, a redelivery, a replay) they are dead letters at once. Process-wide, bounded."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[tuple[str, str], str] = {}
        self._max_entries = max_entries

    def __bool__(self) -> bool:
        return bool(self._reasons)

    def add(self, key: str, message_id: str, reason: str) -> None:
        with self._lock:
            self._reasons[(key, message_id)] = reason
            if len(self._reasons) > self._max_entries:
                for old in list(itertools.islice(self._reasons, self._max_entries // 10)):
                    del self._reasons[old]

    def split(self, key: str, messages: Sequence[Message]) -> tuple[list[Message], list[DeadLetter]]:
        """``(messages to apply, dead letters of those set aside)``."""
        kept, dead = [], []
        for message in messages:
            reason = self._reasons.get((key, message.message_id))
            if reason is None:
                kept.append(message)
            else:
                dead.append(internal_errors.for_message(message, reasons.STAGE_WRITE, SpannerRefused(reason)))
        return kept, dead


SET_ASIDE = SetAside()
