"""The streaming driver's own promises (``pipeline.streaming_driver``), on tiny stateful pipelines, no stack.

Timers fire when the TestStream's watermark or processing time reaches them, the last set of a timer wins and
a clear removes it, and a bundle that fails is retried from the state before it. The DoFns run in this
process (the embedded SDK worker), so what they record lands in ``seen``.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from pipeline import streaming_driver

seen: list[tuple] = []
failed_once: set[str] = set()


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    try:
        streaming_driver.check()
    except streaming_driver.DriverUnavailable as error:
        pytest.skip(str(error))
    seen.clear()
    failed_once.clear()
    yield


class _Timed(beam.DoFn):
    """Each element (key, command) sets, resets or clears the key's timers; firings are recorded."""

    EVENT = TimerSpec("event", TimeDomain.WATERMARK)
    REAL = TimerSpec("real", TimeDomain.REAL_TIME)

    def process(self, element, event=beam.DoFn.TimerParam(EVENT), real=beam.DoFn.TimerParam(REAL)):
        _key, (command, at) = element
        if command == "event":
            event.set(Timestamp(at))
        elif command == "clear":
            event.clear()
        elif command == "real":
            real.set(Timestamp(at))
        return []

    @on_timer(EVENT)
    def on_event(self, key=beam.DoFn.KeyParam, fired=beam.DoFn.TimestampParam):
        seen.append(("event", key, fired.micros // 1_000_000))
        return []

    @on_timer(REAL)
    def on_real(self, key=beam.DoFn.KeyParam):
        seen.append(("real", key))
        return []


class _FailsOnce(beam.DoFn):
    """Appends each element to its key's bag, failing the first bundle that sees ``boom``; at the watermark's
    end the bag is recorded."""

    BAG = BagStateSpec("bag", beam.coders.StrUtf8Coder())
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def process(self, element, bag=beam.DoFn.StateParam(BAG), flush=beam.DoFn.TimerParam(FLUSH)):
        _key, value = element
        bag.add(value)
        flush.set(Timestamp(100))
        if value == "boom" and "boom" not in failed_once:
            failed_once.add("boom")
            raise RuntimeError("the first attempt fails")
        return []

    @on_timer(FLUSH)
    def on_flush(self, key=beam.DoFn.KeyParam, bag=beam.DoFn.StateParam(BAG)):
        seen.append((key, sorted(bag.read())))
        return []


def _run(stream: TestStream, fn: beam.DoFn) -> None:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(runner=streaming_driver.DriverRunner(), options=options) as pipeline:
        pipeline | stream | beam.ParDo(fn)


def _commands(*elements: tuple[str, str, float]) -> list[TimestampedValue]:
    return [TimestampedValue((key, (command, at)), 0) for key, command, at in elements]


def _stream(coder: beam.coders.Coder, output_type) -> TestStream:
    return TestStream(coder=coder).with_output_types(output_type)


def test_an_event_time_timer_fires_when_the_watermark_reaches_it_and_the_last_set_wins() -> None:
    command = beam.coders.TupleCoder(
        (
            beam.coders.StrUtf8Coder(),
            beam.coders.TupleCoder((beam.coders.StrUtf8Coder(), beam.coders.FloatCoder())),
        )
    )
    stream = (
        _stream(command, tuple[str, tuple[str, float]])
        .add_elements(_commands(("a", "event", 10), ("b", "event", 10), ("b", "clear", 0)))
        .add_elements(_commands(("a", "event", 20)))  # reset: 10 no longer stands
        .advance_watermark_to(15)
        .add_elements(_commands(("c", "event", 12)))  # set behind the watermark: due at once
        .advance_watermark_to(20)
    )
    _run(stream, _Timed())
    assert seen == [("event", "c", 12), ("event", "a", 20)]


def test_a_processing_time_timer_fires_only_when_processing_time_reaches_it() -> None:
    command = beam.coders.TupleCoder(
        (
            beam.coders.StrUtf8Coder(),
            beam.coders.TupleCoder((beam.coders.StrUtf8Coder(), beam.coders.FloatCoder())),
        )
    )
    stream = (
        _stream(command, tuple[str, tuple[str, float]])
        .add_elements(_commands(("a", "real", 2), ("b", "real", 5)))
        .advance_watermark_to(1000)
        .advance_processing_time(1)
    )
    _run(stream.advance_processing_time(1.5), _Timed())  # TestStream time 2.5: a's timer only
    assert seen == [("real", "a")]  # b's (at 5) is dropped when the stream ends, as on Beam's local runner


def test_a_failed_bundle_is_retried_from_the_state_before_it() -> None:
    coder = beam.coders.TupleCoder((beam.coders.StrUtf8Coder(), beam.coders.StrUtf8Coder()))
    stream = (
        _stream(coder, tuple[str, str])
        .add_elements([TimestampedValue(("k", "one"), 0)])
        .add_elements([TimestampedValue(("k", "boom"), 0), TimestampedValue(("k", "two"), 0)])
        .advance_watermark_to(200)
    )
    _run(stream, _FailsOnce())
    assert failed_once == {"boom"}
    assert seen == [("k", ["boom", "one", "two"])]  # the failed attempt's "boom" is not kept twice
