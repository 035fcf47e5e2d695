"""``ReadArchive`` on local runners: both formats read back identically, and nothing bad fails the job."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import fastavro
import orjson
import pytest
from apache_beam.io import source_test_utils

from pipeline.archive_writer import ArchiveWriter
from pipeline.workload import Workload, WorkloadConfig
from tests.archive.helpers import RUNNERS, by_id, read_archive
from transforms.archive_io import ReadArchive, _AvroArchiveSource, parse_timestamp_attribute
from transforms.core import metrics, reasons
from transforms.core.decode import parse_time
from transforms.core.envelopes import dead_letter_to_line
from transforms.core.model import DeadLetter, RawMessage, to_rfc3339

MESSAGES = list(Workload(WorkloadConfig(messages=3_000, keys=300, seed=21, invalid_share=0.03)))
SAMPLES = Path(__file__).parent.parent / "decode" / "fixtures" / "archive-envelopes.jsonl"


def write(path: Path, messages: list[RawMessage] = MESSAGES, **kwargs) -> list[str]:
    with ArchiveWriter(str(path), **kwargs) as writer:
        writer.write_all(messages)
    return writer.paths


# ---------------------------------------------------------------------------------------------------------
# What is written reads back the same


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_avro_files_by_glob_read_back_as_the_written_messages(
    tmp_path: Path, runner: str, codec: str
) -> None:
    paths = write(tmp_path / "archive.avro", codec=codec, max_records_per_file=1_000)
    assert len(paths) == 3
    result = read_archive(str(tmp_path / "archive-*.avro"), runner)
    assert result.dead_letters == []
    assert by_id(result.messages) == by_id(MESSAGES)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("name", ["archive.jsonl", "archive.jsonl.gz"])
def test_ndjson_files_by_glob_read_back_as_the_written_messages(
    tmp_path: Path, runner: str, name: str
) -> None:
    write(tmp_path / name, max_records_per_file=1_000)
    stem, extension = name.split(".", 1)
    result = read_archive(str(tmp_path / f"{stem}-*.{extension}"), runner)
    assert result.dead_letters == []
    assert by_id(result.messages) == by_id(MESSAGES)


def test_avro_splits_read_exactly_what_the_whole_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "big.avro"
    write(path, codec="deflate")
    source = _AvroArchiveSource(str(path))
    splits = [(s.source, s.start_position, s.stop_position) for s in source.split(desired_bundle_size=20_000)]
    assert len(splits) > 5
    source_test_utils.assert_sources_equal_reference_source((source, None, None), splits)
    assert len(source_test_utils.read_from_source(source)) == len(MESSAGES)


def avro_blocks(path: Path) -> list[tuple[int, int, int]]:
    """(offset, size, records) of each block of an Avro file."""
    with open(path, "rb") as file:
        return [(b.offset, b.size, b.num_records) for b in fastavro.block_reader(file)]


def corrupt_avro(path: Path, block: int) -> list[tuple[int, int, int]]:
    """Write the deflate Avro archive of ``MESSAGES`` at ``path`` with its block ``block`` corrupt; its blocks
    as they were written (``avro_blocks``). 0xFF at the start of the block's deflate data is a deflate block of the reserved
    type, an error at once (Avro's deflate blocks carry no checksum: corruption further in may decode into
    wrong records)."""
    write(path, codec="deflate")
    blocks = avro_blocks(path)
    offset = blocks[block][0]
    data = bytearray(path.read_bytes())
    data[offset + 8 : offset + 72] = b"\xff" * 64
    path.write_bytes(bytes(data))
    return blocks


def test_a_corrupt_block_is_reported_once_whatever_the_splits(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.avro"
    _, _, lost = corrupt_avro(path, 3)[3]
    source = _AvroArchiveSource(str(path))
    read = []
    for split in source.split(desired_bundle_size=20_000):
        read += source_test_utils.read_from_source(split.source, split.start_position, split.stop_position)
    dead = [item for item in read if isinstance(item, DeadLetter)]
    assert len(dead) == 1 and len(read) - 1 == len(MESSAGES) - lost


def test_sample_archive_envelopes_are_read(tmp_path: Path) -> None:
    result = read_archive(str(SAMPLES))
    assert result.dead_letters == []
    assert [m.message_id for m in by_id(result.messages)] == ["1001", "1002", "1003", "1004"]
    last = next(m for m in result.messages if m.message_id == "1004")
    assert last.data == b'"not a payload"'  # readable here; decoding dead-letters it as undecodable
    assert last.message_time == 1_780_002_300_000_000  # 2026-05-28T21:05:00Z


def test_envelopes_with_data_data_b64_and_raw_payload_lines(tmp_path: Path) -> None:
    payload = {
        "payload_type": "status_change",
        "id": "5f0e1d2c3b4a49788796a5b4c3d2e1f0",
        "project_id": 1,
        "fingerprint": ["fp"],
        "new_status": 1,
        "new_substatus": None,
    }
    protobuf = b"\x12\x07\x08\x01\x1a\x02fp"
    lines = [
        {
            "message_id": "a",
            "publish_time": "2026-05-28T20:26:42Z",
            "attributes": {"content_type": "application/json"},
            "data": payload,
        },
        {
            "message_id": "b",
            "publish_time": "2026-05-28T20:26:43.5+02:00",
            "attributes": {"content_type": "application/x-protobuf"},
            "data_b64": base64.b64encode(protobuf).decode(),
        },
        {
            **payload,
            "id": "6f0e1d2c3b4a49788796a5b4c3d2e1f0",
            "timestamp": "2026-05-28T21:00:00Z",
        },  # raw payload
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n\n")  # a blank line at the end
    result = read_archive(str(path))
    assert result.dead_letters == []
    assert by_id(result.messages) == [
        RawMessage("6f0e1d2c3b4a49788796a5b4c3d2e1f0", 1_780_002_000_000_000, orjson.dumps(lines[2]), {}),
        RawMessage("a", 1_780_000_002_000_000, orjson.dumps(payload), {"content_type": "application/json"}),
        RawMessage("b", 1_779_992_803_500_000, protobuf, {"content_type": "application/x-protobuf"}),
    ]


def test_raw_archive_written_by_the_tool_takes_ids_and_times_from_the_payloads(tmp_path: Path) -> None:
    write(tmp_path / "payloads.jsonl.gz", raw=True)
    result = read_archive(str(tmp_path / "payloads.jsonl.gz"))
    by_data = {m.data: m for m in MESSAGES}
    assert len(result.messages) > 0.9 * len(MESSAGES)
    for message in result.messages:
        payload = orjson.loads(message.data)
        assert message.attributes == {}
        if type(payload.get("id")) is str and payload["id"]:
            assert message.message_id == payload["id"]
        if payload.get("payload_type") == "status_change":
            original = by_data[orjson.dumps({k: v for k, v in payload.items() if k != "timestamp"})]
            assert message.message_time == original.message_time  # kept in the line's timestamp
        else:
            assert message.data in by_data
            assert message.message_time == parse_time(payload["detection_time"])
    assert all(d.stage == reasons.STAGE_READ for d in result.dead_letters)


def test_a_dead_letter_file_reads_back_as_an_archive_of_the_original_messages(tmp_path: Path) -> None:
    originals = MESSAGES[:200]
    dead = [
        DeadLetter(
            m.message_id,
            m.message_time,
            m.data,
            {**m.attributes, "dead_letter_reason": "x"},
            "undecodable",
            "an error",
            "decode",
        )
        for m in originals
    ]
    path = tmp_path / "dead-letters.jsonl"
    path.write_bytes(b"".join(dead_letter_to_line(d) + b"\n" for d in dead))
    result = read_archive(str(path))
    assert result.dead_letters == []
    assert by_id(result.messages) == by_id(originals)


# ---------------------------------------------------------------------------------------------------------
# Bad lines, records and files become dead letters


def test_lines_that_cannot_be_read_become_dead_letters_naming_file_and_line(tmp_path: Path) -> None:
    good = MESSAGES[:3]
    path = tmp_path / "bad-lines.jsonl"
    path.write_bytes(
        envelope_lines(good[:1])
        + b"{this is not json\n"
        + b"\n"
        + b"[1, 2, 3]\n"
        + b"\xff\xfe not utf-8\n"
        + b'{"message_id": "x", "data_b64": "%%%"}\n'
        + envelope_lines(good[1:])
    )
    result = read_archive(str(path))
    assert by_id(result.messages) == by_id(good)
    errors = sorted(d.error for d in result.dead_letters)
    assert [e.split(": ", 1)[0] for e in errors] == [f"{path}:{n}" for n in (2, 4, 5, 6)]
    assert all(d.stage == reasons.STAGE_READ and d.reason == reasons.UNDECODABLE for d in result.dead_letters)
    assert {d.data for d in result.dead_letters} >= {b"{this is not json", b"[1, 2, 3]"}
    assert result.counters[metrics.dead_letter_counter(reasons.UNDECODABLE)] == 4


def envelope_lines(messages: list[RawMessage]) -> bytes:
    from transforms.core.envelopes import archive_line

    return b"".join(archive_line(m) + b"\n" for m in messages)


def test_a_corrupt_avro_block_is_one_dead_letter_and_reading_resumes_at_the_next_block(
    tmp_path: Path,
) -> None:
    path = tmp_path / "corrupt.avro"
    blocks = corrupt_avro(path, 2)
    assert len(blocks) >= 4
    offset, size, lost = blocks[2]

    result = read_archive(str(path))
    assert len(result.messages) == len(MESSAGES) - lost
    first, last = sum(b[2] for b in blocks[:2]), sum(b[2] for b in blocks[:3])
    assert by_id(result.messages) == by_id(MESSAGES[:first] + MESSAGES[last:])
    (dead,) = result.dead_letters
    assert dead.stage == reasons.STAGE_READ and dead.reason == reasons.UNDECODABLE
    assert str(path) in dead.error and f"at byte {offset}" in dead.error
    assert f"reading resumes at byte {offset + size}" in dead.error


class _BlockReaderWithoutPrivates:
    """fastavro's ``block_reader`` as a future fastavro could have it: the same public iteration and
    attributes, none of its private ones (the sync marker was read from ``_header`` until then)."""

    def __init__(self, file) -> None:
        self._blocks = fastavro.block_reader(file)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._blocks)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._blocks, name)


def test_avro_archives_are_read_through_fastavro_public_api_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sync markers (to split files and to resume after a bad block) come from the header as the Avro
    specification lays it out, not from fastavro's private attributes."""
    from transforms import archive_io

    path = tmp_path / "corrupt.avro"
    offset, size, lost = corrupt_avro(path, 2)[2]
    expected = read_archive(str(path))
    monkeypatch.setattr(archive_io, "block_reader", _BlockReaderWithoutPrivates)
    result = read_archive(str(path))
    assert by_id(result.messages) == by_id(expected.messages) and len(result.messages) == len(MESSAGES) - lost
    assert result.dead_letters == expected.dead_letters
    assert f"reading resumes at byte {offset + size}" in result.dead_letters[0].error
    source = _AvroArchiveSource(str(path))
    splits = [split.source for split in source.split(desired_bundle_size=50_000)]
    assert len(splits) > 1
    assert sorted(
        m.message_id
        for s in splits
        for m in source_test_utils.read_from_source(s)
        if isinstance(m, RawMessage)
    ) == sorted(m.message_id for m in result.messages)


