"""Pipeline options, one class per concern, with defaults that run against the local stack.

Every flag here works with every runner; Beam's own flags (``--runner``, ``--project``, ``--region``,
``--temp_location``, ``--setup_file`` ...) are accepted alongside.
"""

from __future__ import annotations

import re

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.core import durations
from transforms.storage import clients


def parse_duration(text: str | float | int) -> float:
    """``"24h"``, ``"10m"``, ``"2s"``, ``"500ms"`` or a number of seconds -> seconds (``durations.OPTION``)."""
    if isinstance(text, int | float):
        return float(text)
    try:
        return float(durations.parse(text, durations.OPTION))
    except durations.DurationError:
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit, e.g. 500ms, 2s, 10m, 24h, 7d"
        ) from None


def parse_size(text: str | int) -> int:
    """``"1MiB"``, ``"512KiB"``, ``"1000000"`` -> bytes."""
    if isinstance(text, int):
        return text
    match = re.match(r"^\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*$", text)
    if not match:
        raise ValueError(f"invalid size {text!r}: use bytes or KiB/MiB/GiB, e.g. 1MiB")
    return (
        int(match.group(1)) * {"B": 1, None: 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[match.group(2)]
    )


def parse_max_payload_bytes(text: str | int) -> int:
    """``--max_payload_bytes`` in bytes; ``ValueError`` when it is not a size or more than the pipeline can carry."""
    from transforms.core.decode import check_max_bytes

    size = parse_size(text)
    check_max_bytes(size)
    return size


def spanner_args(project: str, instance: str, database: str) -> list[str]:
    """The flags (``SpannerOptions``) that point a pipeline or a tool at one Spanner database."""
    return [
        f"--spanner_project={project}",
        f"--spanner_instance={instance}",
        f"--spanner_database={database}",
    ]


class SpannerOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--spanner_project",
            default=clients.LOCAL_SPANNER_PROJECT,
            help="Google Cloud project of the Spanner instance (any name on the emulator).",
        )
        parser.add_argument(
            "--spanner_instance", default=clients.LOCAL_SPANNER_INSTANCE, help="Spanner instance id."
        )
        parser.add_argument(
            "--spanner_database", default=clients.LOCAL_SPANNER_DATABASE, help="Spanner database id."
        )
        parser.add_argument(
            "--max_commit_mutations",
            type=int,
            default=40_000,
            help="Upper bound of mutations (index cells included) per Spanner commit; Spanner refuses > 80,000.",
        )


class QuotaOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--redis_url",
            default="redis://localhost:6379/0",
            help="Redis holding the creation quotas shared by all workers (redis://host:port/db).",
        )
        parser.add_argument(
            "--no_creation_quota",
            action="store_true",
            default=False,
            help="Turn the creation quota off: every group that passes the noise gate is created.",
        )
        parser.add_argument(
            "--quota_key_prefix",
            default="occurrence-pipeline",
            help="Prefix of the Redis keys of the quota windows (to share one Redis between deployments).",
        )


class ProcessingOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--duplicate_retention",
            default="24h",
            help="How long (in message time) a key remembers the ids it applied; a redelivery within it is a no-op.",
        )
        parser.add_argument(
            "--pending_status_window",
            default="1h",
            help="How long (in message time) a status change for a key without a group waits for the group.",
        )
        parser.add_argument(
            "--lookup_retry_window",
            default="10m",
            help="How long (processing time) an occurrence whose event is not stored yet waits for it.",
        )
        parser.add_argument(
            "--max_payload_bytes",
            default="1MiB",
            help="Messages larger than this (their bytes as published or archived) are dead-lettered as "
            "oversized; at most 2.5MiB, the most a Spanner STRING(MAX) value holds (docs/limits.md).",
        )


class StreamOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--input_subscription",
            help="Pub/Sub subscription to read: projects/P/subscriptions/S (preferred: no message is lost "
            "while the pipeline is down).",
        )
        parser.add_argument("--input_topic", help="Pub/Sub topic to read through a temporary subscription.")
        parser.add_argument(
            "--timestamp_attribute",
            default=None,
            help="Message attribute holding the message time (RFC 3339 or epoch millis); default: publish time "
            "(the backfill reads it too: default, the archive's publish time). A value that cannot be read makes "
            "its message a dead letter (invalid_field, stage read).",
        )
        parser.add_argument(
            "--dead_letter_topic",
            default=None,
            help="Pub/Sub topic for dead letters (projects/P/topics/T); each keeps its bytes and attributes plus "
            "dead_letter_reason/error/stage, so republishing it to the input replays it.",
        )
        parser.add_argument(
            "--watermark_delay",
            default="2s",
            help="A key's messages are applied once the watermark is this far past them.",
        )
        parser.add_argument(
            "--processing_hold",
            default="2s",
            help="...and at least this long (processing time) after the first of them arrived, so a burst is "
            "sorted into message-time order before it is applied.",
        )
        parser.add_argument(
            "--state_idle_timeout",
            default="2m",
            help="A key idle this long (processing time) gives its Beam state back; it lives on in Spanner and is "
            "read again if the key comes back. Shorter saves worker memory, longer saves Spanner reads.",
        )
        parser.add_argument(
            "--state_save_delay",
            default="5m",
            help="How long after a flush the state of a key that has no group may go unsaved in Spanner (its "
            "KeyStates row); it is saved earlier when the key goes idle, gets a group or the pipeline stops "
            "(local) or is drained (Dataflow). 0 saves it with every flush. Longer writes fewer rows; what a "
            "crashed local run loses grows with it.",
        )
        parser.add_argument(
            "--lookup_retry_interval",
            default="5s",
            help="How often (processing time) an occurrence waiting for its event looks for it again, within "
            "--lookup_retry_window.",
        )
        parser.add_argument(
            "--projects_refresh",
            default="60s",
            help="How often the project registry (Spanner) is re-read; new projects take effect after that.",
        )
        parser.add_argument(
            "--pubsub_pull_max",
            type=int,
            default=2000,
            help=(
                "DirectRunner only: messages per Pub/Sub read (Beam's local reader pulls 10 and waits 30 s; "
                "the emulator returns at most 100 a pull, so over a backlog full pulls are followed by more)."
            ),
        )
        parser.add_argument(
            "--pubsub_pull_max_bytes",
            default="32MiB",
            help=(
                "DirectRunner only: about how many bytes of messages one Pub/Sub read holds: a backlog of large "
                "messages is read in fewer messages at a time (the read that crosses it stops there)."
            ),
        )
        parser.add_argument(
            "--graph",
            choices=("auto", "local", "dataflow"),
            default="auto",
            help="Which graph of the job to build: 'dataflow' (the steps Dataflow runs), 'local' (the local "
            "runner's faster form: see the README), or 'auto' (local on the local runner, dataflow elsewhere).",
        )
        parser.add_argument(
            "--no_local_runner_patches",
            action="store_true",
            default=False,
            help="Local runner only: run Beam's local runner as it is, without the patches of "
            "pipeline/local_runner/ (much slower; a stop cannot halt Beam's reader, see the README).",
        )
        parser.add_argument(
            "--progress_interval",
            default="10s",
            help="How often a local run logs its throughput and lag.",
        )
        parser.add_argument(
            "--exit_when_idle",
            default=None,
            help="Local runs only: stop once nothing was read or applied for this long (e.g. 15s), counted from "
            "the start, and log the counters; by default a local run streams until Ctrl-C or SIGTERM.",
        )
        parser.add_argument(
            "--drain_timeout",
            default="60s",
            help="Local runs only: when stopped (Ctrl-C, SIGTERM, --exit_when_idle), how long the pipeline may "
            "take to apply and commit what its key buffers hold before it exits anyway (what is left then is "
            "lost). A second Ctrl-C or SIGTERM stops it at once.",
        )


class BackfillOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--input", help="Archive glob: local paths or gs://, e.g. 'gs://bucket/archive/*.avro'."
        )
        parser.add_argument(
            "--input_format",
            choices=("avro", "jsonl"),
            default=None,
            help="Archive format; default: from the pattern's extension, else from each file's extension (.avro, "
            ".jsonl/.ndjson/.json, optionally .gz), else from its first bytes (Avro's or gzip's magic, else JSON).",
        )
        parser.add_argument(
            "--dead_letter_path",
            help="Folder (local or gs://) for dead-letter files; each line is a replayable archive envelope.",
        )
        parser.add_argument(
            "--grouping",
            choices=("auto", "shuffle", "spill"),
            default="auto",
            help="How key histories are grouped: 'shuffle' (Beam's GroupByKey; what Dataflow uses), 'spill' "
            "(through files on local disk: bounded memory on a local runner), or 'auto' (spill on local runners).",
        )
        parser.add_argument(
            "--spill_dir",
            default=None,
            help="Where the local grouping writes its spill files (default: a temporary folder, removed after).",
        )
        parser.add_argument(
            "--spill_shards",
            type=int,
            default=32,
            help="Spill files per bundle; a shard's records are held in memory while it is applied.",
        )
        parser.add_argument(
            "--chunk_size",
            type=int,
            default=5000,
            help="A key's messages are applied in ordered chunks of at most this many (bounds memory on hot keys).",
        )
