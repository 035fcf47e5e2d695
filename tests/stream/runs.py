"""Running the scripted stream (``tests.stream.script``) through the pipeline, phase by phase."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.stream import harness, script
from tests.stream.environment import StreamEnv
from transforms import progress
from transforms.core import metrics
from transforms.core.enums import GroupStatus

DEAD_LETTERS_PHASE_1 = len(script.DEAD_LETTERS)


def dead_letter_total(counters: dict[str, int]) -> int:
    """Dead letters counted: by reason in Beam's counters, or, in the process's own counts (a run whose Beam
    counters are lost, ``harness.StreamRun.counters``), every dead letter sent out."""
    by_reason = sum(value for name, value in counters.items() if name.startswith(metrics.DEAD_LETTER_PREFIX))
    return max(by_reason, counters.get(progress.DEAD_LETTERS, 0))


def _group(database, name: str, *, project: int = script.PROJECT, generation: int = 0) -> dict | None:
    group_id = script.key_group_id(name, project=project, generation=generation)
    return harness.read_row(database, "Groups", ("GroupId", "Status", "Substatus", "TimesSeen"), [group_id])


def _key_state(database, name: str, *, project: int = script.PROJECT) -> dict | None:
    key = [project, script.primary_hash(name)]
    return harness.read_row(database, "KeyStates", ("Generation", "Seq", "GroupId"), key)


def phase1_applied(run: harness.StreamRun, database, saved_at_stop: bool = False) -> bool:
    """Everything of phase 1 is in Spanner and every dead letter of phase 1 went out. ``saved_at_stop``: the
    states of keys without a group are saved only when the pipeline stops, so their counters tell instead
    (counted once their commit is done)."""
    counters = run.counters()
    if dead_letter_total(counters) < DEAD_LETTERS_PHASE_1:
        return False
    if saved_at_stop:
        groupless = (
            counters.get(metrics.STATUS_CHANGE_PENDING, 0) >= 1  # held
            and counters.get(metrics.DROPPED_NOISE, 0) >= 4  # noise-below 1, 2 and noise-pass 1, 2
        )
    else:
        groupless = (
            _key_state(database, "held") is not None and _key_state(database, "noise-below") is not None
        )
    regress = _group(database, "regress")
    deleted = _key_state(database, "delete")
    return (
        harness.count_rows(database, "Groups") == 9
        and regress is not None
        and regress["TimesSeen"] == 3
        and deleted is not None
        and deleted["Generation"] == 1
        and groupless
    )


def phase2_applied(run: harness.StreamRun, database, saved_at_stop: bool = False) -> bool:
    held = _group(database, "held")
    if saved_at_stop:
        quota_6 = run.counters().get(metrics.DROPPED_RATE_LIMITING, 0) >= 1
    else:
        quota_6 = _key_state(database, "quota-6", project=script.QUOTA_PROJECT) is not None
    return (
        held is not None
        and held["Status"] == GroupStatus.RESOLVED
        and _group(database, "delete", generation=1) is not None
        and quota_6
        and _group(database, "lookup") is not None
    )


@dataclass
class Outcome:
    """What one run of the script left behind."""

    env: StreamEnv
    published: harness.Published
    rows: dict[str, list[dict[str, Any]]]
    counters: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    dead_letters: list[Any] = field(default_factory=list)
    phase1_started: float = 0.0  # wall clock just before phase 1 was published

    def comparable(self) -> dict[str, list]:
        return harness.comparable_rows(self.rows, self.published)


def run_script(
    env: StreamEnv,
    scripted: script.Script,
    *,
    args: Sequence[str] | None = None,
    restart_between_phases: bool = False,
    between_phases: Callable[[], None] | None = None,
    after_phase_2: Callable[[harness.StreamRun, Outcome], None] | None = None,
    saved_at_stop: bool = False,
    timeout: float = 90.0,
) -> Outcome:
    """Publish phase 1, run until it is applied, (optionally restart the pipeline,) publish phase 2, run until
    it is applied, then read every row. ``saved_at_stop``: the args make the states of keys without a group
    wait for the stop (a long ``--state_save_delay``): phases are known applied by counters, and the rows
    are read once the pipeline has stopped. ``after_phase_2`` runs while the pipeline still runs. ``timeout``:
    how long each phase may take."""
    args = list(args if args is not None else env.args(f"--max_payload_bytes={script.MAX_PAYLOAD}"))
    published = harness.Published()
    timings: dict[str, float] = {}
    phase1_started = time.time() - 1.0
    harness.publish(env.input_topic, scripted.phase1, published)
    run = harness.StreamRun(args).start()
    try:
        timings["phase 1"] = run.wait_until(
            lambda: phase1_applied(run, env.database.database, saved_at_stop),
            "phase 1 to be applied",
            timeout,
        )
        counters_phase1 = run.settled_counters()
        if restart_between_phases:
            run.stop()
            run = harness.StreamRun(args).start()
        if between_phases is not None:
            between_phases()
        harness.publish(env.input_topic, scripted.phase2, published)
        timings["phase 2"] = run.wait_until(
            lambda: phase2_applied(run, env.database.database, saved_at_stop),
            "phase 2 to be applied",
            timeout,
        )
        counters = run.settled_counters()
        if restart_between_phases:
            counters = {
                name: counters.get(name, 0) + counters_phase1.get(name, 0)
                for name in {*counters, *counters_phase1}
            }
        outcome = Outcome(
            env,
            published,
            harness.read_tables(env.database.database),
            counters,
            timings,
            phase1_started=phase1_started,
        )
        if after_phase_2 is not None:
            after_phase_2(run, outcome)
    finally:
        run.stop()
    if saved_at_stop:
        outcome.rows = harness.read_tables(env.database.database)
    return outcome


@dataclass
class MainRun:
    scripted: script.Script
    outcome: Outcome
    redelivered_rows: dict[str, list[dict[str, Any]]]
    redelivered_counters: dict[str, int]
    redelivered_dead_letters: list[Any]

    @property
    def rows(self) -> dict[str, list[dict[str, Any]]]:
        return self.outcome.rows

    @property
    def counters(self) -> dict[str, int]:
        return self.outcome.counters

    def group(self, name: str, *, project: int = script.PROJECT, generation: int = 0) -> dict[str, Any]:
        wanted = script.key_group_id(name, project=project, generation=generation)
        found = [row for row in self.rows["Groups"] if row["GroupId"] == wanted]
        assert found, f"no group for key {name!r} (generation {generation})"
        return found[0]

    def has_group(self, name: str, *, project: int = script.PROJECT, generation: int = 0) -> bool:
        wanted = script.key_group_id(name, project=project, generation=generation)
        return any(row["GroupId"] == wanted for row in self.rows["Groups"])

    def children(self, table: str, name: str, *, generation: int = 0) -> list[dict[str, Any]]:
        wanted = script.key_group_id(name, generation=generation)
        return [row for row in self.rows[table] if row["GroupId"] == wanted]

    def key_state(self, name: str, *, project: int = script.PROJECT) -> dict[str, Any]:
        wanted = (project, script.primary_hash(name))
        found = [row for row in self.rows["KeyStates"] if (row["ProjectId"], row["PrimaryHash"]) == wanted]
        assert found, f"no key state for {name!r}"
        return found[0]


def run_main(env: StreamEnv) -> MainRun:
    """The shared run: phase 1, phase 2, then Pub/Sub redelivers everything (a seek back before phase 1)."""
    scripted = script.build()
    captured: dict[str, Any] = {}

    def redeliver(run: harness.StreamRun, outcome: Outcome) -> None:
        outcome.dead_letters = harness.pull_all(env.dead_letter_subscription, expected=DEAD_LETTERS_PHASE_1)
        valid = sum(1 for label in outcome.published.labels.values() if label not in script.DEAD_LETTERS)
        duplicates_before = outcome.counters.get(metrics.DUPLICATES, 0)
        harness.seek_to(env.input_subscription, outcome.phase1_started)
        outcome.timings["redelivery"] = run.wait_until(
            lambda: (
                run.counter(metrics.DUPLICATES) >= duplicates_before + valid
                and dead_letter_total(run.counters()) >= 2 * DEAD_LETTERS_PHASE_1
            ),
            "every redelivered message to be applied",
        )
        captured["dead_letters"] = harness.pull_all(
            env.dead_letter_subscription, expected=DEAD_LETTERS_PHASE_1
        )
        captured["counters"] = run.settled_counters()
        captured["rows"] = harness.read_tables(env.database.database)

    outcome = run_script(env, scripted, after_phase_2=redeliver)
    return MainRun(scripted, outcome, captured["rows"], captured["counters"], captured["dead_letters"])
