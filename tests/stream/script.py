"""The scripted stream of the end-to-end tests: one key (or a few) per behaviour, in two phases.

Phase 1 is published before the pipeline starts; phase 2 after phase 1 is fully applied (``PHASE_1_DONE``).
Message times are relative to ``t0`` (a whole second two hours before the test) and carried in the ``ts``
attribute, so the watermark (the wall clock on the local runner) is past all of them and the processing hold
alone decides what is applied together.

Group types are chosen so that the creation quota (on, in Redis, 5 groups per hour per project and type by
default) refuses exactly one group: crons (4001, quota 60,000) for most keys, N+1 queries (1006, noise gate of
3) for the noise gate, and six p95 regressions (1018) in project 2, five in phase 1 and the sixth in phase 2.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from hashlib import md5
from typing import Any

import orjson

from tests.stream.harness import Scripted
from transforms.core.engine.ids import group_id
from transforms.core.enums import GroupStatus, GroupSubStatus, ResolutionType
from transforms.core.model import MICROS, to_rfc3339

PROJECT = 1  # organization 1, "backend"
QUOTA_PROJECT = 2  # organization 1, "frontend"
UNKNOWN_PROJECT = 99
CRON = 4001
NOISY = 1006
P95 = 1018
MAX_PAYLOAD = "4KiB"

SECOND = MICROS


def fingerprint(name: str) -> str:
    return f"e2e:{name}"


def primary_hash(name: str) -> str:
    return md5(fingerprint(name).encode()).hexdigest()


def key_group_id(name: str, *, project: int = PROJECT, generation: int = 0) -> int:
    return group_id(project, primary_hash(name), generation)


def uuid(n: int, kind: str) -> str:
    return md5(f"{kind}:{n}".encode()).hexdigest()


@dataclass
class Script:
    t0: int
    phase1: list[Scripted] = field(default_factory=list)
    phase2: list[Scripted] = field(default_factory=list)
    event_ids: dict[str, str] = field(default_factory=dict)
    _n: int = 0

    def at(self, offset_seconds: float) -> int:
        return self.t0 + int(offset_seconds * SECOND)

    def _next(self) -> int:
        self._n += 1
        return self._n

    def occurrence(
        self,
        label: str,
        key: str,
        offset: float,
        *,
        type_: int = CRON,
        project: int = PROJECT,
        release: str | None = None,
        environment: str | None = None,
        lookup_event: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        n = self._next()
        event_id = lookup_event or uuid(n, "event")
        payload: dict[str, Any] = {
            "payload_type": "occurrence",
            "id": uuid(n, "occurrence"),
            "project_id": project,
            "event_id": event_id,
            "fingerprint": [fingerprint(key)],
            "issue_title": f"{key} title {n}",
            "subtitle": f"{key} subtitle {n}",
            "culprit": f"{key}.py",
            "type": type_,
            "detection_time": to_rfc3339(self.at(offset)),
            "evidence_display": [],
            "level": "error",
        }
        if lookup_event is None:
            event: dict[str, Any] = {
                "event_id": event_id,
                "project_id": project,
                "platform": "python",
                "timestamp": to_rfc3339(self.at(offset)),
            }
            if release:
                event["release"] = release
            if environment:
                event["environment"] = environment
            payload["event"] = event
            self.event_ids[label] = event_id
        payload.update(overrides)
        return payload

    def status_change(
        self, key: str, status: int, substatus: int | None = None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "payload_type": "status_change",
            "id": uuid(self._next(), "status-change"),
            "project_id": PROJECT,
            "fingerprint": [fingerprint(key)],
            "new_status": int(status),
            "new_substatus": None if substatus is None else int(substatus),
            **extra,
        }

    def add(self, phase: int, label: str, offset: float, payload: dict[str, Any] | bytes) -> Scripted:
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        message = Scripted(label, data, self.at(offset), {"content_type": "application/json"})
        (self.phase1 if phase == 1 else self.phase2).append(message)
        return message


def build(t0: int | None = None) -> Script:
    """The script (deterministic for a given ``t0``)."""
    if t0 is None:
        t0 = (int(time.time()) - 2 * 3600) * SECOND
    s = Script(t0)
    release_1, release_2 = "backend@1.0.0", "backend@1.1.0"

    # Group creation, then an update from a second environment.
    s.add(
        1, "create-1", 1, s.occurrence("create-1", "create", 1, release=release_1, environment="production")
    )
    s.add(1, "create-2", 2, s.occurrence("create-2", "create", 2, release=release_1, environment="staging"))

    # Noise gate (ignore limit 3): two occurrences stay below it, three pass it.
    for i in (1, 2):
        s.add(
            1, f"noise-below-{i}", 2 + i, s.occurrence(f"noise-below-{i}", "noise-below", 2 + i, type_=NOISY)
        )
    for i in (1, 2, 3):
        s.add(1, f"noise-pass-{i}", 4 + i, s.occurrence(f"noise-pass-{i}", "noise-pass", 4 + i, type_=NOISY))

    # Creation quota: five new p95 groups in project 2 now, a sixth in phase 2 (refused: 5 per hour).
    for i in range(1, 6):
        s.add(1, f"quota-{i}", 10 + i, s.occurrence(f"quota-{i}", f"quota-{i}", 10 + i, type_=P95, project=2))

    # Regression: resolved in the next release after 1.0.0; 1.0.0 again is covered, 1.1.0 regresses.
    # Published newest first: the processing hold puts them back in message-time order.
    regression = [
        ("regress-1", 20, s.occurrence("regress-1", "regress", 20, release=release_1)),
        (
            "regress-resolve",
            21,
            s.status_change(
                "regress",
                GroupStatus.RESOLVED,
                resolution={"type": ResolutionType.IN_NEXT_RELEASE, "version": release_1},
            ),
        ),
        ("regress-2", 22, s.occurrence("regress-2", "regress", 22, release=release_1)),
        ("regress-3", 23, s.occurrence("regress-3", "regress", 23, release=release_2)),
    ]
    for label, offset, payload in reversed(regression):
        s.add(1, label, offset, payload)

    # Duplicate delivery: the same message published twice (a new Pub/Sub message id, same bytes).
    duplicated = s.occurrence("dup", "dup", 30)
    s.add(1, "dup-1", 30, duplicated)
    s.add(1, "dup-2", 30, duplicated)

    # An event lookup that never finds its event (the one that finds it is in phase 2).
    s.add(
        1, "lookup-missing", 41, s.occurrence("lookup-missing", "lookup-missing", 41, lookup_event="f" * 32)
    )

    # A status change before its group: resolve now, the group's first occurrence (older) in phase 2.
    s.add(1, "held-resolve", 100, s.status_change("held", GroupStatus.RESOLVED))

    # Delete: created, then deleted; phase 2 creates the next generation.
    s.add(1, "delete-1", 200, s.occurrence("delete-1", "delete", 200))
    s.add(1, "delete-status", 210, s.status_change("delete", GroupStatus.PENDING_DELETION))

    # Invalid messages: each is a dead letter with its reason.
    s.add(1, "bad-undecodable", 300, b"this is not json")
    missing = s.occurrence("bad-missing", "bad", 301)
    del missing["issue_title"]
    s.add(1, "bad-missing", 301, missing)
    s.add(1, "bad-type", 302, s.occurrence("bad-type", "bad", 302, type_=99_999))
    s.add(1, "bad-project", 303, s.occurrence("bad-project", "bad", 303, project=UNKNOWN_PROJECT))
    s.add(1, "bad-status", 304, s.status_change("create", GroupStatus.UNRESOLVED, GroupSubStatus.NEW))
    oversized = s.occurrence("bad-oversized", "bad", 305, evidence_data={"blob": "x" * 5000})
    s.add(1, "bad-oversized", 305, oversized)

    # Phase 2. The lookup finds the event create-1 stored in phase 1 (in the same phase, whether create-1's
    # flush committed before the lookup's would decide whether the lookup waits, which takes a version more).
    s.add(2, "lookup", 40, s.occurrence("lookup", "lookup", 40, lookup_event=s.event_ids["create-1"]))
    s.add(2, "held-create", 50, s.occurrence("held-create", "held", 50))
    s.add(2, "delete-2", 400, s.occurrence("delete-2", "delete", 400))
    s.add(2, "quota-6", 16, s.occurrence("quota-6", "quota-6", 16, type_=P95, project=2))
    return s


# Dead letters of phase 1, by label: (reason, stage).
DEAD_LETTERS = {
    "bad-undecodable": "undecodable",
    "bad-missing": "missing_field",
    "bad-type": "unknown_group_type",
    "bad-project": "unknown_project",
    "bad-status": "invalid_status_change",
    "bad-oversized": "oversized",
    "lookup-missing": "event_not_found",
}


def uuid_of(scripted: Script, label: str) -> str:
    """The payload ``id`` of a scripted message."""
    for message in (*scripted.phase1, *scripted.phase2):
        if message.label == label:
            return orjson.loads(message.data)["id"]
    raise KeyError(label)
