"""A message belongs to the group generation of its message time (rule 6.4, 2 "late").

A delete ends its key's generation. A message older (in key order) than that delete belongs to the ended
generation: taken in after the delete (late, or an occurrence that waited for its event), it must not touch
the next generation (no attach, no creation, no noise count, no status change, no break of a run). In key
order it would have been applied to the deleted group and gone with it, so dropping it is exactly the
in-order (backfill) result.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.builders import (
    DELETE,
    IGNORED,
    MINUTE,
    NO_NOISE,
    NOISY,
    PROJECT,
    RESOLVED,
    SECOND,
    T0,
    UNRESOLVED,
    Run,
    context,
    event_of,
    md5_hex,
    occurrence,
    run,
    status_change,
)
from transforms.core import metrics
from transforms.core.engine import decode_state, encode_state
from transforms.core.engine.ids import group_id
from transforms.core.enums import GroupSubStatus
from transforms.core.model import Message

HASH = md5_hex("slow-endpoint:/api/0/checkout")
SECOND_GENERATION = group_id(PROJECT.project_id, HASH, 1)


def backfill(messages: list[Message], events=()) -> Run:
    """What a backfill does with the same messages: key order, every event known, no waiting (E7)."""
    return run(messages, ctx=context(events=events, wait_for_events=False))


def test_an_occurrence_waiting_for_its_event_across_a_delete_is_not_attached_to_the_next_group():
    """Issue 17, point 6: the lookup at 12:00:10 waits; the delete (12:00:20) and the re-creation (12:00:30)
    are applied; then its event arrives. Streaming attached it to the new group (times_seen 2, first_seen
    before the re-creation); the backfill applies it to the deleted group."""
    creator = occurrence(T0)
    waiting = occurrence(T0 + 10 * SECOND, lookup=True)
    delete = status_change(T0 + 20 * SECOND, DELETE)
    recreator = occurrence(T0 + 30 * SECOND)
    streaming = run([creator, waiting, delete, recreator], ctx=context(now=T0))
    assert streaming.state.waiting and streaming.group.group_id == SECOND_GENERATION
    streaming.apply([], context(events=[event_of(waiting)], now=T0 + MINUTE))

    assert streaming.state.waiting == ()
    group = streaming.group
    assert (group.group_id, group.times_seen, group.first_seen) == (SECOND_GENERATION, 1, T0 + 30 * SECOND)
    assert streaming.count(metrics.DROPPED_GROUP_DELETED) == 1
    in_order = backfill([creator, waiting, delete, recreator], events=[event_of(waiting)])
    assert streaming.tables.rows() == in_order.tables.rows()


def test_a_late_occurrence_older_than_a_delete_does_not_touch_the_recreated_group():
    messages = [
        occurrence(T0),
        status_change(T0 + 20 * SECOND, DELETE),
        occurrence(T0 + 30 * SECOND, title="new"),
    ]
    recreated = run(messages)
    late = occurrence(T0 + 10 * SECOND, title="old", release="backend@0.9.0", environment="old-env")
    recreated.apply([late])
    group = recreated.group
    assert (group.group_id, group.times_seen, group.first_seen, group.title) == (
        SECOND_GENERATION,
        1,
        T0 + 30 * SECOND,
        "new",
    )
    assert group.first_release is None and group.active_at == T0 + 30 * SECOND
    assert all(key[0] == SECOND_GENERATION for key in recreated.tables.occurrences)
    assert len(recreated.tables.occurrences) == 1
    assert recreated.count(metrics.DROPPED_GROUP_DELETED) == 1
    assert recreated.count(metrics.LATE_MESSAGES) == 1
    # What the project keeps from it, as in key order: its release's first-seen time, not its event (that
    # would have been stored on its occurrence row, deleted with the group).
    assert recreated.tables.releases == {(PROJECT.project_id, "backend@0.9.0"): T0 + 10 * SECOND}
    assert (PROJECT.project_id, late.payload.event_id) not in recreated.tables.events
    in_order = backfill([messages[0], late, *messages[1:]])
    assert recreated.tables.rows() == in_order.tables.rows()


def test_a_late_occurrence_older_than_a_delete_creates_no_group_and_is_not_counted_by_the_noise_gate():
    ended = run([occurrence(T0), status_change(T0 + 20 * SECOND, DELETE)])
    ended.apply([occurrence(T0 + 10 * SECOND)])
    assert ended.tables.groups == {} and ended.state.group is None
    assert ended.state.generation == 1
    noisy = run(
        [occurrence(T0 + index * SECOND, type=NOISY) for index in range(3)]
        + [status_change(T0 + 20 * SECOND, DELETE)]
        + [occurrence(T0 + (30 + index) * SECOND, type=NOISY) for index in range(2)]
    )
    assert noisy.state.noise_count == 2
    noisy.apply([occurrence(T0 + 10 * SECOND, type=NOISY)])  # would be the third of the new generation
    assert noisy.tables.groups == {} and noisy.state.noise_count == 2
    noisy.apply([occurrence(T0 + 40 * SECOND, type=NOISY)])
    assert noisy.group.group_id == SECOND_GENERATION and noisy.group.times_seen == 1


def test_a_late_status_change_older_than_a_delete_is_stale_for_the_recreated_group():
    """The delete forgets the stale rule's reference with its group; the delete itself still bounds it."""
    result = run([occurrence(T0), status_change(T0 + 20 * SECOND, DELETE), occurrence(T0 + 30 * SECOND)])
    result.apply([status_change(T0 + 10 * SECOND, RESOLVED)])
    assert result.group.status == UNRESOLVED and result.group.group_id == SECOND_GENERATION
    assert result.tables.activities == {}
    assert result.count(metrics.STATUS_CHANGE_STALE) == 1
    # Without a group after the delete, it is not held for the next one either.
    ended = run([occurrence(T0), status_change(T0 + 20 * SECOND, DELETE)])
    ended.apply([status_change(T0 + 10 * SECOND, IGNORED, GroupSubStatus.FOREVER)])
    assert ended.state.held == () and ended.count(metrics.STATUS_CHANGE_STALE) == 1
    ended.apply([occurrence(T0 + 15 * SECOND), occurrence(T0 + 30 * SECOND)])
    assert ended.group.status == UNRESOLVED and ended.group.times_seen == 1


