"""The noise gate in front of group creation (rule 3.5 step 1, E5).

A key without a group counts the distinct occurrences of noise-configured types
it takes in. The count expires when the gap (message time) since the last
counted occurrence is strictly greater than the type's ``expiry_time``
(sliding: every counted occurrence pushes the expiry out). While the count is
below ``ignore_limit`` the occurrence is dropped; the one that reaches it may
create the group, and creation resets the count [ours: Sentry never resets it].
An occurrence refused by the creation quota leaves the count as it is, so the
key's next occurrence asks the quota again. Types without a noise config skip
the gate and leave the count alone.

Late occurrences (older than the last counted one) never expire the count, so
which occurrence reaches the limit can differ from the in-order result when
messages arrive late: the group may then be created by a later occurrence
than in key order, with that occurrence's creation-time fields.
"""

from __future__ import annotations

from transforms.core.grouptypes import NoiseConfig

_SECOND = 1_000_000


def count_occurrence(
    count: int, last_counted: int, message_time: int, config: NoiseConfig
) -> tuple[int, int]:
    """The key's (count, last counted time) after counting one occurrence at ``message_time``."""
    if count == 0 or message_time - last_counted > config.expiry_seconds * _SECOND:
        return 1, message_time
    return count + 1, max(last_counted, message_time)


def passes_gate(count: int, config: NoiseConfig) -> bool:
    """Whether an occurrence that brought the count to ``count`` may go on to create the group."""
    return count >= config.ignore_limit
