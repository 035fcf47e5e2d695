"""What the pipeline left behind: rows per table, groups by status, keys with occurrences waiting for their
event, dead letters by reason.

    python -m pipeline.report [--spanner_project P] [--spanner_instance I] [--spanner_database D]
        [--dead_letter_subscription projects/P/subscriptions/S]

Reads Spanner (the emulator when ``SPANNER_EMULATOR_HOST`` is set) and, when given a subscription of the
dead-letter topic, looks at the dead letters waiting there without consuming them (they are pulled, counted
and released again, so they can still be read or replayed). Meant for local runs (``run_local.sh``): it
counts with SQL scans.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence

from transforms.core.enums import STATUS_NAMES, SUBSTATUS_NAMES
from transforms.core.envelopes import DEAD_LETTER_REASON
from transforms.storage import clients
from transforms.waiting_keys import read_waiting_keys

TABLES = (
    "Groups",
    "Occurrences",
    "Activities",
    "GroupEnvironments",
    "GroupHashes",
    "GroupReleases",
    "Releases",
    "Events",
    "KeyStates",
    "GroupTagKeys",
    "GroupTagValues",
    "OrgWords",
)


def row_counts(database) -> dict[str, int]:
    counts = {}
    with database.snapshot(multi_use=True) as snapshot:
        for table in TABLES:
            counts[table] = next(iter(snapshot.execute_sql(f"SELECT COUNT(*) FROM `{table}`")))[0]
    return counts


def groups_by_status(database) -> Counter[str]:
    with database.snapshot() as snapshot:
        rows = snapshot.execute_sql(
            "SELECT Status, Substatus, COUNT(*) FROM `Groups` GROUP BY Status, Substatus"
        )
        return Counter(
            {
                STATUS_NAMES.get(status, str(status))
                + ("" if substatus is None else f"/{SUBSTATUS_NAMES.get(substatus, str(substatus))}"): count
                for status, substatus, count in rows
            }
        )


def dead_letters_by_reason(subscription: str, limit: int = 100_000) -> Counter[str]:
    """Reasons of the dead letters waiting on ``subscription``; they are released again, not consumed."""
    subscriber = clients.pubsub_subscriber()
    reasons: Counter[str] = Counter()
    seen: set[str] = set()
    ack_ids: list[str] = []
    try:
        while len(seen) < limit:
            try:
                response = subscriber.pull(subscription=subscription, max_messages=1000, timeout=2.0)
            except Exception:  # nothing more within the timeout (DeadlineExceeded)
                break
            if not response.received_messages:
                break
            for received in response.received_messages:
                ack_ids.append(received.ack_id)
                if received.message.message_id not in seen:
                    seen.add(received.message.message_id)
                    reasons[received.message.attributes.get(DEAD_LETTER_REASON, "?")] += 1
    finally:
        for start in range(0, len(ack_ids), 1000):
            subscriber.modify_ack_deadline(
                subscription=subscription, ack_ids=ack_ids[start : start + 1000], ack_deadline_seconds=0
            )
    return reasons


def _print_counts(title: str, counts: dict[str, int]) -> None:
    print(title)
    if not counts:
        print("  (none)")
    width = max((len(name) for name in counts), default=0)
    for name, count in counts.items():
        print(f"  {name:<{width}}  {count:>10,}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.split("\n")[0])
    parser.add_argument("--spanner_project", default=clients.LOCAL_SPANNER_PROJECT)
    parser.add_argument("--spanner_instance", default=clients.LOCAL_SPANNER_INSTANCE)
    parser.add_argument("--spanner_database", default=clients.LOCAL_SPANNER_DATABASE)
    parser.add_argument("--dead_letter_subscription", help="a subscription of the dead-letter topic")
    args = parser.parse_args(argv)
    database = clients.spanner_database(args.spanner_project, args.spanner_instance, args.spanner_database)
    _print_counts("rows:", row_counts(database))
    _print_counts("groups by status:", dict(groups_by_status(database).most_common()))
    waiting = len(read_waiting_keys(database))
    print(
        f"keys whose saved state has occurrences waiting for their event: {waiting:,}"
        + (" (the next streaming pipeline takes them up when it starts)" if waiting else "")
    )
    if args.dead_letter_subscription:
        reasons = dead_letters_by_reason(args.dead_letter_subscription)
        _print_counts(
            f"dead letters waiting on {args.dead_letter_subscription}:", dict(reasons.most_common())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
