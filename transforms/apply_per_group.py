"""Streaming: apply each key's messages through the group engine, serially, in key order, in micro-batches.

``ApplyPerGroup`` takes ``(key, Message)`` pairs (keyed by ``Message.key``) and returns ``{"applied",
"dead_letter"}``, the latter with the dead letters of the engine and of messages that could not be routed.
Its writes go to Spanner from inside the DoFn, at the end of each bundle, before Beam commits the bundle's
state. The parts of the step, each with its contract, are in ``transforms.per_group``: ``routed`` (what the
step receives), ``key_context`` (a key's bookkeeping and handles), ``flush`` (a key's flush, saves, lookups,
WaitingKeys), ``bundle`` (a bundle's end: commits, nothing lost, nothing doubled), ``hydration``,
``local_commits`` (``overlap_commits``), ``watermark`` (the probe) and ``drain``. This module holds the DoFn,
its state and timers, and when each callback does what:

* **Order.** A key's messages are buffered until the watermark has passed their message time plus
  ``watermark_delay`` *and* ``processing_hold`` of processing time has passed since the first message of
  the (empty) buffer arrived; then every buffered message the watermark is known to have passed is applied
  in one engine call (the engine sorts them by message time and id). How far the watermark has gone is
  known from the timers (``transforms.per_group.watermark``). Messages that arrive behind the watermark are
  applied at the next flush under the engine's late rules.
* **Timers.** ``hold_flush`` (processing time) is armed when a message arrives in an empty buffer, and not
  again until the buffer is empty: messages kept for the watermark have had their hold. ``event_flush``
  (event time) is set for the earliest buffered message; while the hold runs, each firing moves it to the
  latest buffered message, so a backlog the watermark has already passed is applied in one flush when the
  hold ends instead of one flush per message time. A message the watermark is already known to have passed
  when it arrives, while the hold runs or is about to, sets no ``event_flush`` at all: the hold's flush
  takes it. To know that, the holds of a step keep one ``watermark_probe`` timer pending in each process
  (event time, ``PROBE_MARGIN`` behind the processing time when set). ``lookup_retry`` retries the lookups
  of a key whose occurrences wait for their event; ``save_state`` writes a deferred KeyStates save;
  ``confirm`` (``overlap_commits``) makes a later bundle come to count a commit; ``expire`` is below.
* **State.** ``buffer`` (bag of messages waiting for the watermark, as ``Routed.of`` encoded them),
  ``key_state`` (the engine's encoded state; empty until hydrated), ``meta`` (``KeyMeta``: hydration, flush
  bookkeeping, the key's project). A key is hydrated from Spanner the first time this pipeline sees it (and
  again after its state expired). Before each flush the duplicate memory is compacted to
  ``duplicate_retention`` before the earlier of the watermark and the key's latest message time
  (``engine.compact``).
* **Expiry.** When a key has been idle (nothing buffered, nothing waiting for an event) for ``idle_timeout``
  of processing time, all of its Beam state is cleared: it lives on in Spanner, committed with the bundle of
  its last flush (or saved now, with the expiring bundle), and is hydrated again (one batched read) if the
  key comes back. The expiry timer is armed when the key becomes idle, so only recently active keys hold
  state and timers (the local runner scans every key with a timer whenever it looks for timers to fire).
* **Waking.** With ``wake_waiting``, a starting pipeline sends each key named in ``WaitingKeys`` a wake-up
  (``transforms.waiting_keys``), which reads its state and retries its lookups at once: what waited when the
  last pipeline stopped is settled by this one, whether or not its key gets another message.
* **Projects.** A stateless step (``AttachProject``) looks each message's ``ProjectInfo`` up in the registry
  side input; the stateful step keeps the latest one in ``meta`` (timer callbacks cannot read side inputs):
  registrations take effect for a key with its next message. The stateful step has no side input at all,
  which also keeps Beam from taking the side input's coder for its timers' keys.
* **Counters.** Everything the engine counts, ``dead_letters.<reason>`` for the dead letters of this stage,
  ``state.hydrated`` (keys read from Spanner) and ``state.expired`` (keys whose Beam state was cleared).

Processing time is read from ``clock`` (seconds), injectable for tests: the TestStream's processing time
starts at 0, so a test passes a clock that does too. The engine's store is built by ``applier_factory``
(default ``GroupApplier``), injectable likewise.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import BytesCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from transforms import coders, waiting_keys
from transforms.applier import ApplierConfig, GroupApplier
from transforms.core import engine, metrics
from transforms.core.model import MICROS, DeadLetter
from transforms.counting import CountingDoFn
from transforms.per_group import flush
from transforms.per_group.bundle import COMMITS_BEHIND, Bundle, StepSettings, WritesRefused
from transforms.per_group.drain import (
    DRAIN,
    buffered_messages,
    drain_stats,
    reset_draining,
    start_draining,
)
from transforms.per_group.key_context import (
    META_DECODER,
    META_ENCODER,
    KeyHandles,
    KeyMeta,
    new_token,
    read_meta,
    timestamp,
)
from transforms.per_group.local_commits import (
    REBUILT,
    ApplierFactory,
    CommitFailed,
    saves_due,
    step_committer,
    stopped_dead_letters,
    uncounted_counts,
    wait_for_commits,
)
from transforms.per_group.routed import (
    DEAD_LETTER,
    NO_PROJECT,
    WAKE_TIME,
    AttachProject,
    Routed,
    RoutedCoder,
    decode_message,
    project_info,
)
from transforms.per_group.watermark import PROBE_MARGIN, PROBES, WATERMARK_SEEN
from transforms.runtime import tune_garbage_collector

# process and the flush timers: the meta state decoded and encoded without a Python call of ours
_decode_meta, _encode_meta = META_DECODER.decode, META_ENCODER.encode

# The names other modules import from here (the step's public face; the parts live in transforms.per_group).
__all__ = [
    "DEAD_LETTER",
    "WAKE_TIME",
    "ApplyPerGroup",
    "ApplyPerGroupFn",
    "AttachProject",
    "CommitFailed",
    "KeyMeta",
    "Routed",
    "RoutedCoder",
    "WritesRefused",
    "buffered_messages",
    "decode_message",
    "drain_stats",
    "reset_draining",
    "saves_due",
    "start_draining",
    "step_committer",
    "stopped_dead_letters",
    "uncounted_counts",
    "wait_for_commits",
]


class ApplyPerGroupFn(CountingDoFn):
    """``(key, Routed)`` → dead letters (tagged ``dead_letter``); the applied messages' writes go to Spanner
    at the end of each bundle (``Bundle.finish``). The state and timer specs below, with their names, are
    what a running Dataflow job's ``--update`` keeps: changing one means draining the job (README). Each
    callback decodes the key's ``meta``, hands its handles to ``transforms.per_group.flush`` as one
    ``KeyHandles``, and writes ``meta`` back."""

    BUFFER = BagStateSpec("buffer", BytesCoder())  # messages as Routed.of encoded them
    KEY_STATE = ReadModifyWriteStateSpec("key_state", BytesCoder())
    META = ReadModifyWriteStateSpec("meta", BytesCoder())
    EVENT_FLUSH = TimerSpec("event_flush", TimeDomain.WATERMARK)
    HOLD_FLUSH = TimerSpec("hold_flush", TimeDomain.REAL_TIME)
    LOOKUP_RETRY = TimerSpec("lookup_retry", TimeDomain.REAL_TIME)
    EXPIRE = TimerSpec("expire", TimeDomain.REAL_TIME)
    CONFIRM = TimerSpec("confirm", TimeDomain.REAL_TIME)  # overlap_commits: a later bundle counts the commit
    SAVE = TimerSpec("save_state", TimeDomain.WATERMARK)  # a deferred KeyStates save is due
    PROBE = TimerSpec("watermark_probe", TimeDomain.WATERMARK)  # tells how far the watermark has gone
    PROBE_MARGIN = PROBE_MARGIN  # seconds: a probe is set this far behind the processing time
    READ_WAIT = flush.READ_WAIT  # seconds: a hold is extended by this while its lookups' events are read
    CONFIRM_DELAY = flush.CONFIRM_DELAY  # seconds
    COMMITS_BEHIND = COMMITS_BEHIND  # overlap_commits: how many commits may run behind the bundles

    def __init__(
        self,
        config: ApplierConfig,
        *,
        watermark_delay: float = 2.0,
        processing_hold: float = 2.0,
        lookup_retry_interval: float = 5.0,
        idle_timeout: float = 120.0,
        state_save_delay: float = 300.0,
        clock: Callable[[], float] = time.time,
        overlap_commits: bool = False,
        applier_factory: ApplierFactory = GroupApplier,
    ) -> None:
        """``overlap_commits`` (local runs only): a bundle's commit runs while the next bundles are
        processed (``transforms.per_group.local_commits``); otherwise it ends before its bundle does.
        ``state_save_delay``: see "Saves" in ``transforms.per_group.flush`` (0: the KeyStates row is written
        with every flush). ``applier_factory``: builds the bundle's ``GroupApplier`` from ``config`` (a
        picklable callable with its signature, e.g. for a test's in-memory store)."""
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive (seconds), got {idle_timeout}")
        if state_save_delay < 0:
            raise ValueError(f"state_save_delay must not be negative (seconds), got {state_save_delay}")
        if watermark_delay < 0 or processing_hold < 0 or lookup_retry_interval <= 0:
            raise ValueError(
                "watermark_delay and processing_hold must not be negative and lookup_retry_interval must be "
                f"positive (seconds), got {watermark_delay}, {processing_hold}, {lookup_retry_interval}"
            )
        self.settings = StepSettings(
            config=config,
            delay=int(watermark_delay * MICROS),
            hold=processing_hold,
            lookup_retry=lookup_retry_interval,
            clock=clock,
            retention=config.engine.duplicate_retention,
            idle_timeout=idle_timeout,
            save_delay=int(state_save_delay * MICROS),
            step=uuid.uuid4().hex,  # names this step (and its copies in bundles) process-wide
            overlap=overlap_commits,
            generation=DRAIN.generation,  # the local pipeline this step belongs to
            applier_factory=applier_factory,
        )

    # --- lifecycle ---------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        tune_garbage_collector()
        self._flushes = Metrics.distribution(metrics.NAMESPACE, metrics.FLUSH_BATCH_SIZE)

    def start_bundle(self) -> None:
        self.bundle: Bundle = Bundle(self.settings, self._count, self._count_now, self._flushes)

    def _count(self, name: str, amount: int) -> None:
        bundle = getattr(self, "bundle", None)  # None before the first bundle
        deferred = None if bundle is None else bundle.deferred
        if deferred is None:
            super()._count(name, amount)
        else:
            deferred[name] = deferred.get(name, 0) + amount

    def _count_now(self, name: str, amount: int) -> None:
        super()._count(name, amount)

    def finish_bundle(self) -> list[Any]:
        return self.bundle.finish()

    # --- input ---------------------------------------------------------------------------------------
    def process(
        self,
        element: tuple[str, Routed],
        buffer=beam.DoFn.StateParam(BUFFER),
        meta_state=beam.DoFn.StateParam(META),
        event_flush=beam.DoFn.TimerParam(EVENT_FLUSH),
        hold_flush=beam.DoFn.TimerParam(HOLD_FLUSH),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
    ):  # no "-> None": Beam 2.78 reads process's annotations as type hints and refuses a None output type
        key, routed = element
        data = meta_state.read()
        meta = KeyMeta() if data is None else _decode_meta(data)
        bundle = self.bundle
        if routed.message_time == WAKE_TIME:
            self._wake(key, routed, meta, meta_state, lookup_retry)
            return
        buffer.add(routed.encoded)
        bundle.entered += 1
        if routed.lookup is not None:
            bundle.lookups.add(routed.lookup)
        if routed.project != NO_PROJECT:
            meta.project = routed.project
        if not meta.hydrated and not meta.hydrate_token:
            meta.hydrate_token = bundle.to_hydrate[key] = new_token()
        settings = self.settings
        if not meta.hold_armed and not meta.hold_passed:  # the buffer was empty
            meta.hold_armed = True
            hold_flush.set(Timestamp.of(settings.clock() + (0.0 if DRAIN.requested else settings.hold)))
        message_time = routed.message_time
        target = message_time + settings.delay
        if meta.buffer_max is None or target > meta.buffer_max:
            meta.buffer_max = target
        if meta.event_target is None or target < meta.event_target:
            seen = WATERMARK_SEEN.get(settings.step)
            if seen is not None and target <= seen and not meta.hold_passed:
                # The watermark has passed the message already: the hold's flush takes it, no timer needed.
                meta.ready_until = seen if meta.ready_until is None else max(meta.ready_until, seen)
            else:
                meta.event_target = target
                event_flush.set(timestamp(target))
        if message_time > meta.max_time:
            meta.max_time = message_time
        meta_state.write(_encode_meta(meta))

    def _wake(self, key: str, routed: Routed, meta: KeyMeta, meta_state, lookup_retry) -> None:
        """A key named in ``WaitingKeys``: read its state (in the bundle's batch) and retry its lookups once
        the read is done (``on_lookup_retry``), which also deletes the row if nothing waits."""
        if routed.project != NO_PROJECT:
            meta.project = routed.project
        if not meta.hydrated and not meta.hydrate_token:
            meta.hydrate_token = self.bundle.to_hydrate[key] = new_token()
        meta.waiting_marked = True
        lookup_retry.set(Timestamp.of(self.settings.clock() + self.settings.hold))
        meta_state.write(META_ENCODER.encode(meta))

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
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
        expire=beam.DoFn.TimerParam(EXPIRE),
        confirm=beam.DoFn.TimerParam(CONFIRM),
        save=beam.DoFn.TimerParam(SAVE),
    ) -> Iterator[Any]:
        data = meta_state.read()
        meta = KeyMeta() if data is None else _decode_meta(data)
        meta.event_target = None
        fired_micros = fired.micros
        seen = WATERMARK_SEEN.update(self.settings.step, fired_micros)
        meta.ready_until = seen if meta.ready_until is None else max(meta.ready_until, seen)
        if meta.hold_passed or DRAIN.requested:  # draining: everything buffered, now (see per_group.drain)
            h = KeyHandles(
                key, buffer, key_state, meta_state, meta, event_flush, lookup_retry, expire, confirm, save
            )
            yield from flush.flush(self.bundle, h)
        elif meta.buffer_max is not None and meta.buffer_max > fired_micros:
            # While the hold runs, find out whether the watermark has passed the whole buffer already.
            meta.event_target = meta.buffer_max
            event_flush.set(timestamp(meta.buffer_max))
        meta_state.write(_encode_meta(meta))

    @on_timer(HOLD_FLUSH)
    def on_hold_flush(
        self,
        key=beam.DoFn.KeyParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        event_flush=beam.DoFn.TimerParam(EVENT_FLUSH),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
        expire=beam.DoFn.TimerParam(EXPIRE),
        confirm=beam.DoFn.TimerParam(CONFIRM),
        save=beam.DoFn.TimerParam(SAVE),
        probe=beam.DoFn.TimerParam(PROBE),
        hold_flush=beam.DoFn.TimerParam(HOLD_FLUSH),
    ) -> Iterator[Any]:
        settings = self.settings
        if PROBES.claim(settings.step):
            probe.set(Timestamp.of(settings.clock() - self.PROBE_MARGIN))
        data = meta_state.read()
        meta = KeyMeta() if data is None else _decode_meta(data)
        meta.hold_passed, meta.hold_armed = True, False
        seen = WATERMARK_SEEN.get(settings.step)
        if seen is not None and (meta.ready_until is None or seen > meta.ready_until):
            meta.ready_until = seen
        if meta.ready_until is not None or DRAIN.requested:  # draining: everything buffered, now
            h = KeyHandles(
                key, buffer, key_state, meta_state, meta, event_flush, lookup_retry, expire, confirm, save
            )
            yield from flush.flush(self.bundle, h, hold_flush)
        meta_state.write(_encode_meta(meta))

    @on_timer(LOOKUP_RETRY)
    def on_lookup_retry(
        self,
        key=beam.DoFn.KeyParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        lookup_retry=beam.DoFn.TimerParam(LOOKUP_RETRY),
        expire=beam.DoFn.TimerParam(EXPIRE),
        confirm=beam.DoFn.TimerParam(CONFIRM),
        save=beam.DoFn.TimerParam(SAVE),
    ) -> Iterator[Any]:
        bundle, settings = self.bundle, self.settings
        meta = read_meta(meta_state)
        h = KeyHandles(key, buffer, key_state, meta_state, meta, None, lookup_retry, expire, confirm, save)
        rebuilt = flush.rebuild(bundle, h)
        for dead_letter in rebuilt:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)
        state = flush.load(bundle, h)
        project = project_info(meta.project)
        if state is None or not state.waiting or project is None:
            if meta.waiting_marked and (state is None or not state.waiting):  # a wake-up of a stale row
                meta.waiting_marked = False
                bundle.unmarks.append(key)
                if h.buffer_empty():
                    expire.set(Timestamp.of(settings.clock() + settings.idle_timeout))
                h.write_meta()
            elif rebuilt:
                h.write_meta()
            return
        new_state, dead_letters = bundle.applier.apply(
            key, state, [], project, defer_key_state=settings.save_delay > 0
        )
        flush.after_apply(bundle, h)
        flush.track_waiting(bundle, h, new_state)
        flush.arm_confirm(bundle, h)
        key_state.write(bundle.applier.encoded_state(new_state))
        if new_state.waiting:
            flush.arm_lookup_retry(bundle, new_state, lookup_retry)
        elif h.buffer_empty():
            expire.set(Timestamp.of(settings.clock() + settings.idle_timeout))
        h.write_meta()
        for dead_letter in dead_letters:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)

    @on_timer(CONFIRM)
    def on_confirm(self) -> None:
        self.bundle.confirmed = True

    @on_timer(PROBE)
    def on_probe(self, fired=beam.DoFn.TimestampParam) -> None:
        WATERMARK_SEEN.update(self.settings.step, fired.micros)
        PROBES.fired(self.settings.step)

    @on_timer(SAVE)
    def on_save(
        self,
        key=beam.DoFn.KeyParam,
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        confirm=beam.DoFn.TimerParam(CONFIRM),
    ) -> list[Any]:
        data = meta_state.read()
        if data is None:
            return []  # the key expired (and was saved) meanwhile
        meta = META_DECODER.decode(data)
        meta.save_armed = False
        h = KeyHandles(key, None, key_state, meta_state, meta, confirm=confirm)
        dead_letters = flush.rebuild(self.bundle, h)
        flush.save(self.bundle, h, key_state.read())
        h.write_meta()
        return [pvalue.TaggedOutput(DEAD_LETTER, dead_letter) for dead_letter in dead_letters]

    @on_timer(EXPIRE)
    def on_expire(
        self,
        key=beam.DoFn.KeyParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        key_state=beam.DoFn.StateParam(KEY_STATE),
        meta_state=beam.DoFn.StateParam(META),
        confirm=beam.DoFn.TimerParam(CONFIRM),
        save=beam.DoFn.TimerParam(SAVE),
    ) -> list[Any]:
        if next(iter(buffer.read()), None) is not None:
            return []  # re-armed when the buffer is flushed
        bundle = self.bundle
        outputs = []
        if key in bundle.applier.refusals or REBUILT:
            h = KeyHandles(
                key, buffer, key_state, meta_state, read_meta(meta_state), confirm=confirm, save=save
            )
            outputs = [pvalue.TaggedOutput(DEAD_LETTER, dead) for dead in flush.rebuild(bundle, h)]
            h.write_meta()
        data = key_state.read()
        state = None if data is None else engine.decode_state(data)
        if state is not None and state.waiting:
            return outputs  # re-armed when the last lookup is settled
        # Everything the key knows is in Spanner (committed with the bundle of its last flush), or is saved
        # now, with this bundle.
        h = KeyHandles(key, buffer, key_state, meta_state, read_meta(meta_state), confirm=confirm, save=save)
        if flush.save(bundle, h, data, state) and self.settings.overlap:
            bundle.expired_saves.append(key)
        save.clear()
        buffer.clear()
        key_state.clear()
        meta_state.clear()
        self._count(metrics.STATE_EXPIRED, 1)
        return outputs


