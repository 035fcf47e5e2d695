"""Archive file formats (rule 8): which format a path holds, and Pub/Sub's Avro records.

Two formats hold archived messages:

- ``avro``: the files a Pub/Sub Cloud Storage subscription writes with "write
  metadata" on. Each record has ``subscription_name`` (string), ``message_id``
  (string), ``publish_time`` (long, logical type ``timestamp-micros``),
  ``attributes`` (map of strings) and ``data`` (bytes). Without metadata,
  Pub/Sub writes only ``data`` and ``attributes``; such records are read too,
  their id and time taken from the payload as for a raw archive line.
- ``ndjson``: newline-delimited JSON, plain or gzip-compressed, one archive
  envelope or raw payload per line (the line codec is ``envelopes``).

The format follows from the file extension (``.avro``; ``.jsonl``, ``.ndjson``
or ``.json``, each optionally followed by ``.gz``; a bare ``.gz`` is gzipped
NDJSON) unless it is given explicitly. A file whose name says nothing is told
by its first bytes (``sniff_format``), as Beam tells a file's compression:
Avro's magic, gzip's magic, else JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transforms.core import limits
from transforms.core.decode import check_micros
from transforms.core.model import RawMessage, from_datetime

AVRO = "avro"
NDJSON = "ndjson"
FORMATS = (AVRO, NDJSON)

_NDJSON_EXTENSIONS = (".jsonl", ".ndjson", ".json")
GZIP_EXTENSION = ".gz"

# The record Pub/Sub writes into Cloud Storage subscription Avro files when "write metadata" is on.
PUBSUB_AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "PubsubMessage",
    "namespace": "com.google.pubsub.v1",
    "fields": [
        {"name": "subscription_name", "type": "string"},
        {"name": "message_id", "type": "string"},
        {"name": "publish_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "attributes", "type": {"type": "map", "values": "string"}},
        {"name": "data", "type": "bytes"},
    ],
}


class ArchiveFormatError(ValueError):
    """The format of an archive path cannot be told, or a given format is not known."""


@dataclass(frozen=True)
class ArchiveFormat:
    """A file format and whether the file is gzip-compressed (only NDJSON files can be)."""

    name: str
    gzip: bool = False

    @property
    def extension(self) -> str:
        if self.name == AVRO:
            return ".avro"
        return ".jsonl.gz" if self.gzip else ".jsonl"


def detect_format(path: str, given: str | None = None) -> ArchiveFormat:
    """The format of ``path`` (a file or a glob), from ``given`` or else from its extension.

    ``given`` is ``avro``, ``ndjson`` or ``ndjson.gz``; plain ``ndjson`` still
    reads a ``.gz`` path as gzip. Raises ``ArchiveFormatError`` when neither says.
    """
    found = format_from_name(path, given)
    if found is None:
        raise ArchiveFormatError(
            f"cannot tell the archive format of {path!r} from its extension: name the files *.avro, "
            "*.jsonl, *.ndjson, *.json or *.gz, or give the format (avro, ndjson or ndjson.gz)"
        )
    return found


AVRO_MAGIC = b"Obj\x01"
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 64  # enough for either magic and for the whitespace a JSON file may begin with


def sniff_format(head: bytes) -> ArchiveFormat | None:
    """The format of a file from its first bytes (``SNIFF_BYTES`` of them, fewer for a shorter file), or None.

    Avro's magic (``Obj`` 1), gzip's magic (1f 8b: gzipped NDJSON), or JSON (an object, after any whitespace
    and a UTF-8 byte order mark; an empty file reads as NDJSON with no line).
    """
    if head.startswith(AVRO_MAGIC):
        return ArchiveFormat(AVRO)
    if head.startswith(GZIP_MAGIC):
        return ArchiveFormat(NDJSON, True)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text or text.startswith(b"{"):
        return ArchiveFormat(NDJSON)
    return None


def format_from_name(path: str, given: str | None = None) -> ArchiveFormat | None:
    """The format of ``path`` from ``given`` or else from its extension; None when neither says."""
    lowered = path.lower()
    gzip = lowered.endswith(GZIP_EXTENSION)
    if given is not None:
        name = given.lower()
        if name == "ndjson.gz":
            return ArchiveFormat(NDJSON, True)
        if name == "jsonl":
            name = NDJSON
        if name not in FORMATS:
            raise ArchiveFormatError(f"unknown archive format {given!r}: use avro, ndjson or ndjson.gz")
        return ArchiveFormat(name, gzip and name == NDJSON)
    stem = lowered[: -len(GZIP_EXTENSION)] if gzip else lowered
    if stem.endswith(".avro"):
        if gzip:
            raise ArchiveFormatError(
                f"{path!r}: Avro files are not gzipped (Avro compresses its blocks itself); "
                "use a .avro file written with a codec"
            )
        return ArchiveFormat(AVRO)
    if stem.endswith(_NDJSON_EXTENSIONS) or gzip:
        return ArchiveFormat(NDJSON, gzip)
    return None


# ---------------------------------------------------------------------------------------------------------
# Avro records


class ArchiveRecordError(ValueError):
    """An Avro record that is not a Pub/Sub message; the message says which field is wrong."""


def to_avro_record(message: RawMessage, subscription_name: str) -> dict[str, Any]:
    """The record a Cloud Storage subscription writes for ``message``; its publish time is the message time."""
    return {
        "subscription_name": subscription_name,
        "message_id": message.message_id,
        "publish_time": message.message_time,
        "attributes": message.attributes,
        "data": message.data,
    }


def from_avro_record(record: Any) -> RawMessage:
    """The message an Avro record holds; raises ``ArchiveRecordError`` naming what is wrong.

    ``publish_time`` is read as a datetime (the logical type) or as an integer
    of microseconds. A record without ``message_id`` or ``publish_time`` (no
    metadata written) raises ``MissingMetadata``: the caller takes them from
    the payload.
    """
    if type(record) is not dict:
        raise ArchiveRecordError(
            f"the record must be an Avro record (a map of fields), got {type(record).__name__}"
        )
    data = record.get("data")
    if type(data) is not bytes:
        if data is None:
            raise ArchiveRecordError("the record has no data field")
        raise ArchiveRecordError(f"data must be bytes, got {type(data).__name__}")
    attributes = record.get("attributes")
    if attributes is None:
        attributes = {}
    elif type(attributes) is not dict or not all(
        type(k) is str and type(v) is str for k, v in attributes.items()
    ):
        raise ArchiveRecordError("attributes must be a map of strings")
    message_id = record.get("message_id")
    if message_id is not None:
        if type(message_id) is not str or not message_id:
            raise ArchiveRecordError(f"message_id must be a non-empty string, got {message_id!r}")
        size = limits.exceeds(message_id, limits.MAX_MESSAGE_ID_BYTES)
        if size is not None:
            raise ArchiveRecordError(
                f"message_id is {size} bytes, more than the limit of {limits.MAX_MESSAGE_ID_BYTES}"
            )
    publish_time = record.get("publish_time")
    message_time = None if publish_time is None else avro_time(publish_time)
    if message_id is None or message_time is None:
        raise MissingMetadata(data, attributes, message_id, message_time)
    return RawMessage(message_id, message_time, data, attributes)


class MissingMetadata(ArchiveRecordError):
    """A record without message id or publish time (a subscription that does not write metadata)."""

    def __init__(
        self, data: bytes, attributes: dict[str, str], message_id: str | None, message_time: int | None
    ) -> None:
        super().__init__("the record has no message_id or no publish_time")
        self.data = data
        self.attributes = attributes
        self.message_id = message_id
        self.message_time = message_time


def avro_time(value: Any) -> int:
    """Microseconds since the epoch of an Avro ``timestamp-micros`` value (a datetime, or its raw long)."""
    if type(value) is int:
        try:
            return check_micros(value)
        except ValueError as exc:
            raise ArchiveRecordError(f"publish_time {value} {exc}") from None
    if isinstance(value, datetime):
        return from_datetime(value)
    raise ArchiveRecordError(f"publish_time must be a timestamp, got {value!r}")
