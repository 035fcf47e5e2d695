"""The streaming pipeline: Pub/Sub → decode → check projects → key → apply per group → Spanner.

    python -m pipeline.stream --input_subscription projects/P/subscriptions/S [--dead_letter_topic ...]
        [--spanner_project ...] [--redis_url ... | --no_creation_quota] [Beam flags]

Runs on the local runner by default and on Dataflow unchanged (``--runner DataflowRunner --project ...
--region ... --temp_location gs://... --setup_file ./setup.py``). Step names are stable, so a running job can
be updated in place (``--update``).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.options import (
    ProcessingOptions,
    QuotaOptions,
    SpannerOptions,
    StreamOptions,
    parse_duration,
    parse_max_payload_bytes,
    parse_size,
)
from transforms import (
    coders,  # noqa: F401  (registers the message coders)
    progress,
)
from transforms.applier import ApplierConfig, SpannerTarget
from transforms.apply_per_group import ApplyPerGroup, uncounted_counts
from transforms.core import metrics
from transforms.core.engine import EngineConfig
from transforms.core.model import MICROS, DeadLetter, Message
from transforms.decode_messages import DEAD_LETTER, MESSAGES, CheckProjects, DecodeMessages
from transforms.ingest import ROUTED, Ingest, KeyByGroupFn, key_by_group  # noqa: F401 (key_by_group: bench)
from transforms.pubsub_io import PUBLISHING, ReadMessages, WriteDeadLetters
from transforms.registry_source import AsRegistry, RefreshRegistry

_LOG = logging.getLogger("pipeline.stream")
LOCAL_RUNNERS = {"DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"}


def log_dead_letter(dead_letter: DeadLetter) -> DeadLetter:
    progress.add(progress.DEAD_LETTERS)
    _LOG.info(
        "dead letter %s (%s at %s): %s",
        dead_letter.message_id,
        dead_letter.reason,
        dead_letter.stage,
        dead_letter.error,
    )
    return dead_letter


def spanner_target(options: PipelineOptions) -> SpannerTarget:
    spanner = options.view_as(SpannerOptions)
    return SpannerTarget(
        spanner.spanner_project,
        spanner.spanner_instance,
        spanner.spanner_database,
        spanner.max_commit_mutations,
    )


def applier_config(options: PipelineOptions, *, wait_for_events: bool) -> ApplierConfig:
    processing = options.view_as(ProcessingOptions)
    quota = options.view_as(QuotaOptions)
    engine_config = EngineConfig(
        duplicate_retention=int(parse_duration(processing.duplicate_retention) * MICROS),
        pending_status_window=int(parse_duration(processing.pending_status_window) * MICROS),
        lookup_retry_window=int(parse_duration(processing.lookup_retry_window) * MICROS),
        wait_for_events=wait_for_events,
    )
    return ApplierConfig(
        spanner=spanner_target(options),
        engine=engine_config,
        redis_url=None if quota.no_creation_quota else quota.redis_url,
        quota_key_prefix=quota.quota_key_prefix,
        event_recheck_interval=parse_duration(options.view_as(StreamOptions).lookup_retry_interval),
    )


def local_runner(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in LOCAL_RUNNERS


def graph(options: PipelineOptions) -> str:
    """``--graph``: ``local`` on the local runner, ``dataflow`` elsewhere, unless the user chose."""
    chosen = options.view_as(StreamOptions).graph
    if chosen != "auto":
        return chosen
    return "local" if local_runner(options) else "dataflow"


def build(pipeline: beam.Pipeline, options: PipelineOptions, source: beam.PTransform | None = None) -> None:
    """Add the streaming job's steps to ``pipeline`` (no I/O happens here): the graph ``--graph`` names.
    ``source`` (``PBegin`` → ``PubsubMessage``) replaces only the Pub/Sub read (``pipeline.streaming_driver``).

    The local graph differs from Dataflow's in one place each, all for the local runner's speed: the stateless
    steps run as one (``Ingest``: the local runner does not fuse steps), the stateful step commits on a thread
    of its own (``overlap_commits``, only right on a runner that runs one bundle at a time and never retries
    a committed one), the reader gives Beam's ``PubsubMessage``s to ``Ingest``, and dead letters are published
    in the background. Whatever the graph, the local runner refreshes the project registry with a looping
    timer: it cannot run Beam's ``PeriodicImpulse`` (its graph fails to start there)."""
    stream = options.view_as(StreamOptions)
    processing = options.view_as(ProcessingOptions)
    target = spanner_target(options)
    refresh = parse_duration(stream.projects_refresh)
    local = graph(options) == "local"
    projects = AsRegistry(
        pipeline
        | "RefreshProjects" >> RefreshRegistry(target, refresh, periodic_impulse=not local_runner(options)),
        target,
        refresh,
    )

    read = ReadMessages(
        subscription=stream.input_subscription,
        topic=stream.input_topic,
        timestamp_attribute=stream.timestamp_attribute,
        pubsub_messages=local,
        source=source,
    )
    max_bytes = parse_max_payload_bytes(processing.max_payload_bytes)
    if local:  # the same DoFns in one step: the local runner does not fuse steps (transforms.ingest)
        ingested = (
            pipeline
            | "ReadMessages" >> read
            | "Ingest" >> Ingest(projects, max_bytes, timestamp_attribute=stream.timestamp_attribute)
        )
        keyed, early_dead_letters = ingested[ROUTED], [ingested[DEAD_LETTER]]
    else:
        read_messages = pipeline | "ReadMessages" >> read
        decoded = read_messages[MESSAGES] | "DecodeMessages" >> DecodeMessages(max_bytes, carry=True)
        checked = decoded | "CheckProjects" >> CheckProjects(projects)
        by_group = checked[MESSAGES] | "KeyByGroup" >> beam.ParDo(KeyByGroupFn()).with_outputs(
            DEAD_LETTER, main=MESSAGES
        )
        keyed = by_group[MESSAGES]
        keyed.element_type = beam.typehints.Tuple[str, Message]
        by_group[DEAD_LETTER].element_type = DeadLetter
        early_dead_letters = [read_messages[DEAD_LETTER], checked[DEAD_LETTER], by_group[DEAD_LETTER]]
    applied = keyed | "ApplyPerGroup" >> ApplyPerGroup(
        applier_config(options, wait_for_events=True),
        projects,
        watermark_delay=parse_duration(stream.watermark_delay),
        processing_hold=parse_duration(stream.processing_hold),
        lookup_retry_interval=parse_duration(stream.lookup_retry_interval),
        idle_timeout=parse_duration(stream.state_idle_timeout),
        state_save_delay=parse_duration(stream.state_save_delay),
        routed=local,
        overlap_commits=local,
        wake_waiting=True,
    )
    dead_letters = (*early_dead_letters, applied[DEAD_LETTER]) | "CollectDeadLetters" >> beam.Flatten()
    if stream.dead_letter_topic:
        dead_letters | "WriteDeadLetters" >> WriteDeadLetters(
            stream.dead_letter_topic, local=local, timestamp_attribute=stream.timestamp_attribute
        )
    else:
        dead_letters | "LogDeadLetters" >> beam.Map(log_dead_letter)


