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
from apache_beam.portability.api import beam_runner_api_pb2

from pipeline import local_runner, streaming_driver
from pipeline.local_runner import patch_table
from transforms.private_api import Patcher, target_problems

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


# The streaming driver (``pipeline.streaming_driver``): the private parts of Beam's FnApiRunner it uses.


def test_every_private_name_the_streaming_driver_uses_checks_out_on_the_installed_beam() -> None:
    problems = [problem for target in streaming_driver.CHECKS for problem in target_problems(target)]
    assert problems == [], "the streaming driver would be unavailable on this Beam:\n" + "\n".join(problems)
    streaming_driver.check()


@pytest.mark.parametrize("index", range(len(streaming_driver.CHECKS)))
def test_a_changed_runner_part_makes_the_streaming_driver_unavailable_naming_it(
    index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = streaming_driver.CHECKS[index]
    changed = dataclasses.replace(target, sha256=("0" * 64,))
    checks = (*streaming_driver.CHECKS[:index], changed, *streaming_driver.CHECKS[index + 1 :])
    monkeypatch.setattr(streaming_driver, "CHECKS", checks)
    with pytest.raises(streaming_driver.DriverUnavailable) as raised:
        streaming_driver.StreamingDriver(beam_runner_api_pb2.Pipeline())
    message = str(raised.value)
    assert f"{target.label} changed (source SHA-256" in message and "recorded 000000000000" in message
    assert message.startswith("the streaming driver cannot run on Beam ")


def test_a_runner_attribute_gone_makes_the_streaming_driver_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    monkeypatch.delattr(worker_handlers, "STATE_CACHE_SIZE_MB")
    monkeypatch.setattr(
        streaming_driver, "_checked", {}
    )  # checked again, not taken from this process's check
    with pytest.raises(
        streaming_driver.DriverUnavailable, match=r"worker_handlers\.STATE_CACHE_SIZE_MB is missing"
    ):
        streaming_driver.check()
