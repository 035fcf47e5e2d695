"""The streaming job Dataflow runs, end to end on Beam's SDK harness (``pipeline.streaming_driver``).

The job is built as ``--runner DataflowRunner`` builds it (its steps and coders), with its Pub/Sub read
replaced by a TestStream of the scripted stream's messages (``tests.stream.script``): phase 1, then, once the
watermark and the wall clock have passed its holds and lookup retries, phase 2. Every message goes through
``ReadMessages/ToRawMessage``, ``DecodeMessages``, ``CheckProjects``, ``KeyByGroup`` and the stateful step,
on the SDK harness with Fn API state and timers, into the Spanner emulator and Redis. Dead letters are
logged (``LogDeadLetters``: the driver does not run Dataflow's native Pub/Sub sink) and counted.

The rows are checked behaviour by behaviour, as ``test_end_to_end.py`` checks the local graph's, and the
run must give the same rows as the local graph's run of the same script (``main_run``, whose message times
it takes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from pipeline import production_graph, stream, streaming_driver
from pipeline.stack import StackConfig
from tests.stream import harness, runs, script
from tests.stream.environment import stream_env
from transforms.core import metrics
from transforms.core.enums import GroupStatus, GroupSubStatus
from transforms.core.model import MICROS

# Enough wall-clock seconds after a phase for its holds (2 s), lookup retries (every 1 s for 4 s) and the
# state saves (1 s of watermark) to have fired, advanced a second at a time as a runner's clock would.
SETTLE_SECONDS = 7


@dataclass
class DriverRun:
    published: harness.Published
    rows: dict[str, list[dict[str, Any]]]
    counters: dict[str, int]
    bundles: int


def _messages(
    scripted: list[harness.Scripted], first_id: int, published_at: Timestamp, published: harness.Published
) -> list:
    """The scripted messages as Beam's Pub/Sub read gives them: with attributes and an id, timestamped with
    their publish time."""
    out = []
    for index, message in enumerate(scripted, start=first_id):
        message_id = f"driver-{index}"
        published.add(message_id, message.label)
        out.append(
            TimestampedValue(
                PubsubMessage(message.data, message.pubsub_attributes(), message_id=message_id), published_at
            )
        )
    return out


def _run(args: list[str], t0: int) -> DriverRun:
    scripted = script.build(t0)
    published = harness.Published()
    source = streaming_driver.pubsub_test_stream()
    start = int(time.time())  # a TestStream carries times in whole milliseconds
    for number, phase in enumerate((scripted.phase1, scripted.phase2)):
        published_at = Timestamp(micros=(start + number * SETTLE_SECONDS) * MICROS)
        source = source.add_elements(_messages(phase, 1000 * number, published_at, published))
        # The watermark of a Pub/Sub read follows the publish times: past this phase's.
        source = source.advance_watermark_to(published_at + 1)
        for _second in range(SETTLE_SECONDS):
            source = source.advance_processing_time(1.0)
    graph = streaming_driver.streaming_job_graph(args, source)
    driver = streaming_driver.StreamingDriver(graph, real_time=True)
    result = driver.run()
    return DriverRun(published, {}, stream.counter_totals(result), driver.bundles)


@pytest.fixture(scope="module")
def driver_run(stack: StackConfig, spanner_instance: str, main_run: runs.MainRun) -> Iterator[DriverRun]:
    """The script of ``main_run`` (the same message times), on the driver."""
    try:
        streaming_driver.check()
    except streaming_driver.DriverUnavailable as error:
        pytest.skip(str(error))
    with stream_env(stack, "driver") as env:
        args = harness.pipeline_args(
            env.database,
            env.input_subscription,
            redis_url=env.redis_url,
            quota_key_prefix=env.redis_prefix,
            extra=[f"--max_payload_bytes={script.MAX_PAYLOAD}"],
        )
        outcome = _run(args, main_run.scripted.t0)
        outcome.rows = harness.read_tables(env.database.database)
        yield outcome


def _group(run: DriverRun, name: str, *, project: int = script.PROJECT, generation: int = 0) -> dict:
    wanted = script.key_group_id(name, project=project, generation=generation)
    found = [row for row in run.rows["Groups"] if row["GroupId"] == wanted]
    assert found, f"no group for key {name!r}"
    return found[0]


def test_the_scripted_stream_creates_updates_and_holds_back_groups_as_on_the_local_graph(
    driver_run: DriverRun,
) -> None:
    create = _group(driver_run, "create")
    assert (create["Status"], create["Substatus"], create["TimesSeen"]) == (
        GroupStatus.UNRESOLVED,
        GroupSubStatus.NEW,
        2,
    )
    regress = _group(driver_run, "regress")
    assert (regress["Status"], regress["Substatus"], regress["TimesSeen"]) == (
        GroupStatus.UNRESOLVED,
        GroupSubStatus.REGRESSED,
        3,
    )
    assert _group(driver_run, "held")["Status"] == GroupStatus.RESOLVED
    assert _group(driver_run, "dup")["TimesSeen"] == 1
    assert _group(driver_run, "delete", generation=1) is not None
    quota_groups = [row for row in driver_run.rows["Groups"] if row["ProjectId"] == script.QUOTA_PROJECT]
    assert len(quota_groups) == 5
    counters = driver_run.counters
    assert counters[metrics.DUPLICATES] == 1
    assert counters[metrics.REGRESSIONS] == 1
    assert counters[metrics.DROPPED_NOISE] == 4
    assert counters[metrics.DROPPED_RATE_LIMITING] == 1
    assert counters[metrics.STATUS_CHANGE_PENDING] == 1
    assert counters[metrics.dead_letter_counter("event_not_found")] == 1
    for reason in set(script.DEAD_LETTERS.values()):
        expected = sum(1 for value in script.DEAD_LETTERS.values() if value == reason)
        assert counters[metrics.dead_letter_counter(reason)] == expected, reason
    assert runs.dead_letter_total(counters) == len(script.DEAD_LETTERS)


def test_the_driver_writes_the_rows_of_the_local_graph(driver_run: DriverRun, main_run: runs.MainRun) -> None:
    """The same rows in every table (normalised as ``harness.comparable_rows`` says) as the local graph's run
    of the same script on Beam's local runner, before its redelivery."""
    assert harness.comparable_rows(driver_run.rows, driver_run.published) == main_run.outcome.comparable()


