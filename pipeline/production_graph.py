"""Dataflow's jobs, executed here: the graph ``--runner DataflowRunner`` submits, on Beam's FnApiRunner.

For tests and benchmarks (nothing here runs on Dataflow's workers). ``backfill_job_graph`` builds the
backfill's job with Beam's DataflowRunner and ``--dry_run=True``: everything but the submission (the
runner's own rewrites for Dataflow Runner v2, its pre-optimisation of batch graphs, the portable pipeline
proto the service runs; no network). ``run_on_fn_api_runner`` runs that proto unchanged on Beam's
FnApiRunner, which executes it as Dataflow's workers do: fused stages on the SDK harness, Beam's GroupByKey,
side inputs and state over the Fn API. The one thing replaced is where the SDK harness runs: the job's
environments name Dataflow's worker container; here they are the embedded Python environment (this
process), so the emulators and the local files given are reachable.
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline import backfill

# What the README's Dataflow launch adds to the backfill's own flags (values only need their form here).
DATAFLOW_FLAGS = (
    "--runner=DataflowRunner",
    "--project=local-project",
    "--region=europe-west1",
    "--temp_location=gs://occurrence-pipeline-test/tmp",
    "--dry_run=True",
)


def backfill_job_graph(args: Sequence[str]) -> beam_runner_api_pb2.Pipeline:
    """The pipeline proto DataflowRunner would submit for ``python -m pipeline.backfill ARGS``."""
    options = backfill.make_options([*args, *DATAFLOW_FLAGS])
    assert backfill.grouping(options) == "shuffle"
    pipeline = beam.Pipeline(options=options)
    backfill.build(pipeline, options)
    return pipeline.run().job.proto_pipeline


def run_on_fn_api_runner(graph: beam_runner_api_pb2.Pipeline):
    """Runs ``graph`` on the FnApiRunner in this process; returns its result (metrics)."""
    local = beam_runner_api_pb2.Pipeline()
    local.CopyFrom(graph)
    for environment in local.components.environments.values():
        assert environment.urn == "beam:env:docker:v1", environment.urn  # Dataflow's worker container
        environment.urn = python_urns.EMBEDDED_PYTHON
        environment.ClearField("payload")
        environment.ClearField("dependencies")
    result = FnApiRunner().run_via_runner_api(local, PipelineOptions(["--experiments=beam_fn_api"]))
    result.wait_until_finish()
    return result
