"""Packaging for occurrence-pipeline.

Also used as Dataflow's ``--setup_file``: workers run ``pip install .`` on this
file, so ``install_requires`` lists every package the pipeline's workers import
and nothing else. The issue index's HTTP service (FastAPI, uvicorn) is the
``api`` extra; what only tests or local tooling need is the ``dev`` extra, which
includes ``api`` (``pip install -e '.[dev]'`` gets everything).

Beam: tested on 2.77 and 2.78 (scripts/venv.sh installs the newest the range
allows; the README says how to test another). 2.79 is allowed before its release:
workers reach no private Beam API, and the local runner's patches are to check
what they patch and fall back to Beam's own behaviour (docs/runners.md); the
tests run on a new version before the bound moves again.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, find_packages, setup

# The Beam versions supported; scripts/venv.sh installs the newest of them (or $BEAM_VERSION) into the venv.
BEAM_REQUIREMENT = "apache-beam[gcp]>=2.77,<2.80"
API = [
    "fastapi>=0.115,<1",
    "uvicorn>=0.30,<1",
    # the web interface's server-rendered pages (web/)
    "jinja2>=3.1,<4",
]


def native_extension(module: str, source: str) -> Extension:
    """An optional C extension (where no compiler exists the install goes on, and its module's Python path
    runs) with its source's hash compiled in, so that a build left over from an older source is recognised and
    not used."""
    digest = hashlib.sha256((Path(__file__).parent / source).read_bytes()).hexdigest()
    return Extension(
        module,
        sources=[source],
        define_macros=[("SOURCE_SHA256", f'"{digest}"')],
        extra_compile_args=["-O2"],
        optional=True,
    )


# The C encoder of Spanner mutations (spanner_rows' pure-Python path without it).
MUTATIONS = native_extension("transforms.storage._mutations", "transforms/storage/_mutations.c")
# The fast path of decoding an occurrence payload (transforms.core.occurrence_payload's Python without it).
PAYLOAD = native_extension("transforms.core._payload", "transforms/core/_payload.c")
# The duplicate memory's hot pure functions (the engine's Python path without it).
ENGINE = native_extension("transforms.core.engine._engine", "transforms/core/engine/_engine.c")
# The hot loops of a commit's planning (commit_plan's, tag_writer's and spanner_writer's Python without it).
PLANNING = native_extension("transforms.storage._planning", "transforms/storage/_planning.c")
# An attached occurrence's tags (transforms.core.engine.tags' Python without it).
TAGS = native_extension("transforms.core.engine._tags", "transforms/core/engine/_tags.c")

setup(
    name="occurrence-pipeline",
    version="0.1.0",
    description=(
        "Apache Beam pipeline that turns issue occurrences and status changes "
        "into issues (groups), the way Sentry's issue platform does."
    ),
    python_requires=">=3.11",
    packages=find_packages(
        include=[
            "pipeline",
            "pipeline.*",
            "transforms",
            "transforms.*",
            "schemas",
            "schemas.*",
            "api",
            "api.*",
            "web",
        ]
    ),
    ext_modules=[
        MUTATIONS,
        PAYLOAD,
        ENGINE,
        PLANNING,
        TAGS,
    ],
    package_data={
        "schemas": ["*.proto", "*.sql"],
        # the web interface's templates and static files (htmx vendored from npm: scripts/vendor_htmx.sh)
        "web": ["templates/*.html", "static/*.css", "static/*.js", "static/vendor/*"],
    },
    install_requires=[
        BEAM_REQUIREMENT,
        "google-cloud-pubsub>=2.44,<3",
        "google-cloud-spanner>=3.71,<4",
        # hiredis: redis-py parses replies in C with it (what that saves: docs/performance.md).
        "redis[hiredis]>=5,<9",
        # Beam requires protobuf < 7; google-cloud-spanner 3.71 needs >= 6.33.5, and so does the code
        # generated into schemas/ (it checks the runtime is at least the protoc that wrote it).
        "protobuf>=6.33.5,<7",
        # dateutil's isoparse reads timestamp attributes as Beam's Pub/Sub readers do (transforms/core/message_time.py).
        "python-dateutil>=2.8,<3",
        "msgspec>=0.19,<1",
        "orjson>=3.10,<4",
    ],
    extras_require={
        "api": API,
        "dev": [
            *API,
            "pytest>=8,<10",
            "pytest-timeout>=2.3,<3",
            # ./run_tests.sh runs the tests in two processes (-n 2): most of a test's time is spent waiting on
            # the emulators and on pipelines it started, so two share two cores well.
            "pytest-xdist>=3.5,<4",
            "hypothesis>=6.100,<7",
            "ruff>=0.6,<1",
            # The type checker of ./run_tests.sh (strict on transforms/core, pyproject.toml [tool.mypy]) and the
            # stubs of what the core imports; a new mypy may find new errors, so the minor version is pinned.
            "mypy>=2.4,<2.5",
            "types-protobuf>=6.32,<7",
            "types-python-dateutil>=2.8,<3",
            "httpx>=0.27,<1",
            # Its bundled protoc (33.5) writes schemas/*_pb2.py*; another version would write other bytes.
            "grpcio-tools>=1.81.1,<1.82",
            # Browser tests and screenshots drive Debian's chromium (never a downloaded browser).
            "playwright>=1.45,<2",
        ],
    },
)
