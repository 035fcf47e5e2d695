"""What a workload generates: ``WorkloadConfig``, its defaults, and the benchmarks' presets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import MICROS, from_datetime

JSON = "json"
PROTOBUF = "protobuf"
MIXED = "mixed"
ENCODINGS = (JSON, PROTOBUF, MIXED)

DEFAULT_START = from_datetime(datetime(2026, 5, 28, tzinfo=UTC))
DEFAULT_DURATION = 6 * 3600 * MICROS
DEFAULT_PROJECTS = (1, 2, 3)  # the projects the local stack's sample registration creates
DEFAULT_UNKNOWN_PROJECTS = (404, 9_999)
# Group type -> weight of keys of that type. 2001 is not released: its occurrences need a feature.
DEFAULT_TYPE_WEIGHTS: tuple[tuple[int, float], ...] = (
    (1, 0.38),  # error
    (1006, 0.14),  # N+1 query, noise gate of 3
    (1001, 0.08),  # slow DB query, noise gate of 100
    (1018, 0.10),  # p95 endpoint regression, no noise gate
    (4001, 0.12),  # crons
    (6001, 0.12),  # feedback
    (2001, 0.03),  # profile file I/O: unreleased
    (5002, 0.03),  # rage click
)
DEFAULT_OVERSIZED_BYTES = (1 << 20) + 4096  # just over the pipeline's default 1 MiB limit
RELEASE_INTERVAL = 45 * 60 * MICROS  # how often each project ships a release
ZIPF_OFFSET = 5
BURST_KEY_SHARE = 0.3  # share of a burst minute's occurrences that go to the burst's key


@dataclass(frozen=True)
class WorkloadConfig:
    """What to generate. Shares are fractions of all messages; the rest are ordinary occurrences.

    ``hot_key_share`` is the share of all messages that go to the hot key (the
    most popular key, an error in the first project). ``encoding`` is ``json``,
    ``protobuf`` or ``mixed`` (``protobuf_share`` of the messages in protobuf).
    Message times are whole milliseconds in ``[start, start + duration)``, so
    that a Pub/Sub timestamp attribute (millisecond precision on Dataflow)
    carries them exactly.
    """

    messages: int = 10_000
    keys: int = 1_000
    hot_key_share: float = 0.05
    projects: tuple[int, ...] = DEFAULT_PROJECTS
    unknown_projects: tuple[int, ...] = DEFAULT_UNKNOWN_PROJECTS
    seed: int = 0
    start: int = DEFAULT_START
    duration: int = DEFAULT_DURATION
    encoding: str = JSON
    protobuf_share: float = 0.5
    invalid_share: float = 0.01
    status_change_share: float = 0.03
    lookup_share: float = 0.05
    buffered_spans_share: float = 0.02
    redelivery_share: float = 0.005
    republish_share: float = 0.005
    unknown_project_share: float = 0.002
    type_weights: tuple[tuple[int, float], ...] = DEFAULT_TYPE_WEIGHTS
    noise: bool = True  # False: leave out every type with a noise config
    zipf_exponent: float = 0.8
    burst_share: float = 0.04  # share of minutes with a burst
    shuffle_window: int = 0  # > 1: shuffle the output within windows of this many messages
    timestamp_attribute: str | None = None  # also carry the message time in this attribute (RFC 3339)
    missing_content_type_share: float = 0.1  # JSON messages without a content_type attribute
    oversized_bytes: int = DEFAULT_OVERSIZED_BYTES
    id_prefix: str = ""  # prefix of message ids, to merge several workloads

    def __post_init__(self) -> None:
        problems = []
        if self.messages < 0:
            problems.append("messages must be >= 0")
        if self.keys < 2:
            problems.append("keys must be at least 2 (the hot key and one other)")
        if not self.projects:
            problems.append("at least one project is needed")
        if set(self.projects) & set(self.unknown_projects):
            problems.append("unknown_projects must not contain a registered project")
        if self.duration <= 0:
            problems.append("duration must be positive")
        if self.start % 1000 or self.duration % 1000:
            problems.append("start and duration must be whole milliseconds (message times are)")
        if self.encoding not in ENCODINGS:
            problems.append(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        for name in (
            "hot_key_share",
            "protobuf_share",
            "invalid_share",
            "status_change_share",
            "lookup_share",
            "buffered_spans_share",
            "redelivery_share",
            "republish_share",
            "unknown_project_share",
            "burst_share",
            "missing_content_type_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must be between 0 and 1, got {value}")
        special = (
            self.invalid_share
            + self.status_change_share
            + self.lookup_share
            + self.buffered_spans_share
            + self.redelivery_share
            + self.republish_share
            + self.unknown_project_share
        )
        if special > 0.9:
            problems.append(f"the shares of special messages add up to {special:.2f}; keep them under 0.9")
        if self.hot_key_share > 0.9:
            problems.append("hot_key_share must leave room for the other keys (at most 0.9)")
        weights = dict(self.type_weights)
        unknown_types = sorted(t for t in weights if t not in GROUP_TYPES)
        if unknown_types:
            problems.append(f"unknown group types in the type mix: {unknown_types}")
        if not any(w > 0 for t, w in self.type_weights if self.noise or noise_free(t)):
            problems.append(
                "the type mix has no type left (with --no-noise, include a type without noise gate)"
            )
        if problems:
            raise ValueError("invalid workload: " + "; ".join(problems))

    @property
    def end(self) -> int:
        return self.start + self.duration


def noise_free(type_id: int) -> bool:
    group_type = GROUP_TYPES.get(type_id)
    return group_type is not None and group_type.noise_config is None


def stream_config(**overrides: Any) -> WorkloadConfig:
    """The streaming benchmark's workload: 200,000 messages over 20,000 keys, 5% on the hot key."""
    return replace(WorkloadConfig(messages=200_000, keys=20_000, hot_key_share=0.05), **overrides)


def backfill_config(**overrides: Any) -> WorkloadConfig:
    """The backfill benchmark's workload: 1,000,000 messages over 50,000 keys, 10% on the hot key."""
    base = WorkloadConfig(messages=1_000_000, keys=50_000, hot_key_share=0.10, duration=48 * 3600 * MICROS)
    return replace(base, **overrides)
