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
            state = InMemoryUnmergedState()
            for name, domain in (
                ("hold_flush", TimeDomain.REAL_TIME),
                ("event_flush", TimeDomain.WATERMARK),
                ("expire", TimeDomain.REAL_TIME),
            ):
                if rng.random() < 0.6:
                    state.set_timer(window, name, domain, Timestamp(micros=rng.randrange(0, 2_000_000)))
            states[f"key-{key}".encode()] = state
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
