"""The backfill: replay archived messages through the same rules as streaming, idempotently.

    python -m pipeline.backfill --input 'GLOB' --dead_letter_path DIR [--redis_url URL] [--no_creation_quota]
        [--timestamp_attribute NAME] [--spanner_project ...] [--spanner_instance ...] [--spanner_database ...]
        [Beam flags]

A batch job: archive → decode → check projects → resolve event lookups (E7) → key → group → apply each
key's history in key order (hydrated from Spanner) → Spanner; dead letters go to replayable files under
``--dead_letter_path``. Runs locally by default (Beam's FnApiRunner, the DirectRunner's batch engine) and on
Dataflow unchanged. Prints a progress line every 10 seconds and a summary when done.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.options import (
    BackfillOptions,
    ProcessingOptions,
    StreamOptions,
    parse_duration,
    parse_max_payload_bytes,
)
from pipeline.stream import applier_config, counter_totals, spanner_target
from transforms import (
    coders,  # noqa: F401  (registers the message coders)
    progress,
)
from transforms.archive_io import ReadArchive
from transforms.core import metrics
from transforms.core.envelopes import dead_letter_to_line
from transforms.core.model import DeadLetter
from transforms.decode_messages import DEAD_LETTER, MESSAGES, CheckProjects, DecodeMessages
from transforms.event_join import Resolved, ResolveLookups
from transforms.key_history import ApplyKeyHistories
from transforms.local_grouping import ApplyThroughSpill
from transforms.registry_source import AsRegistry, ReadRegistryOnce

_LOG = logging.getLogger("pipeline.backfill")
LOCAL_BATCH_RUNNERS = {"FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"}
# A backfill remembers every id it applied, so running it again over the same archive is a no-op whatever
# the archive's time span (streaming's 24 hours would let an older replayed message count twice).
BACKFILL_DUPLICATE_RETENTION = "3650d"


def key_resolved(resolved: Resolved) -> tuple[str, Resolved]:
    return resolved.message.key, resolved


def count_read(message):
    progress.add(progress.READ)
    return message


def to_line(dead_letter: DeadLetter) -> str:
    progress.add(progress.DEAD_LETTERS)
    return dead_letter_to_line(dead_letter).decode("utf-8")


def build(pipeline: beam.Pipeline, options: PipelineOptions) -> None:
    """Add the backfill's steps to ``pipeline`` (no I/O happens here)."""
    backfill = options.view_as(BackfillOptions)
    processing = options.view_as(ProcessingOptions)
    target = spanner_target(options)
    projects = AsRegistry(pipeline | "ReadProjects" >> ReadRegistryOnce(target), target)

    read = pipeline | "ReadArchive" >> ReadArchive(
        backfill.input,
        backfill.input_format,
        timestamp_attribute=options.view_as(StreamOptions).timestamp_attribute,
    )
    decoded = (
        read[MESSAGES]
        | "CountRead" >> beam.Map(count_read)
        | "DecodeMessages" >> DecodeMessages(parse_max_payload_bytes(processing.max_payload_bytes))
    )
    checked = decoded | "CheckProjects" >> CheckProjects(projects)
    config = applier_config(options, wait_for_events=False)
    if grouping(options) == "spill":
        applied = checked[MESSAGES] | "ApplyInKeyOrder" >> ApplyThroughSpill(
            config,
            projects,
            directory=backfill.spill_dir,
            shards=backfill.spill_shards,
            chunk_size=backfill.chunk_size,
        )
    else:
        grouped = (
            checked[MESSAGES]
            | "ResolveEventLookups" >> ResolveLookups(projects)
            | "KeyByGroup" >> beam.Map(key_resolved).with_output_types(tuple[str, Resolved])
            | "GroupByKey" >> beam.GroupByKey()
        )
        applied = grouped | "ApplyInKeyOrder" >> ApplyKeyHistories(
            config, projects, chunk_size=backfill.chunk_size
        )
    (
        (read[DEAD_LETTER], checked[DEAD_LETTER], applied[DEAD_LETTER])
        | "CollectDeadLetters" >> beam.Flatten()
        | "ToArchiveLines" >> beam.Map(to_line)
        | "WriteDeadLetters"
        >> beam.io.WriteToText(
            backfill.dead_letter_path.rstrip("/") + "/dead-letters", file_name_suffix=".jsonl", num_shards=1
        )
    )


def grouping(options: PipelineOptions) -> str:
    """``spill`` on local runners (bounded memory), ``shuffle`` elsewhere, unless the user chose."""
    chosen = options.view_as(BackfillOptions).grouping
    if chosen != "auto":
        return chosen
    return "spill" if options.view_as(StandardOptions).runner in LOCAL_BATCH_RUNNERS else "shuffle"


