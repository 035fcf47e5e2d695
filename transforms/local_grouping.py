"""Backfill on a local runner: group key histories through spill files on disk instead of Beam's shuffle.

Beam's local runners keep every grouped element in memory, several times over (what that weighs:
docs/performance.md, "Figures behind the code"). Dataflow shuffles on its own service, so there the backfill uses
``GroupByKey`` (``transforms.key_history.ApplyKeyHistories``). Locally it uses this instead, with the same
rules and results:

1. ``SpillMessages`` writes each checked message, without its delivered bytes unless a later dead letter may
   need them, to one of ``shards`` spill files chosen by a hash of its key; it also writes the events the
   archive carries (those the engine would store) and the event ids that lookups need. Each bundle writes its
   own files and emits their paths; nothing else flows through Beam.
2. ``CollectNeededEvents`` reads the lookups' event ids and keeps, from the carried events, those they need
   (E7) in one small file.
3. ``ApplySpilledShards`` takes one shard at a time: it reads the shard's records as bytes, groups them by
   key, and hands each key's history to ``KeyHistories``, which decodes it chunk by chunk in key order. Memory
   is bounded by the largest shard's bytes plus one chunk of decoded messages.

The spill directory is local to the machine, which is why this path is for local runners only.
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

import apache_beam as beam
import msgspec
from apache_beam import pvalue, typehints
from apache_beam.metrics import Metrics

from transforms import internal_errors
from transforms.applier import ApplierConfig
from transforms.coders import typed
from transforms.core import metrics, reasons
from transforms.core.engine.events import without_bytes
from transforms.core.model import DeadLetter, Event, Message, Occurrence, ProjectInfo
from transforms.counting import CountingDoFn
from transforms.event_join import is_lookup, join_key, stored_event
from transforms.key_history import KeyHistories, dead_letter_in_finish_bundle

KEY_FILES = "key_files"
EVENT_FILES = "event_files"
LOOKUP_FILES = "lookup_files"
DEAD_LETTER = "dead_letter"

_FRAME = struct.Struct("<I")
_ENCODER = msgspec.msgpack.Encoder()
_MESSAGE = msgspec.msgpack.Decoder(Message)
_EVENT = msgspec.msgpack.Decoder(Event)


class _Record(msgspec.Struct, array_like=True):
    """One spilled message: what ordering and batching need in the clear, the message itself as bytes."""

    key: str
    message_time: int
    message_id: str
    occurrence_id: str | None
    lookup_event_id: str | None
    message: bytes


_RECORD = msgspec.msgpack.Decoder(_Record)


def shard_of(key: str, shards: int) -> int:
    return zlib.crc32(key.encode()) % shards


def write_frames(path: str, frames: list[bytes]) -> None:
    with open(path, "wb") as file:
        for frame in frames:
            file.write(_FRAME.pack(len(frame)))
            file.write(frame)


def read_frames(path: str) -> Iterator[memoryview]:
    with open(path, "rb") as file:
        data = memoryview(file.read())
    offset, end = 0, len(data)
    while offset < end:
        (size,) = _FRAME.unpack_from(data, offset)
        offset += _FRAME.size
        yield data[offset : offset + size]
        offset += size


class SpilledValue:
    """A key history's value read from a spill file: decoded only when a chunk needs the message."""

    __slots__ = ("_record", "event")

    def __init__(self, record: _Record, event: Event | None) -> None:
        self._record = record
        self.event = event

    @property
    def order(self) -> tuple[int, str]:
        return (self._record.message_time, self._record.message_id)

    @property
    def occurrence_id(self) -> str | None:
        return self._record.occurrence_id

    @property
    def lookup_event_id(self) -> str | None:
        return self._record.lookup_event_id

    @property
    def message(self) -> Message:
        return _MESSAGE.decode(self._record.message)


