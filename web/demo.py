"""Demonstration data for the web interface: groups, their occurrences (with events) and activities written to
Spanner as the pipeline writes them, for ``pipeline.screenshots``, ``bench/web.py`` and the browser tests.

Nothing here runs in the service. Rows follow ``schemas/spanner.sql`` and the pipeline's conventions (group ids
spread over 63 bits, occurrence and event ids as UUID hex, times in microseconds); ``web.demo_rows`` writes
them, and this module builds the demonstration organizations (``showcase``, ``scale``) over it.
"""

from __future__ import annotations

import random
from typing import Any

from api.issue_details import DAY, HOUR
from transforms.core.enums import ActivityType, GroupStatus, GroupSubStatus
from transforms.core.model import MICROS
from transforms.storage import registry
from web.demo_rows import (
    GROUP_COLUMNS,
    LEVELS,
    OCCURRENCE_COLUMNS,
    TAG_KEY_COLUMNS,
    TAG_VALUE_COLUMNS,
    DemoGroup,
    occurrence_row,
    register,
    write_activity,
    write_groups,
    write_occurrences,
    write_tags,
)

__all__ = [
    "GROUP_COLUMNS",
    "LEVELS",
    "OCCURRENCE_COLUMNS",
    "TAG_KEY_COLUMNS",
    "TAG_VALUE_COLUMNS",
    "DemoGroup",
    "issue_token",
    "occurrence_row",
    "register",
    "scale",
    "showcase",
    "write_activity",
    "write_groups",
    "write_occurrences",
    "write_tags",
]

# ---- the screenshots' organization

_SHOWCASE = [
    # title, subtitle, culprit, level, project, pattern, status, substatus, priority
    (
        "ConnectionError",
        "Connection refused: db-primary:5432",
        "app.db.pool in acquire",
        "error",
        1,
        "steady",
        0,
        3,
        75,
    ),
    (
        "TimeoutError",
        "Read timed out after 30s (payments.example.com)",
        "checkout.payments in charge_card",
        "error",
        1,
        "burst",
        0,
        2,
        75,
    ),
    ("KeyError", "'currency'", "pricing.rates in convert", "error", 1, "new", 0, 7, 75),
    (
        "N+1 Query",
        "SELECT * FROM order_items WHERE order_id = %s",
        "GET /api/0/orders/",
        "warning",
        1,
        "steady",
        0,
        3,
        50,
    ),
    (
        "TypeError",
        "Cannot read properties of undefined (reading 'id')",
        "app/components/Cart.tsx in renderRow",
        "error",
        2,
        "steady",
        0,
        6,
        75,
    ),
    (
        "ChunkLoadError",
        "Loading chunk 412 failed",
        "webpack/runtime in loadChunk",
        "error",
        2,
        "burst",
        0,
        3,
        50,
    ),
    (
        "Slow DB Query",
        "SELECT ... FROM inventory ORDER BY updated_at",
        "GET /api/0/inventory/",
        "warning",
        1,
        "steady",
        0,
        3,
        50,
    ),
    (
        "ValueError",
        "invalid literal for int() with base 10: 'abc'",
        "search.filters in parse_page",
        "error",
        1,
        "few",
        0,
        3,
        25,
    ),
    (
        "Uncaught ReferenceError",
        "gtag is not defined",
        "app/analytics.ts in track",
        "error",
        2,
        "steady",
        0,
        3,
        25,
    ),
    (
        "CeleryTaskTimeout",
        "Task send_receipt exceeded 300s",
        "worker.tasks in send_receipt",
        "fatal",
        3,
        "burst",
        0,
        2,
        75,
    ),
    (
        "PermissionDenied",
        "/var/data/exports is not writable",
        "worker.exports in write_csv",
        "error",
        3,
        "few",
        1,
        None,
        50,
    ),
    ("MemoryError", "", "worker.images in resize", "fatal", 3, "few", 2, 5, 50),
    (
        "Large HTTP payload",
        "Response of 4.2 MB for /api/0/catalog/",
        "GET /api/0/catalog/",
        "info",
        1,
        "steady",
        0,
        3,
        25,
    ),
    (
        "IntegrityError",
        'duplicate key value violates unique constraint "orders_pkey"',
        "orders.service in create",
        "error",
        1,
        "new",
        0,
        7,
        75,
    ),
]


