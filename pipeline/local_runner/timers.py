"""The local runner's timer scans (the ``timer_scans`` patch).

Whenever it looks for timers to fire (all the time), Beam's runner visits every key that ever had state in
a stateful step and compares each of its timers with the watermark and the clock through ``Timestamp``
objects, building a new ``Timestamp`` from the clock for every key and every comparison: its cost grows with
the number of keys. We index each step's keys by their earliest timer (the runner changes a key's timers only
by replacing its state, which we see) and visit only the keys with a timer due, comparing integer
microseconds: the same firings in the same order. In pipelines that read Pub/Sub (where timers depend on the
wall clock anyway) scans are at least ``TIMER_SCAN_INTERVAL`` apart, so the timers due in that time fire in
one bundle (one commit), and a timer fires at most that much later. (TestStream pipelines scan after every
bundle, as Beam does.)
"""

from __future__ import annotations

import threading
import time

from transforms.private_api import Replacement

# Pub/Sub pipelines: the least time between two scans for due timers. Every scan that finds due timers of a
# step runs them as one bundle, and each bundle of the stateful step ends with one Spanner commit: scanning
# continuously made bundles of a few keys; this batches them.
TIMER_SCAN_INTERVAL = 0.5


class _TimerIndex(dict):
    """One stateful step's keyed states (Beam's ``{encoded key: state}``), indexed by their earliest timers.

    The runner replaces a key's state only by assignment (a bundle works on a copy of the state and its result
    is committed with ``states[key] = copy``), so the assignments tell which keys' timers may have changed. A
    scan re-reads those keys, keeps a heap of each key's earliest timer per time domain, and visits only the
    keys whose earliest timer is due: the work of a scan follows the number of keys with due or changed
    timers, not the number of keys that ever had state.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self._changed_lock = threading.Lock()
        self._changed: set = set()
        self._ordinal: dict = {}  # key -> position in the dict's order (Beam's scan order)
        self._next_ordinal = 0
        self.earliest: dict = {}  # key -> (earliest real-time timer, earliest watermark timer), in micros
        self.heaps: tuple[list, list] = ([], [])  # (micros, ordinal, key), stale entries skipped
        self.real_time_keys = 0
        self.update(*args, **kwargs)

    def __setitem__(self, key, value) -> None:
        with self._changed_lock:
            if key not in self:
                self._ordinal[key] = self._next_ordinal
                self._next_ordinal += 1
            super().__setitem__(key, value)
            self._changed.add(key)

    def __delitem__(self, key) -> None:
        with self._changed_lock:
            super().__delitem__(key)
            del self._ordinal[key]
            self._changed.add(key)

    def update(self, *args, **kwargs) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key, *default):
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        value = self[key]
        del self[key]
        return value

    def popitem(self):
        raise NotImplementedError("keyed states are not popped")

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def take_changed(self) -> set:
        with self._changed_lock:
            changed, self._changed = self._changed, set()
            return changed

    def ordinal(self, key) -> int:
        return self._ordinal[key]


def install_timer_scans() -> list[Replacement]:
    import heapq

    from apache_beam.runners.direct import evaluation_context, watermark_manager
    from apache_beam.runners.direct.util import TimerFiring
    from apache_beam.transforms.timeutil import TimeDomain
    from apache_beam.utils.timestamp import Timestamp

    watermarks = watermark_manager._TransformWatermarks
    real_time, watermark_domain = TimeDomain.REAL_TIME, TimeDomain.WATERMARK

    def micros(value) -> int:
        return value.micros if type(value) is Timestamp else Timestamp.of(value).micros

    def due_firings(encoded_key, state, watermark, now, firings) -> None:
        """Beam's comparisons for one key: its timers due at ``watermark`` / ``now`` (micros)."""
        for window, timers in list(state.timers.items()):
            for (name, time_domain, tag), timestamp in list(timers.items()):
                if time_domain == real_time:
                    marker = now
                elif time_domain == watermark_domain:
                    marker = watermark
                else:
                    continue
                at = timestamp.micros if type(timestamp) is Timestamp else micros(timestamp)
                if at <= marker:
                    firings.append(
                        TimerFiring(encoded_key, window, name, time_domain, timestamp, dynamic_timer_tag=tag)
                    )

    def full_scan(self):
        """Beam's ``_TransformWatermarks.extract_transform_timers``, same result, one clock read."""
        fired_timers = []
        has_realtime_timer = False
        watermark = micros(self._input_watermark)
        now = None
        for encoded_key, state in self._keyed_states.items():
            if now is None and any(
                domain == real_time for timers in state.timers.values() for (_, domain, _) in timers
            ):
                has_realtime_timer = True
                now = micros(self._clock.time())
            due_firings(encoded_key, state, watermark, now, fired_timers)
        return fired_timers, has_realtime_timer

    def reindex(index: _TimerIndex) -> None:
        for key in index.take_changed():
            state = index.get(key)
            earliest = [None, None]
            if state is not None:
                for timers in state.timers.values():
                    for (_, domain, _), timestamp in timers.items():
                        slot = 0 if domain == real_time else 1 if domain == watermark_domain else None
                        if slot is not None:
                            at = timestamp.micros if type(timestamp) is Timestamp else micros(timestamp)
                            if earliest[slot] is None or at < earliest[slot]:
                                earliest[slot] = at
            before = index.earliest.pop(key, (None, None))
            index.real_time_keys += (earliest[0] is not None) - (before[0] is not None)
            if earliest[0] is None and earliest[1] is None:
                continue
            index.earliest[key] = earliest = tuple(earliest)
            for slot in (0, 1):
                if earliest[slot] is not None and earliest[slot] != before[slot]:
                    heapq.heappush(index.heaps[slot], (earliest[slot], index.ordinal(key), key))

    def indexed_scan(self, index: _TimerIndex):
        """The same firings as ``full_scan``, visiting only the keys whose earliest timer is due."""
        reindex(index)
        watermark = micros(self._input_watermark)
        now = micros(self._clock.time()) if index.real_time_keys else None
        due: dict = {}  # ordinal -> key
        for slot, marker in ((0, now), (1, watermark)):
            heap = index.heaps[slot]
            kept: dict = {}  # ordinal -> entry: one per key, pushed back (the timer stays set until the
            # bundle that fires it commits, and Beam finds it again until then)
            while heap and marker is not None and heap[0][0] <= marker:
                entry = heapq.heappop(heap)
                at, ordinal, key = entry
                earliest = index.earliest.get(key)
                if earliest is None or earliest[slot] != at or index.ordinal(key) != ordinal:
                    continue  # stale: the key's timers changed since
                kept[ordinal] = entry
                due[ordinal] = key
            for entry in kept.values():
                heapq.heappush(heap, entry)
        fired_timers = []
        for ordinal in sorted(due):
            key = due[ordinal]
            due_firings(key, index[key], watermark, now, fired_timers)
        return fired_timers, index.real_time_keys > 0

    def extract_transform_timers(self):
        """Beam's ``_TransformWatermarks.extract_transform_timers``: the same firings in the same order."""
        with self._lock:
            states = self._keyed_states
            found = indexed_scan(self, states) if isinstance(states, _TimerIndex) else full_scan(self)
            self._fired_timers.update(found[0])
            return found

    extract_transform_timers.__wrapped__ = watermarks.extract_transform_timers  # Beam's, for the tests

    context = evaluation_context.EvaluationContext
    initialize = context._initialize_keyed_states

    def _initialize_keyed_states(self, root_transforms, value_to_consumers):
        return {
            transform: _TimerIndex(states)
            for transform, states in initialize(self, root_transforms, value_to_consumers).items()
        }

    _initialize_keyed_states.__wrapped__ = initialize
    scan = context.extract_all_timers

    def reads_pubsub(self) -> bool:
        found = getattr(self, "_occurrence_pipeline_reads_pubsub", None)
        if found is None:
            found = any("ReadFromPubSub" in type(t.transform).__name__ for t in self._root_transforms)
            self._occurrence_pipeline_reads_pubsub = found
        return found

    def extract_all_timers(self):
        if not reads_pubsub(self):
            return scan(self)
        began = time.monotonic()
        if began < getattr(self, "_occurrence_pipeline_next_scan", 0.0):
            return [], True  # the caller (the runner's monitor) uses only the fired timers
        result = scan(self)
        ended = time.monotonic()
        self._occurrence_pipeline_next_scan = ended + max(4 * (ended - began), TIMER_SCAN_INTERVAL)
        return result

    extract_all_timers.__wrapped__ = scan
    return [
        (watermarks, "extract_transform_timers", extract_transform_timers),
        (context, "_initialize_keyed_states", _initialize_keyed_states),
        (context, "extract_all_timers", extract_all_timers),
    ]
