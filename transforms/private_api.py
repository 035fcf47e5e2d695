"""Other libraries' private code we patch, reimplement or rely on, used only while it is what we wrote against.

A ``Target`` names such code by module and qualified name, with the SHA-256 of its source
(``inspect.getsource``) on the library versions we tested, and the attributes we read there;
``target_problems`` says what no longer matches. A rewritten copy of a private function is right only while
the original is the code it was copied from, which is why the source, not just the name, is checked.

A ``Patch`` lists its ``Target``s: what it replaces, wraps, reimplements or relies on, each by module and
qualified name with the SHA-256 of its source (``inspect.getsource``) on the library versions the patch was
tested with, and the attributes the patch reads there. ``Patcher.apply`` installs the patches asked for
whose every target is as recorded; a patch whose check fails is not installed (the library's own code stays)
and one WARNING names it and what changed. Parts that only work together are one patch, so they fall back
together. ``apply`` also removes installed patches that are no longer asked for, restoring the library's own
attributes exactly, so one process can run a patched pipeline, then a stock one.

Nothing here imports the libraries checked: targets are resolved when checked.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Replacement = tuple[Any, str, Any]  # (owner: a class or module, attribute name, new value)
_MISSING = object()


@dataclass(frozen=True)
class Target:
    """Something private a patch depends on.

    ``role``: ``replaces`` (the patch sets it), ``wraps`` (the patch's version calls it), ``reimplements`` (the
    patch's version is a rewritten copy of it), ``relies on`` (the patch's code depends on what it does, e.g. an
    ``__init__`` that sets the attributes it reads). ``reads``: attributes the patch uses, each ``Name.attr``
    in ``module`` (a class or module attribute, or one its class's source, or a base's, assigns as
    ``self.attr``), or ``other.module:Name`` in another module."""

    module: str
    name: str  # qualified name in ``module``
    sha256: tuple[str, ...]  # the sources accepted: one per distinct source among the tested versions
    role: str = "replaces"
    reads: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.module.rsplit('.', 1)[-1]}.{self.name}"


@dataclass(frozen=True)
class Patch:
    """One patch: ``install`` returns its replacements (it is called only once the checks passed; None for a
    use of private parts that only needs checking, whose user asks ``Patcher.applied``)."""

    name: str
    title: str  # what it does, in a few words ("timer scans")
    fallback: str  # what runs without it ("Beam's own timer scans (slower)")
    targets: tuple[Target, ...]
    install: Callable[[], list[Replacement]] | None = field(default=None, compare=False)


def _hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def _resolve(module: str, name: str, originals: dict[tuple[int, str], Any]) -> tuple[Any, Any]:
    """(owner, value) of ``module:name``; where a patch replaced the value, the value it replaced."""
    owner: Any = importlib.import_module(module)
    parts = name.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    last = parts[-1]
    value = originals.get((id(owner), last), _MISSING)
    if value is _MISSING:
        value = inspect.getattr_static(owner, last)
    return owner, value


def _source_object(value: Any) -> Any:
    if isinstance(value, classmethod | staticmethod):
        return value.__func__
    if isinstance(value, property):
        return value.fget
    return value


def _assigns(owner: Any, attribute: str) -> bool:
    """Whether ``owner`` (a class) or one of its bases has ``attribute``, or assigns it as ``self.attribute``."""
    if not inspect.isclass(owner):
        return hasattr(owner, attribute)
    for cls in inspect.getmro(owner):
        if attribute in vars(cls):
            return True
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        if f"self.{attribute} =" in source or f"self.{attribute}: " in source:
            return True
    return False


def source_sha256(target: Target) -> str:
    """The SHA-256 of ``target``'s source as installed now (raises when it is missing or has no source)."""
    return _hash(inspect.getsource(_source_object(_resolve(target.module, target.name, {})[1])))


def target_problems(target: Target, originals: dict[tuple[int, str], Any] | None = None) -> list[str]:
    """What is not as ``target`` records (empty when it is): a missing name or attribute, a changed source."""
    problems = []
    try:
        _owner, value = _resolve(target.module, target.name, originals or {})
    except (ImportError, AttributeError) as error:
        return [f"{target.label} is missing ({type(error).__name__}: {error})"]
    try:
        found = _hash(inspect.getsource(_source_object(value)))
    except (OSError, TypeError) as error:
        problems.append(f"the source of {target.label} cannot be read ({type(error).__name__}: {error})")
    else:
        if found not in target.sha256:
            recorded = ", ".join(digest[:12] for digest in target.sha256)
            problems.append(f"{target.label} changed (source SHA-256 {found[:12]}, recorded {recorded})")
    for read in target.reads:
        module, _, name = read.rpartition(":") if ":" in read else (target.module, "", read)
        owner_name, _, attribute = name.rpartition(".")
        try:
            owner = _resolve(module, owner_name, {})[1] if owner_name else importlib.import_module(module)
        except (ImportError, AttributeError):
            owner = None
        if owner is None or not _assigns(owner, attribute):
            problems.append(f"{target.label}: {module.rsplit('.', 1)[-1]}.{name} is missing")
    return problems


