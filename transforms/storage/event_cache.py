"""The events this process stored or read, and the background reads that fill it (``KNOWN_EVENTS``).

Events never change once stored, so a lookup (an occurrence whose event came on the event path) can take its
event from here instead of reading the store. Reads started by one bundle run on a small process-wide pool
(``PREFETCH``) and are taken by a later one (the key's first flush, a lookup's first attempt), so the runner's
thread does not wait for them. Every read remembers what it did not find, so a lookup's event is read at most
once per retry interval (``GroupApplier.events_for``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from transforms.core.model import Event, Message, Occurrence

_LOG = logging.getLogger(__name__)


class EventReader(Protocol):
    """Where events are read from (``group_store.GroupStore``): its name, and a read of events by key."""

    @property
    def name(self) -> str: ...

    def read_events(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], Event]: ...


class Prefetcher:
    """A small process-wide pool of threads for Spanner reads started by one bundle and taken by a later one
    (the key's first flush, a lookup's first attempt), so the runner's thread does not wait for them."""

    def __init__(self, workers: int = 2) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, function: Callable, *args) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="spanner-prefetch")
            return self._pool.submit(function, *args)


PREFETCH = Prefetcher()


class _Later:
    """Runs functions after a delay, on one daemon thread of the process (for prefetches that wait)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call(self, delay: float, function: Callable[[], None]) -> None:
        with self._condition:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), function))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delayed-prefetch", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._condition.wait(None if not self._due else self._due[0][0] - time.monotonic())
                _due, _order, function = heapq.heappop(self._due)
            try:
                function()
            except Exception:  # a prefetch's own errors are the flush's to see
                _LOG.exception("delayed prefetch failed to start")


_LATER = _Later()


class EventCache:
    """Events this process stored or read, by (project, event id): events never change once stored, so a
    lookup can take one from here instead of reading Spanner. Bounded (oldest entries dropped first).

    Held by event id alone, the event's own project id checked on the way out: a key tuple made and kept for
    every event stored would be one more object for the garbage collector to track. Two projects' events of
    one id (ids are unique within a project) take each other's place: the other is read again when needed.

    ``prefetch`` reads, in the background, the events of lookups that just arrived. Every read remembers what
    it did not find in which store (database) as *absent*, with the processing time the read started
    (``absent_since``), so that a lookup's event is read at most once per retry interval however often its
    key flushes, and again just before its deadline (``GroupApplier.events_for``).
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, Event] = {}  # by event id (see the class docstring)
        self._max_entries = max_entries
        self._absent: dict[tuple[str, int, str], float] = {}  # (database name, project, event id)
        self._in_flight: dict[tuple[int, str], Future] = {}
        self._not_started: dict[Future, Callable[[], object]] = {}  # delayed reads, by their future

    def get(self, key: tuple[int, str]) -> Event | None:
        event = self._events.get(key[1])
        if event is not None and event.project_id == key[0]:
            return event
        return None

    def forget_carried(self, message: Message) -> None:
        """Forget the event ``message`` carried: its write was refused, so it is not stored."""
        payload = message.payload
        if payload.__class__ is Occurrence and payload.event is not None:
            with self._lock:
                if self.get((payload.project_id, payload.event.event_id)) is not None:
                    del self._events[payload.event.event_id]

    def put(self, key: tuple[int, str], event: Event) -> None:
        with self._lock:
            self._put(key, event)

    def put_all(self, events: list[Event]) -> None:
        """``put`` of several events, by their (project, event id), under one lock."""
        self.put_by_id({event.event_id: event for event in events})

    def put_by_id(self, events: Mapping[str, Event]) -> None:
        """``put_all`` of events given by their event ids (each key is its event's ``event_id``, as the
        engine's ``Outputs.events``): one ``dict.update``, which reuses the hashes the mapping holds."""
        with self._lock:
            known = self._events
            known.update(events)
            if len(known) > self._max_entries:
                self._drop_oldest()

    def _put(self, key: tuple[int, str], event: Event) -> None:
        self._events[key[1]] = event  # found from now on: its absent entries are never asked for again
        if len(self._events) > self._max_entries:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        for old in list(itertools.islice(self._events, self._max_entries // 10)):
            del self._events[old]

    def prefetch(
        self,
        store: EventReader,
        keys: Iterable[tuple[int, str]],
        clock: Callable[[], float],
        delay: float = 0.0,
    ) -> None:
        """Start one background read of those of ``keys`` not known, absent or being read already, after
        ``delay`` seconds: the event of a lookup is often carried by an occurrence that arrived with it and is
        applied (and so known here) before the lookup's flush; by then the read skips what became known. A
        flush that needs a delayed read before it started starts it at once (``settle``)."""
        name = store.name
        with self._lock:
            wanted = sorted(
                key
                for key in set(keys)
                if self.get(key) is None and key not in self._in_flight and (name, *key) not in self._absent
            )
            if not wanted:
                return
            done: Future = Future()
            for key in wanted:
                self._in_flight.setdefault(key, done)
            self._not_started[done] = lambda: PREFETCH.submit(self._read, store, wanted, clock, done)
        if delay > 0:
            _LATER.call(delay, lambda: self._start(done))
        else:
            self._start(done)

    def _start(self, done: Future) -> None:
        with self._lock:
            start = self._not_started.pop(done, None)
        if start is not None:
            start()

    def _read(
        self, store: EventReader, keys: list[tuple[int, str]], clock: Callable[[], float], done: Future
    ) -> None:
        began = clock()
        try:
            unknown = [key for key in keys if self.get(key) is None]  # applied here meanwhile: no read
            if unknown:
                self.record_read(store.name, unknown, store.read_events(unknown), began)
            done.set_result(None)
        except Exception as error:  # the flush reads them itself
            done.set_exception(error)
        finally:
            with self._lock:
                for key in keys:
                    if self._in_flight.get(key) is done:
                        del self._in_flight[key]

    def settle(self, key: tuple[int, str]) -> None:
        """Wait for the background read of ``key``, starting it if it waits for its delay (its errors are the
        flush's to retry)."""
        future = self._in_flight.get(key)
        if future is not None:
            self._start(future)
            with contextlib.suppress(Exception):  # the caller then reads the event itself
                future.result()

    def reading(self, key: tuple[int, str]) -> bool:
        """Whether a background read of ``key`` is still running (started now if it waited for its delay)."""
        future = self._in_flight.get(key)
        if future is None:
            return False
        self._start(future)
        return not future.done()

    def absent_since(self, database_name: str, key: tuple[int, str]) -> float | None:
        """When (processing time, seconds) the latest read of ``database_name`` that did not find ``key``
        started, or None."""
        return self._absent.get((database_name, *key))

    def record_read(
        self, database_name: str, keys: Iterable[tuple[int, str]], found: Mapping, began: float
    ) -> None:
        with self._lock:
            for key in keys:
                event = found.get(key)
                if event is not None:
                    self._put(key, event)
                elif self.get(key) is None:
                    self._absent[(database_name, *key)] = began
            self._bound_absent()

    def _bound_absent(self) -> None:
        if len(self._absent) > self._max_entries:
            for old in list(itertools.islice(self._absent, self._max_entries // 10)):
                del self._absent[old]


KNOWN_EVENTS = EventCache()
