# Sourced by run_local.sh and run_tests.sh: make sure the venv exists and has this checkout installed.
#
# ensure_venv creates the venv with Python 3.11 (or $PYTHON) and runs `pip install -e '.[dev]'` when the venv is
# missing or setup.py, pyproject.toml or the C extension's source changed since the last install (their hash is
# kept in the venv; the install rebuilds the extension in place). It then
# installs the newest Beam that setup.py allows (BEAM_REQUIREMENT), also into an existing venv (pip would keep
# an older one that still satisfies the range), so tests run on the newest supported Beam.
#
# BEAM_VERSION=2.77.0 selects another supported Beam: the venv is then .venv-beam-2.77.0 (so .venv keeps the
# newest), with that version installed. ensure_venv sets VENV to the venv's folder.

ensure_venv() {
  local python="${PYTHON:-python3.11}" stamp wanted beam
  beam="$(sed -n 's/^BEAM_REQUIREMENT = "\(.*\)"$/\1/p' setup.py)"
  if [ -z "$beam" ]; then
    echo "error: setup.py has no BEAM_REQUIREMENT line" >&2
    return 1
  fi
  VENV=.venv
  if [ -n "${BEAM_VERSION:-}" ]; then
    VENV=".venv-beam-$BEAM_VERSION"
    beam="apache-beam[gcp]==$BEAM_VERSION"
  fi
  stamp="$VENV/.installed-from"
  wanted="$(cat setup.py pyproject.toml $(find transforms -name '*.c' | sort) | sha256sum | cut -d' ' -f1) $beam"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    if ! command -v "$python" >/dev/null 2>&1; then
      echo "error: $python was not found. Install Python 3.11 (Debian 12: apt-get install python3.11 python3.11-venv)" \
        "or set PYTHON to a Python 3.11 interpreter." >&2
      return 1
    fi
    echo "==> creating $VENV with $python"
    if ! "$python" -m venv "$VENV"; then
      rm -rf "$VENV"
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing python3.11-venv (Debian's venv module)"
        DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3.11-venv
        "$python" -m venv "$VENV"
      else
        echo "error: '$python -m venv' failed. On Debian install the venv module: sudo apt-get install python3.11-venv" >&2
        return 1
      fi
    fi
  fi
  echo "==> installing the project and its dev tools into $VENV (pip install -e '.[dev]' '$beam'; 1-2 minutes the first time)"
  "$VENV/bin/python" -m pip install --quiet --upgrade --upgrade-strategy only-if-needed -e '.[dev]' "$beam"
  "$VENV/bin/python" -c 'import apache_beam; print("==> Beam", apache_beam.__version__)'
  echo "$wanted" > "$stamp"
}

# ensure_sentry_cli installs Sentry's own client, npm's @sentry/cli-linux-x64 (the Linux x86_64 binary), into
# .venv/sentry-cli for the issue index's client tests (tests/api/test_cli.py). Without npm it installs npm when
# it runs as root with apt-get (as a fresh CI machine does), else says that those tests will be skipped.
SENTRY_CLI_VERSION=3.8.0
ensure_sentry_cli() {
  local dir=.venv/sentry-cli
  if [ -x "$dir/node_modules/@sentry/cli-linux-x64/bin/sentry-cli" ]; then
    return 0
  fi
  if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "==> sentry-cli's npm package is for Linux x86_64: the sentry-cli tests will be skipped"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing npm (Debian's) for sentry-cli"
      { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm; } \
        >/dev/null || true
    fi
    if ! command -v npm >/dev/null 2>&1; then
      echo "==> npm not found: the sentry-cli tests will be skipped (Debian: apt-get install npm)"
      return 0
    fi
  fi
  echo "==> installing sentry-cli $SENTRY_CLI_VERSION (npm @sentry/cli-linux-x64) into $dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@sentry/cli-linux-x64@$SENTRY_CLI_VERSION" ||
    echo "==> npm could not install sentry-cli: the sentry-cli tests will fail and say why"
}
