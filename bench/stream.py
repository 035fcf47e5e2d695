"""Throughput of the streaming pipeline on the local runner, against the local stack.

Publishes a generated workload (``pipeline.workload``, message times over the last hours in a timestamp
attribute) to a new topic, runs ``pipeline.stream`` in this process over it, and prints how long the whole
backlog took from the pipeline's start until every message was counted (applied, duplicate or
dead-lettered; polled every 0.5 s, and the 5 s lookup window of events that never come is included),
messages per second, the Spanner commits and the CPU time of this process. Everything is created for the run
(database with projects 1-3, topics, Redis prefix) and dropped afterwards.

The local runner runs every step on one thread and acknowledges on pull; Dataflow's numbers are another
matter. The creation quota is on (Redis) unless --no-quota.

Run (the stack must be running: ``python -m pipeline.stack start`` and ``eval "$(... env)"``):
      python bench/stream.py                      (20,000 messages over 2,000 keys)
      python bench/stream.py --messages 5000 --keys 500
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import admin, stream
from pipeline.local_runner import LocalRun
from pipeline.workload import MIXED, Workload, WorkloadConfig
from transforms import clients, registry
from transforms.core import metrics, reasons
from transforms.core.model import MICROS, to_rfc3339

PROJECT, INSTANCE = "bench-project", "bench-instance"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--no-quota", action="store_true")
    parser.add_argument("--hold", default="2s", help="--processing_hold of the pipeline")
    args = parser.parse_args()
    if not os.environ.get("SPANNER_EMULATOR_HOST") or not os.environ.get("PUBSUB_EMULATOR_HOST"):
        sys.exit('point the clients at the local stack first: eval "$(python -m pipeline.stack env)"')

    start = (int(time.time()) - 4 * 3600) * MICROS
    config = replace(
        WorkloadConfig(messages=args.messages, keys=args.keys, encoding=MIXED),
        start=start,
        duration=3 * 3600 * MICROS,
        timestamp_attribute="ts",
    )
    workload = Workload(config)
    messages = list(workload)
    summary = workload.summary()
    dead = sum(summary.by_reason.values())
    waiting = summary.by_reason.get(reasons.EVENT_NOT_FOUND, 0)
    expected_taken = len(messages) - dead + waiting

    unique = uuid.uuid4().hex[:8]
    database_id = f"bench{unique}"
    admin.ensure_instance(PROJECT, INSTANCE)
    admin.create_database(PROJECT, INSTANCE, database_id)
    database = clients.spanner_database(PROJECT, INSTANCE, database_id)
    for project_id in (1, 2, 3):
        registry.register_project(database, project_id=project_id, organization_id=1, slug=f"p{project_id}")
    publisher, subscriber = clients.pubsub_publisher(), clients.pubsub_subscriber()
    topic = publisher.topic_path(PROJECT, f"bench-{unique}")
    subscription = subscriber.subscription_path(PROJECT, f"bench-{unique}")
    dead_topic = publisher.topic_path(PROJECT, f"bench-{unique}-dead")
    publisher.create_topic(name=topic)
    publisher.create_topic(name=dead_topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    redis_url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    try:
        published = time.perf_counter()
        futures = [
            publisher.publish(topic, m.data, **{**m.attributes, "ts": to_rfc3339(m.message_time)})
            for m in messages
        ]
        for future in futures:
            future.result(timeout=120)
        print(f"published {len(messages):,} messages in {time.perf_counter() - published:.1f}s")

        argv = [
            f"--input_subscription={subscription}",
            f"--dead_letter_topic={dead_topic}",
            "--timestamp_attribute=ts",
            f"--processing_hold={args.hold}",
            "--watermark_delay=0s",
            "--lookup_retry_window=5s",
            f"--spanner_project={PROJECT}",
            f"--spanner_instance={INSTANCE}",
            f"--spanner_database={database_id}",
            "--no_creation_quota" if args.no_quota else f"--redis_url={redis_url}",
            f"--quota_key_prefix=bench:{unique}",
        ]
        cpu, wall = time.process_time(), time.perf_counter()
        result = stream.start(stream.make_options(argv))
        run = LocalRun(result)
        while True:
            time.sleep(0.5)
            if run.finished:
                sys.exit(f"the pipeline failed: {run.failure}")
            totals = stream.counter_totals(result)
            taken = sum(
                totals.get(name, 0)
                for name in (metrics.OCCURRENCE_MESSAGES, metrics.STATUS_CHANGE_MESSAGES, metrics.DUPLICATES)
            )
            dead_letters = sum(v for k, v in totals.items() if k.startswith(metrics.DEAD_LETTER_PREFIX))
            if taken >= expected_taken and dead_letters >= dead:
                break
            if time.perf_counter() - wall > 1800:
                sys.exit(f"gave up after 30 minutes: {totals}")
        seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
        run.cancel()
        print(
            f"applied {len(messages):,} messages ({summary.keys_used:,} keys) in {seconds:.1f}s: "
            f"{len(messages) / seconds:,.0f} messages/s; CPU {cpu_seconds:.1f}s "
            f"({len(messages) / cpu_seconds:,.0f} messages per CPU second, all steps and clients in this process)"
        )
        for name in (
            metrics.GROUP_CREATED,
            metrics.DUPLICATES,
            metrics.LATE_MESSAGES,
            metrics.STATE_HYDRATED,
            metrics.SPANNER_COMMITS,
            metrics.SPANNER_COMMIT_ATTEMPTS,
            metrics.SPANNER_ROWS,
        ):
            print(f"  {name:<28} {totals.get(name, 0):>10,}")
        print(f"  {'dead letters':<28} {dead_letters:>10,}")
    finally:
        subscriber.delete_subscription(subscription=subscription)
        publisher.delete_topic(topic=topic)
        publisher.delete_topic(topic=dead_topic)
        clients.forget_database(PROJECT, INSTANCE, database_id)
        database.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
