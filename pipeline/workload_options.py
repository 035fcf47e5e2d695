"""Command-line options of the workload generator, shared by ``pipeline.generate`` and ``pipeline.archive``.

Every option has a dashed and an underscored spelling (``--hot-key-share`` or
``--hot_key_share``). ``--preset stream`` / ``--preset backfill`` start from
the benchmark workloads; options given explicitly override the preset.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

from pipeline.workload import ENCODINGS, WorkloadConfig, backfill_config, stream_config
from transforms.core import durations
from transforms.core.model import from_datetime

PRESETS = {"default": WorkloadConfig, "stream": stream_config, "backfill": backfill_config}


def parse_duration(text: str) -> int:
    """``90`` (seconds), ``45s``, ``30m``, ``6h``, ``2d`` or combinations (``1h30m``) → microseconds.

    The grammar is ``durations.WORKLOAD``; the duration must be positive, and is kept in whole milliseconds.
    """
    try:
        seconds = durations.parse(text, durations.WORKLOAD)
    except durations.DurationError:
        seconds = math.nan
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"the duration must be positive, got {text!r}")
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use seconds (3600) or units d, h, m, s (6h, 1h30m, 45s)"
        )
    return round(seconds * 1000) * 1000  # whole milliseconds


def parse_start(text: str) -> int:
    """``now`` (the current time, to the millisecond) or an RFC 3339 time (no offset means UTC) → microseconds."""
    if text.strip().lower() == "now":
        return int(datetime.now(tz=UTC).timestamp() * 1000) * 1000
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use now or RFC 3339, e.g. 2026-05-28T00:00:00Z"
        ) from None
    return from_datetime(moment) // 1000 * 1000  # message times are whole milliseconds


def _ids(text: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of project ids") from None
    if not ids:
        raise argparse.ArgumentTypeError("give at least one project id")
    return ids


def _type_weights(text: str) -> tuple[tuple[int, float], ...]:
    weights = []
    for part in text.split(","):
        if not part.strip():
            continue
        type_id, sep, weight = part.partition("=")
        try:
            weights.append((int(type_id), float(weight) if sep else 1.0))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not TYPE=WEIGHT (e.g. --types 1=0.5,1018=0.3,4001=0.2)"
            ) from None
    return tuple(weights)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1")
    return value


def _add(group: Any, name: str, **kwargs: Any) -> None:
    spellings = [f"--{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    group.add_argument(*spellings, dest=name, default=None, **kwargs)


# The shares of the message mix, in the order --help lists them, with what each is a share of.
_MIX_SHARES = (
    ("protobuf_share", "with --encoding mixed: share in protobuf"),
    ("invalid_share", "share of invalid messages, every reason"),
    ("status_change_share", "share of status changes"),
    ("lookup_share", "share of occurrences without event"),
    ("buffered_spans_share", "share of buffered-spans occurrences"),
    ("redelivery_share", "share of exact redeliveries"),
    ("republish_share", "share of re-published occurrences"),
    ("unknown_project_share", "share of unregistered projects"),
)


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the generator's options; ``workload_config`` turns the parsed arguments into a config."""
    group = parser.add_argument_group("workload (what is generated)")
    group.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="start from a benchmark workload: stream (200,000 messages, 20,000 keys, 5%% hot key) or "
        "backfill (1,000,000 messages, 50,000 keys, 10%% hot key, 48h); default: 10,000 messages, 1,000 keys",
    )
    _add(group, "messages", type=int, help="how many messages to generate")
    _add(group, "keys", type=int, help="how many group keys (project, fingerprint)")
    _add(group, "hot_key_share", type=_share, help="share of all messages on the hot key (default 0.05)")
    _add(
        group,
        "projects",
        type=_ids,
        help="registered project ids, comma-separated (default 1,2,3: the local stack's sample projects)",
    )
    _add(group, "unknown_projects", type=_ids, help="unregistered project ids to use (default 404,9999)")
    _add(group, "seed", type=int, help="the random seed: the same seed gives the same messages (default 0)")
    _add(
        group,
        "start",
        type=parse_start,
        help="message time of the start: RFC 3339 or now (default 2026-05-28)",
    )
    _add(group, "duration", type=parse_duration, help="time span of the messages, e.g. 6h, 90m (default 6h)")
    _add(group, "encoding", choices=ENCODINGS, help="payload encoding (default json)")
    defaults = WorkloadConfig()
    for name, what in _MIX_SHARES:
        _add(group, name, type=_share, help=f"{what} (default {getattr(defaults, name)})")
    group.add_argument(
        "--types",
        "--type-weights",
        "--type_weights",
        dest="type_weights",
        type=_type_weights,
        default=None,
        help="group type mix as TYPE=WEIGHT,... (default 1=0.38,1006=0.14,1001=0.08,1018=0.1,4001=0.12,"
        "6001=0.12,2001=0.03,5002=0.03)",
    )
    group.add_argument(
        "--no-noise",
        "--no_noise",
        dest="noise",
        action="store_false",
        default=None,
        help="leave out the group types with a noise gate (every key creates its group at once)",
    )
    _add(group, "zipf_exponent", type=float, help="skew of key popularity (default 0.8)")
    _add(group, "burst_share", type=_share, help="share of minutes with a burst (default 0.04)")
    _add(
        group, "shuffle_window", type=int, help="shuffle the output within windows of N messages (default 0)"
    )
    _add(
        group,
        "missing_content_type_share",
        type=_share,
        help="share of JSON messages without a content_type attribute (default 0.1)",
    )
    _add(group, "id_prefix", help="prefix of the message ids (to merge several workloads)")


def workload_config(args: argparse.Namespace, **overrides: Any) -> WorkloadConfig:
    """The config the parsed arguments ask for: the preset, then every option given, then ``overrides``."""
    base = PRESETS[getattr(args, "preset", "default")]()
    given = {
        f.name: getattr(args, f.name)
        for f in fields(WorkloadConfig)
        if getattr(args, f.name, None) is not None
    }
    given.update(overrides)
    try:
        return replace(base, **given)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
