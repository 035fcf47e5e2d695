"""Key order: message time, then message id compared as strings (rule 2, E4)."""

from __future__ import annotations

from tests.engine.builders import SECOND, T0, occurrence, run, status_change
from transforms.core import metrics
from transforms.core.enums import GroupStatus, GroupSubStatus


def test_a_batch_is_applied_in_message_time_order_whatever_its_arrival_order():
    first = occurrence(T0, title="first")
    resolve = status_change(T0 + SECOND, GroupStatus.RESOLVED)
    last = occurrence(T0 + 2 * SECOND, title="last")
    for arrival in ([last, resolve, first], [resolve, first, last], [first, last, resolve]):
        row = run(arrival).group
        assert (row.status, row.substatus, row.title) == (
            GroupStatus.UNRESOLVED,
            GroupSubStatus.REGRESSED,
            "last",
        )


def test_ties_in_message_time_are_broken_by_message_id_compared_as_strings():
    # "m10" < "m9" as strings, so m9 is the later one and its title wins.
    creator = occurrence(T0 - SECOND)
    m10 = occurrence(T0, title="from m10", message_id="m10")
    m9 = occurrence(T0, title="from m9", message_id="m9")
    assert run([creator, m9, m10]).group.title == "from m9"
    assert run([creator], [m10], [m9]).group.title == "from m9"


def test_messages_in_key_order_are_never_late_whatever_the_batches():
    messages = [occurrence(T0 + index * SECOND) for index in range(4)]
    assert run(messages[:2], messages[2:]).count(metrics.LATE_MESSAGES) == 0
    assert run(messages[2:], messages[:2]).count(metrics.LATE_MESSAGES) == 2
