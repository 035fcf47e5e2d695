"""The workload's group keys: each with a fixed group type and the static content of its occurrences
(``make_key``), and pools of keys with a property for random picks."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from transforms.core.grouptypes import GROUP_TYPES


@dataclass(slots=True)
class Key:
    index: int
    project_id: int
    type_id: int
    fingerprint: list[str]
    label: str  # "project:fingerprint[0]", the summary's name for the key
    template: dict[str, Any]  # the occurrence fields that never change
    platform: str
    transaction: str
    threshold: int  # valid occurrences needed before the key (roughly) has a group
    released: bool
    sdk: dict[str, str]  # shared by the key's events: treat as read-only
    semver: bool  # whether the key's project names releases by semantic version
    seen: int = 0
    grouped: bool = False
    ignored: bool = False
    resolved: bool = False
    in_pools: set[str] = field(default_factory=set)


class KeyPool:
    """Keys with a property (``grouped``, ``ignored``), for uniform random picks; removal is lazy."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.keys: list[Key] = []

    def add(self, key: Key) -> None:
        if self.name not in key.in_pools:
            key.in_pools.add(self.name)
            self.keys.append(key)

    def pick(self, rng: random.Random) -> Key | None:
        keys = self.keys
        while keys:
            index = rng.randrange(len(keys))
            key = keys[index]
            if getattr(key, self.name):
                return key
            keys[index] = keys[-1]
            keys.pop()
            key.in_pools.discard(self.name)
        return None


_PLATFORMS = ("python", "javascript", "java", "go", "node", "ruby")
SERVERS = tuple(f"web-{n}" for n in range(1, 9))
_SDKS = {
    "python": ("sentry.python", "2.5.1"),
    "javascript": ("sentry.javascript.browser", "8.9.2"),
    "java": ("sentry.java", "7.10.0"),
    "go": ("sentry.go", "0.28.1"),
    "node": ("sentry.javascript.node", "8.9.2"),
    "ruby": ("sentry.ruby", "5.17.3"),
}
_EXCEPTIONS = (
    ("ValueError", "invalid literal for int() with base 10: '{n}'"),
    ("KeyError", "'{word}'"),
    ("TypeError", "unsupported operand type(s) for +: 'NoneType' and 'int'"),
    ("ConnectionError", "HTTPSConnectionPool(host='api-{n}.internal', port=443): Max retries exceeded"),
    ("TimeoutError", "operation timed out after {n}ms"),
    ("IntegrityError", 'duplicate key value violates unique constraint "orders_{word}_key"'),
    ("NullPointerException", 'Cannot invoke "{word}.getId()" because the value is null'),
)
_WORDS = (
    "orders",
    "checkout",
    "billing",
    "users",
    "projects",
    "issues",
    "search",
    "cart",
    "inventory",
    "reports",
    "auth",
    "webhooks",
    "exports",
    "settings",
    "teams",
    "alerts",
)
_FUNCTIONS = ("process", "handle", "fetch", "render", "save", "sync", "validate", "dispatch")
_MONITORS = (
    "nightly-backup",
    "hourly-sync",
    "cleanup-sessions",
    "send-digests",
    "rotate-keys",
    "billing-run",
)
_FEEDBACK = (
    "The checkout button does nothing on Safari.",
    "Search results take forever to load.",
    "I was charged twice for the same order!",
    "Love the new dashboard, but the export is broken.",
    "Page crashed when I uploaded a large file.",
)


def _endpoint(rng: random.Random) -> str:
    word = rng.choice(_WORDS)
    return f"/api/0/{word}/{{{word[:-1] if word.endswith('s') else word}_id}}/{rng.choice(_WORDS)}/"


