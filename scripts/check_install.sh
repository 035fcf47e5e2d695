#!/usr/bin/env bash
# Install the product into a new, empty venv as a Dataflow worker does, with a given Beam, and import it.
#
#   scripts/check_install.sh [BEAM_VERSION]      (default 2.78.0; PYTHON picks the interpreter, default python3.11)
#
# Builds the sdist of setup.py (what --setup_file stages for the workers), pip installs it into a temporary
# venv together with apache-beam[gcp]==BEAM_VERSION, then checks, in that venv, that the pipeline's modules
# import, that Beam is the version asked for, that neither FastAPI nor uvicorn was installed (they are the
# 'api' extra), that both entry points answer --help, and which path the Spanner mutations take (the optional
# C extension, built where a compiler exists, or pure Python). Needs PyPI; takes a few minutes. Exits non-zero on
# any failure. The venv is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
beam="${1:-2.78.0}"
python="${PYTHON:-python3.11}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "==> building the sdist of setup.py"
"$python" -m venv "$work/build"
"$work/build/bin/python" -m pip install --quiet setuptools
"$work/build/bin/python" setup.py -q sdist --dist-dir "$work/dist" >/dev/null
sdist="$(ls "$work"/dist/occurrence?pipeline-*.tar.gz)"

echo "==> installing $(basename "$sdist") with apache-beam[gcp]==$beam into a new venv"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$sdist" "apache-beam[gcp]==$beam"

echo "==> importing it"
cd "$work"  # not the checkout: the installed package must be what is imported
"$work/venv/bin/python" - "$beam" <<'PY'
import importlib.util
import sys

import apache_beam

import pipeline.backfill
import pipeline.stream
import transforms.apply_per_group
import transforms.core.engine

assert apache_beam.__version__ == sys.argv[1], apache_beam.__version__
assert "site-packages" in pipeline.stream.__file__, pipeline.stream.__file__
missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is not None]
assert not missing, f"installed with the worker package: {missing}"
print(f"    apache-beam {apache_beam.__version__}; pipeline from {pipeline.stream.__file__}")

from transforms.storage import spanner_rows  # noqa: E402

# The C extension is optional (no compiler: the pure-Python path); say which one the workers would run.
path = "C extension" if spanner_rows._native is not None else "pure Python (the C extension was not built)"
print(f"    Spanner mutations: {path}")
from transforms.core.engine import tags  # noqa: E402

path = "C extension" if tags._native is not None else "pure Python (the C extension was not built)"
print(f"    Occurrence tags: {path}")

from transforms.core.engine import dedup  # noqa: E402

path = "C extension" if dedup.native is not None else "pure Python (the C extension was not built)"
print(f"    engine duplicate memory: {path}")

from transforms.core import occurrence_payload  # noqa: E402

path = "C extension" if occurrence_payload._native is not None else "pure Python (the C extension was not built)"
print(f"    Occurrence payloads: {path}")
PY
"$work/venv/bin/python" -m pipeline.stream --help >/dev/null
"$work/venv/bin/python" -m pipeline.backfill --help >/dev/null
echo "install check passed (apache-beam $beam)"
