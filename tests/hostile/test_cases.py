"""The hand-written hostile cases (``cases.CASES``) through decoding and everything after it, no server.

Each case must decode to what its line says (applied, or a dead letter with its reason, and what decoding
removed), and what it becomes must go through the shuffle and state coders, the engine, the Spanner writer's
planning and row builders without an exception and without a row real Spanner would refuse.
"""

from __future__ import annotations

import pytest

from tests.hostile.cases import APPLIED, CASES, MIB, PROJECT, Case
from tests.hostile.downstream import after_decoding, project_of
from transforms.core.decode import decode
from transforms.core.model import DeadLetter, Message, RawMessage
from transforms.core.projects import check_project

MESSAGE_TIME = 1_780_000_000_000_000


def decided(case: Case) -> Message | DeadLetter:
    data, attributes = case.message()
    removed: list[str] = []
    decoded = decode(
        RawMessage(f"id-{case.name}", MESSAGE_TIME, data, attributes), max_bytes=MIB, removed=removed
    )
    assert tuple(removed) == case.removed
    return check_project(decoded, {PROJECT: project_of(PROJECT)})


def test_case_names_are_unique() -> None:
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_hostile_case_decodes_as_its_line_says_and_everything_after_decoding_takes_it(case: Case) -> None:
    decoded = decided(case)
    if case.expect == APPLIED:
        assert isinstance(decoded, Message), f"{case.name}: {decoded}"
    else:
        assert isinstance(decoded, DeadLetter), f"{case.name}: decoded to a message"
        assert (decoded.reason, case.name) == (case.expect, case.name), decoded.error
        assert decoded.error
    assert after_decoding(decoded) == []
