"""A realistic, deterministic workload of ingest messages, for local runs, tests and benchmarks.

``Workload(config)`` yields ``RawMessage``s in message-time order (optionally
shuffled within a small window), the same bytes for the same config and seed.
What it generates, modelled on a busy Sentry installation:

- group keys ``(project, fingerprint)`` with a fixed group type each, drawn
  from a Zipf-like popularity, plus one hot key holding a configured share of
  all messages; bursts in time, each concentrated on one key (an incident);
- occurrences of several group types (errors, performance types with noise
  gates, the noise-free p95 regression, crons, feedback, an unreleased type)
  with events carrying advancing releases (semver ``backend@1.4.2`` and commit
  shas) and environments; lookup occurrences (no ``event``) whose event was
  carried by an earlier occurrence of the same project; buffered-spans
  occurrences;
- status changes of every valid pair, most of them for keys that already have
  a group, some before any occurrence of their key; occurrences after a
  resolve (regressions, or not, depending on the release);
- redeliveries (an exact copy of a message, same id and time), re-published
  occurrences (a new message with an earlier message's payload), messages of
  unregistered projects, and invalid messages of every dead-letter reason.

``Workload.summary()`` tells what was generated (counts by kind, dead-letter
reason, group type, encoding...) and the message ids expected to be
dead-lettered, so tests and benchmarks can check a pipeline's output.

The generator models the pipeline's rules only roughly (it does not know
creation quotas or exactly when a noise gate opens): "a key has a group" means
it has had enough valid occurrences to pass its noise gate.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from bisect import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from transforms.core import reasons
from transforms.core.decode import CONTENT_TYPE_ATTRIBUTE, JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE
from transforms.core.encode import EncodeError, encode_protobuf
from transforms.core.enums import GroupStatus, GroupSubStatus, ResolutionType
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import MICROS, RawMessage, from_datetime, to_rfc3339

# ---------------------------------------------------------------------------------------------------------
# Configuration

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
        if not any(w > 0 for t, w in self.type_weights if self.noise or _noise_free(t)):
            problems.append(
                "the type mix has no type left (with --no-noise, include a type without noise gate)"
            )
        if problems:
            raise ValueError("invalid workload: " + "; ".join(problems))

    @property
    def end(self) -> int:
        return self.start + self.duration


def _noise_free(type_id: int) -> bool:
    group_type = GROUP_TYPES.get(type_id)
    return group_type is not None and group_type.noise_config is None


def stream_config(**overrides: Any) -> WorkloadConfig:
    """The streaming benchmark's workload: 200,000 messages over 20,000 keys, 5% on the hot key."""
    return replace(WorkloadConfig(messages=200_000, keys=20_000, hot_key_share=0.05), **overrides)


def backfill_config(**overrides: Any) -> WorkloadConfig:
    """The backfill benchmark's workload: 1,000,000 messages over 50,000 keys, 10% on the hot key."""
    base = WorkloadConfig(messages=1_000_000, keys=50_000, hot_key_share=0.10, duration=48 * 3600 * MICROS)
    return replace(base, **overrides)


# ---------------------------------------------------------------------------------------------------------
# Summary


# Kinds of generated messages (WorkloadSummary.by_kind).
KIND_OCCURRENCE = "occurrence"  # an occurrence with its event
KIND_LOOKUP = "lookup"  # an occurrence without event, whose event an earlier occurrence carried
KIND_BUFFERED_SPANS = "buffered_spans"
KIND_STATUS_CHANGE = "status_change"
KIND_INVALID = "invalid"  # fails a check: its reason is in by_reason
KIND_UNKNOWN_PROJECT = "unknown_project"  # valid, but of an unregistered project
KIND_REDELIVERY = "redelivery"  # an exact copy of the message before it
KIND_REPUBLISH = "republish"  # a new message with an earlier occurrence's payload

# Status-change names (WorkloadSummary.status_changes).
RESOLVE = "resolve"
RESOLVE_IN_RELEASE = "resolve_in_release"
RESOLVE_IN_NEXT_RELEASE = "resolve_in_next_release"
IGNORE_UNTIL_ESCALATING = "ignore_until_escalating"
IGNORE_UNTIL_CONDITION_MET = "ignore_until_condition_met"
IGNORE_FOREVER = "ignore_forever"
ESCALATING = "escalating"
ONGOING = "ongoing"
REGRESSED = "regressed"
DELETE = "delete"

_STATUS_CHANGES: dict[str, tuple[int, int | None, str | None]] = {
    RESOLVE: (GroupStatus.RESOLVED, None, None),
    RESOLVE_IN_RELEASE: (GroupStatus.RESOLVED, None, ResolutionType.IN_RELEASE),
    RESOLVE_IN_NEXT_RELEASE: (GroupStatus.RESOLVED, None, ResolutionType.IN_NEXT_RELEASE),
    IGNORE_UNTIL_ESCALATING: (GroupStatus.IGNORED, GroupSubStatus.UNTIL_ESCALATING, None),
    IGNORE_UNTIL_CONDITION_MET: (GroupStatus.IGNORED, GroupSubStatus.UNTIL_CONDITION_MET, None),
    IGNORE_FOREVER: (GroupStatus.IGNORED, GroupSubStatus.FOREVER, None),
    ESCALATING: (GroupStatus.UNRESOLVED, GroupSubStatus.ESCALATING, None),
    ONGOING: (GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING, None),
    REGRESSED: (GroupStatus.UNRESOLVED, GroupSubStatus.REGRESSED, None),
    DELETE: (GroupStatus.PENDING_DELETION, None, None),
}
_STATUS_CHANGE_WEIGHTS: tuple[tuple[str, float], ...] = (
    (RESOLVE, 0.24),
    (RESOLVE_IN_RELEASE, 0.08),
    (RESOLVE_IN_NEXT_RELEASE, 0.08),
    (IGNORE_UNTIL_ESCALATING, 0.09),
    (IGNORE_UNTIL_CONDITION_MET, 0.05),
    (IGNORE_FOREVER, 0.07),
    (ESCALATING, 0.10),
    (ONGOING, 0.14),
    (REGRESSED, 0.05),
    (DELETE, 0.10),
)


