"""The stateful step's injection point: ``ApplyPerGroupFn(applier_factory=...)`` builds each bundle's store.

No emulator: the factory here is an in-memory recorder, which is what the timer tests can run on once a fake
store backed by ``plan_commit`` exists. The DoFn travels pickled (as Beam ships it), so the factory must
survive that too.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.stateful_callbacks import NullApplier
from tests.engine import builders as b
from tests.stream.test_flush_timers import Driver
from transforms.applier import ApplierConfig
from transforms.core.model import MICROS


class RecordingApplier(NullApplier):
    """What the stateful step calls on its store, recorded in ``CALLS`` (class-wide: the DoFn is unpickled)."""

    CALLS: list[tuple[Any, ...]] = []

    def __init__(self, config: ApplierConfig, count: Any, clock: Any = None, refusals: Any = None) -> None:
        super().__init__(config, count, clock, refusals)
        self.CALLS.append(("built", config.spanner.database, clock() if clock else None))

    def apply(self, key, state, messages, project, defer_key_state=False, encoded=None):
        self.CALLS.append(("apply", key, [message.message_id for message in messages], project.project_id))
        return super().apply(key, state, messages, project, defer_key_state, encoded)

    def hydrate(self, keys: list[str]) -> dict:
        self.CALLS.append(("hydrate", sorted(keys)))
        return super().hydrate(keys)

    def flush(self) -> None:
        self.CALLS.append(("flush",))


def test_the_bundles_store_is_built_by_the_injected_factory_and_takes_the_keys_flush() -> None:
    RecordingApplier.CALLS.clear()
    target = SimpleNamespace(project="p", instance="i", database_id="fake-db")
    driver = Driver(target, applier_factory=RecordingApplier, shipped=True)  # pickled, as Beam ships it
    first, second = b.occurrence(b.T0), b.occurrence(b.T0 + MICROS)
    key = first.key
    assert driver.key == key

    driver.send(first, second)
    driver.finish()
    while driver.event.at is not None:
        driver.fire_event()
    driver.fire_hold()
    driver.fn.finish_bundle()

    calls = RecordingApplier.CALLS
    applied = ("apply", key, [first.message_id, second.message_id], b.PROJECT.project_id)
    built = ("built", "fake-db", 1000.0)
    # The batched read runs in the background from the first bundle's end; the flush waits for it.
    assert [call for call in calls if call[0] != "hydrate"] == [built, ("flush",), built, applied, ("flush",)]
    assert calls.index(("hydrate", [key])) < calls.index(applied)
    assert (
        driver.buffered() == [] and driver.expire.at is not None
    )  # flushed; the key now idles toward expiry
