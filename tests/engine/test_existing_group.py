"""Occurrences on a key's existing group (rule 3.4, the latest-field rule of 2, E2)."""

from __future__ import annotations

from tests.engine.builders import (
    ERROR,
    NO_NOISE,
    NO_NOISE_OTHER,
    SECOND,
    T0,
    occurrence,
    run,
)
from transforms.core import metrics
from transforms.core.enums import LOG_LEVELS, Priority
from transforms.core.intents import InsertOccurrence, RecordEvent


def test_each_attached_occurrence_counts_once_and_widens_first_and_last_seen():
    result = run(
        [occurrence(T0, event_time=T0)],
        [occurrence(T0 + 10 * SECOND, event_time=T0 - 30 * SECOND)],
        [occurrence(T0 + 20 * SECOND, event_time=T0 + 60 * SECOND)],
    )
    row = result.group
    assert row.times_seen == 3
    assert row.first_seen == T0 - 30 * SECOND
    assert row.last_seen == T0 + 60 * SECOND
    assert len(result.tables.occurrences) == 3
    assert result.count(metrics.OCCURRENCES_ATTACHED) == 3


def test_latest_fields_follow_the_occurrence_with_the_greatest_message_time():
    newer = occurrence(T0 + 10 * SECOND, title="Newer", subtitle="new sub", culprit="new.py", level="fatal")
    older = occurrence(T0 + 5 * SECOND, title="Older", subtitle="old sub", culprit="old.py", level="debug")
    first = occurrence(T0)
    row = run([first], [newer], [older]).group  # ``older`` arrives last
    assert (row.title, row.subtitle, row.culprit, row.level) == (
        "Newer",
        "new sub",
        "new.py",
        LOG_LEVELS["fatal"],
    )
    assert row.message == "Newer new sub new.py"
    assert row.data["metadata"]["value"] == "new sub"
    assert row.data["last_received"] == "2024-06-01T12:00:10Z"


def test_latest_field_ties_in_message_time_are_broken_by_message_id():
    first = occurrence(T0, message_id="m-a")
    b = occurrence(T0 + SECOND, title="from b", message_id="m-b")
    c = occurrence(T0 + SECOND, title="from c", message_id="m-c")
    assert run([first], [c], [b]).group.title == "from c"
    assert run([first], [b, c]).group.title == "from c"


def test_level_follows_the_latest_occurrence_even_downwards():
    row = run([occurrence(T0, level="fatal")], [occurrence(T0 + SECOND, level="info")]).group
    assert row.level == LOG_LEVELS["info"]


def test_an_absent_culprit_sets_the_culprit_of_an_existing_group_to_empty():
    row = run([occurrence(T0, culprit="a.py")], [occurrence(T0 + SECOND, culprit="")]).group
    assert row.culprit == ""


def test_occurrences_do_not_change_the_priority_of_an_existing_group():
    row = run(
        [occurrence(T0, priority=Priority.LOW)], [occurrence(T0 + SECOND, priority=Priority.HIGH)]
    ).group
    assert row.priority == Priority.LOW
    assert row.data["metadata"]["initial_priority"] == Priority.LOW


def test_occurrence_of_another_category_is_counted_and_not_attached():
    mismatch = occurrence(T0 + SECOND, type=ERROR, title="Error title")
    result = run([occurrence(T0)], [mismatch])
    row = result.group
    assert row.times_seen == 1 and row.title == "Endpoint regression"
    assert result.count(metrics.CATEGORY_MISMATCH) == 1
    assert (row.group_id, mismatch.payload.id) not in result.tables.occurrences
    # the event of the event path is stored before the category check (E7)
    assert any(isinstance(intent, RecordEvent) for intent in result.writes[1].intents)
    assert not any(isinstance(intent, InsertOccurrence) for intent in result.writes[1].intents)


def test_occurrence_of_another_type_in_the_same_category_is_attached_and_keeps_the_group_type():
    result = run([occurrence(T0, type=NO_NOISE)], [occurrence(T0 + SECOND, type=NO_NOISE_OTHER)])
    assert result.group.type == NO_NOISE
    assert result.group.times_seen == 2


def test_environment_is_recorded_once_with_the_first_release_seen_there():
    result = run(
        [occurrence(T0, environment="prod", release="1.0")],
        [occurrence(T0 + SECOND, environment="prod", release="1.1")],
        [occurrence(T0 + 2 * SECOND, environment="staging", release="1.2")],
        [occurrence(T0 + 3 * SECOND, release="1.2")],
    )
    group = result.group.group_id
    assert result.tables.environments == {
        (group, "prod"): (T0, "1.0"),
        (group, "staging"): (T0 + 2 * SECOND, "1.2"),
        (group, ""): (T0 + 3 * SECOND, "1.2"),
    }
    recorded = [
        intent
        for write in result.writes
        for intent in write.intents
        if type(intent).__name__ == "RecordEnvironment"
    ]
    assert len(recorded) == 3


def test_a_late_occurrence_seen_earlier_in_an_environment_takes_over_its_first_release():
    result = run(
        [occurrence(T0, environment="staging")],
        [occurrence(T0 + 10 * SECOND, environment="prod", release="1.1")],
        [occurrence(T0 + 5 * SECOND, environment="prod", release="1.0")],
    )
    assert result.tables.environments[(result.group.group_id, "prod")] == (T0 + 5 * SECOND, "1.0")