def test_a_broken_block_length_loses_only_the_bytes_up_to_the_next_sync_marker(tmp_path: Path) -> None:
    path = tmp_path / "broken.avro"
    write(path)  # null codec
    blocks = avro_blocks(path)
    offset, size, lost = blocks[1]
    data = bytearray(path.read_bytes())
    data[offset : offset + 4] = b"\x01\xff\xff\x7f"  # record count 0 (-1 zigzag) and a huge block length
    path.write_bytes(bytes(data))
    result = read_archive(str(path))
    assert len(result.messages) == len(MESSAGES) - lost
    (dead,) = result.dead_letters
    assert f"at byte {offset}" in dead.error and f"resumes at byte {offset + size}" in dead.error


def test_a_truncated_avro_file_keeps_the_blocks_before_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "truncated.avro"
    write(path)
    blocks = avro_blocks(path)
    offset, size, _ = blocks[-2]
    path.write_bytes(path.read_bytes()[: offset + size // 2])
    kept = sum(records for _, _, records in blocks[:-2])
    result = read_archive(str(path))
    assert by_id(result.messages) == by_id(MESSAGES[:kept])
    (dead,) = result.dead_letters
    assert f"at byte {offset}" in dead.error and "no block follows it" in dead.error


def test_a_file_that_is_not_avro_is_one_dead_letter_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "good.avro", MESSAGES[:100])
    (tmp_path / "bad.avro").write_bytes(b"this is not an Avro file at all\n" * 1000)
    result = read_archive(str(tmp_path / "*.avro"))
    assert by_id(result.messages) == by_id(MESSAGES[:100])
    (dead,) = result.dead_letters
    assert dead.error.startswith(f"{tmp_path / 'bad.avro'}: not a readable Avro file")
    assert "the whole file is skipped" in dead.error


def test_a_corrupt_gzip_file_ends_with_a_dead_letter_and_keeps_the_lines_before(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.jsonl.gz"
    write(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = b"\x00" * 200
    path.write_bytes(bytes(data))
    result = read_archive(str(path))
    # gzip notices the damage at once or at the member's checksum; lines decoded from damaged data before
    # that are not envelopes and become dead letters of their own.
    stopped = [d for d in result.dead_letters if "reading stopped" in d.error]
    assert len(stopped) == 1
    assert stopped[0].error.startswith(f"{path}: reading stopped at line ")
    assert all(d.error.startswith(f"{path}:") for d in result.dead_letters)
    read_lines = len(result.messages)
    assert 0 < read_lines < len(MESSAGES)
    assert by_id(result.messages) == by_id(MESSAGES[:read_lines])


def test_a_truncated_gzip_file_is_reported_not_silently_shortened(tmp_path: Path) -> None:
    path = tmp_path / "truncated.jsonl.gz"
    write(path)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) * 2 // 3])
    result = read_archive(str(path))
    (dead,) = result.dead_letters
    assert "EOFError" in dead.error and "the rest of the file is lost" in dead.error
    assert by_id(result.messages) == by_id(MESSAGES[: len(result.messages)])


def test_avro_records_without_metadata_take_id_and_time_from_the_payload(tmp_path: Path) -> None:
    schema = {
        "type": "record",
        "name": "PubsubMessage",
        "fields": [
            {"name": "attributes", "type": {"type": "map", "values": "string"}},
            {"name": "data", "type": "bytes"},
        ],
    }
    occurrence = next(m for m in MESSAGES if m.data.startswith(b'{"payload_type":"occurrence"'))
    payload = orjson.loads(occurrence.data)
    path = tmp_path / "no-metadata.avro"
    with open(path, "wb") as file:
        fastavro.writer(
            file,
            fastavro.parse_schema(schema),
            [
                {"attributes": {"content_type": "application/json"}, "data": occurrence.data},
                {"attributes": {}, "data": b"\x00not json"},
            ],
        )
    result = read_archive(str(path))
    (message,) = result.messages
    assert message.message_id == payload["id"] and message.data == occurrence.data
    (dead,) = result.dead_letters
    assert dead.reason == reasons.MISSING_FIELD and "no message time" in dead.error


def test_avro_records_that_are_not_pubsub_messages_are_dead_letters(tmp_path: Path) -> None:
    schema = {
        "type": "record",
        "name": "Other",
        "fields": [
            {"name": "message_id", "type": "string"},
            {"name": "publish_time", "type": "long"},
            {"name": "data", "type": "string"},
        ],
    }
    path = tmp_path / "other.avro"
    with open(path, "wb") as file:
        fastavro.writer(
            file, fastavro.parse_schema(schema), [{"message_id": "1", "publish_time": 5, "data": "text"}]
        )
    result = read_archive(str(path))
    assert result.messages == []
    (dead,) = result.dead_letters
    assert (
        "data must be bytes, got str" in dead.error
        and dead.message_id == f"{path}@{avro_blocks(path)[0][0]}#0"
    )


# ---------------------------------------------------------------------------------------------------------
# Options


def test_timestamp_attribute_gives_the_message_time(tmp_path: Path) -> None:
    messages = [
        RawMessage("1", 5_000_000, b"{}", {"event_time": "2026-05-28T20:26:42.123Z"}),
        RawMessage("2", 5_000_000, b"{}", {"event_time": "1780000000123"}),
        RawMessage("3", 5_000_000, b"{}", {}),
        RawMessage("4", 5_000_000, b"{}", {"event_time": "soon"}),
    ]
    write(tmp_path / "a.avro", messages)
    result = read_archive(str(tmp_path / "a.avro"), timestamp_attribute="event_time")
    assert {m.message_id: m.message_time for m in result.messages} == {
        "1": 1_780_000_002_123_000,
        "2": 1_780_000_000_123_000,
        "3": 5_000_000,
    }
    (dead,) = result.dead_letters
    assert dead.message_id == "4" and dead.reason == reasons.INVALID_FIELD
    assert "timestamp attribute event_time is neither epoch milliseconds nor an RFC 3339 time" in dead.error


def test_timestamp_attribute_values_read_like_beams_pubsub_reader() -> None:
    from apache_beam.utils.timestamp import Timestamp

    for value in ("2026-05-28T20:26:42.123Z", "2026-05-28T22:26:42.123+02:00", "1780000000123"):
        beam_micros = (
            Timestamp(micros=int(value) * 1000).micros
            if value.isdigit()
            else Timestamp.from_rfc3339(value).micros
        )
        assert parse_timestamp_attribute(value) == beam_micros
    assert to_rfc3339(parse_timestamp_attribute("2026-05-28T20:26:42.123Z")) == "2026-05-28T20:26:42.123000Z"


def test_format_can_be_given_for_files_without_a_known_extension(tmp_path: Path) -> None:
    write(tmp_path / "a.avro", MESSAGES[:50])
    (tmp_path / "a.avro").rename(tmp_path / "export-0001")
    result = read_archive(str(tmp_path / "export-*"), input_format="avro")
    assert by_id(result.messages) == by_id(MESSAGES[:50])


def test_gzip_can_be_forced_for_files_without_gz_extension(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl.gz", MESSAGES[:50])
    (tmp_path / "a.jsonl.gz").rename(tmp_path / "a.jsonl")
    result = read_archive(str(tmp_path / "a.jsonl"), compression="gzip")
    assert by_id(result.messages) == by_id(MESSAGES[:50])


def test_a_pattern_matching_no_file_is_an_error_when_the_pipeline_is_built(tmp_path: Path) -> None:
    import apache_beam as beam

    with pytest.raises(OSError, match="No files found"):
        beam.Pipeline(options=None) | ReadArchive(str(tmp_path / "nothing-*.avro"))


def test_a_glob_without_an_extension_reads_the_products_own_dead_letter_files(tmp_path: Path) -> None:
    """``--input 'DIR/dead-letters-*'``: each matched file's format comes from its name (``.jsonl``)."""
    dead = [
        DeadLetter(m.message_id, m.message_time, m.data, m.attributes, reasons.INVALID_FIELD, "bad", "decode")
        for m in MESSAGES[:40]
    ]
    (tmp_path / "dead-letters-00000-of-00002.jsonl").write_bytes(
        b"\n".join(dead_letter_to_line(d) for d in dead[:20]) + b"\n"
    )
    (tmp_path / "dead-letters-00001-of-00002.jsonl").write_bytes(
        b"\n".join(dead_letter_to_line(d) for d in dead[20:]) + b"\n"
    )
    result = read_archive(str(tmp_path / "dead-letters-*"))
    assert result.dead_letters == []
    assert by_id(result.messages) == by_id(MESSAGES[:40])


@pytest.mark.parametrize("runner", RUNNERS)
def test_files_whose_names_say_nothing_are_told_by_their_first_bytes(tmp_path: Path, runner: str) -> None:
    """Avro's magic, gzip's magic, else newline-delimited JSON; a file whose name says what it is, by its
    name. Every message of every file is read once, whatever the splits."""
    write(tmp_path / "a.avro", MESSAGES[:1000], codec="deflate")
    (tmp_path / "a.avro").rename(tmp_path / "export-a")
    write(tmp_path / "b.jsonl.gz", MESSAGES[1000:1500])
    (tmp_path / "b.jsonl.gz").rename(tmp_path / "export-b")
    write(tmp_path / "export-c.jsonl", MESSAGES[1500:2000])
    (tmp_path / "export-c.jsonl").rename(tmp_path / "export-c")
    write(tmp_path / "export-d.avro", MESSAGES[2000:2500])
    write(tmp_path / "export-e.jsonl.gz", MESSAGES[2500:])
    (tmp_path / "export-f").write_bytes(b"")  # empty: nothing to read
    result = read_archive(str(tmp_path / "export-*"), runner)
    assert result.dead_letters == []
    assert by_id(result.messages) == by_id(MESSAGES)


def test_detecting_splits_read_exactly_what_the_whole_files_hold(tmp_path: Path) -> None:
    from transforms.archive_io import _DetectingArchiveSource

    write(tmp_path / "a.avro", codec="deflate")
    (tmp_path / "a.avro").rename(tmp_path / "x-avro")
    write(tmp_path / "b.jsonl")
    (tmp_path / "b.jsonl").rename(tmp_path / "x-lines")
    source = _DetectingArchiveSource(str(tmp_path / "x-*"))
    splits = [(s.source, s.start_position, s.stop_position) for s in source.split(desired_bundle_size=20_000)]
    assert len(splits) > 10
    source_test_utils.assert_sources_equal_reference_source((source, None, None), splits)
    assert len(source_test_utils.read_from_source(source)) == 2 * len(MESSAGES)


def test_a_file_whose_name_and_first_bytes_say_nothing_is_one_dead_letter_and_the_rest_is_read(
    tmp_path: Path,
) -> None:
    write(tmp_path / "export-a.jsonl", MESSAGES[:30])
    (tmp_path / "export-a.jsonl").rename(tmp_path / "export-a")
    (tmp_path / "export-b").write_bytes(b"\x00\x01 not an archive")
    result = read_archive(str(tmp_path / "export-*"))
    assert by_id(result.messages) == by_id(MESSAGES[:30])
    [dead] = result.dead_letters
    assert (dead.reason, dead.stage) == (reasons.UNDECODABLE, reasons.STAGE_READ)
    assert dead.error == (
        f"{tmp_path / 'export-b'}: cannot tell the archive format: the name has no known extension and the "
        "first bytes are neither Avro's nor gzip's magic nor JSON; give the format (--input_format)"
    )


def test_an_unknown_compression_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression must be one of"):
        ReadArchive(str(tmp_path / "a.jsonl"), compression="zip")


def test_gzip_lines_compress_what_gzip_module_reads(tmp_path: Path) -> None:
    # The writer's gzip files are ordinary gzip: other tools read them.
    write(tmp_path / "a.jsonl.gz", MESSAGES[:10])
    with gzip.open(tmp_path / "a.jsonl.gz", "rb") as file:
        assert len(file.read().splitlines()) == 10
