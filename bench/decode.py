"""Decoder throughput: messages per second on one core, per kind of message.

Run from the repository root: ``python -m bench.decode [--messages N] [--repeats R]``.
Each kind decodes N distinct, realistic messages (ids, fingerprints and times
vary; fingerprints come from a pool, as in production where many occurrences
share a group) R times and prints every run and the median, by wall time and by this
process's CPU time (the second is the one-core figure on a busy machine).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from transforms.core.decode import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, decode
from transforms.core.encode import raw_message
from transforms.core.model import Message, RawMessage

BASE_TIME = 1_780_000_000


def _uuid(n: int, salt: int) -> str:
    return f"{salt:08x}{n:024x}"


def occurrence_with_event(n: int) -> dict[str, Any]:
    event_id = _uuid(n, 2)
    return {
        "payload_type": "occurrence",
        "id": _uuid(n, 1),
        "project_id": 1 + n % 7,
        "event_id": event_id,
        "fingerprint": [f"slow-endpoint:/api/0/items/{n % 500}", "GET"],
        "issue_title": "Endpoint regression",
        "subtitle": f"p95 went from 120ms to {900 + n % 100}ms",
        "culprit": f"GET /api/0/items/{n % 500}",
        "resource_id": None,
        "evidence_data": {"p95_before": 120, "p95_after": 900 + n % 100, "breakpoint": 1779990000},
        "evidence_display": [
            {"name": "Regression", "value": "120ms -> 900ms", "important": True},
            {"name": "Transaction", "value": f"/api/0/items/{n % 500}", "important": False},
        ],
        "type": 1018,
        "detection_time": BASE_TIME + n + 0.25,
        "level": "warning",
        "initial_issue_priority": 75,
        "event": {
            "event_id": event_id,
            "project_id": 1 + n % 7,
            "platform": "python",
            "timestamp": f"2026-05-28T20:{n // 60 % 60:02d}:{n % 60:02d}.123456Z",
            "received": "2026-05-28T20:26:41+00:00",
            "tags": {"server": f"web-{n % 8}", "environment": "production", "transaction": "/api/0/items"},
            "release": f"backend@1.4.{n % 3}",
            "environment": "production",
            "transaction": "/api/0/items/{id}",
            "server_name": f"web-{n % 8}",
            "sdk": {"name": "sentry.python", "version": "2.3.1"},
            "contexts": {"trace": {"trace_id": _uuid(n, 3), "span_id": f"{n:016x}", "op": "http.server"}},
            "user": {"id": str(n % 1000)},
        },
    }


def occurrence_lookup(n: int) -> dict[str, Any]:
    return {
        "payload_type": "occurrence",
        "id": _uuid(n, 1),
        "project_id": 1 + n % 7,
        "event_id": _uuid(n, 2),
        "fingerprint": [f"slow-endpoint:/api/0/items/{n % 500}"],
        "issue_title": "Endpoint regression",
        "subtitle": "p95 went from 130ms to 950ms",
        "evidence_display": [],
        "type": 1018,
        "detection_time": "2026-05-28T20:30:00+00:00",
    }


def status_change(n: int) -> dict[str, Any]:
    return {
        "payload_type": "status_change",
        "id": _uuid(n, 4),
        "project_id": 1 + n % 7,
        "fingerprint": [f"slow-endpoint:/api/0/items/{n % 500}"],
        "new_status": 2,
        "new_substatus": 5,
    }


def _messages(make: Callable[[int], dict[str, Any]], count: int, content_type: str) -> list[RawMessage]:
    return [
        raw_message(
            make(n), message_id=str(n), message_time=(BASE_TIME + n) * 1_000_000, content_type=content_type
        )
        for n in range(count)
    ]


def _run(messages: list[RawMessage]) -> tuple[float, float]:
    """Messages per second of wall time and per second of this process's CPU time."""
    start, start_cpu = time.perf_counter(), time.process_time()
    for raw in messages:
        decoded = decode(raw)
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    assert isinstance(decoded, Message), decoded
    return len(messages) / elapsed, len(messages) / elapsed_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="distinct messages per kind")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per kind (the median is reported)")
    options = parser.parse_args()
    kinds = {
        "json occurrence with event": (occurrence_with_event, JSON_CONTENT_TYPE),
        "json occurrence lookup": (occurrence_lookup, JSON_CONTENT_TYPE),
        "json status change": (status_change, JSON_CONTENT_TYPE),
        "protobuf occurrence with event": (occurrence_with_event, PROTOBUF_CONTENT_TYPE),
        "protobuf status change": (status_change, PROTOBUF_CONTENT_TYPE),
    }
    for name, (make, content_type) in kinds.items():
        messages = _messages(make, options.messages, content_type)
        size = statistics.mean(len(raw.data) for raw in messages)
        _run(messages[:1000])  # warm up
        results = [_run(messages) for _ in range(options.repeats)]
        wall = [rate for rate, _ in results]
        cpu = statistics.median(rate for _, rate in results)
        runs = " ".join(f"{rate:,.0f}" for rate in wall)
        print(
            f"{name:31s} {statistics.median(wall):>9,.0f} msgs/s median (per CPU-second: {cpu:,.0f}; "
            f"{size:.0f} B avg; runs: {runs})"
        )


if __name__ == "__main__":
    main()
