"""The archive tool: write message archives from the workload generator or from a Pub/Sub subscription.

Usage::

    # 1,000,000 generated messages as Pub/Sub Avro files of 100,000 records each
    python -m pipeline.archive generate --preset backfill --output /tmp/bf/archive.avro \\
        --codec deflate --max-records-per-file 100000

    # NDJSON envelopes, gzipped; or raw payload lines
    python -m pipeline.archive generate --messages 5000 --output /tmp/a/messages.jsonl.gz
    python -m pipeline.archive generate --messages 5000 --output /tmp/a/payloads.jsonl --raw

    # everything on a subscription (emulator: PUBSUB_EMULATOR_HOST), acknowledged file by file
    python -m pipeline.archive pull --subscription occurrences-archive --output /tmp/a/pulled.avro \\
        --idle-timeout 10

The format follows from the output's extension (``.avro``, ``.jsonl``,
``.ndjson``, ``.json``, any of them ``.gz``) or ``--format``. Read archives
back with ``transforms.archive_io.ReadArchive`` (the backfill's source).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from pipeline.archive_writer import DEFAULT_SUBSCRIPTION, ArchiveWriteError, ArchiveWriter
from pipeline.publishing import (
    PubSubSetupError,
    default_project,
    print_progress,
    pull_to_archive,
    subscription_path,
)
from pipeline.workload import Workload
from pipeline.workload_options import add_workload_arguments, workload_config


def add_output_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_argument_group("archive output")
    group.add_argument(
        "--output",
        required=required,
        help="the archive file (local or gs://): *.avro, *.jsonl, *.ndjson, *.json, optionally *.gz",
    )
    group.add_argument(
        "--format",
        dest="output_format",
        choices=("avro", "ndjson", "ndjson.gz"),
        help="the format, when the extension does not say it",
    )
    group.add_argument(
        "--max-records-per-file",
        "--max_records_per_file",
        dest="max_records_per_file",
        type=int,
        help="split into files of at most N records: NAME-00000.EXT, NAME-00001.EXT...",
    )
    group.add_argument(
        "--raw",
        action="store_true",
        help="NDJSON only: one payload per line, without envelope (message ids, times and attributes "
        "are not kept; a status change keeps its time as `timestamp`)",
    )
    group.add_argument(
        "--codec", default="null", help="Avro only: block codec, e.g. deflate (snappy needs cramjam)"
    )
    group.add_argument(
        "--subscription-name",
        "--subscription_name",
        dest="subscription_name",
        default=None,
        help=f"Avro only: the subscription_name field (default {DEFAULT_SUBSCRIPTION}, or the pulled one)",
    )


def make_writer(args: argparse.Namespace, subscription_name: str | None = None) -> ArchiveWriter:
    return ArchiveWriter(
        args.output,
        args.output_format,
        max_records_per_file=args.max_records_per_file,
        raw=args.raw,
        codec=args.codec,
        subscription_name=args.subscription_name or subscription_name or DEFAULT_SUBSCRIPTION,
    )


def write_generated(args: argparse.Namespace) -> int:
    """Writes the generated workload to the archive ``args`` describe; prints a one-line report."""
    config = workload_config(args, timestamp_attribute=getattr(args, "timestamp_attribute", None))
    workload = Workload(config)
    started = time.perf_counter()
    with make_writer(args) as writer:
        writer.write_all(workload)
    seconds = time.perf_counter() - started
    skipped = f", {writer.skipped:,} skipped (not JSON, no raw line)" if writer.skipped else ""
    print(
        f"wrote {writer.records:,} messages to {len(writer.paths)} file(s) in {seconds:.1f}s "
        f"({writer.records / seconds:,.0f}/s){skipped}: {_paths(writer.paths)}",
        file=sys.stderr,
    )
    write_summary(getattr(args, "summary", None), workload)
    return 0


def _paths(paths: list[str]) -> str:
    return ", ".join(paths) if len(paths) <= 3 else f"{paths[0]} ... {paths[-1]}"


def write_summary(target: str | None, workload: Workload) -> None:
    """Writes the workload's summary as JSON to ``target`` (a file, or ``-`` for stdout); nothing if None."""
    if not target:
        return
    text = json.dumps(workload.summary().to_dict(), indent=2)
    if target == "-":
        print(text)
    else:
        with open(target, "w") as out:
            out.write(text + "\n")


def _pull(args: argparse.Namespace) -> int:
    subscription = subscription_path(args.pubsub_project, args.subscription)
    writer = make_writer(args, subscription_name=subscription)
    stats = pull_to_archive(
        subscription,
        writer,
        max_messages=args.max_messages,
        idle_timeout=args.idle_timeout,
        batch_size=args.batch_size,
        progress=print_progress("pulled"),
    )
    print(
        f"pulled {stats.written:,} messages ({stats.redelivered:,} redeliveries dropped) into "
        f"{len(stats.files)} file(s) in {stats.seconds:.1f}s, acknowledged {stats.acknowledged:,}: "
        f"{_paths(stats.files)}",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.archive", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a generated workload to an archive")
    add_workload_arguments(generate)
    add_output_arguments(generate)
    generate.add_argument(
        "--timestamp_attribute",
        "--timestamp-attribute",
        dest="timestamp_attribute",
        help="also carry each message's time in this attribute (RFC 3339)",
    )
    generate.add_argument("--summary", help="write the workload summary as JSON to this file (- for stdout)")

    pull = commands.add_parser("pull", help="pull a Pub/Sub subscription into an archive")
    pull.add_argument("--subscription", required=True, help="subscription name or projects/P/subscriptions/S")
    pull.add_argument(
        "--pubsub_project",
        "--pubsub-project",
        dest="pubsub_project",
        default=default_project(),
        help="project of the subscription (default $PUBSUB_PROJECT_ID, $GOOGLE_CLOUD_PROJECT or local-project)",
    )
    pull.add_argument(
        "--max-messages", "--max_messages", dest="max_messages", type=int, help="stop after N messages"
    )
    pull.add_argument(
        "--idle-timeout",
        "--idle_timeout",
        dest="idle_timeout",
        type=float,
        default=10.0,
        help="stop when no message arrived for this many seconds (default 10)",
    )
    pull.add_argument(
        "--batch-size", "--batch_size", dest="batch_size", type=int, default=1000, help="messages per pull"
    )
    add_output_arguments(pull)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "generate":
            return write_generated(args)
        return _pull(args)
    except (ArchiveWriteError, PubSubSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
