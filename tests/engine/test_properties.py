"""Batch independence, idempotency and late convergence, over generated sequences of one key.

(a) any permutation of the messages handed to one call, (b) any split of the
key-ordered sequence into consecutive batches, (c) any redelivery of messages
(exact copies, in the batch of the original or any later one, anywhere in that
batch) all give exactly the same final state (encoded bytes) and the same rows
(the writes applied in order, with the seq guard, to the table model).
(d) late arrivals (batches applied in any order) of occurrence-only sequences of
types without a noise gate converge to the in-order rows.
"""

from __future__ import annotations

import os
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.builders import Run
from tests.engine.sequences import Sequence, key_order, sequences
from transforms.core import metrics
from transforms.core.engine import decode_state, encode_state
from transforms.core.enums import VALID_STATUS_CHANGES, GroupStatus, GroupSubStatus
from transforms.core.model import Message

# ENGINE_PROPERTY_EXAMPLES=5000 for a thorough run.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("ENGINE_PROPERTY_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def apply_batches(sequence: Sequence, batches: list[list[Message]]) -> Run:
    result = Run()
    context = sequence.context()
    for batch in batches:
        result.apply(batch, context)
    return result


def assert_same(left: Run, right: Run, *, counters: bool = True) -> None:
    assert encode_state(left.state) == encode_state(right.state)
    assert left.tables.rows() == right.tables.rows()
    assert left.tables.key_states == right.tables.key_states
    if counters:
        assert left.counters == right.counters


@st.composite
def splits(draw: st.DrawFn, messages: list[Message]) -> list[list[Message]]:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(messages) - 1)), max_size=len(messages))))
    bounds = [0, *[cut for cut in cuts if cut < len(messages)], len(messages)]
    return [messages[start:end] for start, end in pairwise(bounds) if end > start]


@PROPERTY_SETTINGS
@given(sequence=sequences(), data=st.data())
def test_any_permutation_within_one_call_gives_the_same_result(sequence, data):
    ordered = key_order(sequence.messages)
    shuffled = data.draw(st.permutations(sequence.messages))
    assert_same(apply_batches(sequence, [shuffled]), apply_batches(sequence, [ordered]))


@PROPERTY_SETTINGS
@given(sequence=sequences(), data=st.data())
def test_any_split_into_consecutive_batches_gives_the_same_result(sequence, data):
    ordered = key_order(sequence.messages)
    batches = data.draw(splits(ordered))
    split = apply_batches(sequence, batches)
    whole = apply_batches(sequence, [ordered])
    assert_same(split, whole)
    assert split.state.seq == whole.state.seq
    assert sorted(dead.message_id for dead in split.dead_letters) == sorted(
        dead.message_id for dead in whole.dead_letters
    )


@PROPERTY_SETTINGS
@given(sequence=sequences(), data=st.data())
def test_any_redelivery_of_messages_gives_the_same_result(sequence, data):
    ordered = key_order(sequence.messages)
    batches = data.draw(splits(ordered))
    delivered = [list(batch) for batch in batches]
    for index, batch in enumerate(batches):
        for message in batch:
            for _ in range(data.draw(st.integers(0, 2))):
                target = data.draw(st.integers(index, len(batches) - 1))
                delivered[target].insert(data.draw(st.integers(0, len(delivered[target]))), message)
    with_copies = apply_batches(sequence, delivered)
    once = apply_batches(sequence, [ordered])
    assert_same(with_copies, once, counters=False)
    ignored = {metrics.DUPLICATES, metrics.OCCURRENCE_MESSAGES}  # a dead letter's copy is a new message
    assert {k: v for k, v in with_copies.counters.items() if k not in ignored} == {
        k: v for k, v in once.counters.items() if k not in ignored
    }


@PROPERTY_SETTINGS
@given(sequence=sequences(occurrence_only=True), data=st.data())
def test_late_occurrences_without_noise_gate_converge_to_the_in_order_rows(sequence, data):
    ordered = key_order(sequence.messages)
    batches = data.draw(splits(ordered))
    arrival = data.draw(st.permutations(batches))
    late = apply_batches(sequence, arrival)
    in_order = apply_batches(sequence, [ordered])
    assert late.tables.rows() == in_order.tables.rows()


@PROPERTY_SETTINGS
@given(sequence=sequences(), data=st.data())
def test_any_arrival_order_keeps_the_rows_consistent(sequence, data):
    """Late arrivals of anything (noise, status changes, deletes, copies) never break the row invariants."""
    batches = data.draw(splits(list(sequence.messages)))
    arrival = data.draw(st.permutations(batches))
    arrival = [
        batch + data.draw(st.lists(st.sampled_from(sequence.messages), max_size=2)) for batch in arrival
    ]
    result = apply_batches(sequence, arrival)
    assert decode_state(encode_state(result.state)) == result.state
    for group_id, row in result.tables.groups.items():
        attached = [key for key in result.tables.occurrences if key[0] == group_id]
        assert row.times_seen == len(attached)
        assert row.first_seen <= row.last_seen
        assert (row.status, row.substatus) in VALID_STATUS_CHANGES | {
            (GroupStatus.UNRESOLVED, GroupSubStatus.NEW)
        }
        assert (row.resolved_at is not None) == (row.status == GroupStatus.RESOLVED)
        assert row.resolution_type is None or row.status == GroupStatus.RESOLVED
        assert result.tables.hashes == {(row.project_id, row.primary_hash): group_id}
    assert len(result.tables.groups) <= 1
    if sequence.quota == 0:  # a real quota with no room: nothing is ever created
        assert not result.tables.groups and result.count(metrics.GROUP_CREATED) == 0
    assert result.state.seq == result.writes[-1].seq if result.writes else result.state.seq == 0
