"""The timestamp attribute read by us (``transforms.core.message_time``) the way Beam's Pub/Sub readers read it,
and ``ToRawMessages``: its message times, element timestamps and dead letters."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from transforms.core import metrics, reasons
from transforms.core.message_time import (
    MAX_MICROS,
    MIN_MICROS,
    parse_timestamp_attribute,
    with_attribute_time,
)
from transforms.core.model import DeadLetter, RawMessage, from_rfc3339, to_datetime, to_rfc3339
from transforms.decode_messages import DEAD_LETTER, MESSAGES
from transforms.pubsub_io import ToRawMessages

# Values Beam's readers accept (``_PubSubReadEvaluator._read_from_pubsub``: ``int(value) * 1000`` micros, else
# ``Timestamp.from_rfc3339`` floored to micros), each with an offset or as epoch milliseconds.
ACCEPTED = (
    "1780000000123",
    "-1000",
    " 42 ",
    "+7",
    "1_000",
    "0",
    "2026-05-01T10:00:00Z",
    "2026-05-01T10:00:00.123456Z",
    "2026-05-01T10:00:00.123456789Z",
    "2026-05-01T10:00:00.1234567Z",
    "2026-05-01T12:00:00+02:00",
    "2026-05-01T10:00:00,5Z",
    "2026-05-01 10:00:00Z",
    "20260501T100000Z",
    "2026-05-01T24:00:00Z",
    "1969-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
)
# Values Beam's readers refused (the whole pull failed), refused here too (the message is a dead letter).
REFUSED = (
    "",
    "yesterday",
    "2026-13-45T00:00:00Z",
    "2026-05-01T10:00:00.1234567891Z",
    "1.5",
    "0x10",
    "2026-05-01T10:00:00Z ",
)


def _beams(value: str) -> int:
    try:
        timestamp = Timestamp(micros=int(value) * 1000)
    except ValueError:
        timestamp = Timestamp.from_rfc3339(value)
    if timestamp.precision() > Timestamp.MICROS_PRECISION:
        timestamp = timestamp.to_precision(Timestamp.MICROS_PRECISION, allow_lossy_conversion=True)
    return timestamp.micros


@pytest.mark.parametrize("value", ACCEPTED)
def test_a_value_beam_accepts_gives_beams_time(value: str) -> None:
    assert parse_timestamp_attribute(value) == _beams(value)


@pytest.mark.parametrize("value", REFUSED)
def test_a_value_beam_refuses_is_refused_with_what_is_wrong(value: str) -> None:
    with pytest.raises(ValueError):
        _beams(value)
    with pytest.raises(
        ValueError, match=r"neither epoch milliseconds nor an RFC 3339 time|finer than nanoseconds"
    ):
        parse_timestamp_attribute(value)


def test_a_time_without_offset_is_utc_where_beam_took_the_machines_time_zone() -> None:
    assert parse_timestamp_attribute("2026-05-01T10:00:00") == from_rfc3339("2026-05-01T10:00:00Z")
    assert parse_timestamp_attribute("2026-05-01") == from_rfc3339("2026-05-01T00:00:00Z")


@pytest.mark.parametrize(
    "value",
    ("253402300800000", "-62135596800001", "99999999999999999999", "0001-01-01T00:00:00+01:00"),
)
def test_a_time_outside_the_years_1_to_9999_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="out of range for a timestamp"):
        parse_timestamp_attribute(value)


def test_the_first_and_last_microseconds_of_the_years_1_to_9999_are_accepted() -> None:
    assert parse_timestamp_attribute(str(MIN_MICROS // 1000)) == MIN_MICROS
    assert parse_timestamp_attribute("9999-12-31T23:59:59.999999Z") == MAX_MICROS


def test_with_attribute_time_takes_the_attribute_keeps_a_message_without_it_and_dead_letters_a_bad_one() -> (
    None
):
    message = RawMessage("m1", 5, b"{}", {"ts": "1000", "content_type": "application/json"})
    assert with_attribute_time(message, "ts") == RawMessage("m1", 1_000_000, b"{}", message.attributes)
    assert with_attribute_time(message, "other") is message
    bad = RawMessage("m2", 5, b"{}", {"ts": "x" * 200})
    dead = with_attribute_time(bad, "ts")
    assert isinstance(dead, DeadLetter)
    assert (dead.message_id, dead.message_time, dead.data, dead.attributes) == (
        "m2",
        5,
        b"{}",
        bad.attributes,
    )
    assert (dead.reason, dead.stage) == (reasons.INVALID_FIELD, reasons.STAGE_READ)
    assert dead.error.startswith(
        "timestamp attribute ts is neither epoch milliseconds nor an RFC 3339 time, got "
    )
    assert len(dead.error) < 200  # the value is shown shortened


def test_to_raw_messages_sets_message_times_and_element_timestamps_and_dead_letters_bad_attributes() -> None:
    published = 1_780_000_000_000_000

    def pubsub(message_id: str, **attributes: str) -> TimestampedValue:
        return TimestampedValue(
            PubsubMessage(b"data-" + message_id.encode(), attributes, message_id=message_id),
            Timestamp(micros=published),
        )

    def with_timestamp(element, timestamp=beam.DoFn.TimestampParam):
        return element.message_id, element.message_time, timestamp.micros

    pipeline = TestPipeline(runner="BundleBasedDirectRunner")
    outputs = (
        pipeline
        | beam.Create(
            [pubsub("a", ts="2026-05-01T10:00:00Z"), pubsub("b"), pubsub("c", ts="never", k="v")]
        ).with_output_types(PubsubMessage)
        | ToRawMessages("ts")
    )
    in_may = from_rfc3339("2026-05-01T10:00:00Z")
    assert_that(
        outputs[MESSAGES] | "Times" >> beam.Map(with_timestamp),
        equal_to([("a", in_may, in_may), ("b", published, published)]),
        "messages",
    )
    assert_that(
        outputs[DEAD_LETTER] | "Dead" >> beam.Map(lambda d: (d.message_id, d.message_time, d.data, d.reason)),
        equal_to([("c", published, b"data-c", reasons.INVALID_FIELD)]),
        "dead letters",
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(
        beam.metrics.MetricsFilter().with_name(metrics.dead_letter_counter(reasons.INVALID_FIELD))
    )["counters"]
    assert sum(counter.committed for counter in counters) == 1


@given(st.integers(min_value=MIN_MICROS, max_value=MAX_MICROS))
def test_rfc3339_text_of_any_storable_time_is_datetimes_and_reads_back(micros: int) -> None:
    moment = to_datetime(micros)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    expected = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}{fraction}Z"
    )
    assert to_rfc3339(micros) == expected
    assert to_rfc3339(micros) == expected  # again, from the formatted seconds kept
    assert from_rfc3339(expected) == micros