def make_options(argv: Sequence[str]) -> PipelineOptions:
    options = PipelineOptions(list(argv))
    standard = options.view_as(StandardOptions)
    standard.streaming = True
    if not standard.runner:
        # The default DirectRunner first tries to download the Prism runner; go straight to the local runner.
        standard.runner = "BundleBasedDirectRunner"
    stream = options.view_as(StreamOptions)
    if bool(stream.input_subscription) == bool(stream.input_topic):
        raise SystemExit("pipeline.stream: give exactly one of --input_subscription or --input_topic")
    processing = options.view_as(ProcessingOptions)
    checks = [
        (name, parse_duration, getattr(view, name))
        for view, names in (
            (
                stream,
                (
                    "watermark_delay",
                    "processing_hold",
                    "lookup_retry_interval",
                    "state_idle_timeout",
                    "state_save_delay",
                    "projects_refresh",
                ),
            ),
            (stream, ("progress_interval", "exit_when_idle", "drain_timeout")),
            (processing, ("duplicate_retention", "pending_status_window", "lookup_retry_window")),
        )
        for name in names
    ]
    checks.append(("max_payload_bytes", parse_max_payload_bytes, processing.max_payload_bytes))
    checks.append(("pubsub_pull_max_bytes", parse_size, stream.pubsub_pull_max_bytes))
    for name, parse, value in checks:
        if value is None:
            continue
        try:
            parse(value)
        except ValueError as error:
            raise SystemExit(f"pipeline.stream: --{name}: {error}") from None
    if parse_duration(stream.lookup_retry_interval) <= 0:
        raise SystemExit("pipeline.stream: --lookup_retry_interval must be more than 0")
    if stream.graph == "local" and not local_runner(options):
        raise SystemExit(
            "pipeline.stream: --graph local runs only on the local runner (its stateful step commits on a thread "
            "of its own, which is right only on a runner that never retries a bundle); use --graph dataflow"
        )
    return options


