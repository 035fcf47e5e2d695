"""The noise gate before group creation (rule 3.5 step 1, E5, E7)."""

from __future__ import annotations

from tests.engine.builders import HOUR, NO_NOISE, NOISY, SECOND, T0, occurrence, run
from transforms.core import metrics
from transforms.core.engine.noise import count_occurrence, passes_gate
from transforms.core.grouptypes import NoiseConfig
from transforms.core.intents import RecordEvent

DAY = 24 * HOUR


def test_the_nth_occurrence_of_a_noisy_type_creates_the_group_with_its_own_fields():
    messages = [occurrence(T0 + index * SECOND, type=NOISY, title=f"t{index}") for index in range(3)]
    result = run(messages[:1], messages[1:2], messages[2:])
    row = result.group
    assert result.count(metrics.DROPPED_NOISE) == 2
    assert row.times_seen == 1  # the dropped occurrences do not count
    assert row.first_seen == T0 + 2 * SECOND and row.active_at == T0 + 2 * SECOND
    assert row.title == "t2"
    assert len(result.tables.occurrences) == 1


def test_occurrences_below_the_limit_are_not_stored_but_their_events_are():
    result = run([occurrence(T0, type=NOISY)], [occurrence(T0 + SECOND, type=NOISY)])
    assert result.tables.groups == {} and result.tables.occurrences == {}
    assert len(result.tables.events) == 2
    assert all(any(isinstance(intent, RecordEvent) for intent in write.intents) for write in result.writes)


def test_noise_count_survives_a_gap_of_exactly_the_expiry_time():
    messages = [
        occurrence(T0, type=NOISY),
        occurrence(T0 + DAY, type=NOISY),
        occurrence(T0 + 2 * DAY, type=NOISY),
    ]
    assert run(messages).count(metrics.GROUP_CREATED) == 1


def test_noise_count_expires_after_a_gap_longer_than_the_expiry_time():
    messages = [
        occurrence(T0, type=NOISY),
        occurrence(T0 + SECOND, type=NOISY),
        occurrence(T0 + SECOND + DAY + 1, type=NOISY),
    ]
    result = run(messages)
    assert result.count(metrics.GROUP_CREATED) == 0
    assert result.count(metrics.DROPPED_NOISE) == 3
    assert result.state.noise_count == 1


def test_noise_expiry_slides_with_every_counted_occurrence():
    messages = [occurrence(T0 + index * 20 * HOUR, type=NOISY) for index in range(3)]  # 40 h in all
    assert run(messages).count(metrics.GROUP_CREATED) == 1


def test_types_without_a_noise_config_skip_the_gate_and_keep_no_count():
    result = run([occurrence(T0, type=NO_NOISE)])
    assert result.count(metrics.GROUP_CREATED) == 1
    assert result.count(metrics.DROPPED_NOISE) == 0
    assert result.state.noise_count == 0


def test_creation_resets_the_noise_count():
    messages = [occurrence(T0 + index * SECOND, type=NOISY) for index in range(3)]
    state = run(messages).state
    assert state.noise_count == 0 and state.noise_last == 0


def test_noise_gate_helpers_count_expire_and_pass_at_the_limit():
    config = NoiseConfig(ignore_limit=2, expiry_seconds=10)
    count, last = count_occurrence(0, 0, 100, config)
    assert (count, last) == (1, 100) and not passes_gate(count, config)
    count, last = count_occurrence(count, last, 100 + 10 * SECOND, config)
    assert count == 2 and passes_gate(count, config)
    assert count_occurrence(1, 100, 100 + 10 * SECOND + 1, config) == (1, 100 + 10 * SECOND + 1)
    assert count_occurrence(1, 500, 100, config) == (2, 500)  # a late occurrence never expires the count
