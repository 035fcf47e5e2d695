from __future__ import annotations

import pytest

from tests.decode.payloads import ENCODINGS


@pytest.fixture(params=ENCODINGS, ids=["json", "protobuf"])
def encoding(request: pytest.FixtureRequest) -> str:
    """Runs a test once per encoding: the payload is written as JSON and as protobuf."""
    return request.param
