"""CPU time per message of our own code on the streaming path, stage by stage, with no runner.

``measure`` drives the pipeline's own DoFns and functions over the messages the end-to-end run published
(same bytes, same Pub/Sub ids and publish times), in windows of ``window`` consecutive messages: what one
processing hold collects. Within a window each key's messages are one engine call, as one flush of the
stateful step, and the window's writes are planned as one commit, as at the end of a bundle.

The steps run in the order a runner runs them. Beam's SDK harness hands each element of a fused stage from
one DoFn to the next before it takes the next element (``ConsumerSet.receive`` in
``apache_beam.runners.worker.operations`` calls the next operation's ``process``), so each message goes through the ingest steps
(``ToRawMessage`` to ``AttachProject``) and is encoded for the shuffle before the next message is read;
the stateful step's ``process`` then takes the messages one by one; and each flush (a timer of one key)
reads the key's state, applies its messages and writes its state back before the next key's flush. The
writes are planned once per window, as ``finish_bundle`` does. (Until 2026-11-27 each stage ran over the whole
window before the next stage started; that kept every decoded message of the window alive at once, which made
allocation and parsing slower than in the pipeline: 15 µs a message more on the same code.) Stages:

  decode      ``ToRawMessage`` (Pub/Sub message -> RawMessage), ``DecodeFn``, ``CheckProjectFn``, and
              ``_to_pubsub`` for the dead letters;
  keying      ``key_by_group`` and ``AttachProject`` (which encodes the message once, ``Routed.of``);
  state       what the stateful step encodes and decodes: the shuffle's ``RoutedCoder`` round trip, the key's
              ``meta`` read and written per message and per flush, the buffer (the encoded message as it came)
              written per message and decoded per flush, the key state decoded and encoded per flush;
  engine      ``engine.compact`` and ``GroupApplier.apply`` (the engine, its context, the creation quota's
              Redis calls (client side), the counters, the JSON text of its events that their rows take:
              ``spanner_rows.keep_payloads``);
  writes      ``chunk_writes``, ``plan_commit``, ``tag_writer.plan_tags`` and the mutations (``buffer_plan``/``write_mutation``) of every
              window's writes, without committing them, and taking them over from the applier (which frees what
              it kept with each, ``Flush``: uncounted until 2026-12-07, 2 to 4 µs a message); with ``defer_saves`` (the pipeline's default), the
              KeyStates row of a key without a group is left out of its flushes' writes, as the stateful step
              does, and each such key's latest state is saved once, after the last window (as when keys
              expire or the run stops).

Timed with ``time.process_time`` (CPU) around each loop of each window, never per message, whose cost (0.6 µs
a call, a system call) would be counted. Where one loop runs several stages (ingest: decode, keying and the
shuffle's encoding; flushes: state, engine), its CPU is split among them in proportion to the time each took
by ``time.perf_counter`` (50 ns a call), read around each step. The creation quota's Redis round trips
are timed apart (``_RoundTrips``): their CPU (the client's) is counted in ``engine``, and their wall time,
mostly waiting for Redis, is left out of that split (until 2026-12-07 it was not: the wait, 4 to 11 µs a
message on a loaded machine, took that much of the flushes' CPU from ``state`` to ``engine``). Python's garbage collector runs when
allocations make it, inside whichever stage allocated; its time is included in the stages and also reported
on its own (``gc``). The collector runs as in the pipeline's worker processes (``transforms.runtime``:
youngest generation every 200,000 allocations), and before each pass the benchmark's own objects (the input
messages) are frozen out of its way (``gc.freeze``), so what it scans is what our code keeps alive. Not
timed, because on Dataflow they are I/O or Beam's: Pub/Sub, shuffle and state backends, timers, Beam's
metrics containers, the Spanner client's work for commits and hydration reads, and the events a lookup reads
(served here from a dictionary of the events written so far). The engine's creation quota does call Redis
(as in the end-to-end run); only its client-side CPU is counted, as said above.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import msgspec
from apache_beam import pvalue
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue
from google.cloud.spanner_v1.batch import Batch

from pipeline.stream import key_by_group
from transforms import progress
from transforms.applier import ApplierConfig, Encoded, GroupApplier
from transforms.core import engine, intents, metrics
from transforms.core.decode import DEFAULT_MAX_BYTES
from transforms.core.model import Event, Message, ProjectInfo, RawMessage
from transforms.decode_messages import CheckProjectFn, DecodeFn
from transforms.per_group.key_context import META_DECODER, META_ENCODER, KeyMeta
from transforms.per_group.routed import NO_PROJECT, AttachProject, RoutedCoder, decode_message, project_info
from transforms.pubsub_io import ToRawMessage, _to_pubsub
from transforms.runtime import GC_THRESHOLD
from transforms.storage import tag_writer
from transforms.storage.group_store import creation_quota
from transforms.storage.org_words import KnownWords
from transforms.storage.redis_quota import RedisCreationQuota
from transforms.storage.spanner_writer import StoredVersions, buffer_plan, chunk_writes, new_keys, plan_commit

STAGES = ("decode", "keying", "state", "engine", "writes")


@dataclass
class Repeat:
    seconds: dict[str, float]
    messages: int
    flushes: int = 0
    commits: int = 0
    rows: int = 0
    rows_by_table: dict[str, int] = field(default_factory=dict)
    gc_seconds: float = 0.0  # garbage collection, already inside the stages' seconds
    quota_wait: float = 0.0  # wall time of the creation quota's Redis round trips, in no stage

    def micros(self, stage: str) -> float:
        return 1e6 * self.seconds[stage] / self.messages

    @property
    def total_micros(self) -> float:
        return 1e6 * sum(self.seconds.values()) / self.messages


@dataclass
class CpuResult:
    repeats: list[Repeat]
    window: int

    def median(self, stage: str) -> float:
        return statistics.median(r.micros(stage) for r in self.repeats)

    @property
    def gc_median(self) -> float:
        return statistics.median(1e6 * r.gc_seconds / r.messages for r in self.repeats)

    @property
    def quota_wait_median(self) -> float:
        return statistics.median(1e6 * r.quota_wait / r.messages for r in self.repeats)

    @property
    def total(self) -> float:
        """Median over repeats of the per-repeat total (µs per message)."""
        return statistics.median(r.total_micros for r in self.repeats)


def _counter():
    """``(count, settle)``: what ``ApplyPerGroupFn`` does with counts, adding them up during a bundle and
    counting them (Beam counters, progress) when it ends."""
    counters: dict[str, object] = {}
    counts: dict[str, int] = {}

    def count(name: str, amount: int) -> None:
        counts[name] = counts.get(name, 0) + amount

    def settle() -> None:
        for name, amount in counts.items():
            counter = counters.get(name)
            if counter is None:
                counter = counters[name] = Metrics.counter(metrics.NAMESPACE, name)
            counter.inc(amount)
            progress.add(name, amount)
        counts.clear()

    return count, settle


def _count_rows(counts: dict[str, int], plan) -> None:
    """Rows of a commit by table, and its GroupTagValues rows by kind: tags, search values, words."""
    for table, count in plan.rows_by_table().items():
        counts[table] = counts.get(table, 0) + count
    for _group_id, key, _value in plan.upserts.get(tag_writer.VALUES, {}):
        kind = "@text" if key == "@text" else "@search" if key[0] == "@" else "tags"
        counts[f"{tag_writer.VALUES}[{kind}]"] = counts.get(f"{tag_writer.VALUES}[{kind}]", 0) + 1


_STORED_KEY = msgspec.msgpack.Encoder()
_STORED_KEY_DECODER = msgspec.msgpack.Decoder(list)


class _TagStore:
    """The Groups, Occurrences and tag rows the benchmark's commits wrote, answering ``tag_writer``'s reads as
    a transaction would (``read`` of keys, or of a group's key rows as a range), so that tags are planned as
    in the pipeline: updates of stored rows, search-only rows known. Not timed (reads are I/O).

    It keeps only the columns those reads return (``_COLUMNS``), as text, numbers and times, under keys
    encoded as bytes: containers the collector does not track. It stands for Spanner's storage, which no worker holds; with every column of
    every row (an Occurrences row's arrays are lists) it held about 70,000 tracked objects by the end of a
    pass, and our code's collections spent their time visiting them."""

    _COLUMNS = {
        "Occurrences": (),
        "GroupTagValues": ("TimesSeen", "FirstSeen", "LastSeen"),
        "GroupTagKeys": ("ValuesSeen", "OtherCount"),
    }

    def __init__(self) -> None:
        self.groups: set[int] = set()
        # table -> group id -> primary key -> columns
        self.rows: dict[str, dict[int, dict[tuple, dict]]] = {table: {} for table in self._COLUMNS}

    def read(self, table: str, columns, keyset) -> list[list]:
        stored = self.rows[table]
        found = []
        for key in keyset.keys:
            row = stored.get(key[0], {}).get(_STORED_KEY.encode(key))
            if row is not None:
                found.append([*key, *(row[c] for c in columns[len(key) :])])
        for key_range in keyset.ranges:
            for encoded, row in stored.get(key_range.start_closed[0], {}).items():
                key = _STORED_KEY_DECODER.decode(encoded)
                found.append([*key, *(row[c] for c in columns[len(key) :])])
        return found

    def commit(self, plan) -> None:
        for group_key in plan.upserts.get("Groups", {}):
            self.groups.add(group_key[0])
        for key in plan.deletes.get("Groups", {}):
            self.groups.discard(key[0])
        for table, kept in self._COLUMNS.items():
            stored = self.rows[table]
            for key, (columns, values) in plan.upserts.get(table, {}).items():
                row = stored.setdefault(key[0], {}).setdefault(_STORED_KEY.encode(key), {})
                for column, value in zip(columns, values):
                    if column not in kept:
                        continue
                    if column in ("FirstSeen", "LastSeen") and value is not None:
                        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
                    row[column] = value


def _share(seconds: dict[str, float], parts: dict[str, float], cpu: float, wall: float) -> None:
    """Split ``cpu`` seconds among stages in proportion to their ``parts`` of ``wall`` (see the docstring)."""
    if wall > 0:
        for stage, part in parts.items():
            seconds[stage] += cpu * part / wall


class _RoundTrips:
    """The Redis round trips of a creation quota (``RedisCreationQuota._evaluate``, wrapped on the instance):
    their wall time (mostly the wait for Redis, not our CPU) and their CPU (the client's, ours). Answers the
    quota gives from its memory are not wrapped (31,000 of 32,000 requests a pass: a wrapper would cost more
    than they do). Reading the clocks around 1,400 round trips a pass costs 0.03 µs a message."""

    def __init__(self, quota: object) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        if isinstance(quota, RedisCreationQuota):
            evaluate = quota._evaluate

            def timed(keys: list[str], args: list[int | str]) -> list[list[bytes | int]]:
                began_cpu, began_wall = time.process_time(), time.perf_counter()
                try:
                    return evaluate(keys, args)
                finally:
                    self.wall += time.perf_counter() - began_wall
                    self.cpu += time.process_time() - began_cpu

            quota._evaluate = timed  # type: ignore[method-assign]


def run_once(
    pubsub_messages: Sequence[tuple[PubsubMessage, WindowedValue]],
    projects: dict[int, ProjectInfo],
    config: ApplierConfig,
    window: int,
    delay_micros: int,
    defer_saves: bool = True,
) -> Repeat:
    """One pass over every message (fresh keys, a fresh quota prefix). See the module docstring."""
    cpu, wall = time.process_time, time.perf_counter
    seconds = dict.fromkeys(STAGES, 0.0)
    config = replace(config, quota_key_prefix=f"{config.quota_key_prefix}:cpu:{uuid.uuid4().hex[:8]}")
    count, settle_counts = _counter()
    quota = creation_quota(config.redis_url, config.quota_key_prefix, count)  # as GroupApplier builds it
    round_trips = _RoundTrips(quota)
    applier = GroupApplier(config, count, quota=quota)
    to_raw, decode_fn, check_fn, attach = (
        ToRawMessage(),
        DecodeFn(DEFAULT_MAX_BYTES, carry=True),  # as transforms.ingest and pipeline.stream
        CheckProjectFn(),
        AttachProject(),
    )
    routed_coder = RoutedCoder()
    retention = config.engine.duplicate_retention
    key_states: dict[str, bytes] = {}
    metas: dict[str, bytes] = {}
    # The events a lookup finds in Spanner, by project and event id: str keys, not a (project, event id) tuple
    # per event, which the collector would visit (the workers hold no such map: the events are in Spanner).
    stored_events: dict[int, dict[str, Event]] = {}
    unsaved: dict[str, intents.KeyWrite] = {}  # defer_saves: the latest save left behind, by key
    tag_store, known_tags = _TagStore(), tag_writer.KnownRows()  # the tag rows of earlier windows
    known_words = KnownWords()  # the writer's cache of the vocabulary's rows (TagWriter.words)

    known_tags_cost = tag_writer.TagCost(known_tags)  # as SpannerWriter chunks (TagWriter.estimate)

    result = Repeat(seconds, 0)
    for start in range(0, len(pubsub_messages), window):
        chunk = pubsub_messages[start : start + window]
        result.messages += len(chunk)

        # The fused ingest steps, message by message, up to the shuffle's write (RoutedCoder.encode).
        parts = dict.fromkeys(("decode", "keying", "state"), 0.0)
        shuffled: list[tuple[str, bytes]] = []
        began_cpu, began_wall = cpu(), wall()
        for pubsub_message, windowed in chunk:
            t0 = wall()
            checked: list[Message] = []
            for raw in to_raw.process(pubsub_message, windowed=windowed):
                for decoded in decode_fn.process(raw):
                    if isinstance(decoded, pvalue.TaggedOutput):  # a dead letter of decoding
                        _to_pubsub(decoded.value)
                        continue
                    for out in check_fn.process(decoded, projects):
                        if isinstance(out, pvalue.TaggedOutput):  # unknown project
                            _to_pubsub(out.value)
                        else:
                            checked.append(out)
            t1 = wall()
            routed = [item for message in checked for item in attach.process(key_by_group(message), projects)]
            t2 = wall()
            for key, item in routed:
                shuffled.append((key, routed_coder.encode(item)))
            t3 = wall()
            parts["decode"] += t1 - t0
            parts["keying"] += t2 - t1
            parts["state"] += t3 - t2
        t4 = wall()
        to_raw.finish_bundle()  # a window is one bundle
        parts["decode"] += wall() - t4
        _share(seconds, parts, cpu() - began_cpu, wall() - began_wall)

        # The stateful step's process(), message by message: the shuffle's read, the key's meta, the buffer.
        began = cpu()
        buffers: dict[str, list[bytes]] = {}
        for key, data in shuffled:
            item = routed_coder.decode(data)
            data = metas.get(key)
            meta = KeyMeta() if data is None else META_DECODER.decode(data)
            if item.project != NO_PROJECT:
                meta.project = item.project
            if item.message_time > meta.max_time:
                meta.max_time = item.message_time
            buffer = buffers.get(key)
            if buffer is None:
                buffer = buffers[key] = []
            buffer.append(item.encoded)
            metas[key] = META_ENCODER.encode(meta)
        seconds["state"] += cpu() - began

        # The flushes, key by key: state read, engine, state written back. The events a lookup reads from
        # Spanner are served from a dictionary of the events written so far, and not counted (I/O).
        parts = dict.fromkeys(("state", "engine"), 0.0)
        waited, client = round_trips.wall, round_trips.cpu
        began_cpu, began_wall = cpu(), wall()
        for key, buffer in buffers.items():
            t0 = wall()
            meta = META_DECODER.decode(metas[key])
            take = [decode_message(data) for data in buffer]
            data = key_states.get(key)
            state = stored = None if data is None else engine.decode_state(data)
            project = project_info(meta.project)
            t1 = wall()
            parts["state"] += t1 - t0
            if project is None:
                continue
            events = stored_events.get(project.project_id, {})
            found = {e: events[e] for e in engine.needed_event_ids(state, take) if e in events}
            t2 = wall()
            if state is not None and state.last_time is not None:
                ready = max(message.message_time for message in take) + delay_micros
                state = engine.compact(state, min(ready - delay_micros, state.last_time) - retention)
            # what the flush keeps of its inputs with the write (per_group.flush: the buffer, the state's bytes)
            encoded = Encoded(buffer, decode_message, data if state is stored else None)
            new_state, _dead = applier.apply(
                key, state, take, project, events=found, defer_key_state=defer_saves, encoded=encoded
            )
            if applier.deferred_save is not None:
                unsaved[key] = applier.deferred_save
            elif applier.last_write is not None:
                unsaved.pop(key, None)
            t3 = wall()
            key_states[key] = applier.encoded_state(new_state)
            metas[key] = META_ENCODER.encode(META_DECODER.decode(metas[key]))
            t4 = wall()
            parts["engine"] += t3 - t2
            parts["state"] += t4 - t3
            result.flushes += 1
        t5 = wall()
        settle_counts()  # a window is one bundle
        parts["engine"] += wall() - t5
        # The quota's round trips: their CPU is the engine's; their wall time is left out of the split.
        waited, client = round_trips.wall - waited, round_trips.cpu - client
        parts["engine"] -= waited
        seconds["engine"] += client
        _share(seconds, parts, cpu() - began_cpu - client, wall() - began_wall - waited)

        # writes: taking them over frees what the applier kept with them (``Flush``), as a worker's commit does
        # once it is done with them (on the commit thread, or at the bundle's end)
        began = cpu()
        writes = applier.take_writes()
        if start + window >= len(pubsub_messages):
            writes.extend(unsaved.values())  # the saves left behind, once each
        for commit in chunk_writes(writes, config.spanner.max_mutations, known_tags_cost):
            plan = plan_commit(commit, StoredVersions(), new_keys(commit))
            indexed = plan.indexed  # tag_writer.index_intents(commit), gathered by plan_commit
            existing = tag_store.groups & {intent.group_id for intent in indexed}
            untimed = cpu()
            stored = tag_writer.read_stored(tag_store, indexed, plan, existing, known_tags)
            began += cpu() - untimed  # the commit's reads (I/O on Dataflow) are not ours to count
            tagged = tag_writer.plan_tags(commit, plan, existing, stored, known_tags, indexed, known_words)
            buffer_plan(Batch(None), plan)  # and the plan's mutation count, counted in the same pass
            result.commits += 1
            result.rows += plan.row_count
            untimed = cpu()
            known_tags.add_all(tagged.known)
            known_words.add_all(tagged.words)  # as TagWriter.committed: the vocabulary's rows stored
            tag_store.commit(plan)
            _count_rows(result.rows_by_table, plan)
            began += cpu() - untimed
        seconds["writes"] += cpu() - began

        for write in writes:  # what later lookups find in Spanner (not timed)
            for intent in write.intents:
                if isinstance(intent, intents.RecordEvent):
                    event = intent.event
                    stored_events.setdefault(event.project_id, {})[event.event_id] = event
        # A worker keeps a window's messages and writes only until its bundle ends (the applier's flush has
        # committed them, Beam drops the bundle's elements): so here, lest the next window's collections
        # visit them, which a worker's do not.
        del shuffled, buffers, writes
        with contextlib.suppress(NameError):  # none when the window wrote nothing
            del commit, plan, indexed, existing, stored, tagged
    result.quota_wait = round_trips.wall
    return result


def pubsub_elements(raw_messages: Sequence[RawMessage]) -> list[tuple[PubsubMessage, WindowedValue]]:
    """Each message as Beam hands it to ``ToRawMessage``: the ``PubsubMessage`` and its element (the
    ``WindowedValue`` whose timestamp is the publish time), built before the pass as Beam builds them."""
    return [
        (
            pubsub_message := PubsubMessage(m.data, m.attributes, message_id=m.message_id),
            WindowedValue(pubsub_message, Timestamp(micros=m.message_time), (GlobalWindow(),)),
        )
        for m in raw_messages
    ]


def measure(
    raw_messages: Sequence[RawMessage],
    projects: dict[int, ProjectInfo],
    config: ApplierConfig,
    *,
    window: int,
    repeats: int,
    delay_seconds: float,
) -> CpuResult:
    """``raw_messages`` carry the Pub/Sub id and publish time the pipeline saw (see the module docstring)."""
    pubsub_messages = pubsub_elements(raw_messages)
    delay = int(delay_seconds * 1_000_000)
    collecting: list[float] = []
    spent = [0.0]

    def on_gc(phase: str, _info: dict) -> None:
        if phase == "start":
            collecting.append(time.process_time())
        elif collecting:
            spent[0] += time.process_time() - collecting.pop()

    runs = []
    gc.callbacks.append(on_gc)
    threshold = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *threshold[1:])  # as the pipeline's workers have it (transforms.runtime)
    try:
        for _ in range(repeats):
            gc.collect()
            gc.freeze()
            spent[0] = 0.0
            run = run_once(pubsub_messages, projects, config, window, delay)
            run.gc_seconds = spent[0]
            runs.append(run)
            gc.unfreeze()
    finally:
        gc.callbacks.remove(on_gc)
        gc.set_threshold(*threshold)
        gc.unfreeze()
    return CpuResult(runs, window)


@contextlib.contextmanager
def workers_collector() -> Iterator[None]:
    """Python's collector as the pipeline's workers have it (``transforms.runtime``: the youngest generation
    collected every ``GC_THRESHOLD`` allocations), with everything alive now frozen out of its way (the
    benchmark's inputs); both undone after the block."""
    threshold = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *threshold[1:])
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def alternating(
    parts: dict[str, tuple[Callable[[], object], Callable[[], object]]], rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    """CPU seconds of each part's two works (before, after), timed in the order before, after, after, before
    in every round, under ``workers_collector``: each work's list has ``2 * rounds`` timings."""
    timings: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in parts}
    with workers_collector():
        for _round in range(rounds):
            for name, (old, new) in parts.items():
                before, after = timings[name]
                for work, spent in ((old, before), (new, after), (new, after), (old, before)):
                    began = time.process_time()
                    work()
                    spent.append(time.process_time() - began)
    return timings


