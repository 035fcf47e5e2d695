"""Sentry's search terms on the emulator (issue 19): each term against a small hand-made organization whose
answer is known, the terms that gave silent wrong answers, and the terms this index cannot answer (a 400 that
names them and says why)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.directory import Directory
from api.service import IssueIndex
from tests.api.factories import (
    DAY,
    HOUR,
    T0,
    G,
    add_group_releases,
    add_organization,
    add_project,
    add_release,
    add_token,
    write_groups,
)
from transforms.core.enums import ActivityType, GroupStatus, GroupSubStatus, Priority
from transforms.core.model import to_datetime
from web.demo import write_activity

PATH = "/api/0/organizations/acme/issues/"
R, IGN = GroupStatus.RESOLVED, GroupStatus.IGNORED
S = GroupSubStatus


def add_environment_rows(database, rows: list[tuple[int, str, str | None]]) -> None:
    """GroupEnvironments rows: (group, environment, the group's first release there)."""
    with database.batch() as batch:
        batch.insert_or_update(
            "GroupEnvironments",
            ["GroupId", "Environment", "FirstRelease", "FirstSeen"],
            [[g, env, release, to_datetime(T0)] for g, env, release in rows],
        )


def add_regression(database, group_id: int, project_id: int, version: str) -> None:
    """A SET_REGRESSION activity as the pipeline writes it: data {event_id, version}."""
    data = {"event_id": uuid.uuid4().hex, "version": version}
    write_activity(database, group_id, project_id, ActivityType.SET_REGRESSION, T0, data)


def add_occurrence(database, group_id: int, project_id: int, event_id: str) -> None:
    """An attached occurrence of ``event_id`` (the columns the index reads; the rest as the pipeline fills)."""
    columns = [
        "GroupId", "OccurrenceId", "ProjectId", "EventId", "MessageId", "MessageTime", "Fingerprint", "Hashes",
        "Type", "IssueTitle", "Subtitle", "Culprit", "Level", "DetectionTime", "EventTime",
    ]  # fmt: skip
    with database.batch() as batch:
        batch.insert_or_update(
            "Occurrences",
            columns,
            [
                [
                    group_id, uuid.uuid4().hex, project_id, event_id, uuid.uuid4().hex, to_datetime(T0),
                    ["fp"], ["0" * 32], 1, "title", "subtitle", "culprit", "error", to_datetime(T0), to_datetime(T0),
                ]
            ],
        )  # fmt: skip


class Org:
    """Organization acme (projects backend 11, frontend 12) with hand-made groups; globex (21) beside it."""

    def __init__(self, database) -> None:
        add_organization(database, 1, "acme")
        add_organization(database, 2, "globex")
        add_project(database, 11, 1, "backend")
        add_project(database, 12, 1, "frontend")
        add_project(database, 21, 2, "backend")
        self.token = add_token(database, 1, "read")
        g = self.groups = {
            "ongoing": G(101, 11, 1, last_seen=T0 + 9 * HOUR, first_seen=T0 - 3 * DAY, title="TypeError: x is undefined",
                         message="TypeError: x is undefined app.js", first_release="backend@1.2.0",
                         tags=(("browser", "Chrome 120"), ("server_name", "web-1"))),
            "new": G(102, 11, 1, last_seen=T0 + 8 * HOUR, first_seen=T0, substatus=S.NEW, title="ZeroDivisionError",
                     message="ZeroDivisionError: division by zero", first_release="backend@1.10.0"),
            "regressed": G(103, 12, 1, last_seen=T0 + 7 * HOUR, first_seen=T0 - 10 * DAY, substatus=S.REGRESSED,
                           title="Database timeout", message="connection refused by db", first_release="abc123",
                           tags=(("browser", "Firefox 99"),)),
            "escalating": G(104, 12, 1, last_seen=T0 + 6 * HOUR, first_seen=T0 - DAY, substatus=S.ESCALATING,
                            title="Slow sort", message="sorting took 3s", priority=Priority.LOW),
            "resolved": G(105, 11, 1, last_seen=T0 + 5 * HOUR, first_seen=T0 - 2 * DAY, status=R, substatus=None,
                          title="KeyError: 'id'", message="KeyError", first_release="backend@1.2.0"),
            "until_escalating": G(106, 11, 1, last_seen=T0 + 4 * HOUR, status=IGN, substatus=S.UNTIL_ESCALATING,
                                  title="Warning: deprecated", level=30),
            "forever": G(107, 12, 1, last_seen=T0 + 3 * HOUR, status=IGN, substatus=S.FOREVER, title="Noise", level=20),
            "feedback": G(108, 11, 1, last_seen=T0 + 2 * HOUR, type=6001, title="User feedback", priority=Priority.MEDIUM),
            "other_org": G(201, 21, 2, last_seen=T0 + 10 * HOUR, title="TypeError: x is undefined"),
        }  # fmt: skip
        write_groups(database, list(g.values()))
        add_group_releases(
            database,
            [
                (101, "backend@1.2.0"),
                (101, "backend@1.10.0"),
                (102, "backend@1.10.0"),
                (103, "abc123"),
                (103, "def456"),
                (105, "backend@1.2.0"),
                (105, "backend@2.0.0-rc.1+build.77"),
                (104, "frontend@14.2.0+500"),
                (201, "backend@1.10.0"),
            ],
        )
        add_environment_rows(
            database,
            [
                (101, "production", "backend@1.10.0"),
                (101, "staging", "backend@1.2.0"),
                (102, "production", "backend@1.10.0"),
                (103, "prod-eu", "abc123"),
                (105, "staging", "backend@1.2.0"),
            ],
        )
        # backend names releases by semver; frontend by commit sha (its latest is the last seen: def456)
        for version, offset in (("backend@1.2.0", 0), ("backend@1.10.0", -1), ("backend@1.9.0", 2)):
            add_release(database, 11, version, T0 + offset * DAY)
        for version, offset in (
            ("abc123", 0),
            ("def456", 1),
            ("0a1b2c", -1),
            ("9f8e7d", -2),
            ("frontend@14.2.0+500", -5),
        ):
            add_release(database, 12, version, T0 + offset * DAY)
        add_regression(database, 103, 12, "def456")
        add_regression(database, 101, 11, "backend@1.10.0")
        self.event_id = uuid.uuid4().hex
        add_occurrence(database, 102, 11, self.event_id)
        self.shared_event = uuid.uuid4().hex
        add_occurrence(database, 101, 11, self.shared_event)
        add_occurrence(database, 103, 12, self.shared_event)


@pytest.fixture
def org(spanner_db) -> Org:
    return Org(spanner_db.database)


@pytest.fixture
def client(spanner_db) -> TestClient:
    database = spanner_db.database
    index = IssueIndex(database, Directory(database, ttl=0, token_ttl=0), clock=lambda: T0 / 1e6 + 12 * 3600)
    return TestClient(create_app(index), raise_server_exceptions=False)


def search(client: TestClient, org: Org, query: str | None, **params) -> list[str]:
    """The names of the groups a query lists (in date order)."""
    if query is not None:
        params["query"] = query
    response = client.get(PATH, params=params, headers={"Authorization": f"Bearer {org.token}"})
    assert response.status_code == 200, response.text
    by_id = {str(g.group_id): name for name, g in org.groups.items()}
    return [by_id[issue["id"]] for issue in response.json()]


def refused(client: TestClient, org: Org, query: str, **params) -> str:
    response = client.get(
        PATH, params={"query": query, **params}, headers={"Authorization": f"Bearer {org.token}"}
    )
    assert response.status_code == 400, response.text
    return response.json()["detail"]


ALL = ["ongoing", "new", "regressed", "escalating", "resolved", "until_escalating", "forever"]


# ---- point 1: no silent wrong answers


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("*Error", ["ongoing", "new", "resolved"]),
        ("so*t", ["escalating"]),
        ("*ERROR*", ["ongoing", "new", "resolved"]),
        ('"*Error"', []),  # quoted: a literal asterisk
        (r"\*Error", []),
        ("title:Database*", ["regressed"]),
        ("title:database*", ["regressed"]),  # wildcards match case-insensitively, as Sentry's
        ("title:Database", []),  # without one, the whole title, as written
        ('title:"Database timeout"', ["regressed"]),
        ("message:*refused*", ["regressed"]),
        ("!message:*refused*", ["ongoing", "new", "escalating", "resolved", "until_escalating", "forever"]),
        ("release:backend@1.*", ["ongoing", "new", "resolved"]),
        ("release:*@2.*", ["resolved"]),
        ("!release:backend@1.*", ["regressed", "escalating", "until_escalating", "forever"]),
        ("environment:prod*", ["ongoing", "new", "regressed"]),
        ("level:warn*", ["until_escalating"]),
        ("level:*fo", ["forever"]),  # info
    ],
)
def test_wildcards_match_as_in_sentry(client, org, query, expected):
    assert search(client, org, query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "first_release:backend@1.*",
        "is:unres*",
        "issue.priority:hi*",
        "status:*",
        "project:back*",
        "regressed_in_release:1.*",
    ],
)
def test_fields_that_cannot_take_a_wildcard_say_so(client, org, query):
    detail = refused(client, org, query)
    assert "wildcard" in detail or "Invalid" in detail, detail


