"""What a Dataflow worker installs and imports: the worker package and the graphs' pickled code.

A worker ``pip install``s the sdist of ``setup.py`` (its ``install_requires``), then unpickles the DoFns,
sources, coders and window functions of the job's graph, which imports their modules and what those import.
None of that may need the HTTP service (fastapi, uvicorn: the ``api`` extra) or the local-only tooling (the
local runner's patches, the stack manager, the workload generator). The graphs checked are the ones
``--runner DataflowRunner`` builds, for streaming and for the backfill; each payload is unpickled in a fresh
interpreter, as on a worker, and its ``sys.modules`` inspected.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2
from google.protobuf import wrappers_pb2

from pipeline import backfill, stream
from pipeline.archive_writer import ArchiveWriter
from pipeline.workload import Workload, WorkloadConfig
from tests.stream.test_dataflow_job import LAUNCH
from tests.workers import exclusive

ROOT = Path(__file__).resolve().parents[2]
# Modules a worker must never import: the HTTP service's libraries and our local-only tooling.
NOT_ON_WORKERS = (
    "fastapi",
    "uvicorn",
    "starlette",
    "jinja2",
    "api.app",
    "web",
    "pipeline.local_runner",
    "pipeline.stack",
    "pipeline.workload",
    "pipeline.generate",
    "pipeline.archive_writer",
    "pipeline.production_graph",
)
# The top-level packages of the worker package (setup.py), whose every module it must carry.
PACKAGED = ("pipeline", "transforms", "schemas", "api")
_PICKLED = {
    python_urns.PICKLED_DOFN_INFO,
    python_urns.PICKLED_COMBINE_FN,
    python_urns.PICKLED_SOURCE,
    python_urns.PICKLED_WINDOWFN,
    python_urns.PICKLED_VIEWFN,
}


def _pickled_payloads(proto: beam_runner_api_pb2.Pipeline) -> list[tuple[str, str, bytes]]:
    """(where, kind, payload) of every pickled Python object in the graph that a worker unpickles."""
    found: list[tuple[str, str, bytes]] = []

    def spec(where: str, function: beam_runner_api_pb2.FunctionSpec) -> None:
        if function.urn in _PICKLED:
            found.append((where, "object", function.payload))

    for transform in proto.components.transforms.values():
        urn, payload, name = transform.spec.urn, transform.spec.payload, transform.unique_name
        if urn == common_urns.primitives.PAR_DO.urn:
            pardo = beam_runner_api_pb2.ParDoPayload.FromString(payload)
            spec(name, pardo.do_fn)
            for side in pardo.side_inputs.values():
                spec(name, side.view_fn)
                spec(name, side.window_mapping_fn)
        elif urn in (common_urns.composites.COMBINE_PER_KEY.urn, common_urns.composites.COMBINE_GLOBALLY.urn):
            spec(name, beam_runner_api_pb2.CombinePayload.FromString(payload).combine_fn)
        elif urn == common_urns.deprecated_primitives.READ.urn:
            spec(name, beam_runner_api_pb2.ReadPayload.FromString(payload).source)
        elif urn == common_urns.primitives.ASSIGN_WINDOWS.urn:
            spec(name, beam_runner_api_pb2.WindowIntoPayload.FromString(payload).window_fn)
    for coder_id, coder in proto.components.coders.items():
        if coder.spec.urn == python_urns.PICKLED_CODER:
            found.append((coder_id, "coder", wrappers_pb2.BytesValue.FromString(coder.spec.payload).value))
    for strategy_id, strategy in proto.components.windowing_strategies.items():
        spec(strategy_id, strategy.window_fn)
    return found


_WORKER = """
import json, sys
from apache_beam.coders.coders import deserialize_coder
from apache_beam.internal import pickler
payloads = json.load(sys.stdin)
for where, kind, payload in payloads:
    data = payload.encode("latin-1")
    deserialize_coder(data) if kind == "coder" else pickler.loads(data)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_a_worker_imports(proto: beam_runner_api_pb2.Pipeline) -> set[str]:
    payloads = [(where, kind, payload.decode("latin-1")) for where, kind, payload in _pickled_payloads(proto)]
    assert len(payloads) > 10
    run = subprocess.run(
        [sys.executable, "-c", _WORKER],
        input=json.dumps(payloads),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    modules = set(json.loads(run.stdout.splitlines()[-1]))
    assert "transforms.core.engine" in modules  # the payloads were unpickled, importing our code
    return modules


def _forbidden(modules: set[str]) -> list[str]:
    return sorted(
        module
        for module in modules
        if any(module == bad or module.startswith(bad + ".") for bad in NOT_ON_WORKERS)
    )


@pytest.fixture(scope="module")
def streaming_job_graph() -> beam_runner_api_pb2.Pipeline:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PUBSUB_EMULATOR_HOST", "SPANNER_EMULATOR_HOST", "REDIS_URL"):
            patch.delenv(name, raising=False)
        result = stream.start(stream.make_options([*LAUNCH, "--dry_run=True"]))
    return result.job.proto_pipeline


def test_the_streaming_job_workers_import_neither_the_http_service_nor_local_tooling(
    streaming_job_graph,
) -> None:
    assert _forbidden(_modules_a_worker_imports(streaming_job_graph)) == []


def test_the_backfill_job_workers_import_neither_the_http_service_nor_local_tooling(tmp_path: Path) -> None:
    with ArchiveWriter(str(tmp_path / "archive.jsonl")) as writer:
        writer.write_all(Workload(WorkloadConfig(messages=10, keys=2, seed=1)))
    options = backfill.make_options(
        [
            "--runner=DataflowRunner",
            "--project=my-project",
            "--region=europe-west1",
            "--temp_location=gs://my-bucket/tmp",
            f"--input={tmp_path / 'archive.jsonl'}",
            "--dead_letter_path=gs://my-bucket/dead-letters",
        ]
    )
    assert backfill.grouping(options) == "shuffle"
    pipeline = beam.Pipeline(options=PipelineOptions([]))
    backfill.build(pipeline, options)
    assert _forbidden(_modules_a_worker_imports(pipeline.to_runner_api())) == []


def _sdist(source: Path, dist_dir: Path) -> Path:
    """The sdist ``setup.py`` in ``source`` builds, as Dataflow does from ``--setup_file``; one build at a time
    per source folder (``setup.py sdist`` rewrites the folder's egg-info, which test processes share)."""
    lock = Path(tempfile.gettempdir()) / f"occurrence-pipeline-sdist-{hashlib.md5(bytes(source)).hexdigest()}"
    with exclusive(lock):
        subprocess.run(
            [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(dist_dir)],
            cwd=source,
            check=True,
            capture_output=True,
        )
    (sdist,) = dist_dir.glob("occurrence_pipeline-*.tar.gz")
    return sdist


def test_the_worker_package_requires_neither_fastapi_nor_uvicorn(tmp_path: Path) -> None:
    """``install_requires`` of the sdist Dataflow builds from ``--setup_file`` (its egg-info's requires.txt:
    the lines before the first ``[extra]`` section); the HTTP service's libraries are the ``api`` extra."""
    with tarfile.open(_sdist(ROOT, tmp_path)) as archive:
        (member,) = [name for name in archive.getnames() if name.endswith(".egg-info/requires.txt")]
        requires = archive.extractfile(member).read().decode()
    sections: dict[str, list[str]] = {}
    section = ""
    for line in requires.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line.strip():
            sections.setdefault(section, []).append(line.strip())
    names = {
        requirement.split("[")[0].split(">")[0].split("<")[0].split("=")[0] for requirement in sections[""]
    }
    assert "apache-beam" in names and not names & {"fastapi", "uvicorn", "jinja2"}
    assert {"fastapi", "uvicorn", "jinja2"} <= {
        requirement.split(">")[0].split("<")[0] for requirement in sections["api"]
    }
    assert any(requirement.startswith("fastapi") for requirement in sections["dev"])  # dev pulls the api


def test_the_worker_package_holds_every_module_of_the_product_packages(tmp_path: Path) -> None:
    """The sdist a worker installs carries every module of the packages a graph's code imports from, including
    subpackages such as ``transforms/storage/`` (``setup.py``'s ``find_packages`` include list). Built from a
    copy of the tracked files, so that no egg-info left by a local install adds what ``setup.py`` would not."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    source = tmp_path / "source"
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    with tarfile.open(_sdist(source, tmp_path)) as archive:
        packed = {
            name.split("/", 1)[1] for name in archive.getnames() if name.endswith(".py") and "/" in name
        }
    product = [name for name in tracked if name.endswith(".py") and name.split("/")[0] in PACKAGED]
    assert "transforms/storage/spanner_writer.py" in product
    assert sorted(set(product) - packed) == []


def test_the_http_service_without_its_extra_says_how_to_install_it() -> None:
    """A worker-style install has no FastAPI: ``python -m pipeline.api`` names the extra instead of a traceback."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys; sys.modules['fastapi'] = None; runpy.run_module('pipeline.api', run_name='__main__')",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 1
    assert "pip install 'occurrence-pipeline[api]'" in run.stderr
    assert "Traceback" not in run.stderr
