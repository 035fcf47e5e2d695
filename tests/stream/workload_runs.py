"""Running a generated workload (``pipeline.workload``) through the pipeline, in one or more parts."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from pipeline.workload import MIXED, Workload, WorkloadConfig
from tests.stream import harness, runs
from tests.stream.environment import StreamEnv
from transforms.core import metrics, reasons
from transforms.core.model import MICROS


@dataclass(frozen=True)
class GeneratedStream:
    messages: list[harness.Scripted]
    dead: frozenset[str]  # labels of the messages that must be dead-lettered
    waiting: frozenset[str]  # ... of those, the ones that wait for their event first

    def halves(self) -> tuple[list[harness.Scripted], list[harness.Scripted]]:
        """The messages before and from the median message time (a key's redelivered copy stays with it)."""
        split = sorted(m.message_time for m in self.messages)[len(self.messages) // 2]
        return (
            [m for m in self.messages if m.message_time < split],
            [m for m in self.messages if m.message_time >= split],
        )


def generate() -> GeneratedStream:
    """About 1,000 generated messages of the last hours, in two projects, with every kind of message but
    event lookups of other occurrences' events.

    Why no such lookups: whether a lookup finds its event at once or after a retry depends on which key's
    flush comes first; both are correct, but the late one is applied under the late rules, so two runs may
    legitimately differ. The runs also switch the creation quota off: which keys get the last groups of an
    hour depends on processing order (E6). With those two out, the same messages must give the same rows,
    however they are batched, split between pipelines, or retried.
    """
    start = (int(time.time()) - 3 * 3600) * MICROS
    config = replace(
        WorkloadConfig(messages=1000, keys=150, seed=3, encoding=MIXED, projects=(1, 2)),
        start=start,
        duration=2 * 3600 * MICROS,
        lookup_share=0.0,
        status_change_share=0.08,
        redelivery_share=0.01,
        republish_share=0.02,
        timestamp_attribute=harness.TIMESTAMP_ATTRIBUTE,
    )
    workload = Workload(config)
    messages = [
        harness.Scripted(raw.message_id, raw.data, raw.message_time, raw.attributes) for raw in workload
    ]
    summary = workload.summary()
    waiting = {label for label, reason in summary.dead_letters.items() if reason == reasons.EVENT_NOT_FOUND}
    return GeneratedStream(messages, frozenset(summary.dead_letters), frozenset(waiting))


def applied(run: harness.StreamRun, stream: GeneratedStream, part: list[harness.Scripted]):
    """A condition: every message of ``part`` is counted (applied, a duplicate, or dead-lettered)."""
    expected_dead = sum(1 for m in part if m.label in stream.dead)
    expected_taken = sum(1 for m in part if m.label not in stream.dead or m.label in stream.waiting)

    def check() -> bool:
        counters = run.counters()
        taken = (
            counters.get(metrics.OCCURRENCE_MESSAGES, 0)
            + counters.get(metrics.STATUS_CHANGE_MESSAGES, 0)
            + counters.get(metrics.DUPLICATES, 0)
        )
        return runs.dead_letter_total(counters) >= expected_dead and taken >= expected_taken

    return check


@dataclass
class WorkloadOutcome:
    rows: dict[str, list[dict]]
    published: harness.Published
    counters: dict[str, int]
    seconds: float

    def comparable(self) -> dict[str, list]:
        return harness.comparable_rows(self.rows, self.published)


def run_parts(env: StreamEnv, stream: GeneratedStream, parts: list[list[harness.Scripted]], *extra: str):
    """Publish each part and run a new pipeline over it until it is applied; then read every row.

    The hold is long (5 s) so that every key's messages of a part are in its buffer when it is first applied, even
    when the emulator delivers a part in several pulls on a busy machine: the runs are then comparable.
    """
    published = harness.Published()
    counters: dict[str, int] = {}
    started = time.monotonic()
    args = env.args("--processing_hold=5s", *extra, quota=False)
    for part in parts:
        harness.publish(env.input_topic, part, published)
        with harness.StreamRun(args) as run:
            run.wait_until(applied(run, stream, part), f"{len(part)} messages to be applied", timeout=180)
            for name, value in run.settled_counters().items():
                counters[name] = counters.get(name, 0) + value
    seconds = time.monotonic() - started
    return WorkloadOutcome(harness.read_tables(env.database.database), published, counters, seconds)
