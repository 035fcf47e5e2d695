"""The engine and the write planning of one ``bench.stream_cpu`` pass, replayed alone: less noise than a pass.

``python -m bench.cpu_parts [--messages 60000] [--replays 5]`` (stack running, its environment set)

One pass of ``bench.stream_cpu.run_once`` records every ``engine.apply`` call (state, messages, context, and
what the creation quota answered) and every window's writes. Then, with the collector tuned as in the
workers and the recorded inputs frozen out of its way, it replays them ``--replays`` times and prints medians
in µs a message: ``engine.apply`` alone (the quota answering as recorded, from memory), ``GroupApplier.apply``
around the same engine results (the applier's own work), and the writes stage split into chunking,
``plan_commit``, ``plan_tags`` and the mutations with their count (``buffer_plan``; the tag rows' reads
served by the benchmark's tag store and not counted, as in ``bench.stream_cpu``; the events' JSON made ahead
before each window, untimed, as the applier makes it in the engine stage: ``spanner_rows.keep_payloads``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from google.cloud.spanner_v1.batch import Batch

from bench import cpu_inputs, stream_cpu
from transforms import applier as applier_module
from transforms.applier import GroupApplier
from transforms.core import engine
from transforms.core.engine import EngineContext
from transforms.core.intents import RecordEvent
from transforms.core.model import group_key
from transforms.storage import spanner_rows, tag_writer
from transforms.storage.org_words import KnownWords
from transforms.storage.spanner_writer import StoredVersions, buffer_plan, chunk_writes, new_keys, plan_commit

WRITE_PARTS = ("chunking", "plan_commit", "plan_tags", "mutations")


class _Answers:
    """The creation quota as a pass saw it: records its answers, then gives them again."""

    def __init__(self, quota: Any = None) -> None:
        self.quota = quota
        self.answers: dict[tuple[str, int], bool] = {}

    def try_acquire(self, project_id: int, group_type: Any, message_time: int, creation_id: str = "") -> bool:
        if self.quota is None:
            return self.answers[(creation_id, message_time)]
        answer = self.quota.try_acquire(project_id, group_type, message_time, creation_id)
        self.answers[(creation_id, message_time)] = answer
        return answer


def _record(raw: list, projects: dict, config: Any) -> tuple[list, list[list], _Answers]:
    """One pass; returns the engine calls (state, messages, context), each window's writes, the quota's."""
    calls: list = []
    windows: list[list] = []
    answers = _Answers()
    apply, take_writes = engine.apply, GroupApplier.take_writes

    def recording_apply(state, messages, context):
        if context.quota is not None and answers.quota is None:
            answers.quota = context.quota
        context = EngineContext(
            context.project,
            context.config,
            context.now,
            answers if context.quota is not None else None,
            dict(context.events),
            context.releases,
            context.stored_occurrence_ids,
        )
        calls.append((state, list(messages), context))
        return apply(state, messages, context)

    def recording_take_writes(self):
        writes = take_writes(self)
        windows.append(list(writes))
        return writes

    applier_module.engine.apply = recording_apply
    GroupApplier.take_writes = recording_take_writes
    try:
        stream_cpu.run_once(stream_cpu.pubsub_elements(raw), projects, config, 1_600, 1_000_000)
    finally:
        applier_module.engine.apply = apply
        GroupApplier.take_writes = take_writes
    answers.quota = None  # from here on, answered as recorded
    return calls, windows, answers


def _engine_alone(calls: list) -> float:
    began = time.process_time()
    for state, messages, context in calls:
        engine.apply(state, messages, context)
    return time.process_time() - began


def _applier_alone(calls: list, results: list, config: Any, answers: _Answers) -> float:
    """``GroupApplier.apply`` with the engine's results given: the applier's own work."""
    applier = GroupApplier(config, lambda name, amount: None)
    applier._quota = answers
    found = iter(results)
    engine_apply = applier_module._engine_apply
    applier_module._engine_apply = lambda key, state, messages, context: (*next(found), [])
    try:
        began = time.process_time()
        for state, messages, context in calls:
            project = context.project
            key = group_key(
                project.project_id, state.primary_hash if state else messages[0].payload.hashes[0]
            )
            applier.apply(key, state, messages, project, events=context.events, defer_key_state=True)
            if applier.pending_writes > 1_000:  # as a window hands its writes over
                applier.take_writes()
        return time.process_time() - began
    finally:
        applier_module._engine_apply = engine_apply


def _keep_payloads(writes: list, keep: Any = spanner_rows.keep_payloads) -> None:
    """What the applier did for these writes when it made them (``spanner_rows.keep_payloads``: their events'
    JSON text, taken by their rows), which the recorded pass's own plans took: done again, untimed, so that the
    replayed writes find them as the pipeline's do."""
    keep([intent.event for write in writes for intent in write.intents if isinstance(intent, RecordEvent)])


