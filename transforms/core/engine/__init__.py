"""The group engine: every per-group rule of SEMANTICS.md as a pure, deterministic core.

Plain Python over plain data, no Beam, Spanner, Redis, clock or randomness.
The streaming and backfill shells both call ``apply`` and nothing else
decides behaviour. See ``engine`` for the contract and the map from rules to
modules.
"""

from __future__ import annotations

from transforms.core.engine.context import EngineConfig, EngineContext, QuotaGate, ReleaseBook
from transforms.core.engine.engine import apply
from transforms.core.engine.events import needed_event_ids, next_lookup_deadline
from transforms.core.engine.state import (
    STATE_VERSION,
    KeyState,
    StateVersionError,
    compact,
    decode_state,
    encode_state,
    new_state,
)

__all__ = [
    "STATE_VERSION",
    "EngineConfig",
    "EngineContext",
    "KeyState",
    "QuotaGate",
    "ReleaseBook",
    "StateVersionError",
    "apply",
    "compact",
    "decode_state",
    "encode_state",
    "needed_event_ids",
    "new_state",
    "next_lookup_deadline",
]
