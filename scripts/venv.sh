# Sourced by run_local.sh and run_tests.sh: make sure .venv exists and has this checkout installed.
#
# ensure_venv creates .venv with Python 3.11 (or $PYTHON) and runs `pip install -e '.[dev]'` when the venv is
# missing or setup.py / pyproject.toml changed since the last install (their hash is kept in .venv).

ensure_venv() {
  local python="${PYTHON:-python3.11}" stamp=.venv/.installed-from wanted
  wanted="$(cat setup.py pyproject.toml | sha256sum | cut -d' ' -f1)"
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    return 0
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! command -v "$python" >/dev/null 2>&1; then
      echo "error: $python was not found. Install Python 3.11 (Debian 12: apt-get install python3.11 python3.11-venv)" \
        "or set PYTHON to a Python 3.11 interpreter." >&2
      return 1
    fi
    echo "==> creating .venv with $python"
    if ! "$python" -m venv .venv; then
      rm -rf .venv
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing python3.11-venv (Debian's venv module)"
        DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3.11-venv
        "$python" -m venv .venv
      else
        echo "error: '$python -m venv' failed. On Debian install the venv module: sudo apt-get install python3.11-venv" >&2
        return 1
      fi
    fi
  fi
  echo "==> installing the project and its dev tools into .venv (pip install -e '.[dev]'; 1-2 minutes the first time)"
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  echo "$wanted" > "$stamp"
}
