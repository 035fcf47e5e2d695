"""Dead-letter reason codes and stages (rule 1.5, E1), each defined once.

The order of ``PRECEDENCE`` is the order of the checks: when a message fails
several, the first failing check names it.
"""

from __future__ import annotations

OVERSIZED = "oversized"
UNDECODABLE = "undecodable"
INVALID_PAYLOAD_TYPE = "invalid_payload_type"
MISSING_FIELD = "missing_field"
INVALID_FIELD = "invalid_field"
UNKNOWN_GROUP_TYPE = "unknown_group_type"
UNKNOWN_PROJECT = "unknown_project"
PROJECT_MISMATCH = "project_mismatch"
INVALID_EVENT = "invalid_event"
EVENT_ID_MISMATCH = "event_id_mismatch"
INVALID_STATUS_CHANGE = "invalid_status_change"
EVENT_NOT_FOUND = "event_not_found"
# Not a check: an exception nobody expected while the pipeline handled the message (a bug, or a limit that
# no check knew of). The message is set aside with the stage and the error instead of stopping its neighbours.
INTERNAL_ERROR = "internal_error"

PRECEDENCE: tuple[str, ...] = (
    OVERSIZED,
    UNDECODABLE,
    INVALID_PAYLOAD_TYPE,
    MISSING_FIELD,
    INVALID_FIELD,
    UNKNOWN_GROUP_TYPE,
    UNKNOWN_PROJECT,
    PROJECT_MISMATCH,
    INVALID_EVENT,
    EVENT_ID_MISMATCH,
    INVALID_STATUS_CHANGE,
)
# Every reason the rules give a message: the checks above plus the one that depends on waiting.
ALL_REASONS: tuple[str, ...] = (*PRECEDENCE, EVENT_NOT_FOUND)
# ... and every reason a dead letter can carry: those, and the last line of defence (no input is meant to
# get it: it says the pipeline failed for the message).
COUNTED_REASONS: tuple[str, ...] = (*ALL_REASONS, INTERNAL_ERROR)
# Reasons that rank after ``unknown_project``: decoding finds them, but reports them only once the
# project is known to be registered (see ``transforms.core.model.DeadLetter.after_project_check``).
AFTER_PROJECT_CHECK: frozenset[str] = frozenset(PRECEDENCE[PRECEDENCE.index(UNKNOWN_PROJECT) + 1 :])

# Stages that can reject a message (the ``dead_letter_stage`` attribute).
STAGE_READ = "read"  # an archive line or record that cannot be read at all
STAGE_DECODE = "decode"
STAGE_VALIDATE = "validate"  # project registration
STAGE_KEY = "key"  # keying and routing a decoded message to its key (encoding it for the shuffle)
STAGE_APPLY = "apply"  # the group engine (event lookups)
STAGE_WRITE = "write"  # building and committing the rows of a key's write