def start(options: PipelineOptions):
    """Build and start the pipeline; returns Beam's ``PipelineResult`` (the job runs until cancelled)."""
    if local_runner(options):
        from pipeline.local_runner import prepare_direct_runner

        stream = options.view_as(StreamOptions)
        prepare_direct_runner(
            stream.pubsub_pull_max,
            pull_max_bytes=parse_size(stream.pubsub_pull_max_bytes),
            patches=not stream.no_local_runner_patches,
        )
    pipeline = beam.Pipeline(options=options)
    build(pipeline, options)
    return pipeline.run()


def counter_totals(result) -> dict[str, int]:
    """Committed (or, while running, attempted) totals of our counters, by name."""
    totals: dict[str, int] = {}
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(metrics.NAMESPACE))
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals


def beam_counters_reliable() -> bool:
    """Whether Beam's counters of a local pipeline started in this process count every bundle: Beam's local
    runner loses the counters of a step's later bundles on a thread unless the bundle metrics patch of
    ``pipeline.local_runner`` is in place."""
    from pipeline.local_runner import PATCHER

    return PATCHER.applied("bundle_metrics")


def own_counts(before: dict[str, int]) -> dict[str, int]:
    """The process's own counts (``transforms.progress``: what the pipeline's steps count besides Beam's
    counters, dead letters as a total, ``progress.dead_letters``) since ``before`` (a ``progress.snapshot``)."""
    now = progress.snapshot()
    return {name: value - before.get(name, 0) for name, value in now.items() if value != before.get(name, 0)}


def report_progress(result, interval: float, stop: threading.Event) -> None:
    """Log throughput and outcomes every ``interval`` seconds until ``stop`` is set (local runs: the job runs
    in this process, so its DoFns' process-wide progress counters are visible here)."""
    last_applied, last_time = 0, time.monotonic()
    while not stop.wait(interval):
        totals = progress.snapshot()
        applied = totals.get(metrics.OCCURRENCE_MESSAGES, 0) + totals.get(metrics.STATUS_CHANGE_MESSAGES, 0)
        now = time.monotonic()
        rate = (applied - last_applied) / (now - last_time)
        last_applied, last_time = applied, now
        read = totals.get(progress.READ, 0)
        _LOG.info(
            "read %d, applied %d (%.0f/s), waiting %d, groups created %d, dead letters %d, duplicates %d, "
            "spanner commits %d",
            read,
            applied,
            rate,
            max(
                read - applied - totals.get(metrics.DUPLICATES, 0) - totals.get(progress.DEAD_LETTERS, 0),
                0,
            ),
            totals.get(metrics.GROUP_CREATED, 0),
            totals.get(progress.DEAD_LETTERS, 0),
            totals.get(metrics.DUPLICATES, 0),
            totals.get(metrics.SPANNER_COMMITS, 0),
        )


