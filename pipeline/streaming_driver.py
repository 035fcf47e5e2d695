"""The streaming job on Beam's SDK harness, driven by a TestStream's events: what Dataflow's workers execute.

For tests and benchmarks (nothing here runs on Dataflow's workers). Beam's FnApiRunner executes a pipeline
proto on the SDK harness (fused stages, Fn API state and timers, as Dataflow Runner v2 does) but runs no
TestStream and fires timers early in streaming (docs/runners.md). This driver keeps what the runner does
right and replaces its scheduling:

* **The graph.** ``streaming_job_graph`` builds the job exactly as ``--runner DataflowRunner`` does
  (``pipeline.stream.build`` with ``--graph dataflow`` and Beam's DataflowRunner with ``--dry_run=True``: the
  same steps and coders, no local-only switch), with one difference, given by ``source``: the Pub/Sub read
  (step ``ReadMessages/Pull``) is a TestStream of ``PubsubMessage``s. Any pipeline with one TestStream runs
  too (``DriverRunner``: ``beam.Pipeline(runner=DriverRunner())``).
* **The stages** are the FnApiRunner's own translation of the proto (``FnApiRunner.create_stages``: fusion,
  splittable DoFns, side inputs), with the TestStream and every ``Impulse`` turned into data the driver
  sends. Each bundle runs on the runner's embedded SDK worker, whose user state the runner's
  ``StateServicer`` holds; the SDK harness's state cache is off, as on Dataflow (docs/runners.md).
* **Events.** Elements become one bundle of the stage that reads the source. An advance of the watermark
  fires the event-time timers whose fire timestamp it reached; an advance of processing time fires the
  processing-time timers due. Timers are read from each bundle's timer output and kept per key, family and
  window (the last set wins, a clear removes); due timers fire in bundles of timer input until none is due.
  At the end the watermark goes to infinity and fires what it reaches; processing-time timers still pending
  are dropped (as when a TestStream ends on Beam's local runner).
* **Processing time** is the TestStream's (starts at 0: DoFns are given a clock that does too), or, with
  ``real_time``, the wall clock: an advance then waits that long (a job built with ``--graph dataflow``
  reads ``time.time()``).
* **Failures.** A bundle that fails is retried from the state before it (the ``StateServicer``'s
  checkpoint), its outputs and timers discarded, up to ``attempts`` times, as Dataflow retries a bundle.
* **Not run**: a splittable DoFn's residuals (``PeriodicImpulse`` emits its first tick only: the project
  registry's side input gets one snapshot, the later refreshes do not come); Dataflow's native Pub/Sub sink
  (dead letters go to ``LogDeadLetters`` when the job has no ``--dead_letter_topic``).

Every private name of Beam's runner used here is checked first (``CHECKS``, ``transforms.private_api``);
when one is not as recorded, ``DriverUnavailable`` says which.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterable, Sequence

import apache_beam as beam
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_fn_api_pb2, beam_provision_api_pb2, beam_runner_api_pb2
from apache_beam.runners.runner import PipelineRunner, PipelineState
from apache_beam.transforms import environments
from apache_beam.utils import timestamp

from transforms.private_api import Target, target_problems

_LOG = logging.getLogger(__name__)

_RUNNER = "apache_beam.runners.portability.fn_api_runner"
_FN = f"{_RUNNER}.fn_runner"
_EXEC = f"{_RUNNER}.execution"
_WORKERS = f"{_RUNNER}.worker_handlers"
_TRANSLATIONS = f"{_RUNNER}.translations"

# What this module relies on in Beam's FnApiRunner, recorded on 2.77.0 and 2.78.0 (`python -m
# pipeline.streaming_driver` prints each check and the hashes found).
CHECKS: tuple[Target, ...] = (
    Target(
        _FN,
        "FnApiRunner.create_stages",
        ("10951f3fbce751e212272073067be8b09ce6d7e8d08e38961cf8107c5ad0bf71",),
        "relies on",
        ("ExtendedProvisionInfo", "FnApiRunner.get_cache_token_generator"),
    ),
    Target(
        _FN,
        "BundleManager.process_bundle",
        ("f4f1efd79d3462792b3da84cfce24ab862a0663b02b8ef9b516d5408f0a4c149",),
        "relies on",
        ("BundleManager.__init__",),
    ),
    Target(
        _FN,
        "RunnerResult.__init__",
        ("79b120d62ba7f9e7ae2667c5d511f4e07273101b88aac7b1c254e82347fecee2",),
        "relies on",
    ),
    Target(
        _EXEC,
        "FnApiRunnerExecutionContext.__init__",
        ("3cc852c32fc90dcb148d88f5d7efe18683875fd9142191c1dc4210ec61501a9e",),
        "relies on",
        (
            "FnApiRunnerExecutionContext.pcoll_buffers",
            "FnApiRunnerExecutionContext.timer_buffers",
            "FnApiRunnerExecutionContext.side_input_descriptors_by_stage",
            "FnApiRunnerExecutionContext.buffer_id_to_consumer_pairs",
            "FnApiRunnerExecutionContext.input_transform_to_buffer_id",
            "FnApiRunnerExecutionContext.pipeline_context",
            "FnApiRunnerExecutionContext.setup",
            "FnApiRunnerExecutionContext.bundle_manager_for",
            "FnApiRunnerExecutionContext.commit_side_inputs_to_state",
            "FnApiRunnerExecutionContext.state_servicer",
            "FnApiRunnerExecutionContext.worker_handler_manager",
            "ENCODED_IMPULSE_VALUE",
        ),
    ),
    Target(
        _EXEC,
        "FnApiRunnerExecutionContext._enqueue_stage_initial_inputs",
        ("d39454c700bead7d61e61b65d7d5130098d34a724fa43df9db0a7a77d35bb5bb",),
        "relies on",
    ),
    Target(
        _EXEC,
        "FnApiRunnerExecutionContext.commit_side_inputs_to_state",
        ("0b6492b79329a92989e7c27d7b2338df72aeab79195de92be02dc0d05e2cf509",),
        "relies on",
    ),
    Target(
        _EXEC,
        "BundleContextManager.__init__",
        ("554936f2292856b4432a741a39b690037c3f373a587c5bfbc75726d3521efa4c",),
        "relies on",
        (
            "BundleContextManager.stage_data_outputs",
            "BundleContextManager.stage_timer_outputs",
            "BundleContextManager.process_bundle_descriptor",
            "BundleContextManager.get_timer_coder_impl",
        ),
    ),
    Target(
        _EXEC,
        "BundleContextManager.get_buffer",
        (  # 2.78.0, then 2.77.0 (which gives a GroupingBuffer no clock: a kind of buffer the driver does not read)
            "bf8b874c7c61982b87dc05b7b8a5af4a784be9a8c885ede35dc0567028a636e5",
            "587b5d725d2a0c233323342770d204c5cca331d69aaf00d86debfb81c8580a62",
        ),
        "relies on",
    ),
    Target(
        _EXEC,
        "ListBuffer",
        ("1438ae88c35c5e0ca34e1f9c906d2e03dd1bde47fdf35902a691ce27a274bd1a",),
        "relies on",
    ),
    Target(
        _WORKERS,
        "WorkerHandlerManager.__init__",
        ("bea66a2b332c75d6f51069b5633131d019ae68b694159f598e40af893a0fda6d",),
        "relies on",
        (
            "WorkerHandlerManager.close_all",
            "WorkerHandlerManager.state_servicer",
            "WorkerHandlerManager.register_process_bundle_descriptor",
            "STATE_CACHE_SIZE_MB",
        ),
    ),
    Target(
        _WORKERS,
        "StateServicer.checkpoint",
        ("9294834bfcfa88b05782e0775bb006f3d834d5ebf7e27bf03c83a43daa374eec",),
        "relies on",
        (
            "StateServicer._state",
            "StateServicer._checkpoint",
            "StateServicer.restore",
            "StateServicer.get_raw",
            "StateServicer.append_raw",
            "StateServicer.clear",
        ),
    ),
    Target(
        _WORKERS,
        "StateServicer.CopyOnWriteState",
        ("eae6320396ebaf6437fb2f5c28789d4b53996519930f25d6a0c04ef510e007c5",),
        "relies on",
    ),
    Target(
        _TRANSLATIONS,
        "split_buffer_id",
        ("baa70db1d38279bbf46d9485f661200a400d4ac2d59fae0fa006c881e5226b39",),
        "relies on",
        (
            "IMPULSE_BUFFER",
            "Stage.name",
            "Stage.transforms",
            "TransformContext.components",
            "TransformContext.safe_coders",
            "TransformContext.data_channel_coders",
        ),
    ),
)

_DATA_INPUT = "beam:runner:source:v1"  # bundle_processor.DATA_INPUT_URN
_MAX_ROUNDS = 100_000  # timer rounds for one event: a timer that keeps firing at once is a bug, not a stream


class DriverUnavailable(RuntimeError):
    """Beam's runner is not what this driver was written against (the message says what changed)."""


