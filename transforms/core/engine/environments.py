"""Group environments (SEMANTICS 3.4, 6.1: GroupEnvironments with the first release seen there).

The group remembers, per environment, the smallest message time at which an
attached occurrence was seen there. ``RecordEnvironment`` is emitted when an
environment is new to the group or seen earlier than remembered (so a late
message carries the earlier first release); writers keep the row with the
smallest first-seen time. An event without an environment counts as the
environment ``""``, as in Sentry. The map is bounded: past
``MAX_KNOWN_ENVIRONMENTS`` the environment first seen longest ago is
forgotten, which only costs one more ``RecordEnvironment`` if it comes back.
"""

from __future__ import annotations

MAX_KNOWN_ENVIRONMENTS = 32


def environment_name(environment: str | None) -> str:
    return environment or ""


def record_environment(known: dict[str, int], environment: str, message_time: int) -> bool:
    """Note ``environment`` at ``message_time``; True when a ``RecordEnvironment`` must be emitted."""
    recorded = known.get(environment)
    if recorded is not None and recorded <= message_time:
        return False
    known[environment] = message_time
    if recorded is None and len(known) > MAX_KNOWN_ENVIRONMENTS:
        oldest = min(known.items(), key=_oldest_first)[0]
        del known[oldest]
    return True


def _oldest_first(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]
