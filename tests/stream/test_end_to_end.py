"""The streaming pipeline end to end, on the Pub/Sub and Spanner emulators and Redis, with the local runner.

One run of the scripted stream (``tests.stream.script``, the ``main_run`` fixture) is shared by these tests:
phase 1, then phase 2, then Pub/Sub redelivers every message (a seek of the subscription back to before phase
1). Each test checks one behaviour in what that run wrote to Spanner, counted and dead-lettered.
"""

from __future__ import annotations

from tests.stream import harness, runs, script
from tests.stream.environment import StreamEnv
from transforms.core import metrics
from transforms.core.engine.ids import activity_id
from transforms.core.enums import ActivityType, GroupStatus, GroupSubStatus
from transforms.core.model import from_datetime


def test_first_occurrence_creates_the_group_and_later_ones_update_it(main_run: runs.MainRun) -> None:
    group = main_run.group("create")
    t0 = main_run.scripted.t0
    assert group["Status"] == GroupStatus.UNRESOLVED
    assert group["Substatus"] == GroupSubStatus.NEW
    assert group["TimesSeen"] == 2
    assert from_datetime(group["FirstSeen"]) == t0 + 1 * script.SECOND
    assert from_datetime(group["LastSeen"]) == t0 + 2 * script.SECOND
    assert group["Title"].startswith("create title")
    assert group["FirstRelease"] == "backend@1.0.0"
    assert len(main_run.children("Occurrences", "create")) == 2
    environments = {
        row["Environment"]: row["FirstRelease"] for row in main_run.children("GroupEnvironments", "create")
    }
    assert environments == {"production": "backend@1.0.0", "staging": "backend@1.0.0"}
    hashes = [row for row in main_run.rows["GroupHashes"] if row["GroupId"] == group["GroupId"]]
    assert [row["Hash"] for row in hashes] == [script.primary_hash("create")]
    assert main_run.counters[metrics.GROUP_CREATED] >= 10


def test_noise_gate_holds_back_a_group_until_its_third_occurrence(main_run: runs.MainRun) -> None:
    assert not main_run.has_group("noise-below")
    below = harness.decoded_state(main_run.key_state("noise-below")["State"])
    assert below is not None and below.noise_count == 2
    passed = main_run.group("noise-pass")
    assert passed["TimesSeen"] == 1
    assert [row["OccurrenceId"] for row in main_run.children("Occurrences", "noise-pass")] == [
        script.uuid_of(main_run.scripted, "noise-pass-3")
    ]
    assert main_run.counters[metrics.DROPPED_NOISE] == 4


def test_creation_quota_in_redis_refuses_the_sixth_group_of_the_hour(main_run: runs.MainRun) -> None:
    quota_groups = [row for row in main_run.rows["Groups"] if row["ProjectId"] == script.QUOTA_PROJECT]
    assert len(quota_groups) == 5
    assert not main_run.has_group("quota-6", project=script.QUOTA_PROJECT)
    assert main_run.counters[metrics.DROPPED_RATE_LIMITING] == 1
    assert main_run.counters.get(metrics.QUOTA_FAIL_OPEN, 0) == 0


def test_status_change_before_its_group_is_applied_when_the_group_is_created(main_run: runs.MainRun) -> None:
    group = main_run.group("held")
    assert group["Status"] == GroupStatus.RESOLVED
    assert from_datetime(group["ResolvedAt"]) == main_run.scripted.at(100)
    assert [row["Type"] for row in main_run.children("Activities", "held")] == [ActivityType.SET_RESOLVED]
    assert main_run.counters[metrics.STATUS_CHANGE_PENDING] == 1


def test_occurrence_after_resolve_in_next_release_regresses_only_with_a_newer_release(
    main_run: runs.MainRun,
) -> None:
    group = main_run.group("regress")
    assert (group["Status"], group["Substatus"]) == (GroupStatus.UNRESOLVED, GroupSubStatus.REGRESSED)
    assert group["TimesSeen"] == 3
    assert group["ResolvedAt"] is None and group["ResolutionType"] is None
    activities = sorted(main_run.children("Activities", "regress"), key=lambda row: row["ActivityTime"])
    assert [row["Type"] for row in activities] == [
        ActivityType.SET_RESOLVED_IN_RELEASE,
        ActivityType.SET_REGRESSION,
    ]
    regression = activities[1]
    assert from_datetime(regression["ActivityTime"]) == main_run.scripted.at(23)
    assert regression["Data"]["version"] == "backend@1.1.0"
    assert main_run.counters[metrics.REGRESSIONS] == 1
    assert (
        main_run.counters.get(metrics.LATE_MESSAGES, 0) == 1
    )  # held-create only: it is older than its key's status change


def test_duplicate_delivery_is_counted_once(main_run: runs.MainRun) -> None:
    assert main_run.group("dup")["TimesSeen"] == 1
    assert len(main_run.children("Occurrences", "dup")) == 1
    assert main_run.counters[metrics.DUPLICATES] == 1


def test_lookup_finds_the_event_stored_by_another_key_and_a_missing_event_is_dead_lettered(
    main_run: runs.MainRun,
) -> None:
    occurrences = main_run.children("Occurrences", "lookup")
    assert [row["EventId"] for row in occurrences] == [main_run.scripted.event_ids["create-1"]]
    assert not main_run.has_group("lookup-missing")
    assert main_run.counters[metrics.dead_letter_counter("event_not_found")] == 1


