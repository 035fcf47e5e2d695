"""Writing archives (``pipeline.archive_writer``): formats, splitting, raw lines, determinism, errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import fastavro
import orjson
import pytest

from pipeline.archive_writer import ArchiveWriteError, ArchiveWriter, available_avro_codecs
from pipeline.workload import Workload, WorkloadConfig
from transforms.core.archive_formats import from_avro_record
from transforms.core.envelopes import parse_archive_line
from transforms.core.model import RawMessage

MESSAGES = list(Workload(WorkloadConfig(messages=1_200, keys=100, seed=11, invalid_share=0.05)))


def read_lines(path: Path) -> list[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        return file.read().splitlines()


def test_avro_files_hold_pubsub_records_of_every_message(tmp_path: Path) -> None:
    with ArchiveWriter(
        str(tmp_path / "archive.avro"), codec="deflate", subscription_name="projects/p/subscriptions/s"
    ) as w:
        w.write_all(MESSAGES)
    with open(tmp_path / "archive.avro", "rb") as file:
        reader = fastavro.reader(file)
        assert reader.codec == "deflate"
        records = list(reader)
    assert {r["subscription_name"] for r in records} == {"projects/p/subscriptions/s"}
    assert [from_avro_record(r) for r in records] == MESSAGES


@pytest.mark.parametrize("name", ["archive.jsonl", "archive.ndjson", "archive.jsonl.gz", "archive.gz"])
def test_ndjson_files_hold_one_envelope_per_message(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with ArchiveWriter(str(path)) as writer:
        writer.write_all(MESSAGES)
    lines = read_lines(path)
    assert [parse_archive_line(line, i + 1, name) for i, line in enumerate(lines)] == MESSAGES
    first = orjson.loads(lines[0])
    assert set(first) == {"message_id", "publish_time", "attributes", "data"}
    assert any(b'"data_b64"' in line for line in lines)  # bytes that are not a JSON document


def test_max_records_per_file_splits_into_numbered_files(tmp_path: Path) -> None:
    written: list[tuple[str, int]] = []
    writer = ArchiveWriter(
        str(tmp_path / "out" / "archive.jsonl.gz"),
        max_records_per_file=500,
        on_file_written=lambda path, count: written.append((Path(path).name, count)),
    )
    writer.write_all(MESSAGES)
    paths = writer.close()
    assert written == [
        ("archive-00000.jsonl.gz", 500),
        ("archive-00001.jsonl.gz", 500),
        ("archive-00002.jsonl.gz", 200),
    ]
    assert [Path(p).name for p in paths] == [name for name, _ in written]
    assert sum(len(read_lines(Path(p))) for p in paths) == len(MESSAGES)


def test_the_same_messages_give_the_same_bytes(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        for name in ("x.avro", "x.jsonl.gz"):
            with ArchiveWriter(
                str(tmp_path / folder / name), codec="deflate" if name.endswith("avro") else "null"
            ) as w:
                w.write_all(MESSAGES)
    for name in ("x.avro", "x.jsonl.gz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_raw_lines_hold_only_payloads_and_give_status_changes_their_time(tmp_path: Path) -> None:
    path = tmp_path / "payloads.jsonl"
    with ArchiveWriter(str(path), raw=True) as writer:
        writer.write_all(MESSAGES)
    lines = read_lines(path)
    json_documents = 0
    for message in MESSAGES:
        try:
            orjson.loads(message.data)
            json_documents += 1
        except orjson.JSONDecodeError:
            pass
    assert len(lines) == json_documents and writer.skipped == len(MESSAGES) - json_documents
    status_changes = [orjson.loads(line) for line in lines if b'"status_change"' in line]
    assert status_changes and all("timestamp" in change for change in status_changes)
    read = parse_archive_line(next(line for line in lines if b'"status_change"' in line), 1, "payloads")
    assert isinstance(read, RawMessage) and read.message_time > 0


def test_only_codecs_whose_libraries_are_installed_are_offered() -> None:
    codecs = available_avro_codecs()
    assert {"null", "deflate"} <= set(codecs)


@pytest.mark.parametrize(
    ("output", "kwargs", "error"),
    [
        ("/tmp/x/archive.parquet", {}, "cannot tell the archive format"),
        ("/tmp/x/archive-*.avro", {}, "must be a file name, not a pattern"),
        ("/tmp/x/archive.avro", {"raw": True}, "raw payload lines are an NDJSON format"),
        ("/tmp/x/archive.avro", {"codec": "lzma"}, "unknown Avro codec 'lzma'"),
        ("/tmp/x/archive.jsonl", {"codec": "deflate"}, "codecs are for Avro files"),
        ("/tmp/x/archive.jsonl", {"max_records_per_file": 0}, "at least 1"),
    ],
)
def test_impossible_outputs_are_refused_with_a_clear_message(output: str, kwargs: dict, error: str) -> None:
    with pytest.raises(ArchiveWriteError, match=error):
        ArchiveWriter(output, **kwargs)


def test_a_codec_whose_library_is_missing_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.archive_writer as module

    monkeypatch.setattr(module, "available_avro_codecs", lambda: ("null", "deflate"))
    with pytest.raises(ArchiveWriteError, match="needs a library that is not installed"):
        ArchiveWriter("/tmp/x/archive.avro", codec="snappy")
