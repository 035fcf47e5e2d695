"""Hydration: a key's state read from Spanner the first time this pipeline sees the key (and again after its
Beam state expired).

Keys are collected in ``process`` and read in one batch, in the background, started by ``finish_bundle`` of
the bundle that first saw them (``HYDRATED``); the key's first flush takes that read, waiting for it if it is
still running (a flush that comes first, or finds it gone or failed, reads its key alone). In local runs a
read of a key whose expiry save is still being committed waits for that commit first (``SAVING``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from typing import Any

from transforms.applier import SpannerTarget
from transforms.core import engine

_LOG = logging.getLogger(__name__)


class HydrationCache:
    """Key states being read, or read, in a batch started by ``finish_bundle``, waiting for the key's next
    flush. Process-wide, because the local runner builds a new DoFn for every bundle.

    The read runs in the background (``applier.PREFETCH``): the first flush of a key waits for it only if it
    has not finished yet, and reads its key alone if it failed. An entry is found only with the token the
    key's ``meta`` recorded when it asked for the read (in the same bundle), so a flush never takes a state
    read for another request, database or pipeline: a stale or foreign entry is simply never found. Entries
    that are never taken (the key was read alone first) are dropped after ``ttl`` seconds once the cache is
    large.
    """

    def __init__(self, ttl: float = 300.0, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[SpannerTarget, str, str], tuple[float, Future]] = {}
        self._ttl = ttl
        self._max_entries = max_entries

    def put(self, target: SpannerTarget, tokens: Mapping[str, str], read: Future) -> None:
        """``read`` gives ``{key: KeyState}`` for the keys of ``tokens`` that have a stored state."""
        now = time.monotonic()
        with self._lock:
            for key, token in tokens.items():
                self._entries[(target, key, token)] = (now, read)
            if len(self._entries) > self._max_entries:
                cutoff = now - self._ttl
                for entry in [entry for entry, (at, _) in self._entries.items() if at < cutoff]:
                    del self._entries[entry]

    def take(self, target: SpannerTarget, key: str, token: str) -> tuple[bool, engine.KeyState | None]:
        with self._lock:
            entry = self._entries.pop((target, key, token), None)
        if entry is None:
            return False, None
        try:
            states = entry[1].result()
        except Exception as error:  # the flush reads its key alone
            _LOG.warning("batched state read failed (%s); reading key %s alone", error, key)
            return False, None
        return True, states.get(key)


HYDRATED = HydrationCache()


class ExpirySaves:
    """Local runs: the commits that carry the saves of expired keys, by key, while they run, so that a read
    of such a key (it came back) waits for its save instead of finding the state before it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commits: dict[tuple[SpannerTarget, str], Future] = {}

    def put(self, target: SpannerTarget, keys: list[str], commit: Future) -> None:
        with self._lock:
            for key in keys:
                self._commits[(target, key)] = commit
            for entry in [entry for entry, future in self._commits.items() if future.done()]:
                del self._commits[entry]

    def pending(self, target: SpannerTarget, keys: list[str]) -> list[Future]:
        with self._lock:
            if not self._commits:
                return []
            found = {self._commits.get((target, key)) for key in keys}
        return [future for future in found if future is not None and not future.done()]


SAVING = ExpirySaves()


def after(commits: list[Future], read: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """``read``, once ``commits`` are done (at once if there are none)."""
    if not commits:
        return read

    def read_after(keys: list[str]) -> Any:
        wait(commits)
        return read(keys)

    return read_after