def make_options(argv: Sequence[str]) -> PipelineOptions:
    args = list(argv)
    if not any(arg.startswith("--duplicate_retention") for arg in args):
        args.append(f"--duplicate_retention={BACKFILL_DUPLICATE_RETENTION}")
    options = PipelineOptions(args)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "FnApiRunner"
    backfill = options.view_as(BackfillOptions)
    missing = [
        flag
        for flag, value in (("--input", backfill.input), ("--dead_letter_path", backfill.dead_letter_path))
        if not value
    ]
    if missing:
        raise SystemExit(f"pipeline.backfill: {' and '.join(missing)} required")
    processing = options.view_as(ProcessingOptions)
    parse_duration(processing.duplicate_retention)
    try:
        parse_max_payload_bytes(processing.max_payload_bytes)
    except ValueError as error:
        raise SystemExit(f"pipeline.backfill: --max_payload_bytes: {error}") from None
    return options


def _progress_line(started: float, last: dict[str, float]) -> str:
    totals = progress.snapshot()
    now = time.monotonic()
    applied = totals.get(progress.APPLIED, 0)
    rate = (applied - last.get("applied", 0)) / max(now - last.get("time", started), 1e-9)
    last.update(applied=applied, time=now)
    return (
        f"[{now - started:6.0f}s] read {totals.get(progress.READ, 0):,}  applied {applied:,}  "
        f"dead letters {totals.get(progress.DEAD_LETTERS, 0):,}  groups created "
        f"{totals.get(metrics.GROUP_CREATED, 0):,}  ({rate:,.0f} msg/s)"
    )


SUMMARY_ROWS = (
    ("groups created", metrics.GROUP_CREATED),
    ("groups updated", metrics.GROUP_UPDATES),
    ("groups deleted", metrics.GROUPS_DELETED),
    ("occurrences attached", metrics.OCCURRENCES_ATTACHED),
    ("occurrences", metrics.OCCURRENCE_MESSAGES),
    ("status changes", metrics.STATUS_CHANGE_MESSAGES),
    ("noise-suppressed", metrics.DROPPED_NOISE),
    ("over creation quota", metrics.DROPPED_RATE_LIMITING),
    ("feature disabled", metrics.DROPPED_FEATURE_DISABLED),
    ("category mismatch", metrics.CATEGORY_MISMATCH),
    ("status changes pruned", metrics.DROPPED_STATUS_CHANGES),
    ("status changes stale", metrics.STATUS_CHANGE_STALE),
    ("status changes held", metrics.STATUS_CHANGE_PENDING),
    ("status changes for no group", metrics.STATUS_CHANGE_GROUP_NOT_FOUND),
    ("status changes with no effect", metrics.STATUS_CHANGE_NO_EFFECT),
    ("regressions", metrics.REGRESSIONS),
    ("duplicates", metrics.DUPLICATES),
    ("late messages", metrics.LATE_MESSAGES),
    ("creation quota failed open", metrics.QUOTA_FAIL_OPEN),
    ("spanner commits", metrics.SPANNER_COMMITS),
    ("spanner rows written", metrics.SPANNER_ROWS),
    ("spanner mutations", metrics.SPANNER_MUTATIONS),
)


PEAK_MEMORY_LABEL = "peak memory MiB (this process)"


def summary_table(totals: dict[str, int], elapsed: float) -> str:
    rows = [(label, totals.get(name, 0)) for label, name in SUMMARY_ROWS]
    dead = sorted(
        (k[len(metrics.DEAD_LETTER_PREFIX) :], v)
        for k, v in totals.items()
        if k.startswith(metrics.DEAD_LETTER_PREFIX) and v
    )
    rows += [(f"dead letters: {reason}", value) for reason, value in dead]
    rows.append(("elapsed seconds", round(elapsed)))
    rows.append((PEAK_MEMORY_LABEL, progress.peak_memory() >> 20))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value:>12,}" for label, value in rows)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    options = make_options(sys.argv[1:] if argv is None else argv)
    progress.reset()
    started = time.monotonic()
    stop = threading.Event()
    last: dict[str, float] = {}

    def report() -> None:
        while not stop.wait(10.0):
            print(_progress_line(started, last), flush=True)

    threading.Thread(target=report, daemon=True).start()
    temporary_spill = grouping(options) == "spill" and not options.view_as(BackfillOptions).spill_dir
    if temporary_spill:
        options.view_as(BackfillOptions).spill_dir = tempfile.mkdtemp(prefix="occurrence-backfill-")
    pipeline = beam.Pipeline(options=options)
    build(pipeline, options)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    finally:
        stop.set()
        if temporary_spill:
            shutil.rmtree(options.view_as(BackfillOptions).spill_dir, ignore_errors=True)
    print(_progress_line(started, last), flush=True)
    print("backfill done:")
    print(summary_table(counter_totals(result), time.monotonic() - started), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
