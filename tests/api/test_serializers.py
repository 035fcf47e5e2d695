"""Sentry's issue JSON: short ids, times, status details."""

from __future__ import annotations

from api.directory import Project
from api.search import GroupDetail, GroupRow
from api.serializers import base36, iso_time, parse_short_id, serialize_group, short_id
from transforms.core.model import MICROS

T = 1_767_225_600 * MICROS + 123_456


def row(**overrides) -> GroupRow:
    values = dict(
        group_id=1295,
        organization_id=1,
        project_id=11,
        status=0,
        substatus=3,
        priority=75,
        type=1006,
        category=2,
        level=40,
        first_seen=T,
        last_seen=T + MICROS,
        times_seen=12,
        first_release=None,
        assignee=None,
    )
    values.update(overrides)
    result = GroupRow(**values)
    result.detail = GroupDetail("N+1 Query", "api.views", "msg", "python", {}, None, None)
    return result


def test_short_id_is_upper_slug_and_base36_upper():
    assert base36(0) == "0"
    assert base36(35) == "Z"
    assert base36(36) == "10"
    assert short_id("backend-api", 1295) == "BACKEND-API-ZZ"
    assert parse_short_id("backend-api-zz") == ("BACKEND-API", 1295)
    assert parse_short_id("nodash") is None
    assert parse_short_id("X-!!") is None


def test_times_are_iso_with_milliseconds_and_z():
    assert iso_time(T) == "2026-01-01T00:00:00.123Z"


def test_issue_has_sentrys_fields_and_types():
    issue = serialize_group(row(), Project(11, 1, "backend"))
    assert issue["id"] == "1295"
    assert issue["shortId"] == "BACKEND-ZZ"
    assert issue["count"] == "12"
    assert issue["userCount"] == 0
    assert issue["level"] == "error"
    assert (issue["status"], issue["substatus"], issue["priority"]) == ("unresolved", "ongoing", "high")
    assert issue["issueType"] == "performance_n_plus_one_db_queries"
    assert issue["issueCategory"] == "performance"
    assert issue["project"] == {"id": "11", "name": "backend", "slug": "backend", "platform": None}
    assert issue["firstSeen"] == "2026-01-01T00:00:00.123Z"
    assert issue["lastSeen"] == "2026-01-01T00:00:01.123Z"
    assert issue["metadata"] == {"title": "N+1 Query"}
    assert issue["type"] == "generic"
    assert issue["statusDetails"] == {}


def test_resolution_shows_in_status_details():
    resolved = row(status=1, substatus=None)
    resolved.detail = GroupDetail("t", "c", "m", None, {}, "in_release", "1.2.0")
    assert serialize_group(resolved, Project(11, 1, "b"))["statusDetails"] == {"inRelease": "1.2.0"}
    resolved.detail = GroupDetail("t", "c", "m", None, {}, "in_next_release", "1.2.0")
    assert serialize_group(resolved, Project(11, 1, "b"))["statusDetails"] == {"inNextRelease": True}


def test_assignee_and_metadata_from_data():
    assigned = row(assignee="team:7")
    assigned.detail = GroupDetail("t", "c", "m", None, {"metadata": {"title": "T", "value": "v"}}, None, None)
    issue = serialize_group(assigned, Project(11, 1, "b"))
    assert issue["assignedTo"] == {"type": "team", "id": "7", "name": None}
    assert issue["metadata"] == {"title": "T", "value": "v"}