class _FrameFiles:
    """Spill files of one bundle, opened on first use and written as records come (nothing held in memory)."""

    def __init__(self, directory: str, bundle: str) -> None:
        self._directory = directory
        self._bundle = bundle
        self._files: dict[str, Any] = {}

    def write(self, name: str, frame: bytes) -> None:
        file = self._files.get(name)
        if file is None:
            path = os.path.join(self._directory, f"{name}-{self._bundle}.spill")
            file = self._files[name] = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 (closed in close())
        file.write(_FRAME.pack(len(frame)))
        file.write(frame)

    def close(self) -> dict[str, str]:
        """Close every file; returns name -> path."""
        paths = {}
        for name, file in self._files.items():
            file.close()
            paths[name] = file.name
        self._files = {}
        return paths


class _SpillFn(beam.DoFn):
    """Writes a bundle's messages to spill files as they come (see the module docstring, step 1). A message
    that cannot be encoded for its spill file becomes a dead letter ``internal_error`` (stage ``key``)."""

    def __init__(self, directory: str, shards: int) -> None:
        self._directory = directory
        self._shards = shards

    def setup(self) -> None:
        self._failed = Metrics.counter(metrics.NAMESPACE, metrics.dead_letter_counter(reasons.INTERNAL_ERROR))

    def start_bundle(self) -> None:
        self._files = _FrameFiles(self._directory, uuid.uuid4().hex)

    def process(
        self, message: Message, projects: Mapping[int, ProjectInfo]
    ):  # no annotation of what it returns: see ApplyPerGroupFn.process
        try:  # every frame is made before any is written: a message is spilled whole or not at all
            frames = self._frames(message, projects)
        except Exception as error:  # the last line of defence: the message, not the backfill
            self._failed.inc()
            yield pvalue.TaggedOutput(
                DEAD_LETTER, internal_errors.for_message(message, reasons.STAGE_KEY, error)
            )
            return
        for name, frame in frames:
            self._files.write(name, frame)

    def _frames(self, message: Message, projects: Mapping[int, ProjectInfo]) -> list[tuple[str, bytes]]:
        payload = message.payload
        lookup = is_lookup(message)
        frames = []
        if lookup:
            frames.append(("lookups", _ENCODER.encode(join_key(message.project_id, payload.event_id))))
        else:
            event = stored_event(message, projects)
            if event is not None:
                frames.append(
                    ("events", _ENCODER.encode((join_key(event.project_id, event.event_id), event)))
                )
        key = message.key
        record = _Record(
            key,
            message.message_time,
            message.message_id,
            payload.id if isinstance(payload, Occurrence) else None,
            payload.event_id if lookup else None,
            _ENCODER.encode(without_bytes(message)),
        )
        frames.append((f"keys-{shard_of(key, self._shards):04d}", _ENCODER.encode(record)))
        return frames

    def finish_bundle(self) -> Iterator[Any]:
        for name, path in self._files.close().items():
            if name.startswith("keys-"):
                yield pvalue.TaggedOutput(KEY_FILES, _windowed((int(name[5:]), path)))
            else:
                yield pvalue.TaggedOutput(EVENT_FILES if name == "events" else LOOKUP_FILES, _windowed(path))


def _windowed(value: Any):
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.timestamp import MIN_TIMESTAMP
    from apache_beam.utils.windowed_value import WindowedValue

    return WindowedValue(value, MIN_TIMESTAMP, [GlobalWindow()])


def collect_needed_events(paths: tuple[list[str], list[str]], directory: str) -> str:
    """Step 2: the carried events that some lookup needs, in one file; returns its path."""
    lookup_paths, event_paths = paths
    needed = {msgspec.msgpack.decode(frame, type=str) for path in lookup_paths for frame in read_frames(path)}
    found: dict[str, bytes] = {}
    if needed:
        for path in event_paths:
            for frame in read_frames(path):
                key, event = msgspec.msgpack.decode(frame, type=tuple[str, msgspec.Raw])
                if key in needed:
                    # Copies of one event should be equal; keep the smallest encoding, whatever the order.
                    encoded = bytes(event)
                    if key not in found or encoded < found[key]:
                        found[key] = encoded
    path = os.path.join(directory, f"needed-events-{uuid.uuid4().hex}.spill")
    write_frames(path, [_ENCODER.encode((key, msgspec.Raw(value))) for key, value in sorted(found.items())])
    return path