def make_key(index: int, project_id: int, type_id: int, rng: random.Random, semver: bool = True) -> Key:
    """A key with realistic static content for its group type."""
    platform = rng.choice(_PLATFORMS)
    transaction = ("GET ", "POST ", "PUT ")[rng.randrange(3)] + _endpoint(rng)
    token = f"{rng.getrandbits(48):012x}"
    title: str
    culprit: str
    level_choices: tuple[str, ...]
    evidence_display: list[dict[str, Any]]
    evidence_data: dict[str, Any]
    if type_id == 1:
        name, message = rng.choice(_EXCEPTIONS)
        message = message.format(n=rng.randrange(1, 10_000), word=rng.choice(_WORDS))
        module = f"app.{rng.choice(_WORDS)}.{rng.choice(_WORDS)}"
        function = f"{rng.choice(_FUNCTIONS)}_{rng.choice(_WORDS)}"
        fingerprint = [f"error:{name}:{module}.{function}:{token[:6]}"]
        title = f"{name}: {message}"
        culprit = f"{module} in {function}"
        level_choices = ("error",) * 8 + ("fatal", "warning")
        evidence_display = [{"name": "Exception", "value": f"{name}: {message}", "important": True}]
        evidence_data = {"exception_type": name, "module": module, "function": function}
    elif type_id in (1006, 1001):
        table = rng.choice(_WORDS)
        query = f'SELECT "{table}"."id", "{table}"."name" FROM "{table}" WHERE "{table}"."id" = %s'
        kind = "n-plus-one" if type_id == 1006 else "slow-db"
        fingerprint = [f"1-{type_id}-{kind}-{token}"]
        title = "N+1 Query" if type_id == 1006 else "Slow DB Query"
        culprit = transaction
        level_choices = ("info",)
        evidence_display = [
            {"name": "Offending Spans", "value": f"db - {query}", "important": True},
            {"name": "Transaction", "value": transaction, "important": False},
        ]
        evidence_data = {
            "op": "db",
            "transaction_name": transaction,
            "parent_span_ids": [f"{rng.getrandbits(64):016x}"],
            "offender_span_ids": [f"{rng.getrandbits(64):016x}" for _ in range(rng.randrange(2, 6))],
            "num_repeating_spans": str(rng.randrange(5, 60)),
        }
        title = f"{title}: {query[:60]}" if rng.random() < 0.3 else title
    elif type_id == 1018:
        fingerprint = [f"p95-regression:{transaction}"]
        title = "Endpoint Regression"
        culprit = transaction
        level_choices = ("warning",) * 3 + ("info",)
        evidence_display = [
            {"name": "Regression", "value": f"{transaction} duration increased", "important": True}
        ]
        evidence_data = {"transaction": transaction, "breakpoint": 1_700_000_000 + rng.randrange(10**6)}
    elif type_id == 4001:
        monitor = f"{rng.choice(_MONITORS)}-{rng.randrange(100)}"
        fingerprint = [f"crons:{monitor}"]
        title = f"Cron failure: {monitor}"
        culprit = ""
        level_choices = ("error",)
        evidence_display = [
            {"name": "Failure reason", "value": "missed_checkin", "important": True},
            {"name": "Monitor", "value": monitor, "important": False},
        ]
        evidence_data = {"monitor_slug": monitor, "failure_reason": "missed_checkin"}
    elif type_id == 6001:
        fingerprint = [f"feedback:{rng.getrandbits(128):032x}"]
        title = "User Feedback"
        culprit = "user feedback"
        level_choices = ("info",)
        message = rng.choice(_FEEDBACK)
        email = f"user{rng.randrange(10**6)}@example.com"
        evidence_display = [
            {"name": "contact_email", "value": email, "important": False},
            {"name": "message", "value": message, "important": True},
        ]
        evidence_data = {
            "contact_email": email,
            "message": message,
            "name": "",
            "source": "new_feedback_envelope",
        }
    else:
        group_type = GROUP_TYPES[type_id]
        function = f"{rng.choice(_FUNCTIONS)}_{rng.choice(_WORDS)}"
        fingerprint = [f"{group_type.slug}:{function}:{token}"]
        title = group_type.description
        culprit = function
        level_choices = ("info", "warning")
        evidence_display = [{"name": "Function", "value": function, "important": True}]
        evidence_data = {"function": function, "duration_ms": rng.randrange(16, 900)}
    if rng.random() < 0.1:  # some producers send a second fingerprint part
        fingerprint.append(f"{fingerprint[0]}:{rng.choice(_WORDS)}")
    if rng.random() < 0.02:  # an over-long culprit, which the pipeline cuts to 200 characters
        culprit = (culprit + " > ") * (220 // max(len(culprit), 10) + 2)
    template: dict[str, Any] = {
        "fingerprint": fingerprint,
        "issue_title": title,
        "resource_id": None,
        "evidence_data": evidence_data,
        "evidence_display": evidence_display,
        "type": type_id,
        "level": rng.choice(level_choices),
        "culprit": culprit,
    }
    roll = rng.random()
    if roll < 0.25:
        template["initial_issue_priority"] = (25, 50, 75)[rng.randrange(3)]
    elif roll < 0.35:
        template["priority"] = (25, 50, 75)[rng.randrange(3)]
    if rng.random() < 0.05:
        template["assignee"] = f"{('user', 'team')[rng.randrange(2)]}:{rng.randrange(1, 20)}"
    group_type = GROUP_TYPES[type_id]
    noise = group_type.noise_config
    return Key(
        index=index,
        project_id=project_id,
        type_id=type_id,
        fingerprint=fingerprint,
        label=f"{project_id}:{fingerprint[0]}",
        template=template,
        platform=platform,
        transaction=transaction,
        threshold=noise.ignore_limit if noise is not None else 1,
        released=group_type.released,
        sdk={"name": _SDKS[platform][0], "version": _SDKS[platform][1]},
        semver=semver,
    )


def semver_slot(slot: int) -> bool:
    """Every third registered project names its releases by commit sha, the others by semver."""
    return slot % 3 != 2