def test_first_release_alias(client, org):
    assert search(client, org, "first-release:backend@1.2.0") == ["ongoing", "resolved"]
    assert search(client, org, "firstRelease:backend@1.2.0") == ["ongoing", "resolved"]


def test_latest_is_each_projects_latest_release(client, org):
    # backend is semver: 1.10.0 > 1.9.0 > 1.2.0 whatever was seen last; frontend is not: def456 was seen last
    assert search(client, org, "release:latest") == ["ongoing", "new", "regressed"]
    assert search(client, org, "first_release:latest") == ["new"]
    assert search(client, org, "release:latest", project="frontend") == ["regressed"]
    assert search(client, org, 'release:"latest"') == []  # a release named latest


def test_negated_substatuses_exclude_the_first_ones_status_as_sentry(client, org):
    assert search(client, org, "!is:ongoing") == ["resolved", "until_escalating", "forever"]
    assert search(client, org, "!is:ongoing !is:archived_until_escalating") == ["resolved", "forever"]
    assert search(client, org, "is:unresolved !is:ongoing") == ["new", "regressed", "escalating"]
    assert search(client, org, "substatus:[ongoing, archived_forever]") == ["ongoing"]


def test_feedback_is_hidden_unless_a_category_or_type_is_named(client, org):
    assert "feedback" not in search(client, org, "")
    assert search(client, org, "") == ALL
    assert "feedback" not in search(client, org, None)
    assert search(client, org, "issue.category:feedback") == ["feedback"]
    assert "feedback" in search(client, org, "!issue.category:error")