def log_counters(totals: dict[str, int]) -> None:
    """The run's Beam counters, one per line, sorted by name."""
    width = max((len(name) for name in totals), default=0)
    _LOG.info(
        "counters:\n%s", "\n".join(f"  {name:<{width}}  {totals[name]:>10,}" for name in sorted(totals))
    )


def _publisher(topic: str | None):
    """Where the dead letters made after a local pipeline stopped go: the dead-letter topic, or the log."""

    def publish(dead_letters: list[DeadLetter]) -> None:
        from transforms.core.envelopes import dead_letter_to_pubsub
        from transforms.storage import clients

        publisher = clients.pubsub_publisher()
        futures = []
        for dead_letter in dead_letters:
            data, attributes = dead_letter_to_pubsub(log_dead_letter(dead_letter))
            futures.append(publisher.publish(topic, data, **attributes))
        for future in futures:
            future.result(timeout=60)

    def log(dead_letters: list[DeadLetter]) -> None:
        for dead_letter in dead_letters:
            log_dead_letter(dead_letter)

    return publish if topic else log


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop, abort = threading.Event(), threading.Event()

    def on_sigterm(*_) -> None:
        if stop.is_set():  # a second SIGTERM: stop without finishing the drain
            abort.set()
        stop.set()

    signal.signal(
        signal.SIGTERM, on_sigterm
    )  # from the start: a stop while the pipeline starts is graceful too
    options = make_options(sys.argv[1:] if argv is None else argv)
    before = progress.snapshot()
    result = start(options)
    if not local_runner(options):
        _LOG.info("submitted; the job runs until drained or cancelled")
        return 0
    from pipeline.local_runner import LocalRun

    stream = options.view_as(StreamOptions)
    run = LocalRun(result, dead_letter_sink=_publisher(stream.dead_letter_topic))
    interval = parse_duration(stream.progress_interval)
    idle_limit = parse_duration(stream.exit_when_idle) if stream.exit_when_idle else None
    reporting = threading.Event()
    threading.Thread(target=report_progress, args=(result, interval, reporting), daemon=True).start()
    _LOG.info(
        "streaming locally; %s",
        f"stops after {idle_limit:g}s without progress" if idle_limit else "Ctrl-C or SIGTERM to stop",
    )
    last, idle_since = progress.snapshot(), None
    try:
        while not stop.wait(1.0) and not run.finished:
            if idle_limit is None:
                continue
            now, current = time.monotonic(), progress.snapshot()
            if idle_since is None:  # counted from the reader's first read, even if it brought nothing
                idle_since = run.reading_since
            elif current != last:
                last, idle_since = current, now
            elif now - idle_since >= idle_limit:
                _LOG.info("nothing read or applied for %.0fs", now - idle_since)
                break
    except KeyboardInterrupt:
        pass
    stop.set()
    if run.failure is not None:
        reporting.set()
        _LOG.error("the pipeline failed: %s", run.failure)
        return 1
    _LOG.info("stopping")
    run.drain(parse_duration(stream.drain_timeout), abort)  # logs what it did, or what it could not
    run.cancel()  # commits what was handed over, saves the key states that were due
    reporting.set()
    if beam_counters_reliable():
        totals = counter_totals(result)
    else:
        _LOG.warning(
            "Beam's runner without the bundle metrics patch loses counters: the counts below are the "
            "pipeline's own (dead letters as one total, progress.dead_letters)"
        )
        totals = own_counts(before)
    for name, amount in uncounted_counts().items():  # commits done after the last bundle
        totals[name] = totals.get(name, 0) + amount
    log_counters(totals)
    unconfirmed = PUBLISHING.wait(timeout=60)
    if unconfirmed:
        _LOG.error("%d dead letters were not confirmed published within 60s", unconfirmed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
