"""The checks in front of the local runner's patches (``pipeline.local_runner.PATCHES``).

On the installed Beam every check passes, so CI on a new Beam fails here naming each patch that would fall
back and why. For every part of every patch, a recorded source that no longer matches (as on a Beam that
changed it) makes the whole patch fall back: none of its attributes is replaced, Beam's own code stays, and
one WARNING names the patch and what changed. ``prepare_direct_runner(patches=False)`` removes every patch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import pytest

from pipeline import local_runner
from pipeline.local_runner import patch_table
from transforms.private_api import Patcher

PATCHED_PARTS = [
    (patch.name, index) for patch in local_runner.PATCHES for index, _target in enumerate(patch.targets)
]


def test_every_patch_checks_out_on_the_installed_beam() -> None:
    problems = {name: found for name, found in local_runner.PATCHER.check_all().items() if found}
    assert problems == {}, "patches that would fall back on this Beam:\n" + "\n".join(
        f"  {name}: {'; '.join(found)}" for name, found in problems.items()
    )


def test_every_patch_is_applied_and_every_patch_can_be_removed() -> None:
    outcome = local_runner.prepare_direct_runner()
    assert outcome == {patch.name: None for patch in local_runner.PATCHES}
    replaced = {
        patch.name: local_runner.PATCHER.installed(patch.name)
        for patch in local_runner.PATCHES
        if patch.install
    }
    assert all(replaced.values())
    try:
        local_runner.prepare_direct_runner(patches=False)
        for name, attributes in replaced.items():
            assert local_runner.PATCHER.installed(name) == []
            for owner, attribute in attributes:
                assert _is_beams(getattr(owner, attribute)), (name, attribute)
        assert not any(local_runner.PATCHER.applied(patch.name) for patch in local_runner.PATCHES)
    finally:
        local_runner.prepare_direct_runner()


def _is_beams(value) -> bool:
    """Whether ``value`` (a function, a class or module method, or a module) is Beam's own."""
    value = getattr(value, "__func__", value)
    module = getattr(value, "__module__", None) or getattr(value, "__name__", "")
    return module.startswith("apache_beam")


@pytest.fixture
def beams_runner() -> Iterator[None]:
    """Every patch removed for the test (it installs patches of its own), and put back after it."""
    local_runner.prepare_direct_runner(patches=False)
    yield
    local_runner.prepare_direct_runner()


@pytest.mark.parametrize(("patch_name", "index"), PATCHED_PARTS, ids=[f"{n}-{i}" for n, i in PATCHED_PARTS])
def test_a_patch_whose_beam_code_changed_falls_back_whole_to_beams_code_with_a_warning(
    patch_name: str,
    index: int,
    beams_runner,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    patches = list(local_runner.PATCHES)
    position = next(i for i, patch in enumerate(patches) if patch.name == patch_name)
    patch = patches[position]
    target = patch.targets[index]
    changed = dataclasses.replace(target, sha256=("0" * 64,))
    patches[position] = dataclasses.replace(
        patch, targets=(*patch.targets[:index], changed, *patch.targets[index + 1 :])
    )
    doctored = Patcher(patches, local_runner.LOG, "local runner", local_runner.beam_version)
    monkeypatch.setattr(patch_table, "PATCHER", doctored)
    try:
        with caplog.at_level(logging.WARNING, logger=local_runner.LOG.name):
            outcome = local_runner.prepare_direct_runner()
        assert outcome[patch_name] is not None and target.label in outcome[patch_name]
        assert [name for name, why in outcome.items() if why is not None] == [patch_name]
        warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
        (warning,) = [text for text in warnings if patch.title in text]
        assert warning.startswith(
            f"local runner: {local_runner.beam_version()} changed what the {patch.title}"
        )
        assert f"{target.label} changed" in warning
        assert "recorded 000000000000" in warning and patch.fallback in warning
        assert not doctored.applied(patch_name)
        assert doctored.installed(patch_name) == []
        if patch.install is not None:  # every attribute the patch would replace is Beam's
            for owner, attribute, _value in patch.install():
                assert _is_beams(getattr(owner, attribute)), attribute
        others = [other.name for other in patches if other.name != patch_name]
        assert all(doctored.applied(name) for name in others)
    finally:
        doctored.apply([])
