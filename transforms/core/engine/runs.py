"""Runs of consecutive status changes: only the last of a run is applied (rule 5.2, E3, E13).

A run is a sequence of valid, non-duplicate status changes taken in with no
occurrence taken in between. Any valid non-duplicate occurrence that is
applied closes the run, whatever becomes of it (attached, noise-dropped,
quota-refused, category-mismatched, feature-gated); dead letters and
occurrences waiting for their event do not (E13); stale status changes take no
part in runs; a delete closes the run and is never reverted.

The engine applies every status change as it comes and reverts the previous
member of its run first: it restores the group's status fields from the
snapshot taken before that member, takes back its activities and counts it as
dropped. The member and snapshot live in the key state, so the result is the
same whether a run spans one ``apply`` call or several (the result equals
Sentry's "keep only the last", applied at the run's place in key order).
"""

from __future__ import annotations

from transforms.core.engine.state import MutableGroup, RunMember


def run_member(run: int, group: MutableGroup, payload_id: str) -> RunMember:
    """A run member for a status change about to be applied, with the snapshot of the group before it."""
    return RunMember(
        run=run,
        group_id=group.group_id,
        payload_id=payload_id,
        activity_ids=(),
        status=group.status,
        substatus=group.substatus,
        priority=group.priority,
        resolved_at=group.resolved_at,
        resolution_type=group.resolution_type,
        resolution_version=group.resolution_version,
        resolution_first_seen=group.resolution_first_seen,
    )


def restore(group: MutableGroup, member: RunMember) -> None:
    """Put back the status fields the group had before ``member`` was applied."""
    group.status = member.status
    group.substatus = member.substatus
    group.priority = member.priority
    group.resolved_at = member.resolved_at
    group.resolution_type = member.resolution_type
    group.resolution_version = member.resolution_version
    group.resolution_first_seen = member.resolution_first_seen
