"""The project check (rule 3.1, E1): unknown_project, between unknown_group_type and project_mismatch."""

from __future__ import annotations

from tests.decode.payloads import PROJECTS, decoded, lookup, message, status_change, with_event
from transforms.core import reasons
from transforms.core.model import DeadLetter, ProjectInfo
from transforms.core.projects import check_project


def test_message_of_a_registered_project_passes_unchanged() -> None:
    decoded_message = message(lookup())
    assert check_project(decoded_message, PROJECTS) is decoded_message


def test_message_of_an_unregistered_project_is_unknown_project_at_stage_validate(encoding: str) -> None:
    decoded_message = message(lookup(project_id=5), encoding)
    failed = check_project(decoded_message, PROJECTS)
    assert isinstance(failed, DeadLetter)
    assert failed.reason == reasons.UNKNOWN_PROJECT
    assert failed.stage == reasons.STAGE_VALIDATE
    assert failed.error == "project 5 is not registered"
    assert failed.project_id == 5
    assert (failed.message_id, failed.message_time, failed.data, failed.attributes) == (
        decoded_message.message_id,
        decoded_message.message_time,
        decoded_message.data,
        decoded_message.attributes,
    )


def test_status_change_of_an_unregistered_project_is_unknown_project() -> None:
    failed = check_project(message(status_change(project_id=9)), PROJECTS)
    assert failed.reason == reasons.UNKNOWN_PROJECT


def test_after_project_check_dead_letter_of_unregistered_project_becomes_unknown_project() -> None:
    mismatch = decoded(with_event(project_id=5, event={"project_id": 6}))
    assert mismatch.reason == reasons.PROJECT_MISMATCH and mismatch.after_project_check
    failed = check_project(mismatch, PROJECTS)
    assert failed.reason == reasons.UNKNOWN_PROJECT
    assert failed.stage == reasons.STAGE_VALIDATE


def test_after_project_check_dead_letter_of_registered_project_keeps_its_reason() -> None:
    mismatch = decoded(with_event(event={"project_id": 6}))
    assert check_project(mismatch, PROJECTS) is mismatch


def test_dead_letter_ranked_before_the_project_check_passes_unchanged() -> None:
    invalid = decoded(lookup(project_id=5, level="loud"))
    assert check_project(invalid, {}) is invalid
    unknown_type = decoded(lookup(project_id=5, type=4242))
    assert check_project(unknown_type, {}) is unknown_type


def test_registry_may_be_any_mapping_of_project_ids() -> None:
    registry = {7: ProjectInfo(project_id=7, organization_id=1, slug="seven")}
    assert check_project(message(lookup(project_id=7)), registry).payload.project_id == 7
