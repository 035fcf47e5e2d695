"""Make Beam's local streaming runner (the BundleBasedDirectRunner) usable for this pipeline.

``LocalRun`` watches a running local pipeline for failure. Four patches, applied by
``prepare_direct_runner`` before a local streaming pipeline starts. They affect only the DirectRunner in this
process; Dataflow has its own reader, metrics and DoFn invokers.

* **Pub/Sub pulls.** Beam's DirectRunner reads Pub/Sub with one synchronous pull of at most 10 messages that
  waits up to 30 s on an idle subscription, on the same thread as everything else: about 120 messages/s at
  best, and timers and the watermark stall while it waits. We wrap the reader's subscriber client so every
  pull asks for ``max_messages`` and returns after ``timeout`` seconds.
* **Metrics.** Each of the runner's worker threads keeps one state sampler, and the sampler caches a step's
  execution state, with the metrics container of the *first* bundle it ran, under the step's name. Every later
  bundle of that step on that thread increments the first bundle's container, which was already committed, so
  its counters are lost (all counters of timer callbacks of a stateful DoFn, for example). We give every bundle
  a fresh sampler, so each bundle reports into its own container.
* **Timer scans.** Whenever it looks for timers to fire (all the time), the runner visits every key that
  ever had state in a stateful step and compares each of its timers with the watermark and the clock through
  ``Timestamp`` objects, building a new ``Timestamp`` from the clock for every key and every comparison: more
  than half of the CPU time of a streaming run over 2,000 keys. We do the same scan, in the same order, with
  the clock read once per scan and plain integer microseconds; and in pipelines that read Pub/Sub (where
  timers depend on the wall clock anyway) a scan starts at the earliest four times the duration of the
  previous one after it, so scans take at most about a fifth of the time whatever the number of keys, and a
  timer fires at most that much later. (TestStream pipelines scan after every bundle, as Beam does.)
* **DoFn introspection.** For every bundle the runner looks for the state and timer declarations of the
  DoFn by inspecting the signature of each of its methods, several times: a third of the CPU time of a
  streaming run went there. The declarations belong to the DoFn's class, so they are looked up once per
  class.

Like Beam's own local reader, the reader acknowledges messages as soon as it pulls them: a local pipeline that
dies loses what it had in flight (Dataflow acknowledges only after its checkpoint).
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_pull: dict[str, float] = {}


class _FastPullClient:
    def __init__(self, client, max_messages: int, timeout: float) -> None:
        self._client = client
        self._max_messages = max_messages
        self._timeout = timeout

    def pull(self, subscription, max_messages=None, timeout=None, **kwargs):
        from google.api_core import exceptions

        try:
            return self._client.pull(
                subscription=subscription, max_messages=self._max_messages, timeout=self._timeout, **kwargs
            )
        except exceptions.DeadlineExceeded:
            from google.pubsub_v1 import PullResponse

            return PullResponse()

    def __getattr__(self, name):
        return getattr(self._client, name)


def _patch_pubsub_pulls() -> None:
    from apache_beam.runners.direct import transform_evaluator

    evaluator = transform_evaluator._PubSubReadEvaluator
    if getattr(evaluator, "_occurrence_pipeline_patched", False):
        return
    original = evaluator._get_subscriber_client.__func__

    def _get_subscriber_client(cls, transform):
        client = original(cls, transform)
        return _FastPullClient(client, int(_pull["max_messages"]), _pull["timeout"])

    evaluator._get_subscriber_client = classmethod(_get_subscriber_client)
    evaluator._occurrence_pipeline_patched = True


def _patch_bundle_metrics() -> None:
    from apache_beam.runners.direct import executor
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils import counters

    transform_executor = executor.TransformExecutor
    if getattr(transform_executor, "_occurrence_pipeline_patched", False):
        return
    original = transform_executor.call

    def call(self, state_sampler):
        fresh = statesampler.StateSampler("", counters.CounterFactory())
        statesampler.set_current_tracker(fresh)
        try:
            return original(self, fresh)
        finally:
            statesampler.set_current_tracker(state_sampler)

    transform_executor.call = call
    transform_executor._occurrence_pipeline_patched = True


def _patch_dofn_specs() -> None:
    from apache_beam.runners.direct import transform_evaluator
    from apache_beam.transforms import userstate

    if getattr(userstate, "_occurrence_pipeline_patched", False):
        return
    original = userstate.get_dofn_specs
    by_class: dict[type, tuple[frozenset, frozenset]] = {}

    def get_dofn_specs(dofn):
        specs = by_class.get(type(dofn))
        if specs is None:
            state_specs, timer_specs = original(dofn)
            specs = by_class[type(dofn)] = (frozenset(state_specs), frozenset(timer_specs))
        return set(specs[0]), set(specs[1])

    userstate.get_dofn_specs = get_dofn_specs
    transform_evaluator.get_dofn_specs = get_dofn_specs
    userstate._occurrence_pipeline_patched = True


def _patch_timer_scans() -> None:
    from apache_beam.runners.direct import evaluation_context, watermark_manager
    from apache_beam.runners.direct.util import TimerFiring
    from apache_beam.transforms.timeutil import TimeDomain
    from apache_beam.utils.timestamp import Timestamp

    watermarks = watermark_manager._TransformWatermarks
    if getattr(watermarks, "_occurrence_pipeline_patched", False):
        return
    real_time, watermark_domain = TimeDomain.REAL_TIME, TimeDomain.WATERMARK

    def micros(value) -> int:
        return value.micros if type(value) is Timestamp else Timestamp.of(value).micros

    def extract_transform_timers(self):
        """Beam's ``_TransformWatermarks.extract_transform_timers``, same result, one clock read."""
        with self._lock:
            fired_timers = []
            has_realtime_timer = False
            watermark = micros(self._input_watermark)
            now = None
            for encoded_key, state in self._keyed_states.items():
                for window, timers in list(state.timers.items()):
                    for (name, time_domain, tag), timestamp in list(timers.items()):
                        if time_domain == real_time:
                            has_realtime_timer = True
                            if now is None:
                                now = micros(self._clock.time())
                            marker = now
                        elif time_domain == watermark_domain:
                            marker = watermark
                        else:
                            continue
                        if micros(timestamp) <= marker:
                            fired_timers.append(
                                TimerFiring(
                                    encoded_key, window, name, time_domain, timestamp, dynamic_timer_tag=tag
                                )
                            )
            self._fired_timers.update(fired_timers)
            return fired_timers, has_realtime_timer

    extract_transform_timers.__wrapped__ = watermarks.extract_transform_timers  # Beam's, for the tests
    watermarks.extract_transform_timers = extract_transform_timers
    watermarks._occurrence_pipeline_patched = True

    context = evaluation_context.EvaluationContext
    scan = context.extract_all_timers

    def reads_pubsub(self) -> bool:
        found = getattr(self, "_occurrence_pipeline_reads_pubsub", None)
        if found is None:
            found = any("ReadFromPubSub" in type(t.transform).__name__ for t in self._root_transforms)
            self._occurrence_pipeline_reads_pubsub = found
        return found

    def extract_all_timers(self):
        if not reads_pubsub(self):
            return scan(self)
        began = time.monotonic()
        if began < getattr(self, "_occurrence_pipeline_next_scan", 0.0):
            return [], True  # the caller (the runner's monitor) uses only the fired timers
        result = scan(self)
        ended = time.monotonic()
        self._occurrence_pipeline_next_scan = ended + 4 * (ended - began)
        return result

    context.extract_all_timers = extract_all_timers


