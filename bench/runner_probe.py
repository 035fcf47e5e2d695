"""What Beam's Python local runners do with TestStream and timers: the facts docs/runners.md relies on.

    python -m bench.runner_probe

Runs four small pipelines (no stack needed) and prints what happened, with the installed Beam version:

1. TestStream on the FnApiRunner (and on the BundleBasedDirectRunner, for comparison).
2. The FnApiRunner on bounded input (``Create``): a stateful DoFn with a processing-time timer set HOLD
   seconds ahead and an event-time timer: when each fires.
3. The FnApiRunner on an unbounded source (``PeriodicImpulse``, a splittable DoFn that waits in real time,
   its first element ``STARTUP`` seconds after the pipeline is built): a processing-time timer set 1 s
   ahead of the clock, and when it fires.
4. The same source with an event-time timer set 2 s after each element's timestamp, and when it fires
   (relative to the element times the source has emitted so far, i.e. the watermark).
"""

from __future__ import annotations

import logging
import time

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

HOLD = 5.0
STARTUP = 10.0  # seconds a runner may take to start on a loaded machine
_events: list[str] = []
_started = [0.0]


def _at(timestamp) -> str:
    """A timestamp as the probe reads it: seconds since the run started, or as given if it is small."""
    seconds = float(timestamp)
    return f"{seconds - _started[0]:.2f}s after the start" if seconds > 1e9 else f"{seconds:g}"


def _log(text: str) -> None:
    _events.append(f"{time.time() - _started[0]:6.2f}s  {text}")


class _Timers(beam.DoFn):
    """Buffers values per key; an event-time timer ``event_delay`` after the element, and optionally a
    processing-time timer ``processing_delay`` seconds after the wall clock (or at ``processing_at``)."""

    BUFFER = BagStateSpec("buffer", VarIntCoder())
    EVENT = TimerSpec("event", TimeDomain.WATERMARK)
    PROCESSING = TimerSpec("processing", TimeDomain.REAL_TIME)

    def __init__(
        self, event_delay: float, processing_delay: float | None, processing_at: float | None = None
    ):
        self._event_delay = event_delay
        self._processing_delay = processing_delay
        self._processing_at = processing_at

    def process(
        self,
        element,
        buffer=beam.DoFn.StateParam(BUFFER),
        event=beam.DoFn.TimerParam(EVENT),
        processing=beam.DoFn.TimerParam(PROCESSING),
        timestamp=beam.DoFn.TimestampParam,
    ):
        buffer.add(element[1])
        event.set(timestamp + self._event_delay)
        if self._processing_at is not None:
            processing.set(Timestamp.of(self._processing_at))
        elif self._processing_delay is not None:
            processing.set(Timestamp.of(time.time() + self._processing_delay))
        _log(f"element {element[1]} (element time {_at(timestamp)})")

    @on_timer(EVENT)
    def on_event(self, fired=beam.DoFn.TimestampParam, buffer=beam.DoFn.StateParam(BUFFER)):
        _log(f"event-time timer set for {_at(fired)} fired, buffer {sorted(buffer.read())}")

    @on_timer(PROCESSING)
    def on_processing(self, buffer=beam.DoFn.StateParam(BUFFER)):
        _log(f"processing-time timer fired, buffer {sorted(buffer.read())}")


def _run(runner: str, build, streaming: bool = False) -> str:
    _events.clear()
    _started[0] = time.time()
    options = PipelineOptions([f"--runner={runner}"])
    options.view_as(StandardOptions).streaming = streaming
    pipeline = beam.Pipeline(options=options)
    build(pipeline)
    try:
        pipeline.run().wait_until_finish()
        outcome = f"ran in {time.time() - _started[0]:.2f}s"
    except Exception as error:  # what the runner says when it cannot run the pipeline
        outcome = f"refused: {type(error).__name__}: {error}"
    return "\n".join([outcome, *(f"    {line}" for line in _events)])


def _test_stream(pipeline) -> None:
    stream = (
        TestStream()
        .add_elements([TimestampedValue(("k", 1), 100), TimestampedValue(("k", 2), 101)])
        .advance_processing_time(3)
        .advance_watermark_to(200)
        .advance_watermark_to_infinity()
    )
    # TestStream's processing time starts at 0: the processing-time timer is set for 2.
    _ = pipeline | stream | beam.ParDo(_Timers(10, None, processing_at=2))


def _bounded(pipeline) -> None:
    _ = (
        pipeline
        | beam.Create([("k", 1), ("k", 2)])
        | beam.Map(lambda kv: TimestampedValue(kv, 100)).with_output_types(tuple[str, int])
        | beam.ParDo(_Timers(10, HOLD))
    )


def _unbounded(event_delay: float, processing_delay: float | None):
    def build(pipeline) -> None:
        start = time.time() + STARTUP  # the first element once the runner is surely up
        _ = (
            pipeline
            | PeriodicImpulse(start_timestamp=start, stop_timestamp=start + 3.5, fire_interval=1.0)
            | beam.Map(lambda at: ("k", round(float(at) - start))).with_output_types(tuple[str, int])
            | beam.ParDo(_Timers(event_delay, processing_delay))
        )

    return build


def main() -> None:
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    print(f"apache-beam {beam.__version__}")
    print(
        "1. TestStream, processing-time timer at 2 s of TestStream time, event-time timer 10 s after elements"
    )
    for runner in ("FnApiRunner", "BundleBasedDirectRunner"):
        print(f"  {runner}: {_run(runner, _test_stream, streaming=True)}")
    print(
        f"2. FnApiRunner, Create, processing-time timer {HOLD:g} s ahead, event-time timer 10 s after elements"
    )
    print(f"  {_run('FnApiRunner', _bounded)}")
    print("3. FnApiRunner, PeriodicImpulse every 1 s, processing-time timer 1 s ahead of the clock")
    print(f"  {_run('FnApiRunner', _unbounded(0.0, 1.0))}")
    print("4. FnApiRunner, PeriodicImpulse every 1 s, event-time timer 2 s after each element")
    print(f"  {_run('FnApiRunner', _unbounded(2.0, None))}")


if __name__ == "__main__":
    # Run from the importable module, so the DoFns are pickled by reference and log into this module's list
    # (cloudpickle copies classes of __main__ by value, with their own copy of the list).
    from bench import runner_probe

    runner_probe.main()
