"""The workload generator's command line: publish generated messages to Pub/Sub, or write an archive.

Usage::

    # the streaming benchmark's workload, to the emulator, with the generator's times in an attribute
    export PUBSUB_EMULATOR_HOST=localhost:8085
    python -m pipeline.generate --preset stream --topic occurrences --create-topic \\
        --timestamp_attribute event_time

    # a small workload as an archive (same options as `python -m pipeline.archive generate`)
    python -m pipeline.generate --messages 20000 --output /tmp/w/archive.jsonl.gz

    # what would be generated, without sending it anywhere
    python -m pipeline.generate --preset stream --summary -

Pub/Sub gives each published message its own id and publish time. A pipeline
that should see the generator's times reads with the same timestamp
attribute (``python -m pipeline.stream --timestamp_attribute event_time``); the
attribute holds RFC 3339 with microsecond precision.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pipeline.archive import add_output_arguments, write_generated, write_summary
from pipeline.archive_writer import ArchiveWriteError
from pipeline.publishing import (
    PubSubSetupError,
    default_project,
    ensure_topic,
    make_publisher,
    print_progress,
    publish,
    topic_path,
)
from pipeline.workload import Workload
from pipeline.workload_options import add_workload_arguments, workload_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.generate", description=__doc__.split("\n")[0])
    add_workload_arguments(parser)
    target = parser.add_argument_group("Pub/Sub output")
    target.add_argument("--topic", help="publish to this topic (name, or projects/P/topics/T)")
    target.add_argument(
        "--pubsub_project",
        "--pubsub-project",
        dest="pubsub_project",
        default=default_project(),
        help="project of the topic (default $PUBSUB_PROJECT_ID, $GOOGLE_CLOUD_PROJECT or local-project)",
    )
    target.add_argument(
        "--create-topic",
        "--create_topic",
        dest="create_topic",
        action="store_true",
        help="create the topic if missing",
    )
    target.add_argument(
        "--timestamp_attribute",
        "--timestamp-attribute",
        dest="timestamp_attribute",
        help="put each message's generated time in this attribute (RFC 3339, millisecond precision)",
    )
    target.add_argument("--rate", type=float, help="publish at most this many messages per second")
    add_output_arguments(parser, required=False)
    parser.add_argument("--summary", help="write the workload summary as JSON to this file (- for stdout)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.topic and args.output:
        parser.error("give --topic or --output, not both")
    try:
        if args.output:
            return write_generated(args)
        config = workload_config(args, timestamp_attribute=args.timestamp_attribute)
        workload = Workload(config)
        if not args.topic:
            if not args.summary:
                parser.error("give --topic (publish), --output (archive) or --summary (only describe)")
            started = time.perf_counter()
            count = sum(1 for _ in workload)
            seconds = time.perf_counter() - started
            print(
                f"generated {count:,} messages in {seconds:.1f}s ({count / seconds:,.0f}/s)", file=sys.stderr
            )
        else:
            topic = topic_path(args.pubsub_project, args.topic)
            publisher = make_publisher()
            if args.create_topic and ensure_topic(publisher, topic):
                print(f"created {topic}", file=sys.stderr)
            stats = publish(
                workload, topic, publisher=publisher, rate=args.rate, progress=print_progress("published")
            )
            print(
                f"published {stats.published:,} messages ({stats.bytes / 1e6:,.1f} MB) to {topic} in "
                f"{stats.seconds:.1f}s ({stats.rate:,.0f}/s); {stats.failed:,} failed",
                file=sys.stderr,
            )
            for error in stats.errors:
                print(f"  publish error: {error}", file=sys.stderr)
            if stats.failed:
                write_summary(args.summary, workload)
                return 1
        write_summary(args.summary, workload)
        return 0
    except (ArchiveWriteError, PubSubSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