_checked: dict[tuple[Target, ...], list[str]] = {}  # a source does not change in a process: checked once


def check() -> None:
    """Raise ``DriverUnavailable`` naming every private part of Beam's runner that is not as recorded."""
    problems = _checked.get(CHECKS)
    if problems is None:
        problems = _checked[CHECKS] = [problem for target in CHECKS for problem in target_problems(target)]
    if problems:
        raise DriverUnavailable(
            f"the streaming driver cannot run on Beam {beam.__version__}: " + "; ".join(problems)
        )


class _Timers:
    """The timers set and not yet fired: (transform, family) -> {(user key, tag, window): timer}."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], dict[tuple, object]] = collections.defaultdict(dict)

    def take_due(self, domains: dict[tuple[str, str], int], watermark, now) -> dict[tuple[str, str], list]:
        """Takes out the timers of ``domains``' families (family -> time domain) that are due."""
        due: dict[tuple[str, str], list] = {}
        for family, domain in domains.items():
            timers = self.pending.get(family)
            if not timers:
                continue
            bound = watermark if domain == beam_runner_api_pb2.TimeDomain.EVENT_TIME else now
            fired = [key for key, timer in timers.items() if timer.fire_timestamp <= bound]
            if fired:
                due[family] = sorted((timers.pop(key) for key in fired), key=lambda t: t.fire_timestamp)
        return due