def test_invalid_messages_go_to_the_dead_letter_topic_with_bytes_attributes_and_reason(
    main_run: runs.MainRun,
) -> None:
    published = main_run.outcome.published
    by_label = {message.label: message for message in main_run.scripted.phase1}
    got = {}
    for message in main_run.outcome.dead_letters:
        attributes = dict(message.attributes)
        label = published.labels[attributes["original_message_id"]]
        got[label] = attributes["dead_letter_reason"]
        assert message.data == by_label[label].data
        assert attributes["ts"] == by_label[label].pubsub_attributes()["ts"]
        assert attributes["content_type"] == "application/json"
        assert attributes["dead_letter_error"]
        assert attributes["dead_letter_stage"] in ("decode", "validate", "apply")
        assert from_datetime_rfc3339(attributes["original_publish_time"]) == by_label[label].message_time
    assert got == script.DEAD_LETTERS
    for label, reason in script.DEAD_LETTERS.items():
        assert main_run.counters[metrics.dead_letter_counter(reason)] == 1, label


def test_delete_removes_the_group_and_the_next_occurrence_starts_a_new_generation(
    main_run: runs.MainRun,
) -> None:
    assert not main_run.has_group("delete", generation=0)
    assert main_run.children("Occurrences", "delete", generation=0) == []
    new = main_run.group("delete", generation=1)
    assert new["TimesSeen"] == 1
    assert [row["OccurrenceId"] for row in main_run.children("Occurrences", "delete", generation=1)] == [
        script.uuid_of(main_run.scripted, "delete-2")
    ]
    links = [row for row in main_run.rows["GroupHashes"] if row["Hash"] == script.primary_hash("delete")]
    assert [row["GroupId"] for row in links] == [new["GroupId"]]
    key = main_run.key_state("delete")
    assert (key["Generation"], key["GroupId"]) == (1, new["GroupId"])
    assert main_run.counters[metrics.GROUPS_DELETED] == 1


def test_messages_redelivered_by_pubsub_change_nothing(main_run: runs.MainRun) -> None:
    """A seek of the subscription made Pub/Sub deliver every message again (same ids, times, bytes)."""
    # The occurrence whose event never came is not remembered (dead letters leave no trace in the state, so
    # a fixed message can be replayed): it waited again and was dead-lettered again, two more versions.
    missing = script.primary_hash("lookup-missing")

    def without_missing(rows):
        return {
            table: [row for row in table_rows if table != "KeyStates" or row["PrimaryHash"] != missing]
            for table, table_rows in rows.items()
        }

    before = harness.comparable_rows(without_missing(main_run.rows), main_run.outcome.published)
    after = harness.comparable_rows(without_missing(main_run.redelivered_rows), main_run.outcome.published)
    harness.assert_same_rows(before, after)
    seqs = [
        next(row["Seq"] for row in rows["KeyStates"] if row["PrimaryHash"] == missing)
        for rows in (main_run.rows, main_run.redelivered_rows)
    ]
    assert seqs[1] == seqs[0] + 2
    valid = sum(1 for label in main_run.outcome.published.labels.values() if label not in script.DEAD_LETTERS)
    duplicates = main_run.redelivered_counters[metrics.DUPLICATES] - main_run.counters[metrics.DUPLICATES]
    assert duplicates == valid
    assert main_run.redelivered_counters[metrics.GROUP_CREATED] == main_run.counters[metrics.GROUP_CREATED]
    # Dead letters are not remembered (a fixed message must be replayable), so they go out again.
    assert sorted(
        dict(m.attributes)["dead_letter_reason"] for m in main_run.redelivered_dead_letters
    ) == sorted(script.DEAD_LETTERS.values())


def from_datetime_rfc3339(text: str) -> int:
    from datetime import datetime

    return from_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))


def test_activity_ids_are_derived_from_the_status_change(main_run: runs.MainRun) -> None:
    group = main_run.group("held")
    change = next(m for m in main_run.scripted.phase1 if m.label == "held-resolve")
    import orjson

    change_id = orjson.loads(change.data)["id"]
    assert [row["ActivityId"] for row in main_run.children("Activities", "held")] == [
        activity_id(group["GroupId"], change_id, ActivityType.SET_RESOLVED)
    ]


def test_beams_runner_without_our_patches_writes_the_same_rows(
    main_run: runs.MainRun, env: StreamEnv
) -> None:
    """The scripted stream's two phases on Beam's local runner as it is (``--no_local_runner_patches``):
    Beam's own Pub/Sub reader (10 messages a pull, waiting up to 30 s when there are none), timer scans,
    metrics and bundle setup. Slower, and the same rows as the patched run."""
    args = env.args(f"--max_payload_bytes={script.MAX_PAYLOAD}", "--no_local_runner_patches")
    outcome = runs.run_script(env, main_run.scripted, args=args, timeout=240)
    harness.assert_same_rows(main_run.outcome.comparable(), outcome.comparable())


def test_the_dataflow_graph_on_the_local_runner_writes_the_same_rows(
    main_run: runs.MainRun, env: StreamEnv
) -> None:
    """The scripted stream's two phases through the graph Dataflow runs (``--graph dataflow``: separate
    stateless steps, commits in the stateful step's bundles, Beam's Pub/Sub sink) on the local runner: the
    same rows as the local graph."""
    args = env.args(f"--max_payload_bytes={script.MAX_PAYLOAD}", "--graph=dataflow")
    outcome = runs.run_script(env, main_run.scripted, args=args)
    harness.assert_same_rows(main_run.outcome.comparable(), outcome.comparable())
    assert outcome.counters[metrics.GROUP_CREATED] == main_run.counters[metrics.GROUP_CREATED]
