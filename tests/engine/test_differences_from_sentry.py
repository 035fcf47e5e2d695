"""One test per row of docs/behaviour.md section 10 that the engine decides ("Where we differ from Sentry").

Rows decided elsewhere: dashed event ids are normalised by decoding (the engine
compares ids as given); bulk delete without ids is the issue index's rule.
"""

from __future__ import annotations

import pytest

from tests.engine.builders import (
    DAY,
    MINUTE,
    NOISY,
    RESOLVED,
    SECOND,
    T0,
    context,
    event_of,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics, reasons
from transforms.core.engine import apply
from transforms.core.enums import GroupStatus, GroupSubStatus
from transforms.core.model import ProjectInfo


def test_key_is_project_and_hashed_fingerprint_so_projects_never_share_a_group():
    one = run([occurrence(T0)]).state
    other_project = occurrence(T0, project_id=2)
    with pytest.raises(ValueError):
        apply(one, [other_project], context())
    other = run([other_project], ctx=context(project=ProjectInfo(2, 10, "frontend"))).group
    assert other.project_id == 2


def test_order_is_message_time_independent_of_batching():
    messages = [occurrence(T0), status_change(T0 + SECOND, RESOLVED), occurrence(T0 + 2 * SECOND)]
    one_by_one = run(*[[message] for message in messages]).group
    all_at_once = run(list(reversed(messages))).group
    assert one_by_one == all_at_once
    assert all_at_once.substatus == GroupSubStatus.REGRESSED


def test_duplicates_are_never_counted_twice_even_after_300_seconds():
    first = occurrence(T0)
    result = run([first], [occurrence(T0 + 20 * MINUTE)], [first])
    assert result.group.times_seen == 2


def test_a_bad_message_is_dead_lettered_with_a_reason_and_its_neighbours_are_applied():
    bad = occurrence(T0 + SECOND, lookup=True)
    result = run([occurrence(T0), bad, occurrence(T0 + 2 * SECOND)], ctx=context(wait_for_events=False))
    assert [dead.reason for dead in result.dead_letters] == [reasons.EVENT_NOT_FOUND]
    assert result.group.times_seen == 2


def test_a_status_change_before_its_group_is_held_for_a_window():
    result = run([status_change(T0 + SECOND, RESOLVED)], [occurrence(T0)])
    assert result.group.status == RESOLVED


def test_the_noise_counter_resets_on_creation_and_runs_on_message_time():
    noisy = [occurrence(T0 + index * SECOND, type=NOISY) for index in range(3)]
    # processing time (now) is far in the future: only message time matters
    result = run(noisy, ctx=context(now=T0 + 30 * DAY))
    assert result.count(metrics.GROUP_CREATED) == 1 and result.state.noise_count == 0
    result.apply([status_change(T0 + 10 * SECOND, GroupStatus.PENDING_DELETION)])
    result.apply([occurrence(T0 + 11 * SECOND, type=NOISY)])
    assert result.tables.groups == {}  # Sentry (2024) would recreate at once: its counter never reset


def test_the_regression_guard_is_message_time_after_resolved_at_not_five_seconds_after_active_at():
    quick = run([occurrence(T0), status_change(T0 + SECOND, RESOLVED)], [occurrence(T0 + 2 * SECOND)])
    assert quick.group.substatus == GroupSubStatus.REGRESSED
    before = run([occurrence(T0), status_change(T0 + 10 * SECOND, RESOLVED)], [occurrence(T0 + 9 * SECOND)])
    assert before.group.status == RESOLVED


def test_a_resolve_through_a_status_change_sets_resolved_at_and_may_carry_a_release_resolution():
    row = run(
        [occurrence(T0)], [status_change(T0 + SECOND, RESOLVED, resolution=("in_next_release", "1.2.3"))]
    ).group
    assert row.resolved_at == T0 + SECOND
    assert (row.resolution_type, row.resolution_version) == ("in_next_release", "1.2.3")


def test_an_event_lookup_miss_is_retried_for_a_window_then_dead_lettered():
    message = occurrence(T0, lookup=True)
    retried = run([message])
    retried.apply([], context(now=T0 + 5 * MINUTE, events=[event_of(message)]))
    assert retried.group.times_seen == 1 and retried.dead_letters == []
    given_up = run([occurrence(T0, lookup=True)])
    given_up.apply([], context(now=T0 + 10 * MINUTE))
    assert [dead.reason for dead in given_up.dead_letters] == [reasons.EVENT_NOT_FOUND]


def test_lookups_use_the_normalised_event_id_the_event_path_stored():
    carrier = occurrence(T0)
    stored = run([carrier]).tables.events
    lookup = occurrence(T0 + SECOND, lookup=True, with_event=event_of(carrier))
    assert (1, lookup.payload.event_id) in stored
    events = [record.event for record in stored.values()]
    assert run([carrier], [lookup], ctx=context(events=events)).group.times_seen == 2