def profile(
    raw_messages: Sequence[RawMessage],
    projects: dict[int, ProjectInfo],
    config: ApplierConfig,
    *,
    window: int,
    delay_seconds: float,
    lines: int = 40,
) -> str:
    """One more pass (as ``measure`` makes one), under a profiler: where its time goes, by function within each
    stage's entry points. With pyinstrument installed (``pip install pyinstrument``, not a dependency of the
    product) a sampling profile (1 ms), whose shares are close to the unprofiled ones; else cProfile's own time
    of the ``lines`` costliest functions, which inflates code that makes many small calls."""
    pubsub_messages = pubsub_elements(raw_messages)
    delay = int(delay_seconds * 1_000_000)
    with workers_collector():
        try:
            from pyinstrument import Profiler
        except ImportError:
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(run_once, pubsub_messages, projects, config, window, delay)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(lines)
            return "cProfile, own time (inflates many small calls):\n" + out.getvalue()
        sampler = Profiler(interval=0.001)
        sampler.start()
        run_once(pubsub_messages, projects, config, window, delay)
        sampler.stop()
        return sampler.output_text(unicode=False, color=False, time="percent_of_total")


@contextlib.contextmanager
def tags_off() -> Iterator[None]:
    """The engine gives no ``IndexOccurrence`` (so nothing of tags is planned or written): for measuring what
    tags cost, alternating with the code as it is in one process (``--ab-tags``)."""
    from transforms.core.engine import engine as engine_module

    original = engine_module._Application._index
    engine_module._Application._index = lambda self, group_id, occurrence, event: None
    try:
        yield
    finally:
        engine_module._Application._index = original


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.stream_cpu [--messages 60000] [--keys N] [--repeats 3] [--window 1600] [--ab-tags]
    [--profile]``: our
    code's CPU per message, stage by stage, over the streaming workload (``bench.floor``'s messages), on a fresh
    database of the stack's emulator (the stack must be running: ``python -m pipeline.stack start``).
    ``--ab-tags`` alternates passes without tags (``tags_off``) and with them, and prints what tags add;
    ``--profile`` then profiles one more pass by function (``profile``)."""
    import argparse

    from bench import cpu_inputs

    parser = argparse.ArgumentParser(prog="python -m bench.stream_cpu", description=main.__doc__)
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--keys", type=int, default=None, help="default: messages / 10, as bench.stream")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", type=int, default=1_600, help="messages a flush collects (a hold)")
    parser.add_argument("--ab-tags", action="store_true", help="alternate passes without and with tags")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then one more pass under a profiler: by function (sampling with pyinstrument when installed)",
    )
    args = parser.parse_args(argv)
    keys = args.keys or max(1, args.messages // 10)
    raw = cpu_inputs.last_hour(args.messages, keys)
    with cpu_inputs.fresh_applier("cpu") as (config, projects):
        variants = (
            {"without tags": tags_off, "with tags": contextlib.nullcontext} if args.ab_tags else {"": None}
        )
        results: dict[str, list[Repeat]] = {name: [] for name in variants}
        for number in range(1, args.repeats + 1):
            for name, switch in variants.items():
                with switch() if switch else contextlib.nullcontext():
                    run = measure(raw, projects, config, window=args.window, repeats=1, delay_seconds=1.0)
                results[name].extend(run.repeats)
                parts = ", ".join(f"{stage} {run.repeats[0].micros(stage):.1f}" for stage in STAGES)
                print(
                    f"repeat {number} {name}: {run.total:.1f} µs/msg ({parts})".replace("  ", " "), flush=True
                )
        if args.profile:
            print(profile(raw, projects, config, window=args.window, delay_seconds=1.0), flush=True)
    print(f"{len(raw):,} messages over {keys:,} keys, windows of {args.window:,}, {args.repeats} repeats")
    medians = {}
    for name, repeats in results.items():
        result = CpuResult(repeats, args.window)
        medians[name] = result
        last = repeats[-1]
        parts = ", ".join(f"{stage} {result.median(stage):.1f}" for stage in STAGES)
        print(
            f"median {name}: {result.total:.1f} µs/msg ({parts}; gc {result.gc_median:.1f}; "
            f"quota's Redis wait {result.quota_wait_median:.1f}, not counted); "
            f"commits {last.commits / last.messages:.4f}, rows {last.rows / last.messages:.2f} a message"
        )
        tables = sorted(last.rows_by_table.items(), key=lambda item: -item[1])
        print(
            "  rows a message: "
            + ", ".join(f"{table} {count / last.messages:.3f}" for table, count in tables)
        )
    if args.ab_tags:
        off, on = medians["without tags"], medians["with tags"]
        parts = ", ".join(f"{stage} {on.median(stage) - off.median(stage):+.1f}" for stage in STAGES)
        print(f"tags add {on.total - off.total:+.1f} µs/msg ({parts}) (difference of medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
