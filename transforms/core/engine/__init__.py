"""The group engine: every per-group rule of docs/behaviour.md as a pure, deterministic core.

Plain Python over plain data, no Beam, Spanner, Redis, clock or randomness.
The streaming and backfill shells both call ``apply`` and nothing else
decides behaviour. See ``engine`` for the contract.

Where each rule of docs/behaviour.md lives:

==========================================  ======================================================================================
rule                                        function
==========================================  ======================================================================================
2    key order, late messages               ``engine.apply`` (sort), ``application._take_in``
2    duplicates, retention                  ``dedup.DuplicateMemory.is_duplicate``, ``state.compact``
3.1  feature gate                           ``grouptypes.GroupType.allow_ingest`` via ``occurrence_path._allowed``
3.2  three event paths                      ``occurrence_path._occurrence``, ``events``
3.3  lookup waits, E7/E13 dead letters      ``occurrence_path._lookup_missed``/``_retry_waiting``
3.4  existing group, latest fields          ``occurrences.attach``
3.4  category mismatch                      ``occurrence_path._apply_occurrence``
3.4  environments                           ``environments.record_environment``
3.4  tags, search values and words          ``tags.occurrence_tags``/``search_tags``/``text_terms`` via ``occurrence_path._index``
3.5  noise gate (E5)                        ``noise.count_occurrence``, ``noise.passes_gate``
3.5  creation quota (E6)                    ``context.QuotaGate`` via ``occurrence_path._try_create``
3.5  creation, data, search message         ``creation.create_group``, ``rows.group_data``, ``rows.search_message``
2/8  late creator takes over                ``occurrences.take_over_creation``
5.1  transitions (E3)                       ``status_changes.transition``
5.2  pruning runs (E3, E13)                 ``runs`` (snapshot, ``restore``), ``status_change_path._apply_change``/``_revert``
5.2  stale status changes                   ``status_change_path._status_change``
5.2  status change before its group         ``held.expire``, ``held.split_for_creator``
5.3  regression                             ``regression.should_regress``, ``regression.regress``
5.3  release order, resolutions (E8, E14)   ``releases.resolution_covers``, ``releases.parse_semver``
E8   release first-seen, RecordRelease      ``releases.record_release``, ``application._first_seen``
6.4  delete, generations                    ``status_change_path._delete``, ``ids.group_id``
6.4  messages of an ended generation        ``application._ended_generation``
6.3  ids that replay to the same rows       ``ids.group_id``, ``ids.activity_id``
==========================================  ======================================================================================
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