class StreamingDriver:
    """Runs one pipeline proto holding one TestStream (see the module docstring); ``run`` returns Beam's
    ``RunnerResult`` (its ``metrics()`` has every bundle's counters that succeeded)."""

    def __init__(
        self,
        graph: beam_runner_api_pb2.Pipeline,
        *,
        real_time: bool = False,
        state_cache_mb: int = 0,
        attempts: int = 4,
    ) -> None:
        check()
        self._graph = _embedded(graph)
        self._real_time = real_time
        self._state_cache_mb = state_cache_mb
        self._attempts = attempts
        self.bundles = 0  # bundles that succeeded
        self.state_calls = 0  # Fn API state requests the runner served (``bench.production_cpu``)

    def run(self):
        from apache_beam.runners.portability.fn_api_runner import execution, fn_runner, worker_handlers

        source_id, events, element_coder = self._take_test_stream()
        runner = fn_runner.FnApiRunner()
        context, stages = runner.create_stages(self._graph)
        previous = worker_handlers.STATE_CACHE_SIZE_MB
        worker_handlers.STATE_CACHE_SIZE_MB = self._state_cache_mb
        provision = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(retrieval_token="unused-retrieval-token")
        )
        manager = worker_handlers.WorkerHandlerManager(context.components.environments, provision)
        try:
            self._context = execution.FnApiRunnerExecutionContext(
                stages,
                manager,
                context.components,
                context.safe_coders,
                context.data_channel_coders,
                1,
            )
            self._context.setup()  # gives data inputs and outputs their channel's coder
            self._stages = stages
            self._infos: dict[str, list] = {}
            self._pending: dict[str, dict[str, list[bytes]]] = collections.defaultdict(
                lambda: collections.defaultdict(list)
            )
            self._timers = _Timers()
            self._count_state_calls(manager.state_servicer)
            self._watermark = timestamp.MIN_TIMESTAMP
            self._now = timestamp.Timestamp.of(time.time() if self._real_time else 0)
            self._source_id, self._source = source_id, self._source_stage(source_id)
            self._start()
            for event in events:
                self._handle(event, source_id, element_coder)
            self._watermark = timestamp.MAX_TIMESTAMP
            self._fire_due()
        finally:
            worker_handlers.STATE_CACHE_SIZE_MB = previous
            manager.close_all()
        return fn_runner.RunnerResult(PipelineState.DONE, self._infos)

    # -- the graph

    def _take_test_stream(self):
        """Turns the TestStream into an ``Impulse`` (a data input the driver feeds); returns its transform
        id, its events and its elements' coder."""
        from apache_beam.runners.pipeline_context import PipelineContext

        found = [
            (tid, t)
            for tid, t in self._graph.components.transforms.items()
            if t.spec.urn == common_urns.primitives.TEST_STREAM.urn
        ]
        if len(found) != 1:
            raise ValueError(f"the streaming driver needs exactly one TestStream, found {len(found)}")
        _transform_id, transform = found[0]
        if len(transform.outputs) != 1:
            raise ValueError("the streaming driver runs a TestStream with one output only")
        payload = beam_runner_api_pb2.TestStreamPayload.FromString(transform.spec.payload)
        coder = PipelineContext(self._graph.components).coders.get_by_id(payload.coder_id)
        transform.spec.urn = common_urns.primitives.IMPULSE.urn
        transform.spec.ClearField("payload")
        return transform.unique_name, list(payload.events), coder

    def _source_stage(self, source_id: str):
        for stage in self._stages:
            if any(t.unique_name == source_id for t in stage.transforms):
                return stage
        raise ValueError(f"no stage reads {source_id}")

    def _start(self) -> None:
        """Every ``Impulse`` but the source's fires once, in the order of the stages (side inputs first)."""
        from apache_beam.runners.portability.fn_api_runner import execution, translations

        for stage in self._stages:
            for transform in stage.transforms:
                if transform.spec.urn != _DATA_INPUT or transform.unique_name == self._source_id:
                    continue
                if self._context.input_transform_to_buffer_id.get(transform.unique_name) == (
                    translations.IMPULSE_BUFFER
                ):
                    self._pending[stage.name][transform.unique_name].append(execution.ENCODED_IMPULSE_VALUE)
        self._pump()

    # -- events

    def _handle(self, event, source_id: str, element_coder) -> None:
        from apache_beam.coders.coder_impl import create_OutputStream
        from apache_beam.utils.windowed_value import WindowedValue

        if event.HasField("element_event"):
            impl = self._input_coder_impl(self._source, source_id)
            out = create_OutputStream()
            for element in event.element_event.elements:
                value = WindowedValue(
                    element_coder.decode(element.encoded_element),
                    timestamp.Timestamp(micros=1000 * element.timestamp),
                    (beam.transforms.window.GlobalWindow(),),
                )
                impl.encode_to_stream(value, out, True)  # nested: a data channel carries a stream of them
            data = out.get()
            self._pending[self._source.name][source_id].append(data)
            self._pump()
        elif event.HasField("watermark_event"):
            # The payload's times are in milliseconds (Beam's TestStream.to_runner_api).
            new = timestamp.Timestamp(micros=1000 * event.watermark_event.new_watermark)
            self._watermark = max(self._watermark, min(new, timestamp.MAX_TIMESTAMP))
        elif event.HasField("processing_time_event"):
            advance = timestamp.Duration(micros=1000 * event.processing_time_event.advance_duration)
            if self._real_time:
                time.sleep(advance.micros / 1e6)
                self._now = timestamp.Timestamp.of(time.time())
            else:
                self._now = self._now + advance
        self._fire_due()

    def _fire_due(self) -> None:
        for _ in range(_MAX_ROUNDS):
            fired = False
            for stage in self._stages:
                families = self._families(stage)
                if not families:
                    continue
                due = self._timers.take_due(families, self._watermark, self._now)
                if due:
                    fired = True
                    self._run_bundle(stage, {}, due)
                    self._pump()
            if not fired:
                return
        raise RuntimeError(f"timers kept firing at watermark {self._watermark}, time {self._now}")

    # -- bundles

    def _pump(self) -> None:
        """Runs the stages that have data waiting, in topological order, until none has."""
        while True:
            ready = [stage for stage in self._stages if self._pending.get(stage.name)]
            if not ready:
                return
            stage = ready[0]
            self._run_bundle(stage, self._pending.pop(stage.name), {})

    def _families(self, stage) -> dict[tuple[str, str], int]:
        manager = self._context.bundle_manager_for(stage)
        return {family: domain for family, (_buffer, domain) in manager.stage_timer_outputs.items()}

    def _input_coder_impl(self, stage, transform_id: str):
        """The coder the SDK decodes ``transform_id``'s data with (not the runner's length-prefixed copy)."""
        manager = self._context.bundle_manager_for(stage)
        port = beam_fn_api_pb2.RemoteGrpcPort.FromString(
            manager.process_bundle_descriptor.transforms[transform_id].spec.payload
        )
        return self._context.pipeline_context.coders[port.coder_id].get_impl()

    def _run_bundle(self, stage, data: dict[str, list[bytes]], timers: dict[tuple[str, str], list]) -> None:
        from apache_beam.coders.coder_impl import create_OutputStream
        from apache_beam.metrics.monitoring_infos import consolidate
        from apache_beam.runners.portability.fn_api_runner import execution, fn_runner

        manager = self._context.bundle_manager_for(stage)
        self._context.worker_handler_manager.register_process_bundle_descriptor(
            manager.process_bundle_descriptor
        )
        inputs = {}
        for transform in stage.transforms:  # every data input gets a stream, if only an empty one
            if transform.spec.urn == _DATA_INPUT:
                buffer = execution.ListBuffer(None)
                for chunk in data.get(transform.unique_name, ()):
                    buffer.append(chunk)
                inputs[transform.unique_name] = buffer
        fired = {}
        for family, family_timers in timers.items():
            impl = manager.get_timer_coder_impl(*family)
            out = create_OutputStream()
            for timer in family_timers:
                impl.encode_to_stream(timer, out, True)
            fired[family] = execution.ListBuffer(None)
            fired[family].append(out.get())
        _LOG.debug(
            "bundle of %s: %d data chunks, timers %s (watermark %s, time %s)",
            stage.name,
            sum(len(chunks) for chunks in data.values()),
            {family[1]: len(family_timers) for family, family_timers in timers.items()},
            self._watermark,
            self._now,
        )
        servicer = self._context.state_servicer
        for attempt in range(1, self._attempts + 1):
            servicer.checkpoint()
            try:
                result, _splits = fn_runner.BundleManager(
                    manager,
                    None,
                    cache_token_generator=fn_runner.FnApiRunner.get_cache_token_generator(False),
                ).process_bundle(inputs, manager.stage_data_outputs, fired, manager.stage_timer_outputs)
            except RuntimeError as error:
                servicer.restore()
                self._discard_outputs(manager)
                if attempt == self._attempts:
                    raise
                _LOG.warning("bundle of %s failed (attempt %d), retried: %s", stage.name, attempt, error)
                continue
            servicer._state = servicer._state.commit()  # the bundle's state changes stand
            servicer._checkpoint = None
            break
        self.bundles += 1
        infos = self._infos.get(stage.name)
        self._infos[stage.name] = (
            list(result.process_bundle.monitoring_infos)
            if infos is None
            else consolidate([*result.process_bundle.monitoring_infos, *infos])
        )
        self._collect_timers(manager)
        self._route_outputs(stage, manager)

    def _discard_outputs(self, manager) -> None:
        for buffer_id in set(manager.stage_data_outputs.values()):
            self._context.pcoll_buffers.pop(buffer_id, None)
        for buffer_id, _domain in manager.stage_timer_outputs.values():
            self._context.timer_buffers.pop(buffer_id, None)

    def _collect_timers(self, manager) -> None:
        for family, (buffer_id, _domain) in manager.stage_timer_outputs.items():
            written = self._context.timer_buffers.pop(buffer_id, None)
            if written is None or written.cleared:
                continue
            impl = manager.get_timer_coder_impl(*family)
            pending = self._timers.pending[family]
            for chunk in written:
                for timer in impl.decode_all(chunk):
                    key = (timer.user_key, timer.dynamic_timer_tag, timer.windows[0])
                    if timer.clear_bit:
                        pending.pop(key, None)
                    else:
                        pending[key] = timer

    def _route_outputs(self, stage, manager) -> None:
        # Side inputs this stage produced go into the state the SDK reads them from (added to what is there).
        self._context.commit_side_inputs_to_state(
            self._context.side_input_descriptors_by_stage.get(stage.name, {})
        )
        for buffer_id in dict.fromkeys(manager.stage_data_outputs.values()):
            buffer = self._context.pcoll_buffers.pop(buffer_id, None)
            if buffer is None:
                continue
            chunks = list(buffer)
            if not chunks:
                continue
            for consumer_stage, consumer in self._context.buffer_id_to_consumer_pairs.get(buffer_id, ()):
                self._pending[consumer_stage][consumer].extend(chunks)

    def _count_state_calls(self, servicer) -> None:
        """Counts the state requests the runner serves (the embedded worker calls the servicer directly)."""
        for name in ("get_raw", "append_raw", "clear"):
            original = getattr(servicer, name)

            def counted(*args, _original=original, **kwargs):
                self.state_calls += 1
                return _original(*args, **kwargs)

            setattr(servicer, name, counted)


