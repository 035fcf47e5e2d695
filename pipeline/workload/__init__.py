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

Modules: ``config`` (``WorkloadConfig`` and the presets), ``summary`` (``WorkloadSummary`` and the kinds it
counts: import ``KIND_*`` and the status-change names from there), ``keys`` (group keys and their static
content), ``payloads`` (occurrence bodies, releases, encodings), ``invalid`` (one message per dead-letter
reason), ``generator`` (``Workload``).
"""

from __future__ import annotations

from pipeline.workload.config import (
    BURST_KEY_SHARE,
    DEFAULT_DURATION,
    DEFAULT_OVERSIZED_BYTES,
    DEFAULT_PROJECTS,
    DEFAULT_START,
    DEFAULT_TYPE_WEIGHTS,
    DEFAULT_UNKNOWN_PROJECTS,
    ENCODINGS,
    JSON,
    MIXED,
    PROTOBUF,
    RELEASE_INTERVAL,
    ZIPF_OFFSET,
    WorkloadConfig,
    backfill_config,
    stream_config,
)
from pipeline.workload.generator import Workload
from pipeline.workload.summary import WorkloadSummary

__all__ = [
    "BURST_KEY_SHARE",
    "DEFAULT_DURATION",
    "DEFAULT_OVERSIZED_BYTES",
    "DEFAULT_PROJECTS",
    "DEFAULT_START",
    "DEFAULT_TYPE_WEIGHTS",
    "DEFAULT_UNKNOWN_PROJECTS",
    "ENCODINGS",
    "JSON",
    "MIXED",
    "PROTOBUF",
    "RELEASE_INTERVAL",
    "ZIPF_OFFSET",
    "Workload",
    "WorkloadConfig",
    "WorkloadSummary",
    "backfill_config",
    "stream_config",
]