def _outputs(graph: beam_runner_api_pb2.Pipeline) -> dict[tuple[str, str], tuple]:
    """Every transform's outputs by (transform name, tag), as their coders' structure."""
    coders = graph.components.coders

    def coder(coder_id: str) -> tuple:
        spec = coders[coder_id]
        return spec.spec.urn, tuple(coder(component) for component in spec.component_coder_ids)

    pcollections = graph.components.pcollections
    return {
        (transform.unique_name, tag): coder(pcollections[pcollection].coder_id)
        for transform in graph.components.transforms.values()
        for tag, pcollection in transform.outputs.items()
    }


def test_the_driven_job_is_dataflows_but_for_the_pubsub_read() -> None:
    """The graph the driver runs has the steps, the outputs and the coders of the job ``--runner
    DataflowRunner`` builds for the same flags, but under ``ReadMessages/Pull`` (a TestStream instead of
    Dataflow's native Pub/Sub source), whose output (``PubsubMessage``s) feeds the same ``ToRawMessage``."""
    args = [
        "--input_subscription=projects/local-project/subscriptions/s",
        "--timestamp_attribute=ts",
        "--spanner_database=d",
        "--no_creation_quota",
    ]
    options = stream.make_options([*args, *production_graph.DATAFLOW_FLAGS])
    pipeline = beam.Pipeline(options=options)
    stream.build(pipeline, options)
    dataflow = pipeline.run().job.proto_pipeline
    driven = streaming_driver.streaming_job_graph(args, streaming_driver.pubsub_test_stream())

    def outside_the_read(outputs: dict) -> dict:
        return {key: value for key, value in outputs.items() if not key[0].startswith("ReadMessages/Pull")}

    assert outside_the_read(_outputs(driven)) == outside_the_read(_outputs(dataflow))

    def read(graph: beam_runner_api_pb2.Pipeline) -> set[str]:
        return {
            t.spec.urn
            for t in graph.components.transforms.values()
            if t.unique_name.split("/")[:2] == ["ReadMessages", "Pull"]
        }

    assert common_urns.primitives.TEST_STREAM.urn in read(driven)
    assert common_urns.composites.PUBSUB_READ.urn not in read(driven)
    assert common_urns.composites.PUBSUB_READ.urn in read(dataflow)