def showcase(database: Any, now: int, seed: int = 20) -> list[DemoGroup]:
    """Organization 1 ``acme`` with projects backend (1), frontend (2) and worker (3), and a stream of issues
    with varied levels, statuses, priorities and event patterns over the last 14 days."""
    rnd = random.Random(seed)
    register(database, 1, "acme", {1: "backend", 2: "frontend", 3: "worker"})
    groups = []
    for i, (title, subtitle, culprit, level, project, pattern, status, substatus, priority) in enumerate(
        _SHOWCASE
    ):
        times = _pattern(rnd, pattern, now)
        releases = {1: ["backend@1.3.2", "backend@1.4.0"], 2: ["frontend@5.2.0"], 3: ["worker@0.9.1"]}[
            project
        ]
        group = DemoGroup(
            group_id=rnd.getrandbits(62) + 1,
            project_id=project,
            organization_id=1,
            title=title,
            subtitle=subtitle,
            culprit=culprit,
            level=level,
            type=1006 if title == "N+1 Query" else (1001 if title == "Slow DB Query" else 1),
            status=status,
            substatus=substatus,
            priority=priority,
            event_times=times,
            releases=releases,
            environments=["production"] if i % 3 else ["production", "staging"],
            platform="javascript" if project == 2 else "python",
            evidence=[
                {
                    "name": "Exception",
                    "value": f"{title}: {subtitle}" if subtitle else title,
                    "important": True,
                },
                {"name": "Function", "value": culprit.split(" in ")[-1], "important": False},
            ],
        )
        groups.append(group)
    write_groups(database, groups, rnd)
    for group in groups:
        if group.substatus == GroupSubStatus.REGRESSED:
            write_activity(
                database, group.group_id, group.project_id, ActivityType.SET_RESOLVED, now - 5 * DAY
            )
            write_activity(
                database,
                group.group_id,
                group.project_id,
                ActivityType.SET_REGRESSION,
                now - 2 * DAY,
                {"version": group.releases[-1]},
            )
        if group.substatus == GroupSubStatus.ESCALATING:
            write_activity(
                database, group.group_id, group.project_id, ActivityType.SET_IGNORED, now - 6 * DAY
            )
            write_activity(
                database, group.group_id, group.project_id, ActivityType.SET_ESCALATING, now - 20 * HOUR
            )
            write_activity(
                database,
                group.group_id,
                group.project_id,
                ActivityType.SET_PRIORITY,
                now - 20 * HOUR,
                {"priority": "high", "reason": "escalating"},
            )
        if group.status == GroupStatus.RESOLVED:
            write_activity(
                database, group.group_id, group.project_id, ActivityType.SET_RESOLVED, now - 1 * DAY
            )
        if group.status == GroupStatus.IGNORED:
            write_activity(
                database, group.group_id, group.project_id, ActivityType.SET_IGNORED, now - 3 * DAY
            )
    return groups


def _pattern(rnd: random.Random, pattern: str, now: int) -> list[int]:
    """Event times (microseconds) of a group over the last 14 days."""
    span = 14 * DAY
    if pattern == "steady":
        count = rnd.randrange(80, 400)
        return [now - rnd.randrange(span) for _ in range(count)]
    if pattern == "burst":
        base = [now - rnd.randrange(span) for _ in range(rnd.randrange(20, 60))]
        peak = now - rnd.randrange(6 * HOUR, 3 * DAY)
        burst = [peak + int(rnd.gauss(0, 3 * HOUR)) for _ in range(rnd.randrange(150, 500))]
        return base + [min(moment, now - 60 * MICROS) for moment in burst]
    if pattern == "new":
        return [now - rnd.randrange(20 * HOUR) for _ in range(rnd.randrange(15, 60))]
    return [now - rnd.randrange(span) for _ in range(rnd.randrange(3, 12))]


def scale(database: Any, now: int, groups: int, organizations: int = 10, seed: int = 1) -> tuple[int, int]:
    """``groups`` groups over ``organizations`` organizations (slugs ``org1``...; 5 projects each) with 1-40
    occurrences each over the last 30 days: the web benchmark's data. Returns (groups, occurrences)."""
    rnd = random.Random(seed)
    for org in range(1, organizations + 1):
        register(database, org, f"org{org}", {org * 100 + p: f"project{p}" for p in range(5)})
    made = []
    pairs = [(0, 3), (0, 3), (0, 3), (0, 7), (0, 6), (1, None), (2, 5), (2, 1)]
    for i in range(groups):
        org = i % organizations + 1
        status, substatus = rnd.choice(pairs)
        count = rnd.choice([1, 2, 3, 5, 8, 13, 21, 40])
        last = now - rnd.randrange(30 * DAY)
        made.append(
            DemoGroup(
                group_id=rnd.getrandbits(62) + 1,
                project_id=org * 100 + rnd.randrange(5),
                organization_id=org,
                title=f"{rnd.choice(['TimeoutError', 'KeyError', 'ConnectionError', 'TypeError'])} in handler {i}",
                culprit=f"app.handlers in handle_{i % 97}",
                level=rnd.choice(["info", "warning", "error", "error", "fatal"]),
                status=status,
                substatus=substatus,
                priority=rnd.choice([75, 50, 50, 25, 25]),
                event_times=[last - rnd.randrange(3 * DAY) for _ in range(count)],
                releases=[f"app@1.{rnd.randrange(5)}.0"],
                environments=[rnd.choice(["production", "production", "staging"])],
            )
        )
    occurrences = write_groups(database, made, rnd)
    return len(made), occurrences


def issue_token(database: Any, organization: int | str, scope: str = "write") -> str:
    token, _ = registry.issue_api_token(database, organization=organization, scope=scope, name="web demo")
    return token