class Patcher:
    """Installs and removes ``patches`` (see the module docstring). Thread-safe; one per set of patches."""

    def __init__(
        self, patches: Sequence[Patch], log: logging.Logger, prefix: str, library: Callable[[], str]
    ) -> None:
        self.patches = {patch.name: patch for patch in patches}
        self._log = log
        self._prefix = prefix  # of every warning: "local runner"
        self._library = library  # names the library and its version in warnings: "Beam 2.78.0"
        self._lock = threading.Lock()
        self._installed: dict[str, list[tuple[Any, str, Any]]] = {}  # name -> [(owner, attribute, original)]
        self._usable: set[str] = set()  # checked-only patches whose check passed
        self._originals: dict[tuple[int, str], Any] = {}
        self._warned: set[tuple[str, str]] = set()
        self._checked: dict[Target, tuple[str, ...]] = {}

    def problems(self, patch: Patch) -> list[str]:
        """What fails ``patch``'s check (its own targets only; empty when it may be applied)."""
        problems = []
        for target in patch.targets:
            with self._lock:
                found = self._checked.get(target)
                originals = dict(self._originals)
            if found is None:  # a target's source does not change in a process: checked once
                found = tuple(target_problems(target, originals))
                with self._lock:
                    self._checked[target] = found
            problems.extend(found)
        return problems

    def check_all(self) -> dict[str, list[str]]:
        """Every patch's check: name -> problems (empty when it passes)."""
        return {name: self.problems(patch) for name, patch in self.patches.items()}

    def apply(self, wanted: Iterable[str]) -> dict[str, str | None]:
        """Install the ``wanted`` patches whose checks pass, remove the others; returns, for every patch, None
        when it is in place, else why not. Warns once per process for each patch that falls back and reason."""
        wanted = set(wanted)
        unknown = wanted - set(self.patches)
        if unknown:
            raise ValueError(f"unknown patches: {sorted(unknown)}")
        outcome: dict[str, str | None] = {}
        for name, patch in self.patches.items():
            if name not in wanted:
                outcome[name] = "not asked for"
                continue
            problems = self.problems(patch)
            outcome[name] = "; ".join(problems) if problems else None
            if problems:
                self._warn(
                    patch, f"{self._library()} changed what the {patch.title} patch needs: {outcome[name]}"
                )
        with self._lock:
            for name, patch in self.patches.items():
                if outcome[name] is not None:
                    self._remove(name)
                    self._usable.discard(name)
                elif patch.install is None:
                    self._usable.add(name)
                elif name not in self._installed:
                    self._install(name, patch)
        return outcome

    def applied(self, name: str) -> bool:
        """Whether patch ``name`` is in place (installed, or for a checked-only one, its check passed)."""
        if name not in self.patches:
            raise ValueError(f"unknown patch {name!r}")
        with self._lock:
            return name in self._installed or name in self._usable

    def installed(self, name: str) -> list[tuple[Any, str]]:
        """The attributes patch ``name`` replaced, as (owner, attribute) (empty when it is not installed)."""
        with self._lock:
            return [(owner, attribute) for owner, attribute, _original in self._installed.get(name, [])]

    def original(self, owner: Any, attribute: str) -> Any:
        """The library's own value of ``owner.attribute`` (as it was before a patch replaced it)."""
        with self._lock:
            value = self._originals.get((id(owner), attribute), _MISSING)
        return getattr(owner, attribute) if value is _MISSING else value

    def _install(self, name: str, patch: Patch) -> None:
        assert patch.install is not None
        done: list[tuple[Any, str, Any]] = []
        for owner, attribute, value in patch.install():
            original = vars(owner).get(attribute, _MISSING) if hasattr(owner, "__dict__") else _MISSING
            done.append((owner, attribute, original))
            self._originals[(id(owner), attribute)] = (
                original if original is not _MISSING else inspect.getattr_static(owner, attribute, None)
            )
            setattr(owner, attribute, value)
        self._installed[name] = done

    def _remove(self, name: str) -> None:
        for owner, attribute, original in reversed(self._installed.pop(name, [])):
            if original is _MISSING:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)
            self._originals.pop((id(owner), attribute), None)

    def _warn(self, patch: Patch, reason: str) -> None:
        key = (patch.name, reason)
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        self._log.warning("%s: %s; using %s", self._prefix, reason, patch.fallback)