def prepare_direct_runner(pull_max_messages: int = 1000, pull_timeout: float = 1.0) -> None:
    """Apply the patches (idempotent; the pull settings of the latest call win). Process-wide."""
    with _lock:
        _pull["max_messages"] = pull_max_messages
        _pull["timeout"] = pull_timeout
        _patch_pubsub_pulls()
        _patch_bundle_metrics()
        _patch_dofn_specs()
        _patch_timer_scans()


class LocalRun:
    """A streaming pipeline that runs in this process on the local runner, watched for failure.

    The local runner's ``PipelineResult`` stays RUNNING when the pipeline fails (a bundle that failed four
    times stops everything, and only ``wait_until_finish``, which otherwise never returns, raises it). A
    daemon thread waits on it here, so ``failure`` tells whether the pipeline died and why.
    """

    def __init__(self, result) -> None:
        self.result = result
        self.failure: BaseException | None = None
        self._finished = threading.Event()
        threading.Thread(target=self._watch, name="local-pipeline-watch", daemon=True).start()

    def _watch(self) -> None:
        try:
            self.result.wait_until_finish()
        except BaseException as error:  # the pipeline's own failure, reported by ``failure``
            self.failure = error
        finally:
            self._finished.set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        """Stop the pipeline (what is in flight is lost: the local reader acknowledged it) and the watch."""
        if self._finished.is_set():
            return
        self.result.cancel()
        from apache_beam.runners.direct.executor import _ExecutorServiceParallelExecutor

        # Wake the watch: the runner's cancel does not tell the waiter.
        self.result._executor._executor.visible_updates.offer(
            _ExecutorServiceParallelExecutor._VisibleExecutorUpdate()
        )
        self._finished.wait(5.0)
