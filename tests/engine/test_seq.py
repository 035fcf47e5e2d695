"""``seq`` and the shape of a KeyWrite (decision 2; rule 6.3)."""

from __future__ import annotations

from tests.engine.builders import MINUTE, NOISY, SECOND, T0, context, event_of, occurrence, run, status_change
from tests.engine.tables import Tables
from transforms.core.engine import apply, encode_state
from transforms.core.enums import GroupStatus
from transforms.core.intents import SaveKeyState, UpsertGroup


def test_seq_counts_every_non_duplicate_message_taken_in():
    first = occurrence(T0, type=NOISY)
    messages = [first, first, occurrence(T0 + SECOND, type=NOISY), status_change(T0 + 2 * SECOND, 1)]
    result = run(messages)
    assert result.state.seq == 3
    assert result.writes[-1].seq == 3


def test_seq_does_not_depend_on_batch_boundaries():
    messages = [occurrence(T0 + index * SECOND) for index in range(6)]
    whole = run(messages)
    split = run(messages[:1], messages[1:4], messages[4:])
    assert whole.state.seq == split.state.seq == 6
    assert [write.seq for write in split.writes] == [1, 4, 6]


def test_a_waiting_lookup_takes_a_seq_when_it_waits_and_when_it_settles():
    waiting = occurrence(T0, lookup=True)
    result = run([waiting])
    assert result.state.seq == 1
    result.apply([], context(events=[event_of(waiting)], now=T0 + MINUTE))
    assert result.state.seq == 2
    expired = run([occurrence(T0, lookup=True)])
    expired.apply([], context(now=T0 + 11 * MINUTE))
    assert expired.state.seq == 2 and len(expired.dead_letters) == 1


def test_a_call_that_takes_nothing_in_writes_nothing():
    result = run([occurrence(T0, lookup=True)])
    state, outputs = apply(result.state, [], context(now=T0 + MINUTE))
    assert outputs.write is None and state is result.state


def test_every_write_ends_with_the_key_state_and_says_when_the_group_changed():
    result = run(
        [occurrence(T0)],
        [occurrence(T0 + SECOND)],
        [status_change(T0 + 2 * SECOND, GroupStatus.PENDING_DELETION)],
    )
    saves = [write.intents[-1] for write in result.writes]
    assert all(isinstance(save, SaveKeyState) for save in saves)
    assert [save.relink for save in saves] == [True, False, True]
    assert saves[0].group_id == saves[1].group_id == result.writes[0].intents[1].row.group_id
    assert saves[2].group_id is None
    assert saves[-1].state == encode_state(result.state)


def test_an_occurrence_dropped_before_any_group_writes_only_the_key_state():
    write = run([occurrence(T0, type=NOISY, buffered=True)]).writes[0]
    assert [type(intent) for intent in write.intents] == [SaveKeyState]


def test_one_group_row_per_write_whatever_the_batch_size():
    write = run([occurrence(T0 + index * SECOND) for index in range(50)]).writes[0]
    assert sum(isinstance(intent, UpsertGroup) for intent in write.intents) == 1


def test_the_tables_ignore_a_write_older_than_the_one_applied():
    result = run([occurrence(T0)], [occurrence(T0 + SECOND)])
    tables = Tables()
    tables.apply(result.writes[1])
    tables.apply(result.writes[0])
    assert tables.ignored_writes == 1
    assert tables.groups == result.tables.groups