def _embedded(graph: beam_runner_api_pb2.Pipeline) -> beam_runner_api_pb2.Pipeline:
    """A copy of ``graph`` whose SDK environments are this process (a Dataflow job's name its container)."""
    local = beam_runner_api_pb2.Pipeline()
    local.CopyFrom(graph)
    for environment in local.components.environments.values():
        environment.urn = python_urns.EMBEDDED_PYTHON
        environment.ClearField("payload")
        environment.ClearField("dependencies")
    return local


class DriverRunner(PipelineRunner):
    """A Beam runner for pipelines with one TestStream: ``beam.Pipeline(runner=DriverRunner(), options=...)``
    (streaming options); ``run()`` runs them on the driver and returns Beam's ``RunnerResult``."""

    def __init__(self, *, real_time: bool = False, state_cache_mb: int = 0) -> None:
        self._real_time = real_time
        self._state_cache_mb = state_cache_mb

    def run_pipeline(self, pipeline, options):
        graph = pipeline.to_runner_api(default_environment=environments.EmbeddedPythonEnvironment.default())
        return StreamingDriver(graph, real_time=self._real_time, state_cache_mb=self._state_cache_mb).run()


def pubsub_test_stream() -> beam.testing.test_stream.TestStream:
    """An empty TestStream of ``PubsubMessage``s (with attributes), to add events to and give as ``source``."""
    from apache_beam.io.gcp.pubsub import PubsubMessage
    from apache_beam.testing.test_stream import TestStream

    return TestStream(coder=beam.coders.FastPrimitivesCoder()).with_output_types(PubsubMessage)