@dataclass
class WorkloadSummary:
    """What a workload generated. ``dead_letters`` maps each message id expected to be dead-lettered to
    its reason (a redelivered copy has the same id and reason)."""

    messages: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    by_type: Counter[int] = field(default_factory=Counter)  # valid occurrences of registered projects
    by_project: Counter[int] = field(default_factory=Counter)  # every message with a readable project id
    by_encoding: Counter[str] = field(default_factory=Counter)
    status_changes: Counter[str] = field(default_factory=Counter)
    status_changes_before_group: int = 0
    occurrences_after_resolve: int = 0
    keys_used: int = 0  # distinct keys of valid occurrences and status changes
    key_messages: Counter[str] = field(default_factory=Counter)  # "project:fingerprint[0]" -> messages
    hot_key: str = ""
    first_time: int | None = None
    last_time: int | None = None
    dead_letters: dict[str, str] = field(default_factory=dict)

    @property
    def hot_key_messages(self) -> int:
        return self.key_messages[self.hot_key]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly rendering (without the per-key and per-message detail)."""
        top = self.key_messages.most_common(5)
        return {
            "messages": self.messages,
            "by_kind": dict(sorted(self.by_kind.items())),
            "by_reason": dict(sorted(self.by_reason.items())),
            "by_type": {str(k): v for k, v in sorted(self.by_type.items())},
            "by_project": {str(k): v for k, v in sorted(self.by_project.items())},
            "by_encoding": dict(sorted(self.by_encoding.items())),
            "status_changes": dict(sorted(self.status_changes.items())),
            "status_changes_before_group": self.status_changes_before_group,
            "occurrences_after_resolve": self.occurrences_after_resolve,
            "keys_used": self.keys_used,
            "hot_key": self.hot_key,
            "hot_key_messages": self.hot_key_messages,
            "top_keys": [[key, count] for key, count in top],
            "first_time": None if self.first_time is None else to_rfc3339(self.first_time),
            "last_time": None if self.last_time is None else to_rfc3339(self.last_time),
        }


# ---------------------------------------------------------------------------------------------------------
# Keys and their static content


@dataclass(slots=True)
class _Key:
    index: int
    project_id: int
    type_id: int
    fingerprint: list[str]
    label: str  # "project:fingerprint[0]", the summary's name for the key
    template: dict[str, Any]  # the occurrence fields that never change
    platform: str
    transaction: str
    threshold: int  # valid occurrences needed before the key (roughly) has a group
    released: bool
    sdk: dict[str, str]  # shared by the key's events: treat as read-only
    semver: bool  # whether the key's project names releases by semantic version
    seen: int = 0
    grouped: bool = False
    ignored: bool = False
    resolved: bool = False
    in_pools: set[str] = field(default_factory=set)


class _Pool:
    """Keys with a property (``grouped``, ``ignored``), for uniform random picks; removal is lazy."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.keys: list[_Key] = []

    def add(self, key: _Key) -> None:
        if self.name not in key.in_pools:
            key.in_pools.add(self.name)
            self.keys.append(key)

    def pick(self, rng: random.Random) -> _Key | None:
        keys = self.keys
        while keys:
            index = rng.randrange(len(keys))
            key = keys[index]
            if getattr(key, self.name):
                return key
            keys[index] = keys[-1]
            keys.pop()
            key.in_pools.discard(self.name)
        return None


_PLATFORMS = ("python", "javascript", "java", "go", "node", "ruby")
_SERVERS = tuple(f"web-{n}" for n in range(1, 9))
_SDKS = {
    "python": ("sentry.python", "2.5.1"),
    "javascript": ("sentry.javascript.browser", "8.9.2"),
    "java": ("sentry.java", "7.10.0"),
    "go": ("sentry.go", "0.28.1"),
    "node": ("sentry.javascript.node", "8.9.2"),
    "ruby": ("sentry.ruby", "5.17.3"),
}
_EXCEPTIONS = (
    ("ValueError", "invalid literal for int() with base 10: '{n}'"),
    ("KeyError", "'{word}'"),
    ("TypeError", "unsupported operand type(s) for +: 'NoneType' and 'int'"),
    ("ConnectionError", "HTTPSConnectionPool(host='api-{n}.internal', port=443): Max retries exceeded"),
    ("TimeoutError", "operation timed out after {n}ms"),
    ("IntegrityError", 'duplicate key value violates unique constraint "orders_{word}_key"'),
    ("NullPointerException", 'Cannot invoke "{word}.getId()" because the value is null'),
)
_WORDS = (
    "orders",
    "checkout",
    "billing",
    "users",
    "projects",
    "issues",
    "search",
    "cart",
    "inventory",
    "reports",
    "auth",
    "webhooks",
    "exports",
    "settings",
    "teams",
    "alerts",
)
_FUNCTIONS = ("process", "handle", "fetch", "render", "save", "sync", "validate", "dispatch")
_MONITORS = (
    "nightly-backup",
    "hourly-sync",
    "cleanup-sessions",
    "send-digests",
    "rotate-keys",
    "billing-run",
)
_FEEDBACK = (
    "The checkout button does nothing on Safari.",
    "Search results take forever to load.",
    "I was charged twice for the same order!",
    "Love the new dashboard, but the export is broken.",
    "Page crashed when I uploaded a large file.",
)


