"""The local runner's timer scan, as patched by ``pipeline.local_runner``, finds exactly what Beam's finds."""

from __future__ import annotations

import random

from apache_beam.runners.direct import watermark_manager
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.trigger import InMemoryUnmergedState
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp

from pipeline.local_runner import prepare_direct_runner


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def _watermarks(keyed_states, clock, input_watermark):
    tw = watermark_manager._TransformWatermarks(clock, keyed_states, "ApplyEngine")
    tw._input_watermark = input_watermark
    return tw


def _firings(found):
    fired, has_real_time = found
    return [(f.encoded_key, f.window, f.name, f.time_domain, f.timestamp) for f in fired], has_real_time


def test_patched_timer_scan_fires_what_beams_fires():
    prepare_direct_runner()
    patched = watermark_manager._TransformWatermarks.extract_transform_timers
    beams = patched.__wrapped__
    rng = random.Random(7)
    window = GlobalWindow()
    for _ in range(50):
        states = {}
        for key in range(rng.randrange(0, 40)):
            states[f"key-{key}".encode()] = _random_state(rng, window, 0.6)
        clock = _Clock(rng.randrange(0, 2_000_000) / 1e6)
        watermark = Timestamp(micros=rng.randrange(0, 2_000_000))
        expected = _firings(beams(_watermarks(states, clock, watermark)))
        assert _firings(patched(_watermarks(states, clock, watermark))) == expected


def test_patched_timer_scan_reports_real_time_timers_that_have_not_fired():
    prepare_direct_runner()
    state = InMemoryUnmergedState()
    state.set_timer(GlobalWindow(), "expire", TimeDomain.REAL_TIME, Timestamp(seconds=100))
    tw = _watermarks({b"k": state}, _Clock(50.0), Timestamp(seconds=1))
    assert watermark_manager._TransformWatermarks.extract_transform_timers(tw) == ([], True)


def _random_state(rng: random.Random, window, share: float = 0.4) -> InMemoryUnmergedState:
    """A key's state with each of the stateful step's timers set with probability ``share``."""
    state = InMemoryUnmergedState()
    for name, domain in (
        ("hold_flush", TimeDomain.REAL_TIME),
        ("event_flush", TimeDomain.WATERMARK),
        ("expire", TimeDomain.REAL_TIME),
    ):
        if rng.random() < share:
            state.set_timer(window, name, domain, Timestamp(micros=rng.randrange(0, 2_000_000)))
    return state


def test_indexed_timer_scan_follows_every_change_of_the_keyed_states():
    """The runner's keyed states, indexed by earliest timer: after any sequence of states replaced, added and
    removed, a scan fires exactly what Beam's scan over the same states fires, in the same order."""
    from apache_beam.runners.direct import evaluation_context

    prepare_direct_runner()
    patched = watermark_manager._TransformWatermarks.extract_transform_timers
    beams = patched.__wrapped__
    window = GlobalWindow()
    rng = random.Random(11)
    context = evaluation_context.EvaluationContext.__new__(evaluation_context.EvaluationContext)
    fired = 0
    for _ in range(20):
        (states,) = evaluation_context.EvaluationContext._initialize_keyed_states(
            context, ["ApplyEngine"], {}
        ).values()
        assert type(states).__name__ == "_TimerIndex"
        clock = _Clock(0.0)
        watermark = 0
        for _ in range(300):
            roll = rng.random()
            key = f"key-{rng.randrange(0, 30)}".encode()
            if roll < 0.5:
                states[key] = _random_state(rng, window)  # a bundle's result committed
            elif roll < 0.55 and key in states:
                del states[key]
            elif roll < 0.6:
                states.setdefault(key, InMemoryUnmergedState())
            clock.now += rng.randrange(0, 40_000) / 1e6
            watermark += rng.randrange(0, 40_000)
            tw = _watermarks(states, clock, Timestamp(micros=watermark))
            expected = _firings(beams(tw))
            assert _firings(patched(tw)) == expected
            fired += len(expected[0])
    assert fired > 1000


def test_state_copy_is_beams_copy():
    prepare_direct_runner()
    patched = InMemoryUnmergedState.copy
    beams = patched.__wrapped__
    rng = random.Random(5)
    window = GlobalWindow()
    from apache_beam.transforms.trigger import _ListStateTag

    tag = _ListStateTag("buffer")
    for _ in range(50):
        state = _random_state(rng, window)
        for value in range(rng.randrange(0, 4)):
            state.add_state(window, tag, str(value).encode())
        copied, expected = patched(state), beams(state)
        assert dict(copied.timers) == dict(expected.timers)
        assert {w: dict(t) for w, t in copied.state.items()} == {
            w: dict(t) for w, t in expected.state.items()
        }
        assert copied.global_state == expected.global_state
        copied.set_timer(window, "other", TimeDomain.WATERMARK, Timestamp(micros=1))
        copied.add_state(window, tag, b"more")
        assert "other" not in {name for timers in state.timers.values() for (name, _, _) in timers}
        assert b"more" not in state.get_state(window, tag)
