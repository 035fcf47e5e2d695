"""The last line of defence in the backfill: a message the engine raises for is dead-lettered
(``internal_error``, stage ``apply``) and every key gives the rows of a backfill without that message, however
its history is chunked. The failure is injected into the real engine for one chosen occurrence."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.workload import WorkloadConfig
from tests.backfill.test_backfill import (
    archive,
    dead_letter_reasons,
    register_sample_projects,
    run_backfill,
    snapshot,
)
from transforms.core import reasons
from transforms.core.decode import decode
from transforms.core.engine import engine as engine_module
from transforms.core.envelopes import parse_archive_line
from transforms.core.model import Message, Occurrence


def _decoded(path: Path) -> Iterator[tuple[bytes, Any]]:
    """Each line of a .jsonl archive with what it decodes to (a ``Message``, or why it is refused)."""
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        raw = parse_archive_line(line, number, str(path))
        yield line, (decode(raw) if not hasattr(raw, "reason") else raw)


def _without(path: Path, occurrence_id: str, target: Path) -> int:
    """Copy the archive without the lines of one occurrence; returns how many were left out."""
    kept, left = [], 0
    for line, message in _decoded(path):
        if isinstance(message, Message) and getattr(message.payload, "id", None) == occurrence_id:
            left += 1
            continue
        kept.append(line)
    target.write_bytes(b"\n".join(kept) + b"\n")
    return left


def _busy_occurrence(path: Path, eligible: Callable[[Occurrence], bool] = lambda _: True) -> str:
    """The id of an ``eligible`` occurrence in the middle of a busy key (10 messages or more), after every key's
    first: the hot key's history is chunked when chunk_size is small."""
    found = [
        (message.key, message.payload)
        for _line, message in _decoded(path)
        if isinstance(message, Message) and isinstance(message.payload, Occurrence)
    ]
    by_key = Counter(key for key, _ in found)
    return next(
        payload.id for key, payload in found[len(by_key) :] if by_key[key] >= 10 and eligible(payload)
    )


