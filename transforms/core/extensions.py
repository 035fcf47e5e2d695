"""Optional C extensions of the core, each a faster path of a pure-Python function that stays the fallback."""

from __future__ import annotations

import hashlib
import importlib
import logging
from importlib import resources
from types import ModuleType

_LOG = logging.getLogger(__name__)


def load_extension(package: str, name: str, what: str) -> ModuleType | None:
    """The extension ``package.name`` if it is built from the source ``name + ".c"`` beside it, else None.

    setup.py compiles the source's sha256 into the module as ``SOURCE_SHA256``; a build of another version of
    the source is refused (a WARNING says to rebuild), so edited C never runs stale. One INFO line says which
    path ``what`` takes in this process.
    """
    try:
        module = importlib.import_module(f"{package}.{name}")
    except ImportError:
        _LOG.info("%s: pure-Python path (the C extension %s.%s is not built)", what, package, name)
        return None
    source = resources.files(package).joinpath(f"{name}.c")
    if source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() != module.SOURCE_SHA256:
        _LOG.warning(
            "%s: pure-Python path, because %s was built from another version of %s.c; "
            "rebuild it (pip install -e . or python setup.py build_ext --inplace)",
            what,
            module.__file__,
            name,
        )
        return None
    _LOG.info("%s: C path (%s)", what, module.__file__)
    return module