class _NeededEvents:
    """The needed events of a run, loaded once per process from the file of step 2."""

    _loaded: dict[str, dict[str, Event]] = {}

    @classmethod
    def load(cls, path: str) -> dict[str, Event]:
        events = cls._loaded.get(path)
        if events is None:
            events = {}
            for frame in read_frames(path):
                key, event = msgspec.msgpack.decode(frame, type=tuple[str, msgspec.Raw])
                events[key] = _EVENT.decode(event)
            cls._loaded = {path: events}
        return events


class _ApplyShardFn(CountingDoFn):
    """Step 3: apply every key history of a shard (see the module docstring)."""

    def __init__(self, config: ApplierConfig, chunk_size: int) -> None:
        self._config = config
        self._chunk_size = chunk_size

    def start_bundle(self) -> None:
        self._histories = KeyHistories(self._config, self._count, chunk_size=self._chunk_size)
        self._projects: Mapping[int, ProjectInfo] = {}

    def process(self, element, projects: Mapping[int, ProjectInfo], needed_path: str) -> Iterator[Any]:
        self._projects = projects
        _shard, paths = element
        events = _NeededEvents.load(needed_path)
        histories: dict[str, list[SpilledValue]] = {}
        for path in sorted(paths):
            for frame in read_frames(path):
                record = _RECORD.decode(frame)
                event = None
                if record.lookup_event_id is not None:
                    project_id = record.key.partition(":")[0]
                    event = events.get(f"{project_id}:{record.lookup_event_id}")
                histories.setdefault(record.key, []).append(SpilledValue(record, event))
            os.remove(path)
        for key in sorted(histories):
            for dead_letter in self._histories.add(key, histories.pop(key), projects):
                yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter)

    def finish_bundle(self) -> Iterator[Any]:
        for dead_letter in self._histories.finish(self._projects):
            yield dead_letter_in_finish_bundle(dead_letter)


class ApplyThroughSpill(beam.PTransform):
    """Checked ``Message``s → ``{"applied": ..., "dead_letter": ...}``: the local backfill path (see the module
    docstring); the dead letters of the engine, and of messages that could not be spilled."""

    def __init__(
        self,
        config: ApplierConfig,
        projects,
        *,
        directory: str,
        shards: int = 32,
        chunk_size: int = 5000,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        self._config = config
        self._projects = projects
        self._directory = directory
        self._shards = shards
        self._chunk_size = chunk_size

    @cached_property
    def _spill_fn(self) -> _SpillFn:
        return _SpillFn(self._directory, self._shards)

    def expand(self, messages):
        directory = self._directory
        spilled = typed(
            messages
            | "SpillMessages"
            >> beam.ParDo(self._spill_fn, self._projects).with_outputs(
                KEY_FILES, EVENT_FILES, LOOKUP_FILES, DEAD_LETTER, main="none"
            ),
            **{
                KEY_FILES: typehints.Tuple[int, str],
                EVENT_FILES: str,
                LOOKUP_FILES: str,
                DEAD_LETTER: DeadLetter,
            },
        )
        lookup_files = spilled[LOOKUP_FILES] | "ListLookupFiles" >> beam.combiners.ToList()
        event_files = spilled[EVENT_FILES] | "ListEventFiles" >> beam.combiners.ToList()
        needed = lookup_files | "CollectNeededEvents" >> beam.Map(
            lambda lookups, events: collect_needed_events((lookups, events), directory),
            beam.pvalue.AsSingleton(event_files),
        )
        applied = (
            spilled[KEY_FILES]
            | "GroupShardFiles" >> beam.GroupByKey()
            | "ApplySpilledShards"
            >> beam.ParDo(
                _ApplyShardFn(self._config, self._chunk_size), self._projects, beam.pvalue.AsSingleton(needed)
            ).with_outputs(DEAD_LETTER, main="applied")
        )
        typed(applied, **{DEAD_LETTER: DeadLetter})
        dead_letters = (spilled[DEAD_LETTER], applied[DEAD_LETTER]) | "CollectDeadLetters" >> beam.Flatten()
        dead_letters.element_type = DeadLetter
        return {"applied": applied["applied"], DEAD_LETTER: dead_letters}
