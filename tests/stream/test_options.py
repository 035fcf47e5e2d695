"""``python -m pipeline.stream`` flags: what a user gets wrong is refused before anything starts."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import StandardOptions

from pipeline import stream
from pipeline.options import StreamOptions

SUBSCRIPTION = "--input_subscription=projects/p1/subscriptions/s"


def test_without_a_runner_it_runs_on_the_local_streaming_runner() -> None:
    options = stream.make_options([SUBSCRIPTION])
    standard = options.view_as(StandardOptions)
    assert (standard.runner, standard.streaming) == ("BundleBasedDirectRunner", True)
    assert options.view_as(StreamOptions).watermark_delay == "2s"


@pytest.mark.parametrize("argv", [[], [SUBSCRIPTION, "--input_topic=projects/p1/topics/t"]])
def test_exactly_one_input_is_required(argv: list[str]) -> None:
    with pytest.raises(SystemExit, match="exactly one of --input_subscription or --input_topic"):
        stream.make_options(argv)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--processing_hold=2x", "--processing_hold: invalid duration '2x'"),
        ("--duplicate_retention=a day", "--duplicate_retention: invalid duration"),
        ("--exit_when_idle=soon", "--exit_when_idle: invalid duration"),
        ("--max_payload_bytes=1MB", "--max_payload_bytes: invalid size '1MB'"),
        (
            "--max_payload_bytes=3MiB",
            "--max_payload_bytes: 3145728 bytes is more than the pipeline can carry",
        ),
        ("--lookup_retry_interval=0s", "--lookup_retry_interval must be more than 0"),
    ],
)
def test_malformed_durations_and_sizes_are_refused_with_the_flag_named(flag: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        stream.make_options([SUBSCRIPTION, flag])


@pytest.mark.parametrize(
    ("argv", "graph"),
    [
        ([], "local"),
        (["--graph=dataflow"], "dataflow"),
        (["--runner=DataflowRunner"], "dataflow"),
        (["--runner=FnApiRunner"], "dataflow"),
        (["--runner=DirectRunner", "--graph=local"], "local"),
    ],
)
def test_the_graph_is_the_local_one_on_the_local_runner_unless_chosen(argv: list[str], graph: str) -> None:
    assert stream.graph(stream.make_options([SUBSCRIPTION, *argv])) == graph


def test_the_local_graph_is_refused_on_other_runners() -> None:
    with pytest.raises(SystemExit, match="--graph local runs only on the local runner"):
        stream.make_options([SUBSCRIPTION, "--runner=DataflowRunner", "--graph=local"])
