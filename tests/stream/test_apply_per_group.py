"""The stateful DoFn under a TestStream: buffering, the two flush timers, late messages, expiry.

The TestStream drives the watermark and the processing time; the DoFn writes to a real Spanner database
(emulator). Two traps of the local runner shape these tests (see the module docstring of
``pipeline.local_runner`` and the project's notes): the TestStream's processing time starts at 0, so the DoFn
gets a clock frozen at 0 and every processing-time hold is armed for ``HOLD`` seconds of TestStream time; and
timers that fire only because the watermark jumps to infinity at the end are not checked here: every test
advances the watermark and the processing time past its last flush itself, and reads the results from
Spanner and the counters.

Every scenario runs twice: on Beam's BundleBasedDirectRunner and on ``pipeline.streaming_driver`` (the SDK
harness, Fn API state and timers, as Dataflow's workers run the step); both must give the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipeline import streaming_driver
from pipeline.local_runner import prepare_direct_runner
from pipeline.stream import counter_totals
from tests.engine import builders as b
from tests.stream import harness
from transforms import coders
from transforms.applier import ApplierConfig, GroupApplier, SpannerTarget
from transforms.apply_per_group import DEAD_LETTER, ApplyPerGroup
from transforms.core import metrics
from transforms.core.engine import EngineConfig
from transforms.core.engine.ids import group_id
from transforms.core.enums import GroupStatus, GroupSubStatus, ResolutionType
from transforms.core.model import MICROS, Message, from_datetime
from transforms.per_group.local_commits import ApplierFactory

SECOND = MICROS
HOLD = 2.0
IDLE = 30.0
T0 = b.T0
KEY = f"{b.PROJECT.project_id}:{b.md5_hex(b.FINGERPRINT)}"
GROUP_ID = group_id(b.PROJECT.project_id, b.md5_hex(b.FINGERPRINT), 0)


class FrozenClock:
    """Processing time as the TestStream starts it: 0."""

    def __call__(self) -> float:
        return 0.0


def _timestamped(messages: Sequence[Message]) -> list[TimestampedValue]:
    return [TimestampedValue((message.key, message), message.message_time / MICROS) for message in messages]


RUNNERS = ["BundleBasedDirectRunner", "streaming_driver"]


@pytest.fixture(params=RUNNERS)
def runner(request: pytest.FixtureRequest) -> str:
    if request.param == "streaming_driver":
        try:
            streaming_driver.check()
        except streaming_driver.DriverUnavailable as error:
            pytest.skip(str(error))
    return request.param


def run_step(
    config: ApplierConfig,
    stream: TestStream,
    runner: str = "BundleBasedDirectRunner",
    *,
    applier_factory: ApplierFactory = GroupApplier,
    dead_letters: beam.DoFn | None = None,
) -> dict[str, int]:
    """Run the stateful step alone over ``stream`` on ``runner``; its counters. ``dead_letters`` takes its
    dead-letter output."""
    options = PipelineOptions([] if runner == "streaming_driver" else [f"--runner={runner}"])
    options.view_as(StandardOptions).streaming = True
    if runner == "streaming_driver":
        pipeline = beam.Pipeline(runner=streaming_driver.DriverRunner(), options=options)
    else:
        prepare_direct_runner()
        pipeline = beam.Pipeline(options=options)
    projects = beam.pvalue.AsSingleton(
        pipeline | "Projects" >> beam.Create([{b.PROJECT.project_id: b.PROJECT}])
    )
    applied = (
        pipeline
        | "Messages" >> stream
        | "ApplyPerGroup"
        >> ApplyPerGroup(
            config,
            projects,
            watermark_delay=0.0,
            processing_hold=HOLD,
            idle_timeout=IDLE,
            clock=FrozenClock(),
            applier_factory=applier_factory,
        )
    )
    if dead_letters is not None:
        applied[DEAD_LETTER] | "DeadLetters" >> beam.ParDo(dead_letters)
    result = pipeline.run()
    result.wait_until_finish()
    return counter_totals(result)


def _run(database, stream: TestStream, runner: str, engine: EngineConfig | None = None) -> dict[str, int]:
    config = ApplierConfig(
        spanner=SpannerTarget(database.project, database.instance, database.database_id),
        engine=engine or EngineConfig(),
    )
    return run_step(config, stream, runner)


def _group(database) -> dict:
    row = harness.read_row(
        database.database,
        "Groups",
        ("Status", "Substatus", "TimesSeen", "FirstSeen", "LastSeen", "Seq"),
        [GROUP_ID],
    )
    assert row is not None, "no group"
    return row


def _stream() -> TestStream:
    return TestStream(
        coder=beam.coders.TupleCoder((beam.coders.StrUtf8Coder(), coders.MessageCoder()))
    ).with_output_types(tuple[str, Message])


def _out_of_order_messages() -> tuple[Message, Message, Message]:
    """Created, resolved in the next release after 1.0, then 1.1 seen."""
    created = b.occurrence(T0, release="1.0.0")
    resolved = b.status_change(
        T0 + 10 * SECOND, GroupStatus.RESOLVED, resolution=(ResolutionType.IN_NEXT_RELEASE, "1.0.0")
    )
    return created, resolved, b.occurrence(T0 + 20 * SECOND, release="1.1.0")


def _out_of_order_stream(messages: tuple[Message, Message, Message]) -> TestStream:
    """The three messages arriving newest first within the hold."""
    created, resolved, regressed = messages
    return (
        _stream()
        .add_elements(_timestamped([regressed]))
        .advance_processing_time(0.5)
        .add_elements(_timestamped([resolved]))
        .advance_processing_time(0.5)
        .add_elements(_timestamped([created]))
        .advance_watermark_to((T0 + 30 * SECOND) / MICROS)
        .advance_processing_time(HOLD)
        .advance_watermark_to((T0 + 60 * SECOND) / MICROS)
        .advance_processing_time(HOLD)
    )


@pytest.mark.timeout(120)
def test_out_of_order_arrivals_within_the_hold_are_applied_in_key_order(spanner_db, runner: str) -> None:
    """Created, resolved in the next release after 1.0, then 1.1 seen: a regression only in key order."""
    counters = _run(spanner_db, _out_of_order_stream(_out_of_order_messages()), runner)
    group = _group(spanner_db)
    assert (group["Status"], group["Substatus"]) == (GroupStatus.UNRESOLVED, GroupSubStatus.REGRESSED)
    assert group["TimesSeen"] == 2
    assert counters[metrics.REGRESSIONS] == 1
    assert counters.get(metrics.LATE_MESSAGES, 0) == 0
    assert counters[metrics.SPANNER_COMMITS] == 1  # one flush: the three messages in one engine call


@pytest.mark.timeout(180)
def test_the_local_runner_and_the_sdk_harness_write_the_same_rows(spanner_db_factory) -> None:
    """The out-of-order scenario on both runners, each into a database of its own: every table the step
    writes holds the same rows (but for the commit timestamps), and the counters are the same."""
    try:
        streaming_driver.check()
    except streaming_driver.DriverUnavailable as error:
        pytest.skip(str(error))
    rows, counters = {}, {}
    messages = _out_of_order_messages()  # once: the builders number every message they make
    for runner in RUNNERS:
        database = spanner_db_factory()
        counters[runner] = _run(database, _out_of_order_stream(messages), runner)
        rows[runner] = {
            table: [
                {column: value for column, value in row.items() if column != "UpdatedAt"}
                for row in harness.read_table(database.database, table)
            ]
            for table in harness.TABLES
        }
    local, driver = (rows[runner] for runner in RUNNERS)
    assert local["Groups"] and local["Occurrences"] and local["Activities"]
    differences = [
        (table, index, column, value, theirs.get(column))
        for table in harness.TABLES
        for index, (ours, theirs) in enumerate(zip(local[table], driver[table], strict=False))
        for column, value in ours.items()
        if theirs.get(column) != value
    ]
    assert differences == [], "\n".join(str(d)[:300] for d in differences)
    assert driver == local
    assert counters["streaming_driver"] == counters["BundleBasedDirectRunner"]


@pytest.mark.timeout(120)
def test_a_message_behind_the_watermark_is_applied_at_the_next_flush_under_the_late_rules(
    spanner_db, runner: str
) -> None:
    on_time = b.occurrence(T0 + 10 * SECOND, release="1.0.0")
    late = b.occurrence(T0, release="1.0.0")
    stream = (
        _stream()
        .add_elements(_timestamped([on_time]))
        .advance_watermark_to((T0 + 20 * SECOND) / MICROS)
        .advance_processing_time(HOLD + 1)
        .add_elements(_timestamped([late]))
        .advance_processing_time(HOLD + 1)
        .advance_watermark_to((T0 + 30 * SECOND) / MICROS)
        .advance_processing_time(HOLD + 1)
    )
    counters = _run(spanner_db, stream, runner)
    group = _group(spanner_db)
    assert group["TimesSeen"] == 2
    assert from_datetime(group["FirstSeen"]) == T0  # first_seen is a minimum
    assert from_datetime(group["LastSeen"]) == T0 + 10 * SECOND
    assert counters[metrics.LATE_MESSAGES] == 1
    assert counters[metrics.SPANNER_COMMITS] == 2


@pytest.mark.timeout(120)
def test_expired_state_is_cleared_and_hydrated_again_from_spanner(spanner_db, runner: str) -> None:
    """After the expiry the key's Beam state is gone; a redelivery of its first message is still a
    duplicate, because the duplicate memory comes back from Spanner with the rest of the state."""
    engine = EngineConfig(duplicate_retention=60 * SECOND, pending_status_window=30 * SECOND)
    first = b.occurrence(T0)
    later = b.occurrence(T0 + 120 * SECOND)
    stream = (
        _stream()
        .add_elements(_timestamped([first]))
        .advance_watermark_to((T0 + 1 * SECOND) / MICROS)
        .advance_processing_time(HOLD + 1)
        .advance_processing_time(IDLE + 1)  # idle past the timeout: expired
        .advance_watermark_to((T0 + 100 * SECOND) / MICROS)
        .add_elements(_timestamped([first, later]))
        .advance_watermark_to((T0 + 130 * SECOND) / MICROS)
        .advance_processing_time(HOLD + 1)
        .advance_watermark_to((T0 + 131 * SECOND) / MICROS)
        .advance_processing_time(HOLD + 1)
    )
    counters = _run(spanner_db, stream, runner, engine)
    assert counters[metrics.STATE_EXPIRED] >= 1
    assert counters[metrics.STATE_HYDRATED] == 2
    assert counters[metrics.DUPLICATES] == 1
    group = _group(spanner_db)
    assert group["TimesSeen"] == 2
    assert group["Seq"] == 2
