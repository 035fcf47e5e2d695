"""Streaming: apply each key's messages through the group engine, serially, in key order, in micro-batches.

``ApplyPerGroup`` takes ``(key, Message)`` pairs (keyed by ``Message.key``) and returns a ``DoOutputsTuple``
whose ``dead_letter`` output carries the engine's dead letters. Its writes go to Spanner from inside the
DoFn, at the end of each bundle, before Beam commits the bundle's state:

* **Order.** A key's messages are buffered until the watermark has passed their message time plus
  ``watermark_delay`` *and* ``processing_hold`` of processing time has passed since the buffer's first
  message arrived; then every buffered message the watermark has passed is applied in one engine call (the
  engine sorts them by message time and id). Messages that arrive behind the watermark are applied at the
  next flush under the engine's late rules.
* **Nothing lost, nothing doubled.** The Spanner commit happens in ``finish_bundle``; if it fails the bundle
  fails, Beam keeps the previous state and retries, and the engine recomputes the same writes (same ``seq``),
  which the guarded writer treats as already applied where they were. Writes of one key are committed in
  ``seq`` order because a key's next bundle starts only after this one committed.
* **State.** ``buffer`` (bag of messages waiting for the watermark), ``key_state`` (the engine's encoded
  state; empty until hydrated), ``meta`` (hydration flag, flush bookkeeping, the key's project). A key is
  hydrated from Spanner the first time this pipeline sees it: keys are collected in ``process`` and read in
  one batch in ``finish_bundle``; a flush that comes first reads its key alone. When the watermark passes the
  key's last message time plus the duplicate retention and the pending-status window, and nothing is
  buffered or waiting, all of the key's Beam state is cleared: it lives on in Spanner and is hydrated again
  if the key comes back.
* **Lookups** that wait for their event are retried every ``lookup_retry_interval`` (processing time) until
  the engine applies or dead-letters them.
* **Projects.** Timer callbacks cannot read side inputs, so ``process`` keeps the key's ``ProjectInfo`` from
  the registry side input in ``meta``: registrations take effect for a key with its next message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import apache_beam as beam
import msgspec
from apache_beam import pvalue
from apache_beam.coders import BytesCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from transforms import coders, progress
from transforms.applier import ApplierConfig, GroupApplier
from transforms.core import engine, metrics, reasons
from transforms.core.model import MICROS, DeadLetter, Message, ProjectInfo, split_group_key

_LOG = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter"
FLUSHES = "flushes"


class _Meta(msgspec.Struct, array_like=True):
    hydrated: bool = False
    hydrate_requested_at: float = 0.0  # clock() when this key's state was last requested from Spanner
    hold_passed: bool = False  # the processing-time hold of the current buffer has passed
    hold_armed: bool = False
    ready_until: int | None = None  # the watermark has passed this message time (+ delay): µs
    event_target: int | None = None  # when the event-time flush timer is set for (µs)
    max_time: int = 0  # greatest message time of the key seen by this pipeline (µs)
    project: ProjectInfo | None = None


_META_ENCODER = msgspec.msgpack.Encoder()
_META_DECODER = msgspec.msgpack.Decoder(_Meta)

# Key states read in a batch by finish_bundle, consumed by the key's next flush: key -> (clock(), state bytes).
# Process-wide because the BundleBasedDirectRunner builds a new DoFn for every bundle.
_HYDRATED: dict[str, tuple[float, Any]] = {}
_HYDRATED_LOCK = threading.Lock()
_HYDRATED_TTL = 120.0


def _timestamp(micros: int) -> Timestamp:
    return Timestamp(micros=micros)


class ApplyPerGroupFn(beam.DoFn):
    BUFFER = BagStateSpec("buffer", coders.MessageCoder())
    KEY_STATE = ReadModifyWriteStateSpec("key_state", BytesCoder())
    META = ReadModifyWriteStateSpec("meta", BytesCoder())
    EVENT_FLUSH = TimerSpec("event_flush", TimeDomain.WATERMARK)
    HOLD_FLUSH = TimerSpec("hold_flush", TimeDomain.REAL_TIME)
    LOOKUP_RETRY = TimerSpec("lookup_retry", TimeDomain.REAL_TIME)
    EXPIRE = TimerSpec("expire", TimeDomain.WATERMARK)

    def __init__(
        self,
        config: ApplierConfig,
        *,
        watermark_delay: float = 2.0,
        processing_hold: float = 2.0,
        lookup_retry_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._delay = int(watermark_delay * MICROS)
        self._hold = processing_hold
        self._lookup_retry = lookup_retry_interval
        self._clock = clock
        self._expire_after = config.engine.duplicate_retention + config.engine.pending_status_window

    # --- lifecycle ---------------------------------------------------------------------------------
    def setup(self) -> None:
        self._counters: dict[str, Any] = {}
        self._flushes = Metrics.distribution(metrics.NAMESPACE, "flush_batch_size")

    def start_bundle(self) -> None:
        self._applier = GroupApplier(self._config, self._count, self._clock)
        self._to_hydrate: set[str] = set()

    def finish_bundle(self) -> None:
        self._applier.flush()
        if self._to_hydrate:
            keys, self._to_hydrate = self._to_hydrate, set()
            read_at = self._clock()
            stored = self._applier.hydrate(keys)
            with _HYDRATED_LOCK:
                for key in keys:
                    _HYDRATED[key] = (read_at, stored.get(key))
                if len(_HYDRATED) > 100_000:
                    cutoff = read_at - _HYDRATED_TTL
                    for key in [k for k, (at, _) in _HYDRATED.items() if at < cutoff]:
                        del _HYDRATED[key]

    def _count(self, name: str, amount: int) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(metrics.NAMESPACE, name)
        counter.inc(amount)
        progress.add(name, amount)

    # --- input ---------------------------------------------------------------------------------------
    def process(
        self,
        element: tuple[str, Message],
        projects: Mapping[int, ProjectInfo],
        buffer=beam.DoFn.StateParam(BUFFER),
        meta_state=beam.DoFn.StateParam(META),
        event_flush=beam.DoFn.TimerParam(EVENT_FLUSH),
        hold_flush=beam.DoFn.TimerParam(HOLD_FLUSH),
        expire=beam.DoFn.TimerParam(EXPIRE),
    ) -> None:
        key, message = element
        meta = self._meta(meta_state)
        buffer.add(message)
        project = projects.get(message.project_id)
        if project is not None:
            meta.project = project
        if not meta.hydrated:
            self._to_hydrate.add(key)
            meta.hydrate_requested_at = self._clock()
        if not meta.hold_armed:
            meta.hold_armed, meta.hold_passed = True, False
            hold_flush.set(Timestamp.of(self._clock() + self._hold))
        target = message.message_time + self._delay
        if meta.event_target is None or target < meta.event_target:
            meta.event_target = target
            event_flush.set(_timestamp(target))
        if message.message_time > meta.max_time:
            meta.max_time = message.message_time
            expire.set(_timestamp(meta.max_time + self._expire_after))
        meta_state.write(_META_ENCODER.encode(meta))

    # --- timers --------------------------------------------------------------------------------------
    @on_timer(EVENT_FLUSH)
    def on_event_flush(
        self,
        key=beam.DoFn.KeyParam,
        fired=beam.DoFn.TimestampParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        event_flush=beam.DoFn.TimerParam(EVENT_FLUSH),
        hold_flush=beam.DoFn.TimerParam(HOLD_FLUSH),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
    ) -> Iterator[Any]:
        meta = self._meta(meta_state)
        meta.event_target = None
        fired_micros = fired.micros
        meta.ready_until = fired_micros if meta.ready_until is None else max(meta.ready_until, fired_micros)
        if meta.hold_passed:
            yield from self._flush(key, buffer, key_state, meta, event_flush, hold_flush, lookup_retry)
        meta_state.write(_META_ENCODER.encode(meta))

    @on_timer(HOLD_FLUSH)
    def on_hold_flush(
        self,
        key=beam.DoFn.KeyParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        event_flush=beam.DoFn.TimerParam(EVENT_FLUSH),
        hold_flush=beam.DoFn.TimerParam(HOLD_FLUSH),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
    ) -> Iterator[Any]:
        meta = self._meta(meta_state)
        meta.hold_passed, meta.hold_armed = True, False
        if meta.ready_until is not None:
            yield from self._flush(key, buffer, key_state, meta, event_flush, hold_flush, lookup_retry)
        meta_state.write(_META_ENCODER.encode(meta))

    @on_timer(LOOKUP_RETRY)
    def on_lookup_retry(
        self,
        key=beam.DoFn.KeyParam,
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
    ) -> Iterator[Any]:
        meta = self._meta(meta_state)
        state = self._load(key, key_state, meta)
        if state is None or not state.waiting or meta.project is None:
            return
        new_state, dead_letters = self._applier.apply(key, state, [], meta.project)
        key_state.write(engine.encode_state(new_state))
        self._arm_lookup_retry(new_state, lookup_retry)
        meta_state.write(_META_ENCODER.encode(meta))
        for dead_letter in dead_letters:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)

    @on_timer(EXPIRE)
    def on_expire(
        self,
        fired=beam.DoFn.TimestampParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
    ) -> None:
        meta = self._meta(meta_state)
        if fired.micros < meta.max_time + self._expire_after:
            return  # the key saw newer messages; its expiry timer was moved
        if next(iter(buffer.read()), None) is not None:
            return
        data = key_state.read()
        if data is not None and engine.decode_state(data).waiting:
            return
        # Everything the key knows is in Spanner (committed with the bundle of its last flush).
        buffer.clear()
        key_state.clear()
        meta_state.clear()

    # --- the flush -----------------------------------------------------------------------------------
    def _flush(
        self, key, buffer, key_state, meta: _Meta, event_flush, hold_flush, lookup_retry
    ) -> Iterator[Any]:
        ready = meta.ready_until
        take: list[Message] = []
        keep: list[Message] = []
        for message in buffer.read():
            (take if message.message_time + self._delay <= ready else keep).append(message)
        if not take:
            return
        buffer.clear()
        for message in keep:
            buffer.add(message)
        if keep:
            meta.event_target = min(message.message_time for message in keep) + self._delay
            event_flush.set(_timestamp(meta.event_target))
            meta.hold_armed, meta.hold_passed = True, False
            hold_flush.set(Timestamp.of(self._clock() + self._hold))
        else:
            meta.hold_armed, meta.hold_passed = False, False
        if meta.project is None:
            project_id = split_group_key(key)[0]
            for message in take:
                yield pvalue.TaggedOutput(
                    DEAD_LETTER,
                    DeadLetter(
                        message.message_id,
                        message.message_time,
                        message.data,
                        message.attributes,
                        reasons.UNKNOWN_PROJECT,
                        f"project {project_id} is not registered",
                        reasons.STAGE_APPLY,
                        project_id,
                    ),
                )
            return
        state = self._load(key, key_state, meta)
        new_state, dead_letters = self._applier.apply(key, state, take, meta.project)
        self._flushes.update(len(take))
        key_state.write(engine.encode_state(new_state))
        self._arm_lookup_retry(new_state, lookup_retry)
        for dead_letter in dead_letters:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)

    def _arm_lookup_retry(self, state, lookup_retry) -> None:
        deadline = engine.next_lookup_deadline(state)
        if deadline is None:
            return
        now = self._clock()
        lookup_retry.set(Timestamp.of(min(now + self._lookup_retry, max(deadline / MICROS, now))))

    def _load(self, key: str, key_state, meta: _Meta) -> engine.KeyState | None:
        if meta.hydrated:
            data = key_state.read()
            return None if data is None else engine.decode_state(data)
        with _HYDRATED_LOCK:
            cached = _HYDRATED.pop(key, None)
        if cached is not None and cached[0] >= meta.hydrate_requested_at:
            state = cached[1]
        else:
            state = self._applier.hydrate([key]).get(key)
        meta.hydrated = True
        self._to_hydrate.discard(key)
        return state

    @staticmethod
    def _meta(meta_state) -> _Meta:
        data = meta_state.read()
        return _Meta() if data is None else _META_DECODER.decode(data)


class ApplyPerGroup(beam.PTransform):
    """``(key, Message)`` → ``DoOutputsTuple`` with ``dead_letter`` (see the module docstring)."""

    def __init__(
        self,
        config: ApplierConfig,
        projects: pvalue.AsSideInput,
        *,
        watermark_delay: float = 2.0,
        processing_hold: float = 2.0,
        lookup_retry_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        self._fn = ApplyPerGroupFn(
            config,
            watermark_delay=watermark_delay,
            processing_hold=processing_hold,
            lookup_retry_interval=lookup_retry_interval,
            clock=clock,
        )
        self._projects = projects

    def expand(self, keyed: beam.PCollection) -> pvalue.DoOutputsTuple:
        outputs = keyed | "ApplyEngine" >> beam.ParDo(self._fn, self._projects).with_outputs(
            DEAD_LETTER, main="applied"
        )
        return coders.typed(outputs, **{DEAD_LETTER: DeadLetter})