def test_a_late_delete_older_than_the_generation_start_deletes_nothing():
    result = run([occurrence(T0), status_change(T0 + 20 * SECOND, DELETE), occurrence(T0 + 30 * SECOND)])
    result.apply([status_change(T0 + 10 * SECOND, DELETE)])
    assert result.group.group_id == SECOND_GENERATION and result.state.generation == 1
    assert result.count(metrics.GROUPS_DELETED) == 1


def test_a_change_held_after_a_delete_is_not_applied_to_a_group_an_older_occurrence_would_create():
    """A held delete removes the group a late creator made; the change held after it waits for the next
    generation. A late occurrence from before that delete belongs to the deleted group: it must not create
    the next one and carry the held change onto it."""
    held = [
        status_change(T0 + 10 * SECOND, DELETE),
        occurrence(T0 + 15 * SECOND, type=NOISY),  # breaks the run: the resolve is a run of its own
        status_change(T0 + 20 * SECOND, RESOLVED),
    ]
    result = run(held, [occurrence(T0)])
    assert result.tables.groups == {} and [h.change.new_status for h in result.state.held] == [RESOLVED]
    result.apply([occurrence(T0 + 5 * SECOND)])
    assert result.tables.groups == {} and [h.change.new_status for h in result.state.held] == [RESOLVED]
    # A creator of the new generation no later than the resolve still gets it.
    result.apply([occurrence(T0 + 12 * SECOND)])
    assert result.group.group_id == SECOND_GENERATION and result.group.status == RESOLVED


