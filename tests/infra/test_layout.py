"""The code's layout, as the README's "Layout" describes it: which package may import which, and one file a name.

``transforms/`` holds the pipeline's steps, ``transforms/core/`` the rules (plain Python: no Beam, no clients),
``transforms/storage/`` the storage adapters (no Beam, none of the steps). Imports flow from ``pipeline`` to
``transforms``, never back, and nothing of ``transforms`` imports the issue index service or the web interface.
Imports are read from the source (every ``import`` statement, also inside functions), not by importing.
"""

from __future__ import annotations

import ast
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("pipeline", "transforms", "schemas", "api", "web")


def _product_files() -> list[str]:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    return [name for name in tracked if name.split("/")[0] in PRODUCT]


def _imports(path: str) -> set[str]:
    """Every module ``path`` imports, and every ``module.name`` of its ``from module import name``s."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text(), path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _offending(under: str, allowed: Callable[[str], bool]) -> dict[str, list[str]]:
    offending: dict[str, list[str]] = {}
    for path in _product_files():
        if path.startswith(under):
            bad = sorted(name for name in _imports(path) if not allowed(name))
            if bad:
                offending[path] = bad
    return offending


def _within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_the_storage_adapters_import_neither_beam_nor_the_pipeline_steps() -> None:
    def allowed(name: str) -> bool:
        if _within(name, "apache_beam", "pipeline", "api", "web"):
            return False
        if _within(name, "transforms") and name != "transforms":
            # the rules, the other adapters, and the checks of the client libraries' private code they rely on
            return _within(name, "transforms.core", "transforms.storage", "transforms.private_api")
        return True

    assert _offending("transforms/storage/", allowed) == {}


def test_the_rules_import_no_beam_no_client_and_nothing_outside_the_core() -> None:
    def allowed(name: str) -> bool:
        if _within(name, "apache_beam", "google.cloud", "google.api_core", "redis", "pipeline", "api", "web"):
            return False
        return not _within(name, "transforms") or _within(name, "transforms.core")

    assert _offending("transforms/core/", allowed) == {}


def test_the_pipeline_steps_never_import_the_entry_points_the_service_or_the_web_interface() -> None:
    assert _offending("transforms/", lambda name: not _within(name, "pipeline", "api", "web")) == {}


def test_a_product_module_name_finds_one_file() -> None:
    """Benchmarks (``bench/``, named for what they measure) may share a name with the code they measure."""
    places: dict[str, list[str]] = defaultdict(list)
    for path in _product_files():
        name = Path(path).name
        if name not in ("__init__.py", "__main__.py"):
            places[name].append(path)
    assert {name: paths for name, paths in places.items() if len(paths) > 1} == {}
