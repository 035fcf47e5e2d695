"""Generate the Python code for ``schemas/ingest.proto``: ``python -m schemas.compile_proto``.

Writes ``schemas/ingest_pb2.py`` and ``schemas/ingest_pb2.pyi`` with the protoc
bundled in grpcio-tools (a dev dependency). The generated files are committed,
so the pipeline needs only the protobuf runtime; ``tests/decode/test_schema.py``
fails when they are out of date. The generated code checks at import that the
protobuf runtime is at least the version of the protoc that wrote it, which is
why ``setup.py`` pins both.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_FILES = ("schemas/ingest.proto",)
GENERATED_FILES = ("schemas/ingest_pb2.py", "schemas/ingest_pb2.pyi")


class GenerationError(RuntimeError):
    pass


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on ``PROTO_FILES`` into ``out_dir`` (mirroring their paths); return the files written."""
    from grpc_tools import protoc  # a dev dependency: imported only when generating

    well_known = resources.files("grpc_tools") / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"--proto_path={REPO_ROOT}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *PROTO_FILES,
    ]
    status = protoc.main(args)
    if status != 0:
        raise GenerationError(f"protoc failed with status {status} (arguments: {' '.join(args)})")
    return [out_dir / name for name in GENERATED_FILES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT,
        help="directory to write into (the files land under <out>/schemas/); default: the repository",
    )
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        written = generate(Path(scratch))
        for path in written:
            target = options.out / path.relative_to(scratch)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
