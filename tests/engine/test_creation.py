"""Group creation (rule 3.5 step 3, 3.6, E9, E12/E16 ids)."""

from __future__ import annotations

from tests.engine.builders import (
    FEEDBACK,
    NO_NOISE,
    PROJECT,
    SECOND,
    T0,
    context,
    md5_hex,
    occurrence,
    run,
)
from transforms.core import metrics
from transforms.core.engine.ids import group_id
from transforms.core.engine.rows import search_message
from transforms.core.enums import LOG_LEVELS, GroupCategory, GroupStatus, GroupSubStatus, Priority
from transforms.core.intents import InsertOccurrence, LinkHashes, UpsertGroup
from transforms.core.model import ProjectInfo


def test_first_occurrence_of_a_type_without_noise_creates_an_unresolved_new_group():
    message = occurrence(
        T0 + 5 * SECOND, event_time=T0, release="backend@1.0.0", level="error", platform="node"
    )
    result = run([message])
    row = result.group
    assert (row.status, row.substatus) == (GroupStatus.UNRESOLVED, GroupSubStatus.NEW)
    assert row.times_seen == 1
    assert row.first_seen == row.last_seen == T0  # event time
    assert row.active_at == T0 + 5 * SECOND  # message time
    assert row.priority == Priority.MEDIUM  # the type's default (1018)
    assert row.first_release == "backend@1.0.0"
    assert row.level == LOG_LEVELS["error"]
    assert row.platform == "node"
    assert row.type == NO_NOISE and row.category == GroupCategory.PERFORMANCE
    assert row.title == "Endpoint regression"
    assert row.subtitle == "p95 went from 120ms to 900ms"
    assert row.culprit == "GET /api/0/checkout"
    assert row.resolved_at is None and row.resolution_type is None
    assert row.organization_id == PROJECT.organization_id
    assert row.fingerprint == "slow-endpoint:/api/0/checkout"
    assert row.generation == 0
    assert result.count(metrics.GROUP_CREATED) == 1


def test_new_group_data_follows_sentry_issue_platform_groups():
    row = run([occurrence(T0, priority=Priority.HIGH)]).group
    assert row.data == {
        "type": "generic",
        "title": "Endpoint regression",
        "culprit": "GET /api/0/checkout",
        "last_received": "2024-06-01T12:00:00Z",
        "metadata": {
            "title": "Endpoint regression",
            "value": "p95 went from 120ms to 900ms",
            "initial_priority": Priority.HIGH,
        },
    }


def test_priority_of_the_message_wins_over_the_type_default():
    row = run([occurrence(T0, priority=Priority.LOW)]).group
    assert row.priority == Priority.LOW
    assert row.data["metadata"]["initial_priority"] == Priority.LOW


def test_creation_links_the_primary_hash_and_attaches_the_occurrence():
    message = occurrence(T0, fingerprint=("slow-endpoint:/api/0/checkout", "second-part"), environment="prod")
    result = run([message])
    row = result.group
    assert result.tables.hashes == {
        (PROJECT.project_id, md5_hex("slow-endpoint:/api/0/checkout")): row.group_id
    }
    stored = result.tables.occurrences[(row.group_id, message.payload.id)]
    assert stored.message_id == message.message_id
    assert stored.event_time == T0
    assert stored.environment == "prod"
    assert result.tables.environments == {(row.group_id, "prod"): (T0, None)}
    assert stored.occurrence.hashes == (md5_hex("slow-endpoint:/api/0/checkout"), md5_hex("second-part"))


def test_group_row_is_written_before_the_rows_that_hang_off_it():
    write = run([occurrence(T0)]).writes[0]
    kinds = [type(intent) for intent in write.intents]
    assert kinds.index(UpsertGroup) < kinds.index(LinkHashes) < kinds.index(InsertOccurrence)


def test_group_id_is_a_positive_63_bit_hash_of_project_hash_and_generation():
    row = run([occurrence(T0)]).group
    assert row.group_id == group_id(PROJECT.project_id, md5_hex("slow-endpoint:/api/0/checkout"), 0)
    assert 0 < row.group_id < 2**63
    assert group_id(1, "a" * 32, 0) != group_id(1, "a" * 32, 1)


def test_same_fingerprint_in_two_projects_makes_two_groups():
    other = ProjectInfo(project_id=2, organization_id=10, slug="frontend")
    first = run([occurrence(T0)]).group
    second = run([occurrence(T0, project_id=2)], ctx=context(project=other)).group
    assert first.group_id != second.group_id
    assert (first.project_id, second.project_id) == (1, 2)


def test_search_message_joins_title_subtitle_and_culprit_skipping_empty_and_contained_parts():
    assert search_message("Slow query", "SELECT 1", "db.py") == "Slow query SELECT 1 db.py"
    assert search_message("Slow query", "", "db.py") == "Slow query db.py"
    assert search_message("Slow query in db.py", "Slow query", "db.py") == "Slow query in db.py"
    assert search_message("", "", "") == ""


def test_feedback_group_carries_the_feedback_fields_in_its_metadata():
    evidence = {
        "contact_email": "a@example.com",
        "message": "It broke",
        "name": "Ann",
        "source": "widget",
        "x": 1,
    }
    row = run([occurrence(T0, type=FEEDBACK, evidence_data=evidence)]).group
    metadata = row.data["metadata"]
    assert metadata["contact_email"] == "a@example.com"
    assert metadata["message"] == "It broke"
    assert metadata["name"] == "Ann"
    assert metadata["source"] == "widget"
    assert "x" not in metadata


def test_assignee_is_set_when_the_group_is_created_and_not_changed_by_later_occurrences():
    result = run([occurrence(T0, assignee="user:1")], [occurrence(T0 + SECOND, assignee="team:2")])
    assert result.group.assignee == "user:1"
