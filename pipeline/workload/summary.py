"""What a workload generated (``WorkloadSummary``), and the names it counts by: kinds of message and
status changes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from transforms.core.enums import GroupStatus, GroupSubStatus, ResolutionType
from transforms.core.model import to_rfc3339

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

STATUS_CHANGES: dict[str, tuple[int, int | None, str | None]] = {
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
STATUS_CHANGE_WEIGHTS: tuple[tuple[str, float], ...] = (
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