def _endpoint(rng: random.Random) -> str:
    word = rng.choice(_WORDS)
    return f"/api/0/{word}/{{{word[:-1] if word.endswith('s') else word}_id}}/{rng.choice(_WORDS)}/"


def _make_key(index: int, project_id: int, type_id: int, rng: random.Random, semver: bool = True) -> _Key:
    """A key with realistic static content for its group type."""
    platform = rng.choice(_PLATFORMS)
    transaction = ("GET ", "POST ", "PUT ")[rng.randrange(3)] + _endpoint(rng)
    token = f"{rng.getrandbits(48):012x}"
    title: str
    culprit: str
    level_choices: tuple[str, ...]
    evidence_display: list[dict[str, Any]]
    evidence_data: dict[str, Any]
    if type_id == 1:
        name, message = rng.choice(_EXCEPTIONS)
        message = message.format(n=rng.randrange(1, 10_000), word=rng.choice(_WORDS))
        module = f"app.{rng.choice(_WORDS)}.{rng.choice(_WORDS)}"
        function = f"{rng.choice(_FUNCTIONS)}_{rng.choice(_WORDS)}"
        fingerprint = [f"error:{name}:{module}.{function}:{token[:6]}"]
        title = f"{name}: {message}"
        culprit = f"{module} in {function}"
        level_choices = ("error",) * 8 + ("fatal", "warning")
        evidence_display = [{"name": "Exception", "value": f"{name}: {message}", "important": True}]
        evidence_data = {"exception_type": name, "module": module, "function": function}
    elif type_id in (1006, 1001):
        table = rng.choice(_WORDS)
        query = f'SELECT "{table}"."id", "{table}"."name" FROM "{table}" WHERE "{table}"."id" = %s'
        kind = "n-plus-one" if type_id == 1006 else "slow-db"
        fingerprint = [f"1-{type_id}-{kind}-{token}"]
        title = "N+1 Query" if type_id == 1006 else "Slow DB Query"
        culprit = transaction
        level_choices = ("info",)
        evidence_display = [
            {"name": "Offending Spans", "value": f"db - {query}", "important": True},
            {"name": "Transaction", "value": transaction, "important": False},
        ]
        evidence_data = {
            "op": "db",
            "transaction_name": transaction,
            "parent_span_ids": [f"{rng.getrandbits(64):016x}"],
            "offender_span_ids": [f"{rng.getrandbits(64):016x}" for _ in range(rng.randrange(2, 6))],
            "num_repeating_spans": str(rng.randrange(5, 60)),
        }
        title = f"{title}: {query[:60]}" if rng.random() < 0.3 else title
    elif type_id == 1018:
        fingerprint = [f"p95-regression:{transaction}"]
        title = "Endpoint Regression"
        culprit = transaction
        level_choices = ("warning",) * 3 + ("info",)
        evidence_display = [
            {"name": "Regression", "value": f"{transaction} duration increased", "important": True}
        ]
        evidence_data = {"transaction": transaction, "breakpoint": 1_700_000_000 + rng.randrange(10**6)}
    elif type_id == 4001:
        monitor = f"{rng.choice(_MONITORS)}-{rng.randrange(100)}"
        fingerprint = [f"crons:{monitor}"]
        title = f"Cron failure: {monitor}"
        culprit = ""
        level_choices = ("error",)
        evidence_display = [
            {"name": "Failure reason", "value": "missed_checkin", "important": True},
            {"name": "Monitor", "value": monitor, "important": False},
        ]
        evidence_data = {"monitor_slug": monitor, "failure_reason": "missed_checkin"}
    elif type_id == 6001:
        fingerprint = [f"feedback:{rng.getrandbits(128):032x}"]
        title = "User Feedback"
        culprit = "user feedback"
        level_choices = ("info",)
        message = rng.choice(_FEEDBACK)
        email = f"user{rng.randrange(10**6)}@example.com"
        evidence_display = [
            {"name": "contact_email", "value": email, "important": False},
            {"name": "message", "value": message, "important": True},
        ]
        evidence_data = {
            "contact_email": email,
            "message": message,
            "name": "",
            "source": "new_feedback_envelope",
        }
    else:
        group_type = GROUP_TYPES[type_id]
        function = f"{rng.choice(_FUNCTIONS)}_{rng.choice(_WORDS)}"
        fingerprint = [f"{group_type.slug}:{function}:{token}"]
        title = group_type.description
        culprit = function
        level_choices = ("info", "warning")
        evidence_display = [{"name": "Function", "value": function, "important": True}]
        evidence_data = {"function": function, "duration_ms": rng.randrange(16, 900)}
    if rng.random() < 0.1:  # some producers send a second fingerprint part
        fingerprint.append(f"{fingerprint[0]}:{rng.choice(_WORDS)}")
    if rng.random() < 0.02:  # an over-long culprit, which the pipeline cuts to 200 characters
        culprit = (culprit + " > ") * (220 // max(len(culprit), 10) + 2)
    template: dict[str, Any] = {
        "fingerprint": fingerprint,
        "issue_title": title,
        "resource_id": None,
        "evidence_data": evidence_data,
        "evidence_display": evidence_display,
        "type": type_id,
        "level": rng.choice(level_choices),
        "culprit": culprit,
    }
    roll = rng.random()
    if roll < 0.25:
        template["initial_issue_priority"] = (25, 50, 75)[rng.randrange(3)]
    elif roll < 0.35:
        template["priority"] = (25, 50, 75)[rng.randrange(3)]
    if rng.random() < 0.05:
        template["assignee"] = f"{('user', 'team')[rng.randrange(2)]}:{rng.randrange(1, 20)}"
    group_type = GROUP_TYPES[type_id]
    noise = group_type.noise_config
    return _Key(
        index=index,
        project_id=project_id,
        type_id=type_id,
        fingerprint=fingerprint,
        label=f"{project_id}:{fingerprint[0]}",
        template=template,
        platform=platform,
        transaction=transaction,
        threshold=noise.ignore_limit if noise is not None else 1,
        released=group_type.released,
        sdk={"name": _SDKS[platform][0], "version": _SDKS[platform][1]},
        semver=semver,
    )


# ---------------------------------------------------------------------------------------------------------
# The generator

_ISO_SECONDS: dict[int, str] = {}  # epoch second -> "2026-05-28T20:26:40."
_MILLIS = tuple(f"{ms:03d}000" for ms in range(1000))


def _iso(micros: int, suffix: str = "Z") -> str:
    """``2026-05-28T20:26:40.123000Z`` quickly: per-second prefixes are cached (times here are whole ms)."""
    second, fraction = divmod(micros, MICROS)
    prefix = _ISO_SECONDS.get(second)
    if prefix is None:
        if len(_ISO_SECONDS) > 65536:
            _ISO_SECONDS.clear()
        prefix = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _ISO_SECONDS[second] = prefix
    millis, rest = divmod(fraction, 1000)
    if rest:
        return f"{prefix}{fraction:06d}{suffix}"
    return prefix + _MILLIS[millis] + suffix


def _fraction(share: float) -> float:
    return max(0.0, min(1.0, share))


class Workload:
    """Iterate to get the messages (each iteration regenerates the same ones); ``summary()`` describes them.

    Generation is single-pass and streaming: memory grows with the number of
    keys, not of messages (except the map of expected dead letters).
    """

    def __init__(self, config: WorkloadConfig | None = None) -> None:
        self.config = config or WorkloadConfig()
        self._summary: WorkloadSummary | None = None

    def __iter__(self) -> Iterator[RawMessage]:
        summary = WorkloadSummary()
        messages = _Generator(self.config, summary).messages()
        window = self.config.shuffle_window
        if window > 1:
            messages = _shuffle(messages, window, random.Random(f"shuffle:{self.config.seed}"))
        yield from messages
        self._summary = summary

    def summary(self) -> WorkloadSummary:
        """The summary of the messages; generates them (without keeping them) if they were not iterated."""
        if self._summary is None:
            for _ in self:
                pass
        assert self._summary is not None
        return self._summary


def _shuffle(messages: Iterator[RawMessage], window: int, rng: random.Random) -> Iterator[RawMessage]:
    """Each message leaves at a random point among the next ``window`` positions (a local shuffle)."""
    buffer: list[RawMessage] = []
    randrange = rng.randrange
    for message in messages:
        buffer.append(message)
        if len(buffer) >= window:
            index = randrange(len(buffer))
            buffer[index], buffer[-1] = buffer[-1], buffer[index]
            yield buffer.pop()
    while buffer:
        index = randrange(len(buffer))
        buffer[index], buffer[-1] = buffer[-1], buffer[index]
        yield buffer.pop()


class _Generator:
    """One pass of generation: walks message times in order and decides each message from the state so far."""

    def __init__(self, config: WorkloadConfig, summary: WorkloadSummary) -> None:
        self.config = config
        self.summary = summary
        self.rng = random.Random(f"workload:{config.seed}")
        rng = self.rng

        # Keys: key 0 is the hot key, an error of the first project; the others follow a Zipf popularity.
        weights = [
            (type_id, weight)
            for type_id, weight in config.type_weights
            if weight > 0 and (config.noise or _noise_free(type_id))
        ]
        type_ids = [type_id for type_id, _ in weights]
        type_cum = _cumulative([weight for _, weight in weights])
        project_cum = _cumulative([1.0 / (rank + 1) for rank in range(len(config.projects))])
        first_type = 1 if 1 in type_ids else type_ids[0]
        self.keys: list[_Key] = [_make_key(0, config.projects[0], first_type, rng, _semver_slot(0))]
        for index in range(1, config.keys):
            slot = bisect(project_cum, rng.random() * project_cum[-1])
            type_id = type_ids[bisect(type_cum, rng.random() * type_cum[-1])]
            self.keys.append(_make_key(index, config.projects[slot], type_id, rng, _semver_slot(slot)))
        # Zipf-Mandelbrot popularity (weight 1 / (rank + 5)^s): a skewed head that stays below the hot key.
        self.zipf_cum = _cumulative(
            [1.0 / ((rank + ZIPF_OFFSET) ** config.zipf_exponent) for rank in range(1, config.keys)]
        )
        summary.hot_key = self.keys[0].label

        # Keys of unregistered projects (valid messages, dead-lettered as unknown_project).
        self.foreign_keys = [
            _make_key(-1 - i, config.unknown_projects[i % len(config.unknown_projects)], 1, rng)
            for i in range(max(1, min(50, config.keys // 100)))
        ]

        # What each message slot is, by cumulative share; "occurrence" takes the rest.
        kinds = (
            (KIND_INVALID, config.invalid_share),
            (KIND_STATUS_CHANGE, config.status_change_share),
            (KIND_LOOKUP, config.lookup_share),
            (KIND_BUFFERED_SPANS, config.buffered_spans_share),
            (KIND_REDELIVERY, config.redelivery_share),
            (KIND_REPUBLISH, config.republish_share),
            (KIND_UNKNOWN_PROJECT, config.unknown_project_share),
        )
        self.kind_names = [name for name, _ in kinds]
        self.kind_cum = _cumulative([share for _, share in kinds])
        # Occurrence slots pick the hot key with this probability; status changes pick it 10% of the time.
        picking = 1.0 - config.invalid_share - config.unknown_project_share - config.status_change_share
        wanted = config.hot_key_share - 0.1 * config.status_change_share
        self.hot_probability = _fraction(max(0.0, wanted) / max(picking, 1e-9))
        self.sc_names = [name for name, _ in _STATUS_CHANGE_WEIGHTS]
        self.sc_cum = _cumulative([weight for _, weight in _STATUS_CHANGE_WEIGHTS])

        self.next_id = 0
        self.release_names: dict[tuple[int, int], str] = {}
        self.grouped = _Pool("grouped")  # keys that (roughly) have a group
        self.ignored = _Pool("ignored")
        self.followups: list[tuple[int, int, int]] = []  # heap of (due time, sequence, key index)
        self.events: dict[int, list[str]] = {p: [] for p in config.projects}  # recent stored event ids
        self.recent_payloads: list[dict[str, Any]] = []  # recent valid occurrence payloads (republish)
        self.previous: RawMessage | None = None
        self.previous_meta: tuple[str | None, int | None, str | None] = (None, None, None)
        self.invalid_count = 0
        self.burst_key: _Key | None = None
        self.keys_used: set[int] = set()

    # -- times -----------------------------------------------------------------------------------------

    def _times(self) -> Iterator[tuple[int, bool]]:
        """``messages`` sorted message times (whole ms) with bursts; yields (time, in a burst)."""
        config = self.config
        rng = random.Random(f"times:{config.seed}")
        bucket = (
            60 * MICROS if config.duration >= 600 * MICROS else max(MICROS // 1000, config.duration // 10)
        )
        buckets = max(1, -(-config.duration // bucket))
        weights = []
        bursts = []
        for index in range(buckets):
            # A daily cycle (quieter at night) and occasional bursts of 4 to 15 times the traffic.
            hour = ((config.start + index * bucket) // (3600 * MICROS)) % 24
            weight = 0.6 + 0.4 * (1 - abs(hour - 14) / 12)
            burst = rng.random() < config.burst_share
            if burst:
                weight *= rng.uniform(4, 15)
            weights.append(weight)
            bursts.append(burst)
        total = sum(weights)
        # Largest-remainder allocation of the messages to buckets, then uniform times within each bucket.
        exact = [config.messages * w / total for w in weights]
        counts = [int(x) for x in exact]
        remainder = config.messages - sum(counts)
        order = sorted(range(buckets), key=lambda i: (counts[i] - exact[i], i))
        for i in order[:remainder]:
            counts[i] += 1
        for index, count in enumerate(counts):
            if not count:
                continue
            low = config.start + index * bucket
            width_ms = max(1, min(bucket, config.end - low) // 1000)
            random_ = rng.random
            times = sorted(low + int(random_() * width_ms) * 1000 for _ in range(count))
            if bursts[index]:
                # An incident: any key, popular or not, suddenly fires (30% of the minute's messages).
                self.burst_key = self.keys[1 + int(rng.random() * (len(self.keys) - 1))]
            else:
                self.burst_key = None
            for time in times:
                yield time, bursts[index]

    # -- the main loop ----------------------------------------------------------------------------------

    def messages(self) -> Iterator[RawMessage]:
        rng = self.rng
        random_ = rng.random
        kind_cum = self.kind_cum
        kind_names = self.kind_names
        summary = self.summary
        for time, in_burst in self._times():
            roll = random_()
            index = bisect(kind_cum, roll)
            kind = kind_names[index] if index < len(kind_names) else KIND_OCCURRENCE
            if kind == KIND_OCCURRENCE:
                message = self._occurrence(time, in_burst)
            elif kind == KIND_REDELIVERY and self.previous is not None:
                message = self._redelivery()
            elif kind == KIND_LOOKUP:
                message = self._lookup(time, in_burst)
            elif kind == KIND_BUFFERED_SPANS:
                message = self._occurrence(time, in_burst, buffered=True)
            elif kind == KIND_STATUS_CHANGE:
                message = self._status_change(time)
            elif kind == KIND_INVALID:
                message = self._invalid(time)
            elif kind == KIND_REPUBLISH and self.recent_payloads:
                message = self._republish(time)
            elif kind == KIND_UNKNOWN_PROJECT:
                message = self._unknown_project(time)
            else:  # nothing to copy yet
                message = self._occurrence(time, in_burst)
            self.previous = message
            if summary.first_time is None:
                summary.first_time = time
            summary.last_time = time
            summary.messages += 1
            yield message
        summary.keys_used = len(self.keys_used)

    # -- message kinds ----------------------------------------------------------------------------------

    def _pick_key(self, time: int, in_burst: bool) -> _Key:
        followups = self.followups
        if followups and followups[0][0] <= time:
            _, _, index = heapq.heappop(followups)
            return self.keys[index]
        roll = self.rng.random()
        if roll < self.hot_probability:
            return self.keys[0]
        if in_burst and self.burst_key is not None and roll < self.hot_probability + BURST_KEY_SHARE:
            return self.burst_key
        return self.keys[self._zipf_index()]

    def _zipf_index(self) -> int:
        cum = self.zipf_cum
        return 1 + bisect(cum, self.rng.random() * cum[-1])

    def _occurrence(
        self, time: int, in_burst: bool, *, buffered: bool = False, key: _Key | None = None
    ) -> RawMessage:
        key = key or self._pick_key(time, in_burst)
        payload = self._occurrence_payload(key, time, with_event=True)
        if buffered:
            payload["is_buffered_spans"] = True
        elif key.released:
            events = self.events[key.project_id]
            events.append(payload["event_id"])
            if len(events) > 512:
                del events[:256]
        self._count_valid_occurrence(key, time)
        self._remember_payload(payload)
        return self._emit(payload, time, KIND_BUFFERED_SPANS if buffered else KIND_OCCURRENCE, key=key)

    def _lookup(self, time: int, in_burst: bool) -> RawMessage:
        key = self._pick_key(time, in_burst)
        events = self.events.get(key.project_id)
        if not events:  # no stored event in this project yet: carry one
            return self._occurrence(time, in_burst, key=key)
        payload = self._occurrence_payload(key, time, with_event=False)
        payload["event_id"] = events[int(self.rng.random() * len(events))]
        self._count_valid_occurrence(key, time)
        self._remember_payload(payload)
        return self._emit(payload, time, KIND_LOOKUP, key=key)

    def _count_valid_occurrence(self, key: _Key, time: int) -> None:
        if key.resolved:
            self.summary.occurrences_after_resolve += 1
            key.resolved = False
        key.seen += 1
        self.summary.by_type[key.type_id] += 1
        if key.released and not key.grouped and key.seen >= key.threshold:
            key.grouped = True
            self.grouped.add(key)

    def _remember_payload(self, payload: dict[str, Any]) -> None:
        recent = self.recent_payloads
        recent.append(payload)
        if len(recent) > 256:
            del recent[:128]

    def _status_change(self, time: int) -> RawMessage:
        rng = self.rng
        name = self.sc_names[bisect(self.sc_cum, rng.random() * self.sc_cum[-1])]
        key: _Key | None = None
        if name == ESCALATING and rng.random() < 0.8:
            key = self.ignored.pick(rng)
        if key is None and (rng.random() < 0.12 or not self.grouped.keys):
            # Before its group exists: a key with no occurrence yet, which usually gets some soon after.
            for _ in range(8):
                candidate = self.keys[self._zipf_index()]
                if candidate.seen == 0 and candidate.released:
                    key = candidate
                    break
            if key is not None and rng.random() < 0.7:
                self._follow_up(key, time + rng.randrange(1, 20 * 60) * 1000 * 1000)
        if key is None and self.keys[0].grouped and rng.random() < 0.1:
            key = self.keys[0]
        if key is None:
            key = self.grouped.pick(rng) or self.keys[self._zipf_index()]
        status, substatus, resolution_type = _STATUS_CHANGES[name]
        payload: dict[str, Any] = {"payload_type": "status_change"}
        if rng.random() < 0.95:  # without an id, the message id stands for it
            payload["id"] = f"{rng.getrandbits(128):032x}"
        payload["project_id"] = key.project_id
        payload["fingerprint"] = key.fingerprint
        payload["new_status"] = int(status)
        payload["new_substatus"] = None if substatus is None else int(substatus)
        if resolution_type is not None:
            payload["resolution"] = {
                "type": resolution_type,
                "version": self._release(key.project_id, time, 0),
            }
        self._track_status(key, name, time)
        self.summary.status_changes[name] += 1
        if key.seen == 0:  # no occurrence yet (or none since its group was deleted)
            self.summary.status_changes_before_group += 1
        return self._emit(payload, time, KIND_STATUS_CHANGE, key=key)

    def _track_status(self, key: _Key, name: str, time: int) -> None:
        if name in (RESOLVE, RESOLVE_IN_RELEASE, RESOLVE_IN_NEXT_RELEASE):
            key.resolved = True
            if self.rng.random() < 0.6:  # the issue comes back, in this release or a later one
                self._follow_up(key, time + self.rng.randrange(1, 90 * 60) * 1000 * 1000)
        elif name in (IGNORE_UNTIL_ESCALATING, IGNORE_UNTIL_CONDITION_MET, IGNORE_FOREVER):
            key.resolved = False
            key.ignored = True
            self.ignored.add(key)
        elif name == DELETE:
            key.resolved = False
            key.seen = 0
            key.grouped = False
        else:
            key.resolved = False
        if name not in (IGNORE_UNTIL_ESCALATING, IGNORE_UNTIL_CONDITION_MET, IGNORE_FOREVER):
            key.ignored = False

    def _follow_up(self, key: _Key, due: int) -> None:
        if due < self.config.end:
            heapq.heappush(self.followups, (due, self.next_id, key.index))

    def _redelivery(self) -> RawMessage:
        previous = self.previous
        assert previous is not None
        summary = self.summary
        key_label, project_id, reason = self.previous_meta
        summary.by_kind[KIND_REDELIVERY] += 1
        summary.by_encoding[_encoding_of(previous)] += 1
        if key_label is not None:
            summary.key_messages[key_label] += 1
        if project_id is not None:
            summary.by_project[project_id] += 1
        if reason is not None:
            summary.by_reason[reason] += 1
        return previous

    def _republish(self, time: int) -> RawMessage:
        payload = self.recent_payloads[self.rng.randrange(len(self.recent_payloads))]
        return self._emit(
            payload, time, KIND_REPUBLISH, key_label=f"{payload['project_id']}:{payload['fingerprint'][0]}"
        )

    def _unknown_project(self, time: int) -> RawMessage:
        key = self.foreign_keys[self.rng.randrange(len(self.foreign_keys))]
        payload = self._occurrence_payload(key, time, with_event=True)
        return self._emit(payload, time, KIND_UNKNOWN_PROJECT, reason=reasons.UNKNOWN_PROJECT)

    # -- payloads ---------------------------------------------------------------------------------------

    def _release(self, project_id: int, time: int, age: int) -> str:
        """The release ``age`` releases before the project's current one at ``time``."""
        index = max(0, (time - self.config.start) // RELEASE_INTERVAL - age)
        cached = self.release_names.get((project_id, index))
        if cached is not None:
            return cached
        slot = self._slot(project_id)
        if not _semver_slot(slot):  # this project names releases by commit
            name = hashlib.sha1(f"{self.config.seed}:{project_id}:{index}".encode()).hexdigest()[:12]
        else:
            package = ("backend", "frontend")[slot % 3]
            name = f"{package}@{1 + slot % 3}.{4 + index // 10}.{index % 10}"
        self.release_names[(project_id, index)] = name
        return name

    def _slot(self, project_id: int) -> int:
        """The project's position among the registered ones (0 for an unregistered project)."""
        projects = self.config.projects
        return projects.index(project_id) if project_id in projects else 0

    def _occurrence_payload(self, key: _Key, time: int, *, with_event: bool) -> dict[str, Any]:
        # One draw of 384 bits gives the occurrence id, the event id and the trace id; one of 64 bits gives
        # every small choice below (bit fields), which keeps generation fast.
        ids = f"{self.rng.getrandbits(384):096x}"
        bits = self.rng.getrandbits(64)
        event_id = ids[32:64]
        payload: dict[str, Any] = {
            "payload_type": "occurrence",
            "id": ids[:32],
            "project_id": key.project_id,
            "event_id": event_id,
        }
        payload.update(key.template)
        type_id = key.type_id
        if type_id == 1018:
            before = 80 + (bits >> 44 & 255)
            payload["subtitle"] = (
                f"P95 duration increased from {before}ms to {before * (2 + (bits >> 52 & 7))}ms"
            )
        elif type_id == 6001:
            payload["subtitle"] = payload["evidence_data"]["message"]
        else:
            payload["subtitle"] = key.transaction if type_id != 1 else payload["culprit"]
        detection = time - (bits >> 33 & 2047) * 1000  # detected up to 2 s before it was sent
        payload["detection_time"] = detection / MICROS if bits & 7 else _iso(detection, "+00:00")
        if not with_event:
            return payload
        event_time = time - (200 + (bits >> 4 & 0x3FFF)) * 1000  # the event happened 0.2 to 16.6 s before
        roll = bits >> 18 & 1023  # releases: 80% current, 13% previous, 2% a pre-release, 5% none
        if roll < 819:
            release: str | None = self._release(key.project_id, time, 0)
        elif roll < 952:
            release = self._release(key.project_id, time, 1)  # clients still on the previous release
        elif roll < 973 and key.semver:
            release = self._release(key.project_id, time, -1) + "-rc.1"  # a pre-release of the next one
        else:
            release = None
        tags: Any = {"server_name": _SERVERS[bits >> 28 & 7], "transaction": key.transaction}
        if bits >> 56 & 7 == 0:
            tags = [["server_name", tags["server_name"]], ["transaction", key.transaction]]
        event: dict[str, Any] = {
            "event_id": event_id,
            "project_id": key.project_id,
            "platform": key.platform,
            "timestamp": _iso(event_time) if bits & 8 else event_time / MICROS,
            "received": _iso(event_time + (50 + (bits >> 31 & 3) * 250) * 1000),
            "tags": tags,
            "release": release,
            "environment": "production" if bits >> 59 & 3 else "staging",
            "transaction": key.transaction,
            "sdk": key.sdk,
            "contexts": {"trace": {"trace_id": ids[64:], "op": "http.server"}},
        }
        if bits >> 61 & 3 == 0:
            event["user"] = {"id": str(1 + int(ids[64:68], 16))}
        payload["event"] = event
        return payload

    # -- invalid messages -------------------------------------------------------------------------------

    def _invalid(self, time: int) -> RawMessage:
        """A message failing exactly one check: reasons in a fixed rotation, ``oversized`` every 10th round."""
        count = self.invalid_count
        self.invalid_count += 1
        rotation = _INVALID_ROTATION
        round_, position = divmod(count, len(rotation) + 1)
        if position == len(rotation):
            if round_ % 10:
                position = count % len(rotation)
            else:
                return self._invalid_message(reasons.OVERSIZED, round_, time)
        return self._invalid_message(rotation[position], round_, time)

    def _invalid_message(self, reason: str, variant: int, time: int) -> RawMessage:
        rng = self.rng
        key = self.keys[self._zipf_index()]
        while not key.released:
            key = self.keys[self._zipf_index()]
        payload = self._occurrence_payload(key, time, with_event=True)
        event = payload["event"]
        protobuf = self.config.encoding != JSON
        data: bytes | None = None
        attributes: dict[str, str] | None = None
        if reason == reasons.OVERSIZED:
            payload["evidence_data"] = {"padding": "x" * self.config.oversized_bytes}
        elif reason == reasons.UNDECODABLE:
            choice = variant % (7 if protobuf else 6)
            encoded = orjson.dumps(payload)
            if choice == 0:
                data = b"\x00\x9f" + encoded[:40]  # not UTF-8, not JSON
            elif choice == 1:
                data = encoded[: len(encoded) // 2]  # truncated
            elif choice == 2:
                data = orjson.dumps([payload["id"], payload["project_id"]])  # not an object
            elif choice == 3:
                data = b'"not a payload"'
            elif choice == 4:
                data = encoded
                attributes = {CONTENT_TYPE_ATTRIBUTE: "text/plain"}  # unsupported content type
            elif choice == 5:
                data = b""
                attributes = _JSON_ATTRIBUTES  # Pub/Sub needs data or an attribute
            else:
                data = encode_protobuf(payload)[:-7]  # a truncated protobuf message
                attributes = _PROTOBUF_ATTRIBUTES
        elif reason == reasons.INVALID_PAYLOAD_TYPE:
            choice = variant % (4 if protobuf else 3)
            if choice == 3:
                data = b""  # an IngestMessage with neither payload set
                attributes = _PROTOBUF_ATTRIBUTES
            else:
                payload["payload_type"] = ("event", "transaction", 7)[choice]
        elif reason == reasons.MISSING_FIELD:
            choice = variant % 4
            if choice == 0:
                del payload["issue_title"]
            elif choice == 1:
                payload["detection_time"] = None
            elif choice == 2:
                del payload["event_id"]
                del event["event_id"]
            else:
                payload = {
                    "payload_type": "status_change",
                    "project_id": key.project_id,
                    "fingerprint": key.fingerprint,
                }
        elif reason == reasons.INVALID_FIELD:
            choice = variant % 6
            if choice == 0:
                payload["fingerprint"] = []
            elif choice == 1:
                payload["level"] = "verbose"
            elif choice == 2:
                payload["priority"] = 60
            elif choice == 3:
                payload["id"] = "not-a-uuid"
            elif choice == 4:
                payload["evidence_display"] = [{"name": "Exception", "value": "boom"}]
            else:
                payload["project_id"] = str(key.project_id)  # a numeric string is not a number
        elif reason == reasons.UNKNOWN_GROUP_TYPE:
            payload["type"] = (9999, 1005, 3001)[variant % 3]
        elif reason == reasons.UNKNOWN_PROJECT:
            project = self.config.unknown_projects[variant % len(self.config.unknown_projects)]
            payload["project_id"] = project
            event["project_id"] = project
        elif reason == reasons.PROJECT_MISMATCH:
            if variant % 2:
                del event["project_id"]
            else:
                others = [p for p in self.config.projects if p != key.project_id]
                event["project_id"] = others[0] if others else key.project_id + 1000
        elif reason == reasons.INVALID_EVENT:
            choice = variant % 3
            if choice == 0:
                del event["platform"]
            elif choice == 1:
                event["timestamp"] = "yesterday"
            else:
                event["tags"] = "tagged"
        elif reason == reasons.EVENT_ID_MISMATCH:
            event["event_id"] = f"{rng.getrandbits(128):032x}"
        elif reason == reasons.INVALID_STATUS_CHANGE:
            pairs = ((0, 7), (2, None), (1, 5), (9, None), (0, None))
            status, substatus = pairs[variant % len(pairs)]
            payload = {
                "payload_type": "status_change",
                "id": f"{rng.getrandbits(128):032x}",
                "project_id": key.project_id,
                "fingerprint": key.fingerprint,
                "new_status": status,
                "new_substatus": substatus,
            }
        elif reason == reasons.EVENT_NOT_FOUND:
            del payload["event"]  # a lookup of an event that no occurrence carries
        return self._emit(payload, time, KIND_INVALID, reason=reason, data=data, attributes=attributes)

    # -- encoding ---------------------------------------------------------------------------------------

    def _emit(
        self,
        payload: dict[str, Any],
        time: int,
        kind: str,
        *,
        key: _Key | None = None,
        key_label: str | None = None,
        reason: str | None = None,
        data: bytes | None = None,
        attributes: dict[str, str] | None = None,
    ) -> RawMessage:
        config = self.config
        summary = self.summary
        message_id = f"{config.id_prefix}{1_000_000_000_000 + self.next_id}"
        self.next_id += 1
        encoding = JSON
        if data is None:
            if config.encoding != JSON and (
                config.encoding == PROTOBUF or self.rng.random() < config.protobuf_share
            ):
                encoded = _encode_protobuf(payload)
                if encoded is not None:
                    data = encoded
                    encoding = PROTOBUF
            if data is None:
                data = orjson.dumps(payload)
        if attributes is None:
            if encoding == PROTOBUF:
                attributes = _PROTOBUF_ATTRIBUTES
            elif self.rng.random() < config.missing_content_type_share:
                attributes = _NO_ATTRIBUTES
            else:
                attributes = _JSON_ATTRIBUTES
        if config.timestamp_attribute:
            attributes = {**attributes, config.timestamp_attribute: to_rfc3339(time)}
        summary.by_kind[kind] += 1
        summary.by_encoding[encoding] += 1
        project_id = payload.get("project_id")
        if type(project_id) is int:
            summary.by_project[project_id] += 1
        else:
            project_id = None
        if key is not None:
            key_label = key.label
            self.keys_used.add(key.index)
        if key_label is not None:
            summary.key_messages[key_label] += 1
        if reason is not None:
            summary.by_reason[reason] += 1
            summary.dead_letters[message_id] = reason
        self.previous_meta = (key_label, project_id, reason)
        return RawMessage(message_id, time, data, attributes)


_INVALID_ROTATION: tuple[str, ...] = tuple(r for r in reasons.ALL_REASONS if r != reasons.OVERSIZED)
_JSON_ATTRIBUTES = {CONTENT_TYPE_ATTRIBUTE: JSON_CONTENT_TYPE}
_PROTOBUF_ATTRIBUTES = {CONTENT_TYPE_ATTRIBUTE: PROTOBUF_CONTENT_TYPE}
_NO_ATTRIBUTES: dict[str, str] = {}


def _encode_protobuf(payload: dict[str, Any]) -> bytes | None:
    """The payload as a protobuf ``IngestMessage``, or None when protobuf cannot express it (wrong JSON types)."""
    try:
        return encode_protobuf(payload)
    except EncodeError:
        return None


def _semver_slot(slot: int) -> bool:
    """Every third registered project names its releases by commit sha, the others by semver."""
    return slot % 3 != 2


def _encoding_of(message: RawMessage) -> str:
    return PROTOBUF if message.attributes.get(CONTENT_TYPE_ATTRIBUTE) == PROTOBUF_CONTENT_TYPE else JSON


def _cumulative(weights: list[float]) -> list[float]:
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative
