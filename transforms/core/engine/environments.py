"""Group environments (rule 3.4, 6.1: GroupEnvironments with the first release seen there).

The group remembers, per environment, the first attached occurrence seen
there, by key order (message time, then message id). ``RecordEnvironment`` is
emitted when an environment is new to the group or seen by an occurrence
earlier in key order than the remembered one (so a late message carries the
earlier first release). Writers keep the row with the smallest first-seen
time and, on equal times, the later write: the engine only writes again on a
tie for an occurrence earlier in key order, so the row converges to the
in-order one. An event without an environment counts as the environment
``""``, as in Sentry. The map is bounded: past
``MAX_KNOWN_ENVIRONMENTS`` the environment first seen longest ago is
forgotten, which only costs one more ``RecordEnvironment`` if it comes back.
"""

from __future__ import annotations

MAX_KNOWN_ENVIRONMENTS = 32


# Releases a group was seen in (the issue index's ``release:`` filter, GroupReleases): the group remembers
# the most recent ones and emits ``RecordGroupRelease`` for a release new to it; a forgotten release that
# comes back is recorded again, which rewrites the same row.
MAX_KNOWN_GROUP_RELEASES = 32


def record_group_release(known: dict[str, int], release: str, message_time: int) -> bool:
    """Note ``release`` named by an attached occurrence; True when a ``RecordGroupRelease`` must be emitted."""
    if release in known:
        if message_time > known[release]:
            known[release] = message_time
        return False
    known[release] = message_time
    if len(known) > MAX_KNOWN_GROUP_RELEASES:
        del known[min(known, key=lambda version: (known[version], version))]
    return True


def environment_name(environment: str | None) -> str:
    return environment or ""


def record_environment(
    known: dict[str, tuple[int, str]], environment: str, message_time: int, message_id: str
) -> bool:
    """Note ``environment`` seen by a message; True when a ``RecordEnvironment`` must be emitted."""
    recorded = known.get(environment)
    if recorded is not None:
        recorded_time = recorded[0]
        if recorded_time < message_time or (recorded_time == message_time and recorded[1] <= message_id):
            return False
    known[environment] = (message_time, message_id)
    if recorded is None and len(known) > MAX_KNOWN_ENVIRONMENTS:
        oldest = min(known.items(), key=_oldest_first)[0]
        del known[oldest]
    return True


def _oldest_first(item: tuple[str, tuple[int, str]]) -> tuple[int, str, str]:
    return item[1][0], item[1][1], item[0]
