"""The floor benchmark (bench/floor.py) is a lower bound only if it leaves out none of the work our pipeline
cannot avoid: every occurrence our decoder accepts must reach its key's flush, and every distinct one that
carries its event must get its Events row."""

from __future__ import annotations

import pytest

from bench import floor
from pipeline.workload import Workload, stream_config
from transforms.core.decode import decode
from transforms.core.model import Message, Occurrence


@pytest.fixture(scope="module")
def workload():
    return list(Workload(stream_config(messages=3_000, keys=300)))


@pytest.mark.parametrize("design", sorted(floor.DESIGNS))
def test_the_floor_carries_every_occurrence_our_decoder_accepts(workload, design):
    accepted = [
        m.payload
        for m in map(decode, workload)
        if isinstance(m, Message) and isinstance(m.payload, Occurrence)
    ]
    result = floor.floor_pass([(m.data, m.message_time) for m in workload], 400, design)

    assert len(accepted) > 0.9 * len(workload)  # the workload is mostly occurrences
    assert result.occurrences >= len(accepted)
    with_event = {o.id for o in accepted if o.event is not None}
    assert result.event_rows >= len(with_event)
    assert result.group_updates >= len({(o.project_id, o.hashes[0]) for o in accepted})
    assert set(result.micros) == {"ingest", "flush", "writes", "total", "ours_writes", "total_ours_writes"}
    assert result.micros["total"] == pytest.approx(
        sum(result.micros[p] for p in ("ingest", "flush", "writes"))
    )
    assert result.micros["total_ours_writes"] == pytest.approx(
        sum(result.micros[p] for p in ("ingest", "flush", "ours_writes"))
    )


@pytest.mark.parametrize("design", sorted(floor.DESIGNS))
def test_duplicates_are_skipped_at_the_flush(workload, design):
    occurrence = next(m for m in workload if b'"event":{' in m.data)
    twice = [(occurrence.data, occurrence.message_time)] * 2
    result = floor.floor_pass(twice, 10, design)
    assert (result.occurrences, result.event_rows, result.group_updates) == (2, 1, 1)
