"""Tags of a generated workload: streaming and a backfill of the same messages write the same tag rows, and
every count is exact (redeliveries and republished messages included); they store the same events too.

The workload (``workload_runs.generate``) carries Sentry's tag sources: event tags as objects and as pairs,
server names, transactions, releases, environments, users and SDKs. The restart and fault tests
(``test_restart_and_faults``) compare the same tag tables across restarts and aborted commits, since
``pipeline.report.TABLES`` lists them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.stream import harness, workload_runs
from tests.stream.environment import backfill_scripted
from transforms.storage import org_words

TAG_TABLES = ("GroupTagKeys", "GroupTagValues", "OrgWords")


def tag_rows(rows: dict[str, list[dict]]) -> dict[str, list]:
    return {
        table: sorted(tuple(harness._plain(value) for value in row.values()) for row in rows[table])
        for table in TAG_TABLES
    }


def assert_counts_are_exact(rows: dict[str, list[dict]]) -> None:
    """Every occurrence has a level tag: a group's level counts add up to its occurrence rows."""
    occurrences = Counter(row["GroupId"] for row in rows["Occurrences"])
    levels = Counter()
    for row in rows["GroupTagValues"]:
        if row["TagKey"] == "level":
            levels[row["GroupId"]] += row["TimesSeen"]
    assert levels == occurrences
    keys = {(row["GroupId"], row["TagKey"]): row for row in rows["GroupTagKeys"]}
    values = Counter((row["GroupId"], row["TagKey"]) for row in rows["GroupTagValues"])
    assert {key: row["ValuesSeen"] for key, row in keys.items()} == dict(values)
    # the vocabulary holds every stored word (and the COMPLETE row of a database created with it); it also
    # keeps the words of deleted groups and those a full group dropped: the words of every attached occurrence
    words = {
        (row["OrganizationId"], row["TagValue"]) for row in rows["GroupTagValues"] if row["TagKey"] == "@text"
    }
    vocabulary = {(row["OrganizationId"], row["Word"]) for row in rows["OrgWords"]}
    assert vocabulary >= words | {org_words.COMPLETE}


def test_streaming_and_a_backfill_of_a_generated_workload_write_the_same_exact_tags(
    workload_run: workload_runs.WorkloadOutcome,
    generated: workload_runs.GeneratedStream,
    spanner_db_factory,
    tmp_path: Path,
) -> None:
    streamed = workload_run.rows
    backfilled = backfill_scripted(spanner_db_factory(), generated.messages, tmp_path)
    assert_counts_are_exact(streamed)
    assert_counts_are_exact(backfilled)
    keys = {row["TagKey"] for row in streamed["GroupTagKeys"]}
    assert {
        "level",
        "server_name",
        "transaction",
        "environment",
        "release",
        "user",
        "@sdk.name",
        "@text",
    } <= keys
    assert tag_rows(streamed) == tag_rows(backfilled)


def _stored_events(rows: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Events' rows by event id, and the events stored on occurrence rows (StoredEventId, EventPayload)."""
    events = {
        row["EventId"]: {name: harness._plain(value) for name, value in row.items()} for row in rows["Events"]
    }
    inline = {
        row["OccurrenceId"]: (row["StoredEventId"], harness._plain(row["EventPayload"]))
        for row in rows["Occurrences"]
        if row["StoredEventId"] is not None
    }
    return events, inline


def test_streaming_and_a_backfill_of_a_generated_workload_store_the_same_events(
    workload_run: workload_runs.WorkloadOutcome,
    generated: workload_runs.GeneratedStream,
    spanner_db_factory,
    tmp_path: Path,
) -> None:
    """Streaming carries an occurrence's event across the shuffle as its JSON text (``model.carried_event``),
    a backfill does not: both store the whole event, with its trees (tags, sdk, user, request, contexts)."""
    streamed = _stored_events(workload_run.rows)
    backfilled = _stored_events(backfill_scripted(spanner_db_factory(), generated.messages, tmp_path))
    payloads = [row["Payload"] for row in streamed[0].values()] + [
        payload for _id, payload in streamed[1].values()
    ]
    assert payloads and any("tags" in payload and "sdk" in payload for payload in payloads)
    assert streamed == backfilled
