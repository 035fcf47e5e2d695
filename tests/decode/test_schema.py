from __future__ import annotations

from pathlib import Path

from schemas import compile_proto, ingest_pb2


def test_committed_generated_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    written = compile_proto.generate(tmp_path)
    for path in written:
        relative = path.relative_to(tmp_path)
        committed = compile_proto.REPO_ROOT / relative
        assert committed.exists(), f"{relative} is not committed: run `python -m schemas.compile_proto`"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{relative} is out of date with schemas/ingest.proto: run `python -m schemas.compile_proto`"
        )


def test_generated_code_imports_under_the_pinned_runtime_and_round_trips_a_message() -> None:
    message = ingest_pb2.IngestMessage()
    message.status_change.project_id = 1
    message.status_change.fingerprint.append("a")
    message.status_change.new_status = 1
    parsed = ingest_pb2.IngestMessage.FromString(message.SerializeToString())
    assert parsed.WhichOneof("payload") == "status_change"
    assert parsed.status_change.HasField("project_id")
    assert not parsed.status_change.HasField("new_substatus")


def test_optional_fields_keep_presence_so_absent_differs_from_zero() -> None:
    occurrence = ingest_pb2.Occurrence(priority=0)
    assert occurrence.HasField("priority")
    assert not occurrence.HasField("initial_issue_priority")
    assert not occurrence.HasField("level")
