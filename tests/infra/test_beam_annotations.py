"""Our DoFns' annotations are Beam type hints since Beam 2.78: they must be ones Beam accepts.

Beam 2.78 resolves postponed annotations (``from __future__ import annotations``) of ``DoFn.process`` into
type hints, where 2.77 ignored them. A ``process`` annotated ``-> None`` then fails every pipeline that uses
the DoFn when it is built ("Return value not iterable"), whatever the Beam version the test runs on; this
finds them on 2.77 too, by reading the annotations as 2.78 does.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import typing
from pathlib import Path

import apache_beam as beam
import pytest

PACKAGES = ("pipeline", "transforms", "bench", "tests")
SKIP = {"pipeline.api"}  # needs the 'api' extra; defines no DoFn


def _dofn_classes() -> list[type]:
    found = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for module_info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if module_info.name in SKIP or module_info.name.rsplit(".", 1)[-1].startswith("conftest"):
                continue
            spec = importlib.util.find_spec(module_info.name)
            if (
                spec is None
                or not spec.origin
                or not spec.origin.endswith(".py")  # a compiled extension (transforms.storage._mutations)
                or "DoFn" not in Path(spec.origin).read_text(encoding="utf-8")
            ):
                continue  # no DoFn defined there (and test modules are not imported for nothing)
            module = importlib.import_module(module_info.name)
            found.extend(
                value
                for value in vars(module).values()
                if inspect.isclass(value)
                and issubclass(value, beam.DoFn)
                and value.__module__ == module.__name__
            )
    return found


DOFNS = _dofn_classes()


def test_every_dofn_of_the_code_base_is_found() -> None:
    names = {cls.__qualname__ for cls in DOFNS}
    assert {"ApplyPerGroupFn", "_SpillFn", "_PublishFn", "DecodeFn", "ApplyKeyHistoriesFn"} <= names


@pytest.mark.parametrize("dofn", DOFNS, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_process_is_not_annotated_to_return_none(dofn: type) -> None:
    hints = typing.get_type_hints(dofn.process)
    assert hints.get("return", typing.Any) is not type(None), (
        "Beam 2.78 reads process's return annotation as the DoFn's output type and refuses None: "
        "leave it out, or annotate what it yields"
    )
