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

import logging
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability.fn_api_runner import FnApiRunner, worker_handlers

from pipeline import backfill

_LOG = logging.getLogger(__name__)

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
    if backfill.grouping(options) != "shuffle":
        raise ValueError("the Dataflow job groups with Beam's shuffle: do not pass --grouping=spill")
    pipeline = beam.Pipeline(options=options)
    backfill.build(pipeline, options)
    return pipeline.run().job.proto_pipeline


def run_on_fn_api_runner(graph: beam_runner_api_pb2.Pipeline, *, state_cache_mb: int | None = 0):
    """Runs ``graph`` on the FnApiRunner in this process; returns its result (metrics).

    ``state_cache_mb`` sizes the SDK harness's cache of state and side inputs: 0 by default, as on Dataflow
    (its harness caches nothing unless ``--max_cache_memory_usage_mb`` is set); ``None`` keeps the
    FnApiRunner's own (100 MB, whose every value is weighed with ``objsize``: docs/runners.md)."""
    local = beam_runner_api_pb2.Pipeline()
    local.CopyFrom(graph)
    for environment in local.components.environments.values():
        if environment.urn != "beam:env:docker:v1":  # Dataflow's worker container
            raise ValueError(f"not a Dataflow job's environment: {environment.urn}")
        environment.urn = python_urns.EMBEDDED_PYTHON
        environment.ClearField("payload")
        environment.ClearField("dependencies")
    previous = getattr(worker_handlers, "STATE_CACHE_SIZE_MB", None)
    if state_cache_mb is not None and previous is None:
        _LOG.warning(
            "this Beam's FnApiRunner has no STATE_CACHE_SIZE_MB: its SDK state cache is left as it is"
        )
    elif state_cache_mb is not None:
        worker_handlers.STATE_CACHE_SIZE_MB = state_cache_mb
    try:
        result = FnApiRunner().run_via_runner_api(local, PipelineOptions(["--experiments=beam_fn_api"]))
        result.wait_until_finish()
    finally:
        if previous is not None:
            worker_handlers.STATE_CACHE_SIZE_MB = previous
    return result