def test_first_release_with_environments_is_the_first_release_there(client, org):
    # 101's first release overall is 1.2.0, in production it is 1.10.0
    assert search(client, org, "first_release:backend@1.10.0", environment="production") == ["ongoing", "new"]
    assert search(client, org, "first_release:backend@1.2.0", environment="production") == []
    assert search(client, org, "first_release:backend@1.2.0", environment="staging") == [
        "ongoing",
        "resolved",
    ]
    assert search(client, org, "first_release:backend@1.10.0") == ["new"]


def test_is_with_a_list_and_boolean_operators_are_refused_as_sentry(client, org):
    assert '"in" syntax invalid for "is" search' in refused(client, org, "is:[unresolved, resolved]")
    for query in ("a or b", "a OR b", "x and y", "is:unresolved AND level:error"):
        assert 'Boolean statements containing "OR" or "AND" are not supported' in refused(client, org, query)


def test_free_text_phrases_are_separate_conditions(client, org):
    assert search(client, org, "TypeError is:unresolved undefined") == ["ongoing"]
    # the words of a phrase, in any order and any occurrence (docs/issue-index.md, "Free text")
    assert search(client, org, "undefined TypeError") == ["ongoing"]
    assert search(client, org, "refused connection") == ["regressed"]


# ---- point 2: every term our data can answer


def test_status_and_substatus_keys(client, org):
    assert search(client, org, "status:resolved") == ["resolved"]
    assert search(client, org, "status:[resolved, ignored]") == ["resolved", "until_escalating", "forever"]
    assert search(client, org, "!status:unresolved") == ["resolved", "until_escalating", "forever"]
    assert search(client, org, "substatus:new") == ["new"]
    assert search(client, org, "substatus:[new, regressed]") == ["new", "regressed"]
    assert search(client, org, "is:reprocessing") == []
    assert "invalid status value" in refused(client, org, "status:gone").lower()


def test_is_for_review(client, org):
    assert search(client, org, "is:for_review") == ["new", "regressed", "escalating"]
    assert search(client, org, "!is:for_review is:unresolved") == ["ongoing"]


def test_has(client, org):
    assert search(client, org, "has:release") == ["ongoing", "new", "regressed", "escalating", "resolved"]
    assert search(client, org, "!has:release") == ["until_escalating", "forever"]
    assert search(client, org, "has:environment") == ["ongoing", "new", "regressed", "resolved"]
    assert search(client, org, "!has:first_release is:unresolved") == ["escalating"]
    assert search(client, org, "has:level") == ALL
    assert search(client, org, "!has:level") == []
    assert "was expecting a field or tag" in refused(client, org, "has:[release, environment]")
    assert search(client, org, "has:browser") == ["ongoing", "regressed"]
    assert search(client, org, "!has:browser") == [
        "new",
        "escalating",
        "resolved",
        "until_escalating",
        "forever",
    ]


def test_project_key(client, org):
    assert search(client, org, "project:frontend") == ["regressed", "escalating", "forever"]
    assert search(client, org, "!project:frontend") == ["ongoing", "new", "resolved", "until_escalating"]
    assert search(client, org, "project:[frontend, backend] is:ignored") == ["until_escalating", "forever"]
    assert search(client, org, "project:frontend", project="backend") == []
    detail = refused(client, org, "project:nope")
    assert "Project(s) nope do not exist or are not actively selected" in detail


