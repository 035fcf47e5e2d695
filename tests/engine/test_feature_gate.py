"""The feature gate for unreleased group types (rule 3.1, E7)."""

from __future__ import annotations

from tests.engine.builders import PROJECT, SECOND, T0, UNRELEASED, context, occurrence, run
from transforms.core import metrics
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.intents import RecordEvent, RecordRelease, SaveKeyState
from transforms.core.model import ProjectInfo


def test_unreleased_type_without_the_feature_is_counted_and_stores_nothing():
    result = run([occurrence(T0, type=UNRELEASED, release="1.0.0")])
    assert result.count(metrics.DROPPED_FEATURE_DISABLED) == 1
    assert result.tables.groups == {} and result.tables.events == {} and result.tables.releases == {}
    (write,) = result.writes
    assert not any(isinstance(intent, (RecordEvent, RecordRelease)) for intent in write.intents)
    assert isinstance(write.intents[-1], SaveKeyState)  # the key state still records it (duplicates, seq)


def test_unreleased_type_is_accepted_with_the_organization_feature():
    feature = GROUP_TYPES[UNRELEASED].ingest_feature
    assert feature == "organizations:performance-http-overhead-ingest"
    project = ProjectInfo(
        PROJECT.project_id, PROJECT.organization_id, PROJECT.slug, features=frozenset({feature})
    )
    messages = [occurrence(T0 + index * SECOND, type=UNRELEASED) for index in range(20)]  # noise limit 20
    result = run(messages, ctx=context(project=project))
    assert result.count(metrics.GROUP_CREATED) == 1
    assert result.count(metrics.DROPPED_FEATURE_DISABLED) == 0
