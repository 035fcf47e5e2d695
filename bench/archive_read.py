"""Archive reading throughput: records per second of ``ReadArchive`` for each format, on the FnApiRunner.

Usage::

    python -m bench.archive_read                        # 200,000 messages, every format
    python -m bench.archive_read --messages 1000000 --files 10 --formats avro-deflate,jsonl.gz
    python -m bench.archive_read --baseline             # also Beam's ReadFromAvro / ReadFromText alone

Archives are generated once into ``--dir`` (reused when present) with the
backfill workload's shape. Each run is one pipeline: read the files, count
messages and dead letters. The time is the whole pipeline run (start-up
included), so small inputs understate the rate; the figures printed are
messages read per second and the part of the time spent outside reading
(an empty pipeline's start-up, measured first).
"""

from __future__ import annotations

import argparse
import os
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.archive_writer import ArchiveWriter
from pipeline.workload import Workload, backfill_config
from transforms.archive_io import ReadArchive

FORMATS = {
    "avro": ("archive.avro", "null"),
    "avro-deflate": ("archive.avro", "deflate"),
    "jsonl": ("archive.jsonl", "null"),
    "jsonl.gz": ("archive.jsonl.gz", "null"),
}


def _options(args: argparse.Namespace) -> PipelineOptions:
    flags = [f"--runner={args.runner}"]
    if args.workers > 1:
        flags += ["--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"]
    return PipelineOptions(flags)


def _ensure_archive(directory: str, name: str, codec: str, args: argparse.Namespace) -> str:
    folder = os.path.join(directory, f"{args.messages}-{args.files}-{codec}")
    stem, _, extension = name.partition(".")
    output = os.path.join(folder, name)
    per_file = -(-args.messages // args.files)
    pattern = os.path.join(folder, f"{stem}-*.{extension}")
    marker = os.path.join(folder, f".{name}.done")
    if not os.path.exists(marker):
        started = time.perf_counter()
        workload = Workload(backfill_config(messages=args.messages, keys=max(2, args.messages // 20)))
        with ArchiveWriter(output, max_records_per_file=per_file, codec=codec) as writer:
            writer.write_all(workload)
        open(marker, "w").close()
        size = sum(os.path.getsize(p) for p in writer.paths)
        print(
            f"  wrote {writer.records:,} messages to {len(writer.paths)} {name} files "
            f"({size / 1e6:,.0f} MB) in {time.perf_counter() - started:.1f}s"
        )
    return pattern


def _count(pattern: str, args: argparse.Namespace, make_read: object) -> tuple[float, int, int]:
    """Runs read → count; returns (seconds, messages, dead letters)."""
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=_options(args))
    outputs = make_read(pipeline)  # type: ignore[operator]
    if isinstance(outputs, beam.pvalue.DoOutputsTuple):
        counted = [("messages", outputs.messages), ("dead_letters", outputs.dead_letter)]
    else:
        counted = [("messages", outputs)]
    for name, pcoll in counted:
        _ = pcoll | f"Count {name}" >> beam.ParDo(_CountFn(name))
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - started
    totals = {
        item.key.metric.name: item.committed
        for item in result.metrics().query(MetricsFilter().with_namespace("bench"))["counters"]
    }
    return seconds, totals.get("messages", 0), totals.get("dead_letters", 0)


class _CountFn(beam.DoFn):
    def __init__(self, name: str) -> None:
        self._counter = Metrics.counter("bench", name)

    def process(self, element: object):  # no "-> None": Beam 2.78 reads it as a type hint and refuses it
        self._counter.inc()


def _beam_reader(name: str, pattern: str) -> object:
    """Beam's own reader of the format, without parsing: the floor of what reading can cost."""

    def read(pipeline: beam.Pipeline) -> beam.PCollection:
        if name.startswith("avro"):
            return pipeline | beam.io.ReadFromAvro(pattern)
        return pipeline | beam.io.ReadFromText(pattern, coder=beam.coders.BytesCoder())

    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated: {', '.join(FORMATS)}")
    parser.add_argument("--dir", default="/tmp/occurrence-pipeline-bench/archives")
    parser.add_argument("--runner", default="FnApiRunner", help="FnApiRunner or BundleBasedDirectRunner")
    parser.add_argument("--workers", type=int, default=1, help="FnApiRunner workers (1: in process)")
    parser.add_argument("--baseline", action="store_true", help="also time Beam's ReadFromAvro/ReadFromText")
    args = parser.parse_args()

    startup, _, _ = _count("", args, lambda p: p | beam.Create([1]))
    print(f"empty pipeline start-up: {startup:.1f}s")
    for name in args.formats.split(","):
        file_name, codec = FORMATS[name]
        pattern = _ensure_archive(args.dir, file_name, codec, args)
        seconds, messages, dead = _count(pattern, args, lambda p, pattern=pattern: p | ReadArchive(pattern))
        print(
            f"{name:13s} ReadArchive: {messages:,} messages + {dead:,} dead letters in {seconds:.1f}s = "
            f"{messages / seconds:,.0f} msg/s ({messages / max(seconds - startup, 1e-9):,.0f}/s after start-up)"
        )
        if args.baseline:
            label = "ReadFromAvro" if name.startswith("avro") else "ReadFromText"
            read = _beam_reader(name, pattern)
            seconds, records, _ = _count(pattern, args, read)
            print(
                f"{name:13s} {label} alone: {records:,} records in {seconds:.1f}s = {records / seconds:,.0f}/s"
            )


if __name__ == "__main__":
    main()
