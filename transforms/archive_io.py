"""Reading message archives in Beam (rule 8): ``ReadArchive``.

``ReadArchive(pattern)`` reads every file matching one glob (local paths or
``gs://``): Pub/Sub Cloud Storage subscription Avro files, or newline-delimited
JSON archives, plain or gzip (see ``core.archive_formats`` and
``core.envelopes``). The format is the one given, else the one the pattern's
extension names; when neither says (``DIR/dead-letters-*``), each file's
format comes from its own name, else from its first bytes, as Beam tells a
file's compression. A file that neither tells is one dead letter naming it. Its main output holds ``RawMessage`` values, its
``dead_letter`` output ``DeadLetter`` values of stage ``read``: one for each
line or record that cannot be read, and one for each part of a file that
cannot be read at all. A bad file never fails the job.

Why not ``ReadFromAvro`` / ``ReadFromText`` as they are (measured on Beam
2.77): a corrupt Avro block makes ``ReadFromAvro`` fail the whole job with an
``EOFError`` that does not name the file; a corrupt gzip member makes
``ReadFromText`` fail the job (``zlib.error``), and a truncated gzip file is
read silently up to where it was cut; neither gives line numbers. The two
sources below are built on Beam's ``FileBasedSource`` (file patterns,
``FileSystems``, sizes and splitting) with the reading done here:

- Avro files are split by blocks, as Beam's Avro source does. A block that
  cannot be read becomes one dead letter naming the file and the block's byte
  offset; reading resumes at the next sync marker, so only that block's
  records are lost. A file whose header cannot be read is one dead letter.
- NDJSON files are read whole, line by line (a gzip file cannot be split
  anyway), so dead letters name the line number. A gzip stream that is corrupt
  or truncated ends the file with a dead letter naming the line where reading
  stopped: every line before it is kept.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import orjson
from apache_beam import pvalue
from apache_beam.io import filebasedsource, iobase
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from fastavro import block_reader, parse_schema, schemaless_reader

from transforms import coders  # noqa: F401  (registers the message coders used for the outputs)
from transforms.core import metrics, reasons
from transforms.core.archive_formats import (
    AVRO,
    SNIFF_BYTES,
    ArchiveFormat,
    ArchiveFormatError,
    ArchiveRecordError,
    MissingMetadata,
    format_from_name,
    from_avro_record,
    sniff_format,
)
from transforms.core.envelopes import parse_archive_line
from transforms.core.message_time import parse_timestamp_attribute, with_attribute_time  # noqa: F401 (re-exported)
from transforms.core.model import DeadLetter, RawMessage, to_rfc3339
from transforms.decode_messages import DEAD_LETTER, MESSAGES

# How NDJSON files are decompressed: by their extension, or as given for every file.
COMPRESSION_AUTO = "auto"
COMPRESSION_GZIP = "gzip"
COMPRESSION_NONE = "uncompressed"
COMPRESSIONS = (COMPRESSION_AUTO, COMPRESSION_GZIP, COMPRESSION_NONE)


class ReadArchive(beam.PTransform):
    """A file pattern → ``messages`` (``RawMessage``) and ``dead_letter`` (``DeadLetter``, stage ``read``).

    ``input_format`` is ``avro``, ``ndjson`` or ``ndjson.gz``; by default it
    follows from the pattern's extension, else from each file's name or first
    bytes. ``compression`` (NDJSON only) is ``auto`` (gzip for ``*.gz`` files
    and files that begin with gzip's magic), ``gzip`` or ``uncompressed``.
    With ``timestamp_attribute``, a message carrying that attribute takes its
    message time from it (epoch milliseconds or RFC 3339, read as the streaming
    pipeline reads it: ``transforms.core.message_time``), so a backfill sees the
    times a streaming run would; a value that cannot be read is a dead letter
    (``invalid_field``, stage ``read``), as in streaming. With
    ``validate`` (the default), a pattern that matches no file is an error
    when the pipeline is built.
    """

    def __init__(
        self,
        pattern: str,
        input_format: str | None = None,
        *,
        compression: str = COMPRESSION_AUTO,
        timestamp_attribute: str | None = None,
        validate: bool = True,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
        self._format = format_from_name(pattern, input_format)  # None: each file tells its own
        if self._format is not None and self._format.gzip and compression == COMPRESSION_AUTO:
            compression = COMPRESSION_GZIP
        self._pattern = pattern
        self._compression = compression
        self._timestamp_attribute = timestamp_attribute
        self._validate = validate

    def expand(self, pbegin: pvalue.PBegin) -> pvalue.DoOutputsTuple:
        source: filebasedsource.FileBasedSource
        if self._format is None:
            source = _DetectingArchiveSource(self._pattern, self._compression, validate=self._validate)
        elif self._format.name == AVRO:
            source = _AvroArchiveSource(self._pattern, validate=self._validate)
        else:
            source = _NdjsonArchiveSource(self._pattern, self._compression, validate=self._validate)
        outputs = (
            pbegin
            | "ReadFiles" >> iobase.Read(source)
            | "SplitDeadLetters"
            >> beam.ParDo(_SplitFn(self._timestamp_attribute)).with_outputs(DEAD_LETTER, main=MESSAGES)
        )
        # Typed outputs get the message coders (msgpack) wherever Beam materialises them, not pickle.
        outputs[MESSAGES].element_type = RawMessage
        outputs[DEAD_LETTER].element_type = DeadLetter
        return outputs


class _SplitFn(beam.DoFn):
    """Routes what the sources read: messages to the main output, dead letters (counted) to ``dead_letter``."""

    def __init__(self, timestamp_attribute: str | None) -> None:
        self._timestamp_attribute = timestamp_attribute
        self._counters = {
            reason: Metrics.counter(metrics.NAMESPACE, metrics.dead_letter_counter(reason))
            for reason in reasons.ALL_REASONS
        }

    def process(self, element: RawMessage | DeadLetter) -> Iterator[Any]:
        if type(element) is RawMessage:
            attribute = self._timestamp_attribute
            if attribute is not None and attribute in element.attributes:
                element = with_attribute_time(element, attribute)
                if type(element) is RawMessage:
                    yield element
                    return
            else:
                yield element
                return
        self._counters[element.reason].inc()
        yield pvalue.TaggedOutput(DEAD_LETTER, element)


# ---------------------------------------------------------------------------------------------------------
# Sources


def _unreadable(file_name: str, where: str, error: str) -> DeadLetter:
    """A dead letter for a part of a file that holds no readable message (no bytes, time 0)."""
    return DeadLetter(
        message_id=f"{file_name}@{where}",
        message_time=0,
        data=b"",
        attributes={},
        reason=reasons.UNDECODABLE,
        error=f"{file_name}: {error}",
        stage=reasons.STAGE_READ,
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _AvroArchiveSource(filebasedsource.FileBasedSource):
    """Pub/Sub Avro files, split by blocks; yields ``RawMessage`` and ``DeadLetter`` values (see the module)."""

    def __init__(self, pattern: str, validate: bool = True) -> None:
        super().__init__(pattern, compression_type=CompressionTypes.UNCOMPRESSED, validate=validate)

    def read_records(self, file_name: str, range_tracker: Any) -> Iterator[RawMessage | DeadLetter]:
        return _avro_records(self, file_name, range_tracker)


def _avro_records(
    source: filebasedsource.FileBasedSource, file_name: str, range_tracker: Any
) -> Iterator[RawMessage | DeadLetter]:
    """The records of the blocks that start in ``range_tracker``'s range, and dead letters (see the module)."""
    next_block_start = -1

    def split_points_unclaimed(stop_position: int) -> int:
        if next_block_start >= stop_position:
            return 0
        return iobase.RangeTracker.SPLIT_POINTS_UNKNOWN

    range_tracker.set_split_points_unclaimed_callback(split_points_unclaimed)
    start_offset = range_tracker.start_position() or 0
    with source.open_file(file_name) as file:
        try:
            blocks = block_reader(file)
            sync_marker = _sync_marker(file)
        except Exception as exc:
            if start_offset == 0:  # the split holding the header reports it, once per file
                yield _unreadable(
                    file_name,
                    "0",
                    f"not a readable Avro file ({_describe(exc)}); the whole file is skipped",
                )
            return
        # A split owns the blocks that start inside it; the previous split may end just after a marker.
        file.seek(max(0, start_offset - len(sync_marker)))
        if not _advance_past_sync_marker(file, sync_marker):
            return
        next_block_start = file.tell()
        while range_tracker.try_claim(next_block_start):
            try:
                block = next(blocks)
            except StopIteration:
                return
            except Exception as exc:
                bad_block = next_block_start
                file.seek(bad_block)
                if _advance_past_sync_marker(file, sync_marker):
                    next_block_start = file.tell()
                    resumed = f"reading resumes at byte {next_block_start}"
                else:
                    next_block_start = -1
                    resumed = "no block follows it"
                yield _unreadable(
                    file_name,
                    str(bad_block),
                    f"the Avro block at byte {bad_block} cannot be read ({_describe(exc)}); "
                    f"its records are lost, {resumed}",
                )
                if next_block_start < 0:
                    return
                blocks = _blocks_from(file, next_block_start)
                continue
            next_block_start = block.offset + block.size
            index = 0
            try:
                for record in block:
                    yield _record_to_message(record, file_name, block.offset, index)
                    index += 1
            except Exception as exc:
                yield _unreadable(
                    file_name,
                    f"{block.offset}#{index}",
                    f"record {index} of the {block.num_records} in the Avro block at byte {block.offset} "
                    f"cannot be read ({_describe(exc)}); the rest of the block is lost",
                )


# The header of an Avro object container file, as the Avro specification defines it ("Object Container
# Files"): 4 magic bytes, the metadata map, then the 16-byte sync marker that ends every block.
_AVRO_HEADER = parse_schema(
    {
        "type": "record",
        "name": "org.apache.avro.file.Header",
        "fields": [
            {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
            {"name": "meta", "type": {"type": "map", "values": "bytes"}},
            {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
        ],
    }
)
_AVRO_MAGIC = b"Obj\x01"


def _sync_marker(file: Any) -> bytes:
    """The file's sync marker, read from its header with fastavro's public API (fastavro keeps it only in a
    private attribute of its readers; Beam's own Avro source reads that attribute)."""
    file.seek(0)
    header = schemaless_reader(file, _AVRO_HEADER)
    if header["magic"] != _AVRO_MAGIC:
        raise ValueError("not an Avro object container file")
    return header["sync"]


def _advance_past_sync_marker(file: Any, sync_marker: bytes) -> bool:
    """Moves ``file`` just past the next sync marker; False (at the end) when there is none."""
    chunk_size = 64 * 1024
    keep = len(sync_marker) - 1
    tail = b""
    while True:
        position = file.tell()
        chunk = file.read(chunk_size)
        if not chunk:
            return False
        data = tail + chunk
        found = data.find(sync_marker)
        if found >= 0:
            file.seek(position - len(tail) + found + len(sync_marker))
            return True
        tail = data[-keep:] if keep else b""


def _blocks_from(file: Any, offset: int) -> Iterator[Any]:
    """A fresh block iterator (it reads the header again) positioned at ``offset``."""
    file.seek(0)
    blocks = block_reader(file)
    file.seek(offset)
    return blocks


def _record_to_message(record: Any, file_name: str, block_offset: int, index: int) -> RawMessage | DeadLetter:
    try:
        return from_avro_record(record)
    except MissingMetadata as missing:
        return _from_payload(missing, file_name, block_offset, index)
    except ArchiveRecordError as exc:
        data = record.get("data") if type(record) is dict else None
        return DeadLetter(
            message_id=f"{file_name}@{block_offset}#{index}",
            message_time=0,
            data=data if type(data) is bytes else b"",
            attributes={},
            reason=reasons.UNDECODABLE,
            error=f"{file_name}: record {index} of the Avro block at byte {block_offset} is not a Pub/Sub "
            f"message: {exc}",
            stage=reasons.STAGE_READ,
        )


def _from_payload(
    missing: MissingMetadata, file_name: str, block_offset: int, index: int
) -> RawMessage | DeadLetter:
    """A record without id or time (no metadata written): the envelope rules take them from the payload."""
    envelope: dict[str, Any] = {
        "attributes": missing.attributes,
        "data_b64": base64.b64encode(missing.data).decode("ascii"),
    }
    if missing.message_id is not None:
        envelope["message_id"] = missing.message_id
    if missing.message_time is not None:
        envelope["publish_time"] = to_rfc3339(missing.message_time)
    return parse_archive_line(
        orjson.dumps(envelope), index + 1, f"{file_name} (Avro block at byte {block_offset}, record)"
    )


class _NdjsonArchiveSource(filebasedsource.FileBasedSource):
    """NDJSON archives, each file read whole and in order; yields ``RawMessage`` and ``DeadLetter`` values."""

    def __init__(self, pattern: str, compression: str = COMPRESSION_AUTO, validate: bool = True) -> None:
        # The files are opened uncompressed here and decompressed in read_records, which detects truncation.
        super().__init__(
            pattern, compression_type=CompressionTypes.UNCOMPRESSED, splittable=False, validate=validate
        )
        self._compression = compression

    def read_records(self, file_name: str, range_tracker: Any) -> Iterator[RawMessage | DeadLetter]:
        if not range_tracker.try_claim(range_tracker.start_position() or 0):
            return
        gzipped = self._compression == COMPRESSION_GZIP or (
            self._compression == COMPRESSION_AUTO and file_name.lower().endswith(".gz")
        )
        yield from _ndjson_records(file_name, gzipped)


def _ndjson_records(file_name: str, gzipped: bool) -> Iterator[RawMessage | DeadLetter]:
    """Every line of the file, in order (see the module)."""
    line_no = 0
    with FileSystems.open(file_name, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        try:
            for line in stream:
                line_no += 1
                if line.isspace() or not line:
                    continue
                yield parse_archive_line(line, line_no, file_name)
        except Exception as exc:  # a corrupt or truncated compressed stream
            yield _unreadable(
                file_name,
                f"line {line_no + 1}",
                f"reading stopped at line {line_no + 1} ({_describe(exc)}); "
                f"the {line_no} lines before it were read, the rest of the file is lost",
            )


class _DetectingArchiveSource(filebasedsource.FileBasedSource):
    """Files of any format under one pattern: each file's format from its name, else its first bytes.

    Splittable, for the Avro files; an NDJSON file is read whole by the split that starts at its first byte
    (the others of that file read nothing), so every line is read once whatever the splits.
    """

    def __init__(self, pattern: str, compression: str = COMPRESSION_AUTO, validate: bool = True) -> None:
        super().__init__(pattern, compression_type=CompressionTypes.UNCOMPRESSED, validate=validate)
        self._compression = compression

    def read_records(self, file_name: str, range_tracker: Any) -> Iterator[RawMessage | DeadLetter]:
        start = range_tracker.start_position() or 0
        try:
            found = format_from_name(file_name)
            if found is None:
                with FileSystems.open(file_name, compression_type=CompressionTypes.UNCOMPRESSED) as file:
                    found = sniff_format(file.read(SNIFF_BYTES))
        except ArchiveFormatError as exc:  # a name that says something impossible (.avro.gz)
            found, problem = None, str(exc)
        else:
            problem = (
                "cannot tell the archive format: the name has no known extension and the first bytes are "
                "neither Avro's nor gzip's magic nor JSON; give the format (--input_format)"
            )
        if found is None:
            if start == 0 and range_tracker.try_claim(0):
                yield _unreadable(file_name, "0", problem)
            return
        if found.name == AVRO:
            yield from _avro_records(self, file_name, range_tracker)
            return
        if start != 0 or not range_tracker.try_claim(0):
            return
        yield from _ndjson_records(file_name, self._gzipped(file_name, found))

    def _gzipped(self, file_name: str, found: ArchiveFormat) -> bool:
        if self._compression == COMPRESSION_AUTO:
            return found.gzip
        return self._compression == COMPRESSION_GZIP