def _writes_alone(windows: list[list], max_mutations: int) -> dict[str, float]:
    cpu = time.process_time
    spent = dict.fromkeys(WRITE_PARTS, 0.0)
    tag_store, known = stream_cpu._TagStore(), tag_writer.KnownRows()
    known_words = KnownWords()  # the writer's cache of the vocabulary's rows (TagWriter.words)
    tag_cost = tag_writer.TagCost(known)
    for writes in windows:
        _keep_payloads(writes)  # the applier's, in the engine stage (not the writes')
        began = cpu()
        # the writer's own tag cost (TagWriter.estimate), so that chunking takes its C path as in the pipeline
        commits = chunk_writes(writes, max_mutations, tag_cost)
        spent["chunking"] += cpu() - began
        for commit in commits:
            began = cpu()
            plan = plan_commit(commit, StoredVersions(), new_keys(commit))
            spent["plan_commit"] += cpu() - began
            existing = tag_store.groups & {intent.group_id for intent in plan.indexed}
            stored = tag_writer.read_stored(
                tag_store, plan.indexed, plan, existing, known
            )  # I/O: not counted
            began = cpu()
            tagged = tag_writer.plan_tags(commit, plan, existing, stored, known, plan.indexed, known_words)
            planned = cpu()
            buffer_plan(Batch(None), plan)  # and the plan's mutation count
            spent["plan_tags"] += planned - began
            spent["mutations"] += cpu() - planned
            known.add_all(tagged.known)
            known_words.add_all(tagged.words)
            tag_store.commit(plan)
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_parts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--replays", type=int, default=5)
    args = parser.parse_args(argv)
    count = args.messages
    raw = cpu_inputs.last_hour(count, max(1, count // 10))
    with cpu_inputs.fresh_applier("parts") as (config, projects):
        calls, windows, answers = _record(raw, projects, config)
        results = [engine.apply(state, messages, context) for state, messages, context in calls]
        with stream_cpu.workers_collector():
            alone = [_engine_alone(calls) for _ in range(args.replays)]
            around = [_applier_alone(calls, results, config, answers) for _ in range(args.replays)]
            writes = [_writes_alone(windows, config.spanner.max_mutations) for _ in range(args.replays)]

    def micros(seconds: list[float]) -> str:
        return f"{1e6 * statistics.median(seconds) / count:.1f}"

    print(
        f"{count:,} messages, {len(calls):,} engine calls, {sum(map(len, windows)):,} writes; medians of {args.replays}"
    )
    print(f"engine.apply alone:           {micros(alone)} µs/msg")
    print(f"GroupApplier.apply, own work: {micros(around)} µs/msg")
    parts = ", ".join(f"{part} {micros([w[part] for w in writes])}" for part in WRITE_PARTS)
    print(f"writes: {micros([sum(w.values()) for w in writes])} µs/msg ({parts})")
    intents = sum(len(write.intents) for window in windows for write in window)
    print(f"plan_commit: {intents / count:.1f} intents a message (one planner call each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
