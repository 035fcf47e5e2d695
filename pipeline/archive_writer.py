"""Writing message archives: Pub/Sub Avro files or NDJSON (plain, gzip, or raw payload lines).

``ArchiveWriter`` takes ``RawMessage``s in order and writes them to one file,
or to numbered files of at most ``max_records_per_file`` records each
(``archive.avro`` → ``archive-00000.avro``, ``archive-00001.avro``...), so that
readers see several files through one glob. Paths may be local or any
filesystem Beam knows (``gs://``). What is written reads back, through
``transforms.archive_io.ReadArchive``, as the same messages (``--raw`` lines
excepted: they keep only the payload).

Output is deterministic: the same messages give the same bytes (gzip headers
carry no time, Avro sync markers derive from the file name).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import posixpath
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

import orjson
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from fastavro import parse_schema
from fastavro.write import Writer

from transforms.core.archive_formats import (
    AVRO,
    PUBSUB_AVRO_SCHEMA,
    ArchiveFormat,
    detect_format,
    to_avro_record,
)
from transforms.core.envelopes import archive_line
from transforms.core.model import RawMessage, to_rfc3339

DEFAULT_SUBSCRIPTION = "projects/local/subscriptions/occurrences-archive"
AVRO_CODECS = ("null", "deflate", "snappy", "bzip2", "xz", "zstandard", "lz4")
_PARSED_SCHEMA = parse_schema(PUBSUB_AVRO_SCHEMA)
_KNOWN_SUFFIXES = (".jsonl.gz", ".ndjson.gz", ".json.gz", ".avro", ".jsonl", ".ndjson", ".json", ".gz")


class ArchiveWriteError(ValueError):
    """The archive cannot be written as asked (format, codec, path); the message says what to change."""


@functools.cache
def available_avro_codecs() -> tuple[str, ...]:
    """The Avro codecs fastavro can write here (snappy, zstandard and lz4 need optional libraries)."""
    found = []
    for codec in AVRO_CODECS:
        try:
            Writer(io.BytesIO(), _PARSED_SCHEMA, codec=codec).write(
                to_avro_record(RawMessage("1", 0, b"x", {}), "s")
            )
        except (ValueError, ImportError):
            continue
        found.append(codec)
    return tuple(found)


class ArchiveWriter:
    """Writes messages to archive files; use as a context manager, or call ``close()``.

    ``on_file_written(path, count)`` is called after each file is complete and
    closed (the Pub/Sub puller acknowledges a file's messages then).
    """

    def __init__(
        self,
        output: str,
        output_format: str | None = None,
        *,
        max_records_per_file: int | None = None,
        raw: bool = False,
        codec: str = "null",
        subscription_name: str = DEFAULT_SUBSCRIPTION,
        on_file_written: Callable[[str, int], None] | None = None,
    ) -> None:
        try:
            self.format: ArchiveFormat = detect_format(output, output_format)
        except ValueError as exc:
            raise ArchiveWriteError(str(exc)) from None
        if any(char in output for char in "*?["):
            raise ArchiveWriteError(f"the output {output!r} must be a file name, not a pattern")
        if output.endswith("/"):
            raise ArchiveWriteError(f"the output {output!r} must be a file name, not a folder")
        if max_records_per_file is not None and max_records_per_file < 1:
            raise ArchiveWriteError("max_records_per_file must be at least 1")
        if raw and self.format.name == AVRO:
            raise ArchiveWriteError(
                "raw payload lines are an NDJSON format; write a .jsonl or .jsonl.gz file"
            )
        if self.format.name == AVRO:
            if codec not in AVRO_CODECS:
                raise ArchiveWriteError(f"unknown Avro codec {codec!r}: use one of {', '.join(AVRO_CODECS)}")
            if codec not in available_avro_codecs():
                raise ArchiveWriteError(
                    f"the Avro codec {codec!r} needs a library that is not installed "
                    f"(available here: {', '.join(available_avro_codecs())})"
                )
        elif codec != "null":
            raise ArchiveWriteError("codecs are for Avro files; NDJSON is compressed by naming the file *.gz")
        self.output = output
        self.max_records_per_file = max_records_per_file
        self.raw = raw
        self.codec = codec
        self.subscription_name = subscription_name
        self.on_file_written = on_file_written
        self.paths: list[str] = []
        self.records = 0
        self.skipped = 0  # raw mode: messages whose bytes are not a JSON document
        self._file: _ArchiveFile | None = None
        self._in_file = 0

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def path_for(self, index: int) -> str:
        """The path of the ``index``-th file (the output itself when files are not split)."""
        if self.max_records_per_file is None:
            return self.output
        directory, slash, name = self.output.rpartition("/")
        suffix = next((s for s in _KNOWN_SUFFIXES if name.lower().endswith(s)), "")
        stem = name[: len(name) - len(suffix)]
        return f"{directory}{slash}{stem}-{index:05d}{name[len(stem) :]}"

    def write(self, message: RawMessage) -> None:
        if self.raw:
            line = _raw_line(message)
            if line is None:
                self.skipped += 1
                return
        if self._file is None:
            self._file = self._open(self.path_for(len(self.paths)))
        if self.raw:
            self._file.write_line(line)  # type: ignore[arg-type]
        elif self.format.name == AVRO:
            self._file.write_record(to_avro_record(message, self.subscription_name))
        else:
            self._file.write_line(archive_line(message))
        self.records += 1
        self._in_file += 1
        if self.max_records_per_file is not None and self._in_file >= self.max_records_per_file:
            self._finish_file()

    def write_all(self, messages: Iterable[RawMessage]) -> int:
        count = 0
        for message in messages:
            self.write(message)
            count += 1
        return count

    def close(self) -> list[str]:
        """Finishes the current file; returns every path written."""
        self._finish_file()
        return self.paths

    def _open(self, path: str) -> _ArchiveFile:
        if self.format.name == AVRO:
            return _AvroFile(path, self.codec)
        return _LineFile(path, self.format.gzip)

    def _finish_file(self) -> None:
        if self._file is None:
            return
        path = self._file.path
        self._file.close()
        self._file = None
        self.paths.append(path)
        count, self._in_file = self._in_file, 0
        if self.on_file_written is not None:
            self.on_file_written(path, count)


def _raw_line(message: RawMessage) -> bytes | None:
    """The payload as one JSON line, or None when the bytes are not a JSON document.

    A raw line has no envelope, so a status change (whose payload has no time)
    gets its message time as ``timestamp``, which is where a raw archive keeps it.
    """
    try:
        value = orjson.loads(message.data)
    except orjson.JSONDecodeError:
        return None
    if type(value) is dict and value.get("payload_type") == "status_change" and "timestamp" not in value:
        value = {**value, "timestamp": to_rfc3339(message.message_time)}
    return orjson.dumps(value)


class _ArchiveFile:
    path: str

    def write_line(self, line: bytes) -> None:
        raise NotImplementedError

    def write_record(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _LineFile(_ArchiveFile):
    def __init__(self, path: str, gzipped: bool) -> None:
        self.path = path
        self._raw: BinaryIO = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        # mtime=0 and no file name in the header: the same lines give the same bytes.
        self._out: Any = (
            gzip.GzipFile(filename="", fileobj=self._raw, mode="wb", compresslevel=6, mtime=0)
            if gzipped
            else self._raw
        )
        self._buffer: list[bytes] = []
        self._buffered = 0

    def write_line(self, line: bytes) -> None:
        self._buffer.append(line)
        self._buffered += len(line)
        if self._buffered >= 1 << 20:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._buffer.append(b"")
            self._out.write(b"\n".join(self._buffer))
            self._buffer = []
            self._buffered = 0

    def close(self) -> None:
        self._flush()
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()


class _AvroFile(_ArchiveFile):
    def __init__(self, path: str, codec: str) -> None:
        self.path = path
        self._raw: BinaryIO = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
        sync_marker = hashlib.md5(posixpath.basename(path).encode(), usedforsecurity=False).digest()
        self._writer = Writer(
            self._raw, _PARSED_SCHEMA, codec=codec, sync_interval=64 * 1024, sync_marker=sync_marker
        )

    def write_record(self, record: dict[str, Any]) -> None:
        self._writer.write(record)

    def close(self) -> None:
        self._writer.flush()
        self._raw.close()