@pytest.fixture
def against_clean(spanner_db, spanner_db_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``against_clean(archived, chosen, chunk_size, poison)`` backfills the archive (``archived``: its pattern
    and its one file) without ``chosen``'s lines into a database of its own, then, with ``poison`` (target,
    name, value) patched in, the whole archive into ``spanner_db``; it asserts that both give the same rows and
    the same dead letters but for the chosen lines, there as ``internal_error``, and returns the
    ``internal_error`` dead letters."""

    def run(
        archived: tuple[str, Path], chosen: str, chunk_size: int, poison: tuple[Any, str, Any]
    ) -> list[dict]:
        clean_dir = tmp_path / "clean"
        clean_dir.mkdir()
        pattern, source = archived
        left_out = _without(source, chosen, clean_dir / "clean.jsonl")
        assert left_out >= 1
        clean = register_sample_projects(spanner_db_factory())
        run_backfill(
            clean, str(clean_dir / "clean.jsonl"), tmp_path / "dl-clean", f"--chunk_size={chunk_size}"
        )

        monkeypatch.setattr(*poison)
        poisoned = register_sample_projects(spanner_db)
        run_backfill(poisoned, pattern, tmp_path / "dl", f"--chunk_size={chunk_size}")

        assert snapshot(poisoned.database) == snapshot(clean.database)
        expected = dead_letter_reasons(tmp_path / "dl-clean")
        expected[reasons.INTERNAL_ERROR] += left_out
        assert dead_letter_reasons(tmp_path / "dl") == expected
        return [
            json.loads(line)
            for path in (tmp_path / "dl").glob("*.jsonl")
            for line in path.read_text().splitlines()
            if json.loads(line)["reason"] == reasons.INTERNAL_ERROR
        ]

    return run


@pytest.mark.parametrize("chunk_size", [5000, 3])
def test_a_message_the_engine_raises_for_is_set_aside_and_its_key_applied_without_it(
    against_clean, tmp_path: Path, chunk_size: int
) -> None:
    config = WorkloadConfig(messages=1500, keys=60, seed=5, hot_key_share=0.2)
    pattern, _ = archive(tmp_path, "poisoned.jsonl", config)
    source = tmp_path / "poisoned.jsonl"
    chosen = _busy_occurrence(source)
    real = engine_module._Application._occurrence

    def occurrence_step(application, message, payload):
        if payload.id == chosen:
            raise RuntimeError("injected at apply")
        return real(application, message, payload)

    poison = (engine_module._Application, "_occurrence", occurrence_step)
    internal = against_clean((pattern, source), chosen, chunk_size, poison)
    assert internal and all(
        dead["stage"] == reasons.STAGE_APPLY and "injected at apply" in dead["error"] for dead in internal
    )


def test_a_message_the_backfill_cannot_spill_is_dead_lettered_and_its_neighbours_applied(
    spanner_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spilling a message fails (injected: the spill step's encoding raises for one occurrence): that message
    is a dead letter ``internal_error`` at stage ``key``, and its key's other messages are applied."""
    import orjson

    from tests.stream.test_last_line import occurrence
    from transforms import local_grouping

    real = local_grouping.without_bytes

    def without_bytes(message):
        if message.payload.issue_title == "poison-spill":
            raise RecursionError("injected at spill")
        return real(message)

    monkeypatch.setattr(local_grouping, "without_bytes", without_bytes)
    lines = []
    for n, title in enumerate(["fine", "poison-spill", "fine"]):
        envelope = {
            "message_id": f"m{n}",
            "publish_time": f"2026-05-01T10:00:0{n}Z",
            "attributes": {"content_type": "application/json"},
            "data": occurrence(n, "spill", title),
        }
        lines.append(orjson.dumps(envelope))
    (tmp_path / "spill.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    database = register_sample_projects(spanner_db)
    run_backfill(database, str(tmp_path / "spill.jsonl"), tmp_path / "dl")
    rows = snapshot(database.database)
    assert len(rows["Occurrences"]) == 2
    assert [group[12] for group in rows["Groups"]] == [2]  # TimesSeen
    assert dead_letter_reasons(tmp_path / "dl") == Counter({reasons.INTERNAL_ERROR: 1})
    (line,) = (tmp_path / "dl").glob("*.jsonl")
    dead = json.loads(line.read_text())
    assert (dead["stage"], dead["message_id"]) == (reasons.STAGE_KEY, "m1")
    assert "injected at spill" in dead["error"]


@pytest.mark.parametrize("chunk_size", [5000, 3])
def test_a_message_whose_write_spanner_refuses_is_set_aside_and_its_key_written_without_it(
    against_clean, tmp_path: Path, chunk_size: int
) -> None:
    """One occurrence's release is made longer than Spanner's 8 KiB key limit past decoding (which refuses it):
    its commit is refused, split, and its key applied again without it; the rows are those of a backfill
    without the message, and it is a dead letter at stage ``write``."""
    import msgspec

    from transforms import decode_messages as decode_step

    config = WorkloadConfig(messages=1500, keys=60, seed=9, hot_key_share=0.2)
    pattern, _ = archive(tmp_path, "refused.jsonl", config)
    source = tmp_path / "refused.jsonl"
    chosen = _busy_occurrence(
        source, lambda payload: payload.event is not None and bool(payload.event.release)
    )
    real_decode = decode_step.decode

    def long_release(raw, **kwargs):
        decoded = real_decode(raw, **kwargs)
        payload = getattr(decoded, "payload", None)
        if getattr(payload, "id", None) == chosen:
            event = msgspec.structs.replace(payload.event, release="r" * 9000)
            decoded = msgspec.structs.replace(decoded, payload=msgspec.structs.replace(payload, event=event))
        return decoded

    internal = against_clean((pattern, source), chosen, chunk_size, (decode_step, "decode", long_release))
    assert internal and all(
        dead["stage"] == reasons.STAGE_WRITE and "exceeds the maximum of 8192" in dead["error"]
        for dead in internal
    )
