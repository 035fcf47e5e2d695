#!/usr/bin/env bash
# Run occurrence-pipeline on this machine: the local stack, a database with sample projects, a generated
# workload on Pub/Sub, the streaming pipeline over it, and a report of what it did.
#
# Creates .venv when needed, starts the Pub/Sub and Spanner emulators and Redis (see `python -m pipeline.stack
# --help` for ports), creates the Spanner database, registers two sample organizations with three projects and
# creates the Pub/Sub topics. Then publishes RUN_LOCAL_MESSAGES (default 5000) messages of the workload
# generator (message times over the last hour, in the `ts` attribute), runs the streaming pipeline until it has
# had nothing to do for 15 s (extra arguments go to it, e.g. --exit_when_idle 60s), and prints its counters, the
# rows per table, the groups by status and the dead letters by reason. The stack keeps running afterwards:
# `.venv/bin/python -m pipeline.stack stop` stops it.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv
py="$VENV/bin/python"
messages="${RUN_LOCAL_MESSAGES:-5000}"

echo "==> starting the local stack"
"$py" -m pipeline.stack start
eval "$("$py" -m pipeline.stack env)"

echo "==> creating the database, sample projects and Pub/Sub topics"
"$py" -m pipeline.admin create-database
"$py" -m pipeline.admin add-project --project-id 1 --organization-id 1 --slug backend --organization-slug acme \
  --feature organizations:profile-file-io-main-thread-ingest
"$py" -m pipeline.admin add-project --project-id 2 --organization-id 1 --slug frontend
"$py" -m pipeline.admin add-project --project-id 3 --organization-id 2 --slug mobile --organization-slug globex
"$py" -m pipeline.admin list-projects
"$py" -m pipeline.admin create-topics

echo "==> publishing $messages generated messages to projects/local-project/topics/occurrences"
"$py" -m pipeline.generate --topic occurrences --timestamp_attribute ts --messages "$messages" \
  --keys "$((messages / 10 + 2))" --seed "$(date +%s)" --start "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" \
  --duration 1h

echo "==> running the streaming pipeline until it is idle"
"$py" -m pipeline.stream \
  --input_subscription projects/local-project/subscriptions/occurrences-pipeline \
  --dead_letter_topic projects/local-project/topics/occurrences-dead-letters \
  --redis_url "$REDIS_URL" \
  --timestamp_attribute ts \
  --lookup_retry_window 10s \
  --exit_when_idle 15s \
  "$@"

echo "==> what it did"
"$py" -m pipeline.report --dead_letter_subscription projects/local-project/subscriptions/occurrences-dead-letters
