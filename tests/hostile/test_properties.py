"""Generated hostile messages (``strategies.hostile_messages``): each decodes to a dead letter with a reason,
or to a message that everything after decoding takes (``downstream.after_decoding``), never an exception."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.cases import MIB, PROJECT
from tests.hostile.downstream import after_decoding, project_of
from tests.hostile.strategies import hostile_messages
from transforms.core.decode import decode
from transforms.core.model import RawMessage
from transforms.core.projects import check_project

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


def check(message: tuple[bytes, dict[str, str]]) -> None:
    data, attributes = message
    decoded = decode(RawMessage("generated", 1_780_000_000_000_000, data, attributes), max_bytes=MIB)
    decoded = check_project(decoded, {PROJECT: project_of(PROJECT)})
    assert after_decoding(decoded) == []


def test_every_generated_hostile_message_is_a_dead_letter_or_goes_through_everything(
    hostile_examples: int,
) -> None:
    @settings(max_examples=hostile_examples, deadline=None, suppress_health_check=_HEALTH, database=None)
    @given(hostile_messages())
    def run(message: tuple[bytes, dict[str, str]]) -> None:
        check(message)

    run()


@pytest.mark.parametrize("project_id", [PROJECT])
def test_generated_messages_of_a_registered_project_reach_the_engine(
    project_id: int, hostile_examples: int
) -> None:
    """Not only dead letters: a good share of the generated messages are taken in (so the layer tests the
    encoders and row builders, not just the checks)."""
    taken = []

    @settings(
        max_examples=max(50, hostile_examples // 3),
        deadline=None,
        suppress_health_check=_HEALTH,
        database=None,
    )
    @given(hostile_messages(), st.just(project_id))
    def run(message: tuple[bytes, dict[str, str]], project: int) -> None:
        data, attributes = message
        decoded = decode(RawMessage("g", 0, data, attributes), max_bytes=MIB)
        taken.append(not hasattr(decoded, "reason"))

    run()
    assert sum(taken) >= len(taken) // 10
