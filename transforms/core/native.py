"""Loading an optional C extension built from a source beside it (``setup.py``'s ``optional=True`` extensions).

An extension is used only if it imports and was built from the source now beside it: setup.py compiles the
source's sha256 in as ``SOURCE_SHA256``, and a build left over from an older source is refused (its Python
path runs instead), so an edited source never runs stale C. One log line says which path runs.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from importlib import resources
from types import ModuleType


def load_extension(package: str, name: str, what: str, log: logging.Logger) -> ModuleType | None:
    """``package.name`` if it is built from ``package/name.c``, else None; logs ``what`` runs in C or Python."""
    try:
        module = importlib.import_module(f"{package}.{name}")
    except ImportError:
        log.info("%s: pure-Python path (the C extension %s.%s is not built)", what, package, name)
        return None
    source = resources.files(package).joinpath(f"{name}.c")
    if source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() != module.SOURCE_SHA256:
        log.warning(
            "%s: pure-Python path, because %s was built from another version of %s.c; "
            "rebuild it (pip install -e . or python setup.py build_ext --inplace)",
            what,
            module.__file__,
            name,
        )
        return None
    log.info("%s: C path (%s)", what, module.__file__)
    return module
