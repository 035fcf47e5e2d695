"""Bulk update bodies (Sentry's) become status-change pairs, resolutions and Sentry's echo."""

from __future__ import annotations

import uuid

import pytest

from api.bulk import SelectedGroup, delete_payloads, parse_update, topic_path, update_payloads
from api.errors import ApiError
from transforms.core.enums import VALID_STATUS_CHANGES, GroupStatus, GroupSubStatus


def bad(body) -> str:
    with pytest.raises(ApiError) as caught:
        parse_update(body)
    assert caught.value.status == 400
    return caught.value.detail


def test_resolved():
    u = parse_update({"status": "resolved"})
    assert (u.status, u.substatus, u.resolution_type) == (GroupStatus.RESOLVED, None, None)
    assert u.echo == {"status": "resolved", "substatus": None, "statusDetails": {}}


def test_resolved_in_release_and_in_next_release():
    u = parse_update({"status": "resolved", "statusDetails": {"inRelease": "1.2.0"}})
    assert (u.resolution_type, u.resolution_version) == ("in_release", "1.2.0")
    assert u.echo["statusDetails"] == {"inRelease": "1.2.0"}
    for body in (
        {"status": "resolved", "statusDetails": {"inNextRelease": True}},
        {"status": "resolvedInNextRelease"},
    ):
        u = parse_update(body)
        assert u.resolution_type == "in_next_release"
        assert u.echo == {"status": "resolved", "substatus": None, "statusDetails": {"inNextRelease": True}}


def test_unresolved_is_ongoing_unless_a_substatus_is_given():
    assert parse_update({"status": "unresolved"}).substatus == GroupSubStatus.ONGOING
    assert (
        parse_update({"status": "unresolved", "substatus": "escalating"}).substatus
        == GroupSubStatus.ESCALATING
    )
    assert "cannot be set with status unresolved" in bad({"status": "unresolved", "substatus": "new"})


def test_ignored_forever_by_default_until_condition_met_with_a_snooze():
    assert parse_update({"status": "ignored"}).substatus == GroupSubStatus.FOREVER
    assert parse_update({"status": "muted", "snoozeDuration": None}).substatus == GroupSubStatus.FOREVER
    assert (
        parse_update({"status": "muted", "snoozeDuration": 30}).substatus
        == GroupSubStatus.UNTIL_CONDITION_MET
    )
    u = parse_update({"status": "ignored", "statusDetails": {"ignoreCount": 100}})
    assert u.substatus == GroupSubStatus.UNTIL_CONDITION_MET
    u = parse_update({"status": "ignored", "statusDetails": {"ignoreUntilEscalating": True}})
    assert u.substatus == GroupSubStatus.UNTIL_ESCALATING
    u = parse_update({"status": "ignored", "substatus": "archived_until_escalating"})
    assert (u.status, u.substatus) == (GroupStatus.IGNORED, GroupSubStatus.UNTIL_ESCALATING)
    assert u.echo["status"] == "ignored"


def test_every_accepted_update_is_a_valid_status_change_pair():
    bodies = [
        {"status": s, "substatus": sub}
        for s in ("resolved", "unresolved", "ignored", "muted")
        for sub in (None, "ongoing", "escalating", "regressed", "new", "archived_forever", "forever")
    ]
    for body in bodies:
        try:
            u = parse_update(body)
        except ApiError:
            continue
        assert (u.status, u.substatus) in VALID_STATUS_CHANGES


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([], "JSON object"),
        ({}, '"status" is required'),
        ({"status": "closed"}, 'Invalid status "closed"'),
        ({"status": "resolved", "hasSeen": True}, '"hasSeen" is not supported'),
        ({"status": "resolved", "substatus": "ongoing"}, "cannot be set with status resolved"),
        ({"status": "resolved", "substatus": "bogus"}, 'Invalid substatus "bogus"'),
        (
            {"status": "resolved", "statusDetails": {"inCommit": "abc"}},
            "statusDetails.inCommit is not supported",
        ),
        ({"status": "resolved", "statusDetails": {"inRelease": ""}}, "non-empty string"),
        (
            {"status": "resolved", "statusDetails": {"inRelease": "1", "inNextRelease": True}},
            "cannot be combined",
        ),
        ({"status": "unresolved", "statusDetails": {"inRelease": "1"}}, "apply to status resolved only"),
        ({"status": "resolved", "snoozeDuration": 5}, "apply to status ignored only"),
        ({"status": "ignored", "snoozeDuration": -1}, "non-negative"),
        ({"status": "ignored", "snoozeDuration": "5"}, "non-negative"),
        ({"status": "ignored", "statusDetails": "x"}, "must be an object"),
    ],
)
def test_bad_bodies_are_400_naming_the_problem(body, needle):
    assert needle in bad(body)


def test_payloads_are_sentrys_status_change_json_with_our_resolution():
    groups = [SelectedGroup(1, 11, "fp-a"), SelectedGroup(2, 12, "fp-b")]
    payloads = update_payloads(
        groups, parse_update({"status": "resolvedInNextRelease"}), {11: "1.0.0", 12: "2.0.0"}
    )
    assert payloads[0]["payload_type"] == "status_change"
    assert uuid.UUID(hex=payloads[0]["id"]).hex == payloads[0]["id"]
    assert payloads[0]["id"] != payloads[1]["id"]
    assert {k: v for k, v in payloads[1].items() if k != "id"} == {
        "payload_type": "status_change",
        "project_id": 12,
        "fingerprint": ["fp-b"],
        "new_status": 1,
        "new_substatus": None,
        "resolution": {"type": "in_next_release", "version": "2.0.0"},
    }
    (deleted,) = delete_payloads(groups[:1])
    assert (deleted["new_status"], deleted["new_substatus"], "resolution" in deleted) == (3, None, False)


def test_topic_path():
    assert topic_path("p", "t") == "projects/p/topics/t"
    assert topic_path("p", "projects/q/topics/t") == "projects/q/topics/t"
