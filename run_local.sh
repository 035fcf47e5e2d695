#!/usr/bin/env bash
# Run occurrence-pipeline on this machine: the local stack, a database with sample projects, a generated
# workload on Pub/Sub, the streaming pipeline over it, and a report of what it did.
#
# Creates .venv when needed, starts the Pub/Sub and Spanner emulators and Redis (see `python -m pipeline.stack
# --help` for ports), creates the Spanner database, registers two sample organizations with three projects and
# creates the Pub/Sub topics. Then publishes RUN_LOCAL_MESSAGES (default 5000) messages of the workload
# generator (message times over the last hour, in the `ts` attribute), runs the streaming pipeline until it has
# had nothing to do for 15 s (extra arguments go to it, e.g. --exit_when_idle 60s), and prints its counters, the
# rows per table, the groups by status and the dead letters by reason.
#
# Then it serves the issue stream: the pipeline keeps running in the background (so that what you resolve or
# ignore in the browser is applied; its log goes to <stack dir>/logs/pipeline.log), a write token of
# organization acme is created, and the issue index service with the web interface runs in the foreground on
# http://127.0.0.1:RUN_LOCAL_PORT/ (default 8000), printing the URL and the token, until Ctrl-C, which stops
# both. RUN_LOCAL_SERVE=0 ends after the report instead. The stack keeps running afterwards:
# `.venv/bin/python -m pipeline.stack stop` stops it.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv
py="$VENV/bin/python"
messages="${RUN_LOCAL_MESSAGES:-5000}"
port="${RUN_LOCAL_PORT:-8000}"

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

pipeline_args=(
  --input_subscription projects/local-project/subscriptions/occurrences-pipeline
  --dead_letter_topic projects/local-project/topics/occurrences-dead-letters
  --redis_url "$REDIS_URL"
  --timestamp_attribute ts
  --lookup_retry_window 10s
)

echo "==> running the streaming pipeline until it is idle"
"$py" -m pipeline.stream "${pipeline_args[@]}" --exit_when_idle 15s "$@"

echo "==> what it did"
"$py" -m pipeline.report --dead_letter_subscription projects/local-project/subscriptions/occurrences-dead-letters

if [ "${RUN_LOCAL_SERVE:-1}" = 0 ]; then
  exit 0
fi

log_dir="$("$py" -c 'from pipeline.stack import StackConfig; print(StackConfig.from_env().logs)')"
mkdir -p "$log_dir"
echo "==> keeping the pipeline running in the background, to apply what you change in the browser (log: $log_dir/pipeline.log)"
"$py" -m pipeline.stream "${pipeline_args[@]}" "$@" >"$log_dir/pipeline.log" 2>&1 &
pipeline_pid=$!
stop_pipeline() {
  kill -TERM "$pipeline_pid" 2>/dev/null && wait "$pipeline_pid" 2>/dev/null
  echo "==> stopped the web service and the background pipeline (the stack keeps running)"
}
trap stop_pipeline EXIT

token="$("$py" -m pipeline.admin create-token --organization acme --scope write --name run_local 2>/dev/null)"
echo "==> the issue stream: open http://127.0.0.1:$port/ and sign in with this token (organization acme, write scope):"
echo
echo "    $token"
echo
echo "    Ctrl-C stops the web service and the background pipeline."
"$py" -m pipeline.api --port "$port" --status_change_topic occurrences --public_url "http://127.0.0.1:$port"