def test_issue_short_ids(client, org):
    assert search(client, org, "issue:BACKEND-2T") == ["ongoing"]  # 101 in base 36
    assert search(client, org, "issue:[BACKEND-2T, FRONTEND-2V] status:unresolved") == [
        "ongoing",
        "regressed",
    ]
    assert search(client, org, "!issue:BACKEND-2T is:ongoing") == []
    assert search(client, org, "issue.id:102") == ["new"]
    assert "Invalid value 'FRONTEND-2T' for 'issue:' filter" in refused(client, org, "issue:FRONTEND-2T")
    assert "for 'issue:' filter" in refused(client, org, "issue:NOPE-2T")
    assert "for 'issue:' filter" in refused(client, org, "issue:BACKEND-ZZZZ")


def test_timestamp_and_date(client, org):
    # an event after T0 + 7.5 h: last seen after it
    assert search(client, org, "timestamp:>2026-01-01T07:30:00") == ["ongoing", "new"]
    assert search(client, org, "date:<2025-12-30") == ["ongoing", "regressed"]  # first seen before it
    assert search(client, org, "event.timestamp:2025-12-22") == ["regressed"]  # seen across that day


def test_release_version_package_and_build(client, org):
    assert search(client, org, "release.version:>1.9.0") == ["ongoing", "new", "escalating", "resolved"]
    assert search(client, org, "release.version:1.2.0") == ["ongoing", "resolved"]
    assert search(client, org, "release.version:<2.0.0") == ["ongoing", "new", "resolved"]
    assert search(client, org, "release.version:>=2") == ["escalating"]  # 2.0.0-rc.1 < 2.0.0 <= 14.2.0
    assert search(client, org, "release.version:>=2.0.0-rc.1 project:backend") == ["resolved"]
    assert search(client, org, "release.version:1.*") == ["ongoing", "new", "resolved"]
    assert search(client, org, "release.version:>frontend@1.0") == ["escalating"]
    assert search(client, org, "!release.version:>1.9.0 project:backend") == ["ongoing", "resolved"]
    assert search(client, org, "release.package:frontend") == ["escalating"]
    assert search(client, org, "release.build:77") == []  # build.77 is not a number
    assert search(client, org, "release.build:>100") == ["escalating"]
    assert search(client, org, "release.build:build.*") == ["resolved"]
    assert "Invalid format of semantic version" in refused(client, org, "release.version:abc")
    assert "Invalid operation 'IN'" in refused(client, org, "release.version:[1.0.0, 2.0.0]")


def test_regressed_in_release(client, org):
    assert search(client, org, "regressed_in_release:def456") == ["regressed"]
    assert search(client, org, "regressed_in_release:backend@1.10.0") == ["ongoing"]
    assert search(client, org, "regressed_in_release:latest") == ["ongoing", "regressed"]
    assert search(client, org, "!regressed_in_release:def456 is:unresolved") == [
        "ongoing",
        "new",
        "escalating",
    ]


def test_an_event_id_finds_the_groups_holding_that_event(client, org):
    response = client.get(
        PATH, params={"query": org.event_id}, headers={"Authorization": f"Bearer {org.token}"}
    )
    assert response.status_code == 200
    (issue,) = response.json()
    assert issue["id"] == "102" and issue["matchingEventId"] == org.event_id
    assert response.headers["x-sentry-direct-hit"] == "1"
    dashed = str(uuid.UUID(org.event_id)).upper()
    assert search(client, org, dashed) == ["new"]
    response = client.get(
        PATH, params={"query": org.shared_event}, headers={"Authorization": f"Bearer {org.token}"}
    )
    assert [i["id"] for i in response.json()] == ["101", "103"]
    assert "x-sentry-direct-hit" not in response.headers
    assert search(client, org, uuid.uuid4().hex) == []  # no such event: searched as free text


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("is:linked", "no integrations"),
        ("is:unlinked", "no integrations"),
        ("subscribed:me", "no users"),
        ("assigned_or_suggested:me", "no users or teams"),
        ("assigned:me", "no users or teams"),
        ("bookmarks:me", "no users"),
        ("error.handled:1", "events"),
        ("error.unhandled:true", "events"),
        ("trace:" + "a" * 32, "events"),
        ("device.class:high", "events"),
        ("platform:python", "events"),
        ("tags[]:x", "not a valid tag key"),
        ("release.stage:adopted", "release health"),
        ("count():>10", "Aggregate filters"),
    ],
)
def test_terms_this_index_cannot_answer_are_a_400_that_says_why(client, org, query, reason):
    detail = refused(client, org, query)
    assert reason in detail, detail
    assert "at position 0" in detail
