#!/usr/bin/env bash
# Run occurrence-pipeline on this machine: the local stack, a database with sample projects, then the pipeline.
#
# Creates .venv when needed, starts the Pub/Sub and Spanner emulators and Redis (see `python -m pipeline.stack
# --help` for ports), creates the Spanner database, registers two sample organizations with three projects,
# creates the Pub/Sub topics, and runs the streaming pipeline until Ctrl-C (extra arguments go to it). The stack
# keeps running afterwards: `.venv/bin/python -m pipeline.stack stop` stops it.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv
py=.venv/bin/python

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

echo "==> running the streaming pipeline: publish to projects/local-project/topics/occurrences (Ctrl-C stops it)"
exec "$py" -m pipeline.stream \
  --input_subscription projects/local-project/subscriptions/occurrences-pipeline \
  --dead_letter_topic projects/local-project/topics/occurrences-dead-letters \
  --redis_url "$REDIS_URL" \
  "$@"