class ApplyPerGroup(beam.PTransform):
    """``(key, Message)`` → ``{"applied": ..., "dead_letter": ...}`` (see the module docstring): the dead letters
    of the engine, and of ``AttachProject`` (messages that could not be routed)."""

    def __init__(
        self,
        config: ApplierConfig,
        projects: pvalue.AsSideInput,
        *,
        watermark_delay: float = 2.0,
        processing_hold: float = 2.0,
        lookup_retry_interval: float = 5.0,
        idle_timeout: float = 120.0,
        state_save_delay: float = 300.0,
        clock: Callable[[], float] = time.time,
        routed: bool = False,
        overlap_commits: bool = False,
        wake_waiting: bool = False,
        label: str | None = None,
        applier_factory: ApplierFactory = GroupApplier,
    ) -> None:
        """``routed``: the input is ``(key, Routed)`` already (``transforms.ingest.Ingest``), not
        ``(key, Message)``: no ``AttachProject`` step. ``wake_waiting``: when the pipeline starts, the keys
        ``WaitingKeys`` names are taken up (``WakeWaitingKeys``; a streaming job sets it). ``applier_factory``:
        see ``ApplyPerGroupFn``."""
        super().__init__(label)
        self._routed = routed
        self._wake_waiting = wake_waiting
        self._target = config.spanner
        self._fn = ApplyPerGroupFn(
            config,
            watermark_delay=watermark_delay,
            processing_hold=processing_hold,
            lookup_retry_interval=lookup_retry_interval,
            idle_timeout=idle_timeout,
            state_save_delay=state_save_delay,
            clock=clock,
            overlap_commits=overlap_commits,
            applier_factory=applier_factory,
        )
        self._projects = projects

    def expand(self, keyed: beam.PCollection) -> pvalue.DoOutputsTuple:
        early: beam.PCollection | None = None
        if self._routed:
            routed = keyed
        else:
            attached = keyed | "AttachProject" >> beam.ParDo(AttachProject(), self._projects).with_outputs(
                DEAD_LETTER, main="routed"
            )
            routed = attached["routed"]
            routed.element_type = beam.typehints.Tuple[str, Routed]
            early = attached[DEAD_LETTER]
            early.element_type = DeadLetter
        if self._wake_waiting:
            wakes = keyed.pipeline | "WakeWaitingKeys" >> waiting_keys.WakeWaitingKeys(
                self._target, self._projects
            )
            routed = (routed, wakes) | "WithWakes" >> beam.Flatten()
            routed.element_type = beam.typehints.Tuple[str, Routed]
        # Typed, so that the key coder of the state and timers is Beam's deterministic string coder.
        outputs = routed | "ApplyEngine" >> beam.ParDo(self._fn).with_input_types(
            tuple[str, Routed]
        ).with_outputs(DEAD_LETTER, main="applied")
        coders.typed(outputs, **{DEAD_LETTER: DeadLetter})
        dead_letters = outputs[DEAD_LETTER]
        if early is not None:
            dead_letters = (early, dead_letters) | "CollectDeadLetters" >> beam.Flatten()
            dead_letters.element_type = DeadLetter
        return {"applied": outputs["applied"], DEAD_LETTER: dead_letters}
