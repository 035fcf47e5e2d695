#!/usr/bin/env bash
# The test command: lint, format check and every test, on a fresh machine or a developer's.
#
# Creates .venv (.venv-beam-$BEAM_VERSION with BEAM_VERSION set: scripts/venv.sh) when needed, installs
# sentry-cli (Sentry's client, from npm, for the issue index's client tests) and Debian's chromium (for
# the browser tests) when missing, starts the local stack (emulators and Redis) when it is not running
# and stops it again at the end (STACK_KEEP=1 keeps it), then runs ruff, mypy (strict on transforms/core)
# and pytest. Extra arguments go to pytest, e.g. ./run_tests.sh tests/infra -x. Exits non-zero if any step
# fails.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
source scripts/chromium.sh
ensure_venv
ensure_chromium
ensure_sentry_cli
py="$VENV/bin/python"

started_stack=0
if ! "$py" -m pipeline.stack status --quiet; then
  started_stack=1
fi
stop_stack() {
  if [ "$started_stack" = 1 ] && [ "${STACK_KEEP:-0}" != 1 ]; then
    "$py" -m pipeline.stack stop
  fi
}
trap stop_stack EXIT
"$py" -m pipeline.stack start

failed=()
echo "==> ruff check ."
"$VENV/bin/ruff" check . || failed+=("ruff check")
echo "==> ruff format --check ."
"$VENV/bin/ruff" format --check . || failed+=("ruff format")
echo "==> mypy (strict on transforms/core: pyproject.toml [tool.mypy])"
"$VENV/bin/mypy" || failed+=("mypy")
echo "==> pytest"
# TEST_WORKERS test processes (pytest-xdist; default 2; 0 runs them in this process): each file's tests run in one
# process, in order (--dist loadfile: a module fixture is set up once). Not loadgroup: pytest-xdist 3.8 marks a
# group by rewriting Node._nodeid, which pytest 9.2's nodeid no longer reads, so its groups are ignored.
"$py" -m pytest --timeout=900 -n "${TEST_WORKERS:-2}" --dist loadfile "$@" || failed+=("pytest")

if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all checks passed"
