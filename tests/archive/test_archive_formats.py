"""Archive format detection and Pub/Sub's Avro records (``transforms.core.archive_formats``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import fastavro
import pytest

from transforms.core.archive_formats import (
    AVRO,
    NDJSON,
    PUBSUB_AVRO_SCHEMA,
    ArchiveFormat,
    ArchiveFormatError,
    ArchiveRecordError,
    MissingMetadata,
    detect_format,
    from_avro_record,
    to_avro_record,
)
from transforms.core.model import RawMessage


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("gs://bucket/archive/2026/05/28/*.avro", ArchiveFormat(AVRO)),
        ("/tmp/a/messages.jsonl", ArchiveFormat(NDJSON)),
        ("/tmp/a/messages-*.ndjson", ArchiveFormat(NDJSON)),
        ("/tmp/a/messages.json", ArchiveFormat(NDJSON)),
        ("/tmp/a/messages.JSONL.GZ", ArchiveFormat(NDJSON, gzip=True)),
        ("/tmp/a/dead-letters-*.gz", ArchiveFormat(NDJSON, gzip=True)),
    ],
)
def test_format_follows_from_the_extension(path: str, expected: ArchiveFormat) -> None:
    assert detect_format(path) == expected


def test_a_given_format_wins_over_the_extension() -> None:
    assert detect_format("/tmp/a/export-*", "avro") == ArchiveFormat(AVRO)
    assert detect_format("/tmp/a/export-*", "jsonl") == ArchiveFormat(NDJSON)
    assert detect_format("/tmp/a/export-*", "ndjson.gz") == ArchiveFormat(NDJSON, gzip=True)
    assert detect_format("/tmp/a/export-*.gz", "ndjson") == ArchiveFormat(NDJSON, gzip=True)


def test_an_unknown_extension_asks_for_the_format() -> None:
    with pytest.raises(ArchiveFormatError, match=r"cannot tell the archive format of '/tmp/a/export-\*'"):
        detect_format("/tmp/a/export-*")
    with pytest.raises(ArchiveFormatError, match="unknown archive format 'parquet'"):
        detect_format("/tmp/a/x.avro", "parquet")
    with pytest.raises(ArchiveFormatError, match="Avro files are not gzipped"):
        detect_format("/tmp/a/x.avro.gz")


def test_extensions_of_written_files() -> None:
    assert ArchiveFormat(AVRO).extension == ".avro"
    assert ArchiveFormat(NDJSON, gzip=True).extension == ".jsonl.gz"


def test_avro_record_round_trips_through_pubsub_schema() -> None:
    message = RawMessage(
        "1780000000001", 1_780_000_000_123_456, b'{"a":1}', {"content_type": "application/json"}
    )
    buffer = io.BytesIO()
    fastavro.writer(
        buffer,
        fastavro.parse_schema(PUBSUB_AVRO_SCHEMA),
        [to_avro_record(message, "projects/p/subscriptions/s")],
    )
    buffer.seek(0)
    (record,) = list(fastavro.reader(buffer))
    assert record["subscription_name"] == "projects/p/subscriptions/s"
    assert record["publish_time"] == datetime(2026, 5, 28, 20, 26, 40, 123456, tzinfo=UTC)  # the logical type
    assert from_avro_record(record) == message


def test_avro_publish_time_may_be_a_raw_long() -> None:
    record = {"message_id": "7", "publish_time": 1_000_000, "attributes": {}, "data": b"x"}
    assert from_avro_record(record) == RawMessage("7", 1_000_000, b"x", {})


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({"message_id": "1", "publish_time": 0, "attributes": {}}, "no data field"),
        ({"message_id": "1", "publish_time": 0, "data": "text"}, "data must be bytes, got str"),
        ({"message_id": "1", "publish_time": 0, "data": b"", "attributes": {"a": 1}}, "map of strings"),
        ({"message_id": "", "publish_time": 0, "data": b""}, "message_id must be a non-empty string"),
        ({"message_id": "1", "publish_time": "yesterday", "data": b""}, "publish_time must be a timestamp"),
        ("just a string", "must be an Avro record"),
    ],
)
def test_records_that_are_not_pubsub_messages_say_what_is_wrong(record: object, error: str) -> None:
    with pytest.raises(ArchiveRecordError, match=error):
        from_avro_record(record)


def test_records_without_metadata_report_what_they_have() -> None:
    with pytest.raises(MissingMetadata) as raised:
        from_avro_record({"data": b"{}", "attributes": {"content_type": "application/json"}})
    assert raised.value.data == b"{}"
    assert raised.value.attributes == {"content_type": "application/json"}
    assert raised.value.message_id is None and raised.value.message_time is None


def test_an_avro_publish_time_outside_what_a_spanner_timestamp_holds_is_refused() -> None:
    from transforms.core.archive_formats import ArchiveRecordError, avro_time

    assert avro_time(253_402_300_799_999_999) == 253_402_300_799_999_999
    with pytest.raises(ArchiveRecordError, match="publish_time 253402300800000000 is out of range"):
        avro_time(253_402_300_800_000_000)


def test_an_avro_message_id_longer_than_a_dead_letter_attribute_holds_is_refused() -> None:
    from transforms.core.archive_formats import ArchiveRecordError, from_avro_record

    record = {"message_id": "m" * 1025, "publish_time": 0, "attributes": {}, "data": b"{}"}
    with pytest.raises(ArchiveRecordError, match="message_id is 1025 bytes, more than the limit of 1024"):
        from_avro_record(record)


def test_an_epoch_milliseconds_timestamp_attribute_out_of_range_is_refused() -> None:
    from transforms.archive_io import parse_timestamp_attribute

    assert parse_timestamp_attribute("253402300799999") == 253_402_300_799_999_000
    with pytest.raises(ValueError, match="out of range"):
        parse_timestamp_attribute("253402300800000")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"Obj\x01\x04\x14avro.codec", ArchiveFormat(AVRO)),
        (b"\x1f\x8b\x08\x00", ArchiveFormat(NDJSON, True)),
        (b'{"message_id":"1"}', ArchiveFormat(NDJSON)),
        (b"\xef\xbb\xbf \n {", ArchiveFormat(NDJSON)),
        (b"", ArchiveFormat(NDJSON)),
        (b"\x00\x01binary", None),
        (b"not json", None),
    ],
)
def test_a_files_first_bytes_tell_its_format(head: bytes, expected: ArchiveFormat | None) -> None:
    from transforms.core.archive_formats import sniff_format

    assert sniff_format(head) == expected
