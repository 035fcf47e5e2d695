"""The backfill end to end: archives in, rows in the Spanner emulator, dead-letter files out.

Each test runs ``python -m pipeline.backfill``'s ``main`` in this process on a small generated archive
(quota off unless a test is about it, so results do not depend on key order: E6).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest

from pipeline import backfill
from pipeline.archive_writer import ArchiveWriter
from pipeline.production_graph import backfill_job_graph, run_on_fn_api_runner
from pipeline.stream import counter_totals
from pipeline.workload import Workload, WorkloadConfig
from transforms.core.envelopes import archive_line
from transforms.core.model import MICROS, RawMessage
from transforms.storage import registry

TABLES = {
    "Groups": "SELECT GroupId, ProjectId, Status, Substatus, Priority, Level, Title, Culprit, FirstSeen, LastSeen, "
    "ActiveAt, ResolvedAt, TimesSeen, FirstRelease, ResolutionType, ResolutionVersion, Seq FROM `Groups`",
    "Occurrences": "SELECT GroupId, OccurrenceId, MessageId, EventTime, Release, StoredEventId FROM Occurrences",
    "Activities": "SELECT GroupId, ActivityId, Type, MessageId, ActivityTime FROM Activities",
    "GroupEnvironments": "SELECT GroupId, Environment, FirstRelease, FirstSeen FROM GroupEnvironments",
    "GroupReleases": "SELECT GroupId, Release FROM GroupReleases",
    "GroupHashes": "SELECT ProjectId, `Hash`, GroupId FROM GroupHashes",
    "Releases": "SELECT ProjectId, Version, FirstSeen FROM Releases",
    "Events": "SELECT ProjectId, EventId FROM Events",
    # KeyStates.Seq is the seq of the write that last pointed the key at its group, which depends on how the
    # history was batched; the group row's Seq (above) is the key's final one either way.
    "KeyStates": "SELECT ProjectId, PrimaryHash, Generation, GroupId FROM KeyStates",
    "OrgWords": "SELECT OrganizationId, Word FROM OrgWords",
}


def snapshot(database) -> dict[str, list]:
    with database.snapshot(multi_use=True) as read:
        return {table: sorted(map(list, read.execute_sql(sql)), key=repr) for table, sql in TABLES.items()}


def register_sample_projects(test_db):
    for project_id, organization_id, slug in ((1, 1, "backend"), (2, 1, "frontend"), (3, 2, "mobile")):
        registry.register_project(
            test_db.database, project_id=project_id, organization_id=organization_id, slug=slug
        )
    return test_db


@pytest.fixture
def registered(spanner_db):
    return register_sample_projects(spanner_db)


def archive(tmp_path: Path, name: str, config: WorkloadConfig, **writer_args) -> tuple[str, Workload]:
    workload = Workload(config)
    with ArchiveWriter(str(tmp_path / name), **writer_args) as writer:
        writer.write_all(workload)
    stem, _, extension = name.partition(".")
    return str(tmp_path / f"{stem}*.{extension}"), workload


def run_backfill(database, pattern: str, dead_letters: Path, *extra: str, capsys=None) -> str:
    args = [
        "--input",
        pattern,
        "--dead_letter_path",
        str(dead_letters),
        "--no_creation_quota",
        *database.pipeline_args(),
        *extra,
    ]
    assert backfill.main(args) == 0
    return capsys.readouterr().out if capsys else ""


def figure(out: str, label: str) -> int:
    """A number of the summary table printed at the end of a backfill."""
    summary = out[out.index("backfill done:") :]
    for line in summary.splitlines()[1:]:
        name, _, value = line.strip().rpartition(" ")
        if name.strip() == label:
            return int(value.replace(",", ""))
    raise KeyError(label)


def dead_letter_reasons(folder: Path) -> Counter:
    reasons: Counter = Counter()
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            reasons[json.loads(line)["reason"]] += 1
    return reasons


SMALL = WorkloadConfig(messages=3000, keys=200, seed=7)


def test_archive_becomes_groups_and_dead_letters_match_the_generator(registered, tmp_path, capsys):
    pattern, workload = archive(tmp_path, "small.jsonl", SMALL)
    out = run_backfill(registered, pattern, tmp_path / "dl", capsys=capsys)
    rows = snapshot(registered.database)
    assert rows["Groups"] and rows["Occurrences"]
    expected = Counter(workload.summary().by_reason)
    assert dead_letter_reasons(tmp_path / "dl") == expected
    # The summary table and the progress line are printed.
    assert "backfill done:" in out and "groups created" in out and "read 3,000" in out
    assert figure(out, "groups created") - figure(out, "groups deleted") == len(rows["Groups"])


def test_running_the_same_backfill_twice_changes_nothing_the_second_time(registered, tmp_path, capsys):
    pattern, _ = archive(tmp_path, "twice.avro", SMALL, max_records_per_file=1000)
    run_backfill(registered, pattern, tmp_path / "dl1", capsys=capsys)
    first = snapshot(registered.database)
    out = run_backfill(registered, pattern, tmp_path / "dl2", capsys=capsys)
    assert snapshot(registered.database) == first
    assert figure(out, "spanner rows written") == 0
    assert figure(out, "duplicates") > 0
    # Dead letters are not remembered: they come out again (replaying them must reprocess them).
    assert dead_letter_reasons(tmp_path / "dl2") == dead_letter_reasons(tmp_path / "dl1")


def test_local_spill_and_beam_shuffle_give_the_same_rows(registered, spanner_db_factory, tmp_path):
    pattern, _ = archive(tmp_path, "both.jsonl.gz", SMALL)
    run_backfill(registered, pattern, tmp_path / "dl-spill", "--grouping=spill")
    other = register_sample_projects(spanner_db_factory())
    run_backfill(other, pattern, tmp_path / "dl-shuffle", "--grouping=shuffle")
    assert snapshot(other.database) == snapshot(registered.database)


def test_hot_keys_applied_in_small_ordered_chunks_give_the_same_rows(
    registered, spanner_db_factory, tmp_path
):
    config = WorkloadConfig(messages=2000, keys=50, hot_key_share=0.3, seed=11)
    pattern, _ = archive(tmp_path, "hot.jsonl", config)
    run_backfill(registered, pattern, tmp_path / "dl-big")
    other = register_sample_projects(spanner_db_factory())
    run_backfill(other, pattern, tmp_path / "dl-small", "--chunk_size=37")
    assert snapshot(other.database) == snapshot(registered.database)


def test_a_dead_letter_file_is_a_valid_archive_and_replays_to_the_same_dead_letters(registered, tmp_path):
    pattern, _ = archive(tmp_path, "dl-source.jsonl", SMALL)
    run_backfill(registered, pattern, tmp_path / "dl")
    # The command: a glob without an extension over the product's own dead-letter files.
    replay_input = str(tmp_path / "dl" / "dead-letters-*")
    run_backfill(registered, replay_input, tmp_path / "dl-again")
    assert dead_letter_reasons(tmp_path / "dl-again") == dead_letter_reasons(tmp_path / "dl")


def test_missing_flags_are_refused_with_a_clear_message():
    with pytest.raises(SystemExit, match="--input and --dead_letter_path required"):
        backfill.make_options([])


def test_the_creation_quota_holds_in_every_window_whatever_order_the_backfill_takes_keys_in(
    registered, redis_ns, tmp_path, capsys
):
    """Issue 17: new fingerprints of one type (error: 5 an hour) in one project within ten minutes of message
    time. The backfill takes keys in any order; a grant that looked only at the hour before its own time let a
    key at 02:03 in after five at 02:12 (six groups). Twelve fingerprints rather than six, so that the old
    rule lets more than five through in all orders but 1 in 792 (when the five earliest are asked first):
    five groups, and the other seven counted over the quota."""
    start = 1_780_000_000 * MICROS
    lines = []
    for index in range(12):
        message_time = start + (index * 50 + 7) * MICROS  # 7 s to 9 min 17 s after start
        payload = {
            "id": f"{index + 1:032x}",
            "project_id": 1,
            "fingerprint": [f"quota-backfill-{index}"],
            "issue_title": f"error {index}",
            "subtitle": "",
            "type": 1,
            "detection_time": message_time / MICROS,
            "evidence_display": [],
            "event": {
                "event_id": f"{index + 101:032x}",
                "project_id": 1,
                "platform": "python",
                "timestamp": message_time / MICROS,
            },
        }
        lines.append(archive_line(RawMessage(f"quota-{index}", message_time, orjson.dumps(payload))))
    path = tmp_path / "quota.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    args = [
        "--input",
        str(path),
        "--dead_letter_path",
        str(tmp_path / "dl"),
        f"--redis_url={redis_ns.url}",
        f"--quota_key_prefix={redis_ns.prefix}backfill",
        *registered.pipeline_args(),
    ]
    assert backfill.main(args) == 0
    out = capsys.readouterr().out
    rows = snapshot(registered.database)
    assert len(rows["Groups"]) == 5
    assert figure(out, "groups created") == 5 and figure(out, "over creation quota") == 7


def test_a_size_limit_above_what_the_pipeline_can_carry_is_refused_before_anything_starts():
    flags = ["--input=a.jsonl", "--dead_letter_path=dl"]
    backfill.make_options([*flags, "--max_payload_bytes=2621440"])
    with pytest.raises(
        SystemExit, match="--max_payload_bytes: 2621441 bytes is more than the pipeline can carry"
    ):
        backfill.make_options([*flags, "--max_payload_bytes=2621441"])


def test_timestamp_attribute_gives_message_times_and_an_unreadable_one_is_a_dead_letter(registered, tmp_path):
    """``--timestamp_attribute`` in a backfill, as in streaming: a message carrying the attribute takes its
    time from it (not from the archive's publish time), one whose value cannot be read is a dead letter
    (``invalid_field``, stage ``read``) and its neighbours are applied, one without it keeps its publish time."""
    published = 1_780_000_000 * MICROS
    lines = []
    for number, ts in enumerate(["2026-01-01T00:00:00Z", "yesterday", None]):
        occurrence_id = f"{number + 1:032x}"
        payload = {
            "id": occurrence_id,
            "project_id": 1,
            "event_id": occurrence_id,
            "fingerprint": [f"timestamp-attribute-{number}"],
            "issue_title": "t",
            "subtitle": "s",
            "type": 1,
            "detection_time": 1_780_000_000,
            "evidence_display": [],
            "level": "error",
            "event": {
                "event_id": occurrence_id,
                "project_id": 1,
                "platform": "python",
                "timestamp": 1_780_000_000,
            },
        }
        attributes = {"content_type": "application/json", **({"ts": ts} if ts else {})}
        lines.append(archive_line(RawMessage(f"m{number}", published, orjson.dumps(payload), attributes)))
    (tmp_path / "ts.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    run_backfill(registered, str(tmp_path / "ts.jsonl"), tmp_path / "dl", "--timestamp_attribute=ts")
    with registered.database.snapshot() as snapshot:
        times = dict(snapshot.execute_sql("SELECT MessageId, MessageTime FROM Occurrences"))
    assert {message_id: when.isoformat() for message_id, when in times.items()} == {
        "m0": "2026-01-01T00:00:00+00:00",
        "m2": "2026-05-28T20:26:40+00:00",
    }
    (record,) = [
        json.loads(line)
        for path in (tmp_path / "dl").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert (record["message_id"], record["reason"], record["stage"]) == ("m1", "invalid_field", "read")
    assert record["attributes"]["ts"] == "yesterday"


def test_the_dataflow_job_run_on_the_fn_api_runner_writes_the_rows_of_the_local_run(
    registered, spanner_db_factory, tmp_path, capsys
):
    """The graph ``--runner DataflowRunner`` submits (Beam's GroupByKey, the event join in Beam, no spill
    files), executed unchanged on the FnApiRunner, against the default local run (spill files)."""
    pattern, _ = archive(tmp_path, "both.avro", SMALL, max_records_per_file=1000)
    out = run_backfill(registered, pattern, tmp_path / "dl-local", capsys=capsys)
    other = register_sample_projects(spanner_db_factory())
    graph = backfill_job_graph(
        [
            f"--input={pattern}",
            f"--dead_letter_path={tmp_path / 'dl-dataflow'}",
            "--no_creation_quota",
            *other.pipeline_args(),
        ]
    )
    names = {transform.unique_name for transform in graph.components.transforms.values()}
    assert {"GroupByKey", "ResolveEventLookups/JoinCarriedEvents", "ApplyInKeyOrder/ApplyEngine"} <= names
    assert not any("Spill" in name for name in names)
    result = run_on_fn_api_runner(graph)
    assert snapshot(other.database) == snapshot(registered.database)
    assert dead_letter_reasons(tmp_path / "dl-dataflow") == dead_letter_reasons(tmp_path / "dl-local")
    # The same outcomes, counted by the same counters. Not how many rows and mutations were written: keys
    # are applied in another order (shuffle order against shard order), and a release or an event another
    # key wrote first is not written again by the same writer (the rows are the same, as checked above).
    totals = counter_totals(result)
    outcomes = [(label, name) for label, name in backfill.SUMMARY_ROWS if not name.startswith("spanner.")]
    assert [(label, totals.get(name, 0)) for label, name in outcomes] == [
        (label, figure(out, label)) for label, name in outcomes
    ]
