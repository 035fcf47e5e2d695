"""Names of the counters the pipeline reports (rule 9), each defined once.

Sentry's metric names where Sentry has one; ours otherwise. The Beam shell
turns these into ``Metrics.counter(NAMESPACE, name)``.
"""

from __future__ import annotations

NAMESPACE = "occurrence_pipeline"

# Sentry's names.
OCCURRENCE_MESSAGES = "occurrence_ingest.messages"
STATUS_CHANGE_MESSAGES = "occurrence_ingest.status_change.messages"
DROPPED_FEATURE_DISABLED = "occurrence_ingest.dropped_feature_disabled"
DROPPED_NOISE = "issues.issue.dropped.noise_reduction"
DROPPED_RATE_LIMITING = "issues.issue.dropped.rate_limiting"
CATEGORY_MISMATCH = "save_issue_from_occurrence.category_mismatch"
DROPPED_STATUS_CHANGES = "occurrence_consumer.process_occurrence_group.dropped_status_changes"
STATUS_CHANGE_GROUP_NOT_FOUND = "occurrence_ingest.status_change.dropped_group_not_found"
GROUP_CREATED = "group.created"

# Ours.
DUPLICATES = "duplicates"
STATUS_CHANGE_STALE = "status_change.stale"
STATUS_CHANGE_PENDING = "status_change.pending"
STATUS_CHANGE_NO_EFFECT = "status_change.no_effect"
REGRESSIONS = "regressions"
OCCURRENCES_ATTACHED = "occurrences.attached"
# Occurrences taken in after the delete that ended their generation (late, or waiting for their event): the
# group of their message time is gone, so they touch nothing of the next generation (rule 6.4).
DROPPED_GROUP_DELETED = "occurrences.dropped_group_deleted"
GROUPS_DELETED = "group.deleted"
GROUP_UPDATES = "group.updated"
EVENT_LOOKUP_WAITING = "event_lookup.waiting"
# streaming: keys a starting pipeline took up because their saved state had occurrences waiting for their event
KEYS_WOKEN = "event_lookup.keys_woken"
LATE_MESSAGES = "late_messages"
QUOTA_FAIL_OPEN = "creation_quota.fail_open"
STATE_HYDRATED = "state.hydrated"  # streaming: key states read from Spanner
STATE_EXPIRED = "state.expired"  # streaming: keys whose Beam state was cleared (it lives on in Spanner)
STATE_SAVED_LATE = "state.saved_late"  # streaming: deferred KeyStates saves of keys without a group, written
SPANNER_COMMITS = "spanner.commits"
SPANNER_COMMIT_ATTEMPTS = "spanner.commit_attempts"  # more than spanner.commits when commits were aborted
SPANNER_MUTATIONS = "spanner.mutations"
SPANNER_ROWS = "spanner.rows"
SPANNER_ROWS_PREFIX = "spanner.rows."  # + table: rows written (inserted, updated or deleted) per table
SPANNER_STALE_WRITES = "spanner.stale_writes"
# An event's release or environment name longer than Sentry's limit, removed at decoding (the occurrence is kept).
EVENT_RELEASE_REMOVED = "event.release_removed"
EVENT_ENVIRONMENT_REMOVED = "event.environment_removed"
# Dead letters published with something of their original left out to fit Pub/Sub's limits (it is logged).
DEAD_LETTERS_TRUNCATED = "dead_letter_publish.truncated"
# Dead letters Pub/Sub refused for good (not retried; each is logged with its message id).
DEAD_LETTERS_REFUSED = "dead_letter_publish.refused"
# Key writes Spanner refused for what they carry (a commit split to find them): their messages are set aside.
SPANNER_WRITES_REFUSED = "spanner.writes_refused"
# A distribution: messages applied per streaming flush of a key.
FLUSH_BATCH_SIZE = "flush_batch_size"
# A distribution: the size in bytes of every message decoded (before the size limit is applied).
MESSAGE_BYTES = "message.bytes"
DEAD_LETTER_PREFIX = "dead_letters."


def dead_letter_counter(reason: str) -> str:
    return DEAD_LETTER_PREFIX + reason


def spanner_rows_counter(table: str) -> str:
    return SPANNER_ROWS_PREFIX + table
