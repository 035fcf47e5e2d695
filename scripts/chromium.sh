# Sourced by run_tests.sh (and usable alone: bash scripts/chromium.sh): make sure Debian's Chromium is installed.
#
# The web interface's browser tests and `python -m pipeline.screenshots` drive the system browser
# (/usr/bin/chromium, or $CHROMIUM) through Playwright; nothing downloads a browser of its own. As root on
# Debian it is installed with apt-get; otherwise a clear message says how, and the browser tests fail.

ensure_chromium() {
  local browser="${CHROMIUM:-/usr/bin/chromium}"
  if [ -x "$browser" ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium (the browser tests drive it)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
    if [ -x "$browser" ]; then
      return 0
    fi
  fi
  echo "warning: Chromium was not found at $browser; the browser tests (tests/web) will fail." \
    "Install it with: sudo apt-get install chromium (or set CHROMIUM to its path)." >&2
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_chromium
fi
