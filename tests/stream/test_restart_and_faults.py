"""A stopped pipeline's successor, aborted Spanner commits and a Redis that goes away change nothing.

Each test runs a stream through the pipeline (the scripted one of ``main_run``, or a generated workload) and
compares every row it wrote with an undisturbed run of the same messages (``harness.comparable_rows`` says
which columns legitimately differ between two runs, and why).
"""

from __future__ import annotations

import pytest

from tests.stream import harness, runs, script, workload_runs
from tests.stream.environment import StreamEnv, stream_env
from transforms.core import metrics
from transforms.storage import clients


def test_a_new_pipeline_continues_from_spanner_where_the_stopped_one_left(
    main_run: runs.MainRun, env: StreamEnv
) -> None:
    """Phase 1 by one pipeline, phase 2 by a new one with empty Beam state: the held status change, the
    deleted key's generation and the duplicate memory come back from Spanner. The states of keys without a
    group are saved only when a pipeline stops (their save timers, in message time, are far off), so what
    the second pipeline reads is what the first one's stop wrote."""
    args = env.args(f"--max_payload_bytes={script.MAX_PAYLOAD}", "--state_save_delay=1000d")
    outcome = runs.run_script(
        env, main_run.scripted, args=args, restart_between_phases=True, saved_at_stop=True
    )
    harness.assert_same_rows(main_run.outcome.comparable(), outcome.comparable())
    assert outcome.counters[metrics.STATUS_CHANGE_PENDING] == 1
    assert outcome.counters[metrics.DROPPED_RATE_LIMITING] == 1


def _without_key(
    rows: dict[str, list[dict]], project: int, name: str, event_id: str, words: frozenset[str] = frozenset()
) -> dict[str, list[dict]]:
    """The rows, less those of one key: its group's, its key state, and its occurrence's event (stored on the
    occurrence row when the occurrence is attached, in Events when it is not), and the vocabulary rows of the
    words it stored (``words``: another group's may have them too; removed from both sides of a comparison)."""
    group_id = script.key_group_id(name, project=project)
    primary_hash = script.primary_hash(name)
    kept = {}
    for table, table_rows in rows.items():
        kept[table] = [
            row
            for row in table_rows
            if row.get("GroupId") != group_id
            and not (
                table == "KeyStates" and (row["ProjectId"], row["PrimaryHash"]) == (project, primary_hash)
            )
            and not (table == "Events" and row["EventId"] == event_id)
            and not (table == "OrgWords" and row["Word"] in words)
        ]
    return kept


def test_creation_quota_fails_open_and_counts_it_when_redis_stops_mid_run(
    main_run: runs.MainRun, env: StreamEnv, private_redis
) -> None:
    """Redis stops after phase 1: phase 2's four creations are let through and counted; the only
    difference from the undisturbed run is the group the quota would have refused (quota-6)."""
    redis_url = f"redis://127.0.0.1:{private_redis.port}/0"
    args = env.args(f"--max_payload_bytes={script.MAX_PAYLOAD}", redis_url=redis_url)
    outcome = runs.run_script(env, main_run.scripted, args=args, between_phases=private_redis.stop)

    assert outcome.counters[metrics.QUOTA_FAIL_OPEN] == 4  # lookup, held-create, delete-2, quota-6
    assert outcome.counters.get(metrics.DROPPED_RATE_LIMITING, 0) == 0
    quota_6 = script.key_group_id("quota-6", project=script.QUOTA_PROJECT)
    assert [row["TimesSeen"] for row in outcome.rows["Groups"] if row["GroupId"] == quota_6] == [1]
    event_id = main_run.scripted.event_ids["quota-6"]
    words = frozenset(
        row["TagValue"]
        for row in outcome.rows["GroupTagValues"]
        if row["GroupId"] == quota_6 and row["TagKey"] == "@text"
    )
    expected = _without_key(main_run.outcome.rows, script.QUOTA_PROJECT, "quota-6", event_id, words)
    actual = _without_key(outcome.rows, script.QUOTA_PROJECT, "quota-6", event_id, words)
    harness.assert_same_rows(
        harness.comparable_rows(expected, main_run.outcome.published),
        harness.comparable_rows(actual, outcome.published),
    )


# ---------------------------------------------------------------------------------------------------------
# A generated workload (tests.stream.workload_runs), against one uninterrupted run of it (``workload_run``)


def test_restart_halfway_through_a_generated_workload_gives_the_rows_of_one_uninterrupted_run(
    workload_run: workload_runs.WorkloadOutcome, generated: workload_runs.GeneratedStream, env: StreamEnv
) -> None:
    assert len(workload_run.rows["Groups"]) > 50
    halves = workload_runs.run_parts(env, generated, list(generated.halves()))
    assert halves.counters[metrics.STATE_HYDRATED] > 0
    harness.assert_same_rows(workload_run.comparable(), halves.comparable())


def test_aborted_spanner_commits_give_the_same_rows(
    workload_run: workload_runs.WorkloadOutcome,
    generated: workload_runs.GeneratedStream,
    stack,
    fault_spanner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the emulator with fault injection, about one commit in twenty is aborted: with one commit per key
    write (a tiny ``--max_commit_mutations``) a run sees a dozen aborts, each retried."""
    monkeypatch.setenv(clients.SPANNER_EMULATOR_VAR, fault_spanner.host)
    with stream_env(stack, "faults") as env:
        outcome = workload_runs.run_parts(env, generated, [generated.messages], "--max_commit_mutations=1")
    assert outcome.counters[metrics.SPANNER_COMMIT_ATTEMPTS] > outcome.counters[metrics.SPANNER_COMMITS], (
        "the emulator aborted no commit: is fault injection on?"
    )
    harness.assert_same_rows(workload_run.comparable(), outcome.comparable())
