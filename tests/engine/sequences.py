"""Hypothesis strategies: realistic message sequences for one key, in key order.

A sequence mixes occurrences (with tags and users) of a noisy type (1006, three needed), of two
types without noise gate (1018, 2011) and now and then of another category
(error) or an unreleased type; events of all three paths with releases
(semver, pre-release and non-semver) and environments; lookups whose event is
stored and a few whose event never appears; and status changes of every valid
pair, with release resolutions and deletes. Times advance by steps from 0
(ties, broken by message id) to more than a day (noise expiry, held-change
expiry).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from tests.engine.builders import (
    ERROR,
    HOUR,
    MINUTE,
    NO_NOISE,
    NO_NOISE_OTHER,
    NOISY,
    SECOND,
    T0,
    UNRELEASED,
    MemoryQuota,
    context,
    event_of,
    occurrence,
    status_change,
)
from transforms.core.engine import EngineContext
from transforms.core.enums import VALID_STATUS_CHANGES
from transforms.core.model import Event, Message

RELEASES = (
    None,
    "backend@1.0.0",
    "backend@1.1.0",
    "backend@2.0.0-rc.1",
    "backend@2.0.0",
    "nightly-a",
    "nightly-b",
)
ENVIRONMENTS = (None, "production", "staging")
TITLES = ("Slow query", "Slow DB query", "N+1 query")
# Event tags (counted per group) and users (the user tag and the search-only user keys).
TAG_SETS = (
    (),
    (("server_name", "web-1"),),
    (("server_name", "web-2"), ("browser", "Chrome 120")),
    (("browser", "Firefox 121"), ("customer", "acme")),
)
USERS = (None, {"id": "1"}, {"id": "2", "email": "b@example.com"}, {"email": "c@example.com"})
STEPS = (0, 0, SECOND, SECOND, 30 * SECOND, 10 * MINUTE, 2 * HOUR, 25 * HOUR)
# Creation quota limits: none at all, a real small limit (no creation; one per window), and one never reached.
QUOTA_LIMITS = (None, 0, 1, 10**9)
PAIRS = sorted(VALID_STATUS_CHANGES, key=lambda pair: (pair[0], pair[1] or 0))


@dataclass
class Sequence:
    """Messages of one key in key order, and the events stored for its lookups."""

    messages: list[Message]
    stored_events: list[Event]
    streaming: bool
    quota: int | None  # the creation quota's limit per window (None: no quota)

    def context(self) -> EngineContext:
        """A fresh context (its own quota) for one run."""
        return context(
            events=self.stored_events,
            wait_for_events=self.streaming,
            quota=MemoryQuota(limit=self.quota) if self.quota is not None else None,
        )


@st.composite
def occurrences(
    draw: st.DrawFn, time: int, message_id: str, types: tuple[int, ...], stored: list[Event]
) -> Message:
    path = draw(st.sampled_from(("event", "event", "event", "lookup", "lookup", "buffered", "missing")))
    message = occurrence(
        time,
        message_id=message_id,
        type=draw(st.sampled_from(types)),
        event_time=time + draw(st.sampled_from((0, -SECOND, -HOUR, SECOND))),
        release=draw(st.sampled_from(RELEASES)),
        environment=draw(st.sampled_from(ENVIRONMENTS)),
        title=draw(st.sampled_from(TITLES)),
        culprit=draw(st.sampled_from(("", "db.py", "api.py"))),
        level=draw(st.sampled_from(("info", "warning", "error"))),
        priority=draw(st.sampled_from((None, 25, 50, 75))),
        tags=draw(st.sampled_from(TAG_SETS)),
        user=draw(st.sampled_from(USERS)),
        lookup=path in ("lookup", "missing"),
        buffered=path == "buffered",
    )
    if path == "lookup":
        stored.append(event_of(message))
    return message


@st.composite
def status_changes(draw: st.DrawFn, time: int, message_id: str) -> Message:
    status, substatus = draw(st.sampled_from(PAIRS))
    resolution = None
    if status == 1 and draw(st.booleans()):
        version = draw(st.sampled_from(RELEASES[1:]))
        resolution = (draw(st.sampled_from(("in_release", "in_next_release"))), version)
    return status_change(time, status, substatus, resolution=resolution, message_id=message_id)


@st.composite
def sequences(draw: st.DrawFn, *, max_size: int = 24, occurrence_only: bool = False) -> Sequence:
    """A key-ordered sequence; ``occurrence_only`` keeps to types without noise gate and stored events."""
    size = draw(st.integers(min_value=1, max_value=max_size))
    stored: list[Event] = []
    messages: list[Message] = []
    time = T0
    for index in range(size):
        time += draw(st.sampled_from(STEPS))
        message_id = f"m{index:04d}"
        if occurrence_only:
            messages.append(draw(_late_safe_occurrences(time, message_id, stored)))
        elif draw(st.integers(0, 9)) < 7:
            types = (NOISY, NOISY, NO_NOISE, NO_NOISE, NO_NOISE_OTHER, ERROR, UNRELEASED)
            messages.append(draw(occurrences(time, message_id, types, stored)))
        else:
            messages.append(draw(status_changes(time, message_id)))
    return Sequence(
        messages, stored, streaming=draw(st.booleans()), quota=draw(st.sampled_from(QUOTA_LIMITS))
    )


@st.composite
def _late_safe_occurrences(draw: st.DrawFn, time: int, message_id: str, stored: list[Event]) -> Message:
    message = draw(occurrences(time, message_id, (NO_NOISE, NO_NOISE_OTHER), stored))
    if (
        message.payload.event is None and event_of(message) not in stored
    ):  # a "missing" lookup: make it stored
        stored.append(event_of(message))
    return message


def key_order(messages: list[Message]) -> list[Message]:
    return sorted(messages, key=lambda message: (message.message_time, message.message_id))
