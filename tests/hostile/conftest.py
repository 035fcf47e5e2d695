"""The hostile suite's size: ``pytest tests/hostile --hostile-examples N`` runs N generated messages through
the fast layer and N/10 more through the end-to-end one (defaults: 300 and 20, what CI runs)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hostile-examples",
        type=int,
        default=300,
        help="generated hostile messages for tests/hostile (the end-to-end run takes a tenth of them)",
    )


@pytest.fixture
def hostile_examples(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--hostile-examples")
