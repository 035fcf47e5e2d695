"""Status changes that arrive before their group (rule 5.2) [ours: Sentry drops them].

A status change for a key without a group is held in the key state with its
message time and run number. Before each message is taken in, held changes
older than ``message_time - pending_status_window`` expire (counted
``dropped_group_not_found``): the same "horizon before each message" rule as
the duplicate memory, so the outcome does not depend on batch boundaries.
When an occurrence creates the group, the held changes with a message time not
earlier than the creator's are applied right after the creation, in key order,
with their own run numbers (so runs are pruned as usual); the others are
dropped and counted. In key order a status change is only ever held ahead of
its creator when the creator arrives late (or waited for its event).
"""

from __future__ import annotations

from operator import attrgetter

from transforms.core.engine.state import HeldChange

_TIME = attrgetter("message_time")


def expire(held: list[HeldChange], message_time: int, window: int) -> int:
    """Drop, in place, the held changes older than ``message_time - window``; how many were dropped."""
    horizon = message_time - window
    kept = [change for change in held if change.message_time >= horizon]
    dropped = len(held) - len(kept)
    if dropped:
        held[:] = kept
    return dropped


def earliest(held: list[HeldChange]) -> int | None:
    """The earliest message time of the held changes (None if there are none): until the horizon passes it,
    ``expire`` drops nothing."""
    return min(map(_TIME, held)) if held else None


def split_for_creator(held: list[HeldChange], creator_time: int) -> tuple[list[HeldChange], int]:
    """The held changes to apply after a creation at ``creator_time`` (in key order), and how many are dropped."""
    applicable = sorted(
        (change for change in held if change.message_time >= creator_time),
        key=lambda change: (change.message_time, change.message_id),
    )
    return applicable, len(held) - len(applicable)
