"""Workload generation throughput, archive writing throughput, and (optionally) publishing to Pub/Sub.

Usage::

    python -m bench.generate                          # the stream and backfill workloads, JSON
    python -m bench.generate --encodings json,protobuf,mixed --presets stream
    python -m bench.generate --write --presets stream  # also write each archive format
    PUBSUB_EMULATOR_HOST=localhost:8085 python -m bench.generate --publish --presets stream

Prints messages per second of wall time and of this process's CPU time (the machine may be shared: the CPU
figure is what one core does).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from pipeline.archive_writer import ArchiveWriter
from pipeline.publishing import default_project, ensure_topic, make_publisher, publish, topic_path
from pipeline.workload import Workload, backfill_config, stream_config

PRESETS = {"stream": stream_config, "backfill": backfill_config}
ARCHIVES = (
    ("archive.avro", "null"),
    ("archive.avro", "deflate"),
    ("archive.jsonl", "null"),
    ("archive.jsonl.gz", "null"),
)


def _timed(work, *args) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _count(workload: Workload) -> int:
    return sum(1 for _ in workload)


def _publish(workload: Workload, topic: str, publisher: object) -> object:
    return publish(workload, topic, publisher=publisher)


def _write(workload: Workload, path: str, codec: str) -> None:
    with ArchiveWriter(path, codec=codec) as writer:
        writer.write_all(workload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="stream,backfill")
    parser.add_argument("--encodings", default="json")
    parser.add_argument("--messages", type=int, help="override the presets' message count")
    parser.add_argument("--write", action="store_true", help="also write every archive format")
    parser.add_argument(
        "--publish", action="store_true", help="also publish to Pub/Sub (PUBSUB_EMULATOR_HOST)"
    )
    args = parser.parse_args()

    for preset in args.presets.split(","):
        for encoding in args.encodings.split(","):
            overrides = {"encoding": encoding}
            if args.messages:
                overrides["messages"] = args.messages
            config = PRESETS[preset](**overrides)
            workload = Workload(config)
            wall, cpu, count = _timed(_count, workload)
            size = sum(len(m.data) for m in workload) / count
            print(
                f"{preset:8s} {encoding:8s} generate: {count:,} messages ({size:,.0f} B average) in {wall:.1f}s = "
                f"{count / wall:,.0f}/s wall, {count / cpu:,.0f}/s CPU"
            )
            if args.write:
                with tempfile.TemporaryDirectory() as folder:
                    for name, codec in ARCHIVES:
                        path = os.path.join(folder, codec, name)
                        wall, cpu, _ = _timed(_write, workload, path, codec)
                        megabytes = os.path.getsize(path) / 1e6
                        label = f"{name} ({codec})" if codec != "null" else name
                        print(
                            f"{'':17s} write {label:24s}: {megabytes:,.0f} MB in {wall:.1f}s = "
                            f"{count / wall:,.0f}/s wall, {count / cpu:,.0f}/s CPU (generation included)"
                        )
            if args.publish:
                publisher = make_publisher()
                topic = topic_path(default_project(), f"bench-{uuid.uuid4().hex[:8]}")
                ensure_topic(publisher, topic)
                wall, cpu, stats = _timed(_publish, workload, topic, publisher)
                print(
                    f"{'':17s} publish: {stats.published:,} messages ({stats.bytes / 1e6:,.0f} MB) in {wall:.1f}s = "
                    f"{stats.published / wall:,.0f}/s wall, {stats.published / cpu:,.0f}/s CPU; {stats.failed} failed"
                )
                publisher.delete_topic(request={"topic": topic})


if __name__ == "__main__":
    main()
