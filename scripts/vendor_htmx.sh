#!/usr/bin/env bash
# Vendors htmx from the npm registry into the web package (web/static/vendor/), the way it was done for the
# committed copy: the service serves that file itself and never loads a script from elsewhere at run time.
#
# Run it only to change the version (bump VERSION and INTEGRITY from `npm view htmx.org@X dist.integrity`, then
# the SHA-256 in tests/web/test_vendored.py). It needs npm; the project's checks and CI do not.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.0.11
INTEGRITY="sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA=="
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "htmx.org@$VERSION" --silent >/dev/null)
tarball="$work/htmx.org-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "error: htmx.org@$VERSION does not match its pinned integrity ($actual)" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"
rm -f web/static/vendor/htmx-*.min.js
cp "$work/package/dist/htmx.min.js" "web/static/vendor/htmx-$VERSION.min.js"
cp "$work/package/LICENSE" web/static/vendor/htmx-LICENSE.txt
sha256sum "web/static/vendor/htmx-$VERSION.min.js"
