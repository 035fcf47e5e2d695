"""The stateful step's injection point: ``ApplyPerGroupFn(applier_factory=...)`` builds each bundle's store.

No emulator: the factory here is an in-memory recorder, which is what the timer tests can run on once a fake
store backed by ``plan_commit`` exists. The DoFn travels pickled (as Beam ships it), so the factory must
survive that too.
"""

from __future__ import annotations

from typing import Any

from apache_beam.internal import pickler

from bench.stateful_callbacks import NullApplier
from tests.engine import builders as b
from tests.stream.test_flush_timers import HOLD, Bag, Clock, Timer, Value
from transforms.applier import ApplierConfig, SpannerTarget
from transforms.apply_per_group import ApplyPerGroupFn, Routed
from transforms.core.engine import EngineConfig
from transforms.core.model import MICROS


class RecordingApplier(NullApplier):
    """What the stateful step calls on its store, recorded in ``CALLS`` (class-wide: the DoFn is unpickled)."""

    CALLS: list[tuple[Any, ...]] = []

    def __init__(self, config: ApplierConfig, count: Any, clock: Any = None, refusals: Any = None) -> None:
        super().__init__(config, count, clock, refusals)
        self.CALLS.append(("built", config.spanner.database, clock() if clock else None))

    def apply(self, key, state, messages, project, defer_key_state=False):
        self.CALLS.append(("apply", key, [message.message_id for message in messages], project.project_id))
        return super().apply(key, state, messages, project, defer_key_state)

    def hydrate(self, keys: list[str]) -> dict:
        self.CALLS.append(("hydrate", sorted(keys)))
        return super().hydrate(keys)

    def flush(self) -> None:
        self.CALLS.append(("flush",))


def test_the_bundles_store_is_built_by_the_injected_factory_and_takes_the_keys_flush() -> None:
    RecordingApplier.CALLS.clear()
    clock = Clock()
    config = ApplierConfig(spanner=SpannerTarget("p", "i", "fake-db"), engine=EngineConfig())
    fn = ApplyPerGroupFn(
        config,
        watermark_delay=0.0,
        processing_hold=HOLD,
        state_save_delay=0.0,
        clock=clock,
        applier_factory=RecordingApplier,
    )
    fn = pickler.loads(pickler.dumps(fn))  # as Beam ships it to a worker
    fn.setup()
    buffer, key_state, meta = Bag(), Value(), Value()
    event, hold, lookup, expire, confirm, save, probe = (Timer() for _ in range(7))
    first, second = b.occurrence(b.T0), b.occurrence(b.T0 + MICROS)
    key = first.key

    fn.start_bundle()
    for message in (first, second):
        fn.process(
            (key, Routed.of(message, b.PROJECT)),
            buffer=buffer,
            meta_state=meta,
            event_flush=event,
            hold_flush=hold,
            lookup_retry=lookup,
        )
    fn.finish_bundle()
    fn.start_bundle()
    timers = dict(lookup_retry=lookup, expire=expire, confirm=confirm, save=save)
    while event.at is not None:
        list(
            fn.on_event_flush(
                key=key,
                fired=event.take(),
                buffer=buffer,
                key_state=key_state,
                meta_state=meta,
                event_flush=event,
                **timers,
            )
        )
    clock.now = hold.take().micros / MICROS
    list(
        fn.on_hold_flush(
            key=key,
            buffer=buffer,
            key_state=key_state,
            meta_state=meta,
            event_flush=event,
            probe=probe,
            hold_flush=hold,
            **timers,
        )
    )
    fn.finish_bundle()

    calls = RecordingApplier.CALLS
    applied = ("apply", key, [first.message_id, second.message_id], b.PROJECT.project_id)
    built = ("built", "fake-db", 1000.0)
    # The batched read runs in the background from the first bundle's end; the flush waits for it.
    assert [call for call in calls if call[0] != "hydrate"] == [built, ("flush",), built, applied, ("flush",)]
    assert calls.index(("hydrate", [key])) < calls.index(applied)
    assert buffer.items == [] and expire.at is not None  # flushed; the key now idles toward expiry
