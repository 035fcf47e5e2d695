"""The hand-written hostile cases (``cases.CASES``) through reading and decoding and everything after it, no
server.

Each case must be read and decoded as its line says (applied, or a dead letter with its reason and stage, and
what decoding removed), and what it becomes must go through the shuffle and state coders, the engine, the
Spanner writer's planning and row builders without an exception and without a row real Spanner would refuse;
its dead letter, if it is one, must fit what Pub/Sub carries. A case whose failure is injected (``inject``)
is decoded like any other message here: the end-to-end layer makes the failure happen.
"""

from __future__ import annotations

import pytest

from tests.hostile.cases import APPLIED, CASES, MIB, PROJECT, SPANNER_REFUSES, TIMESTAMP_ATTRIBUTE, Case
from tests.hostile.downstream import after_decoding, injected_release, project_of
from transforms.core.decode import decode
from transforms.core.message_time import with_attribute_time
from transforms.core.model import DeadLetter, Message, RawMessage
from transforms.core.projects import check_project

MESSAGE_TIME = 1_780_000_000_000_000


def decided(case: Case, name: str | None = None) -> Message | DeadLetter:
    """What reading the timestamp attribute, decoding and the project check make of the case's message."""
    name = name or case.name
    data, attributes = case.build(name)
    removed: list[str] = []
    raw = with_attribute_time(RawMessage(f"id-{name}", MESSAGE_TIME, data, attributes), TIMESTAMP_ATTRIBUTE)
    if isinstance(raw, DeadLetter):
        return raw
    decoded = decode(raw, max_bytes=MIB, removed=removed)
    assert tuple(removed) == case.removed
    return check_project(decoded, {PROJECT: project_of(PROJECT)})


def test_case_names_are_unique() -> None:
    names = [name for case in CASES for name in case.names()]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_hostile_case_decodes_as_its_line_says_and_everything_after_decoding_takes_it(case: Case) -> None:
    for name in {case.names()[0], case.names()[-1]}:
        decoded = decided(case, name)
        if case.decoded_expect == APPLIED:
            assert isinstance(decoded, Message), f"{name}: {decoded}"
        else:
            assert isinstance(decoded, DeadLetter), f"{name}: decoded to a message"
            assert (decoded.reason, name) == (case.expect, name), decoded.error
            assert decoded.error
            if case.stage is not None:
                assert decoded.stage == case.stage, decoded
        assert after_decoding(decoded) == []


def test_the_injected_release_is_one_real_spanner_refuses() -> None:
    """``SPANNER_REFUSES`` is a write Spanner refuses for what it carries: the rows planned for it break the
    key limit that ``spanner_limits`` checks (and that the emulator enforces)."""
    (case,) = [case for case in CASES if case.inject == SPANNER_REFUSES]
    problems = after_decoding(injected_release(decided(case)))
    assert problems and all("8192" in problem or "key" in problem for problem in problems), problems