def streaming_job_graph(args: Sequence[str], source: beam.PTransform) -> beam_runner_api_pb2.Pipeline:
    """The proto ``--runner DataflowRunner`` submits for ``python -m pipeline.stream ARGS``, its Pub/Sub read
    replaced by ``source`` (``pubsub_test_stream``). ``ARGS`` need no subscription (one is filled in)."""
    from pipeline import stream
    from pipeline.production_graph import DATAFLOW_FLAGS

    args = list(args)
    if not any(arg.startswith(("--input_subscription", "--input_topic")) for arg in args):
        args.append("--input_subscription=projects/local-project/subscriptions/driver-source")
    options = stream.make_options([*args, *DATAFLOW_FLAGS])
    if stream.graph(options) != "dataflow":
        raise ValueError("the streaming driver runs Dataflow's graph: do not pass --graph local")
    pipeline = beam.Pipeline(options=options)
    stream.build(pipeline, options, source=source)
    return pipeline.run().job.proto_pipeline


def _print_checks(targets: Iterable[Target]) -> None:
    from transforms.private_api import source_sha256

    for target in targets:
        problems = target_problems(target)
        try:
            found = source_sha256(target)[:12]
        except Exception as error:  # printed: this is the report
            found = f"unreadable ({error})"
        print(f"{target.label:70} {found}  {'ok' if not problems else '; '.join(problems)}")


if __name__ == "__main__":
    print(f"Beam {beam.__version__}")
    _print_checks(CHECKS)
