"""The releases a group was seen in (GroupReleases, the issue index's ``release:`` filter)."""

from __future__ import annotations

from tests.engine.builders import SECOND, T0, occurrence, run
from transforms.core.intents import RecordGroupRelease


def group_release_intents(result) -> list[RecordGroupRelease]:
    return [
        intent
        for write in result.writes
        for intent in write.intents
        if isinstance(intent, RecordGroupRelease)
    ]


def test_each_release_of_a_group_is_recorded_once_not_per_occurrence():
    result = run(
        [occurrence(T0, release="1.0.0"), occurrence(T0 + SECOND, release="1.0.0")],
        [occurrence(T0 + 2 * SECOND, release="1.0.0"), occurrence(T0 + 3 * SECOND, release="1.1.0")],
        [occurrence(T0 + 4 * SECOND, release=None)],
    )
    assert [intent.release for intent in group_release_intents(result)] == ["1.0.0", "1.1.0"]
    group_id = result.group.group_id
    assert result.tables.group_releases == {(group_id, "1.0.0"), (group_id, "1.1.0")}