def test_an_occurrence_of_an_ended_generation_does_not_break_the_open_run():
    """In key order it comes before the delete, far from the run of the new generation: the resolve and the
    ignore are one run, and only the ignore counts, however late the old occurrence arrives."""
    messages = [
        occurrence(T0),
        status_change(T0 + 20 * SECOND, DELETE),
        occurrence(T0 + 30 * SECOND),
        status_change(T0 + 40 * SECOND, RESOLVED),
    ]
    old = occurrence(T0 + 10 * SECOND)
    ignore = status_change(T0 + 50 * SECOND, IGNORED, GroupSubStatus.FOREVER)
    streaming = run(messages, [old], [ignore])
    assert streaming.group.status == IGNORED
    assert streaming.count(metrics.DROPPED_STATUS_CHANGES) == 1
    assert streaming.tables.rows() == backfill([messages[0], old, *messages[1:], ignore]).tables.rows()


def test_a_republished_occurrence_of_a_deleted_group_is_a_duplicate_in_the_next_generation():
    first = occurrence(T0)
    republished = occurrence(T0 + 40 * SECOND, occurrence_id=first.payload.id)  # a new message, same id
    messages = [first, status_change(T0 + 20 * SECOND, DELETE), occurrence(T0 + 30 * SECOND), republished]
    streaming = run(messages[:3], [republished])
    assert streaming.count(metrics.DUPLICATES) == 1
    assert streaming.group.group_id == SECOND_GENERATION and streaming.group.times_seen == 1
    assert streaming.tables.rows() == backfill(messages).tables.rows()


def test_the_generation_start_survives_the_stored_state():
    result = run([occurrence(T0), status_change(T0 + 20 * SECOND, DELETE)])
    result.state = decode_state(encode_state(result.state))
    result.apply([occurrence(T0 + 10 * SECOND)])
    assert result.tables.groups == {} and result.count(metrics.DROPPED_GROUP_DELETED) == 1


def test_the_delete_order_decides_between_equal_message_times():
    """Key order breaks ties by message id: the same second as the delete, before or after it."""
    result = run([occurrence(T0), status_change(T0 + 20 * SECOND, DELETE, message_id="m-5")])
    result.apply([occurrence(T0 + 20 * SECOND, message_id="m-4")])
    assert result.tables.groups == {}
    result.apply([occurrence(T0 + 20 * SECOND, message_id="m-6")])
    assert result.group.group_id == SECOND_GENERATION


# ---------------------------------------------------------------------------------------------------------
# Property: generations of occurrences separated by deletes; any occurrence but the first of its generation
# may arrive late, in any order, after everything else. The rows are always the in-order rows.

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def generations(draw: st.DrawFn) -> tuple[list[Message], list[Message], list]:
    """(key-ordered messages, the ones that arrive late, the events their lookups find)."""
    messages: list[Message] = []
    late: list[Message] = []
    events = []
    time = T0
    count = draw(st.integers(1, 4))
    for generation in range(count):
        for index in range(draw(st.integers(1, 4))):
            time += draw(st.sampled_from((0, SECOND, 30 * SECOND, 10 * MINUTE)))
            message = occurrence(
                time,
                message_id=f"m{len(messages):04d}",
                type=NO_NOISE,
                event_time=time + draw(st.sampled_from((0, -MINUTE, SECOND))),
                release=draw(st.sampled_from((None, "backend@1.0.0", "backend@2.0.0", "nightly"))),
                environment=draw(st.sampled_from((None, "production", "staging"))),
                title=f"title {len(messages)}",
                lookup=draw(st.booleans()),
            )
            if message.payload.event is None:
                events.append(event_of(message))
            messages.append(message)
            if index and draw(st.booleans()):
                late.append(message)
        if generation < count - 1:
            time += draw(st.sampled_from((0, SECOND, MINUTE)))
            messages.append(status_change(time, DELETE, message_id=f"m{len(messages):04d}"))
    return messages, late, events


@PROPERTY_SETTINGS
@given(case=generations(), data=st.data())
def test_occurrences_arriving_after_later_deletes_give_the_in_order_rows(case, data):
    messages, late, events = case
    on_time = [message for message in messages if message not in late]
    arrival = [on_time, *([message] for message in data.draw(st.permutations(late)))]
    streaming = Run()
    for batch in arrival:
        streaming.apply(batch, context(events=events))
    assert streaming.tables.rows() == backfill(messages, events).tables.rows()
