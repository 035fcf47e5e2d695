"""The command lines: ``python -m pipeline.archive`` and ``python -m pipeline.generate`` (without Pub/Sub)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import archive, generate
from pipeline.workload import Workload, WorkloadConfig
from pipeline.workload_options import add_workload_arguments, parse_duration, parse_start, workload_config
from tests.archive.helpers import by_id, read_archive
from transforms.core.model import MICROS

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_workload_arguments(parser)
    return parser.parse_args(list(argv))


def test_archive_generate_writes_files_that_read_back_as_the_workload(tmp_path: Path) -> None:
    code = archive.main(
        [
            "generate",
            "--messages", "2500",
            "--keys", "200",
            "--seed", "4",
            "--encoding", "mixed",
            "--output", str(tmp_path / "a.avro"),
            "--codec", "deflate",
            "--max-records-per-file", "1000",
        ]
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-00000.avro", "a-00001.avro", "a-00002.avro"]
    expected = list(Workload(WorkloadConfig(messages=2500, keys=200, seed=4, encoding="mixed")))
    assert by_id(read_archive(str(tmp_path / "a-*.avro")).messages) == by_id(expected)


def test_generate_with_output_writes_an_archive_and_a_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    code = generate.main(
        ["--messages", "800", "--keys", "50", "--output", str(tmp_path / "w.jsonl.gz"), "--summary", str(summary),
         "--timestamp_attribute", "event_time"]
    )  # fmt: skip
    assert code == 0
    described = json.loads(summary.read_text())
    assert described["messages"] == 800
    messages = read_archive(str(tmp_path / "w.jsonl.gz")).messages
    assert len(messages) == 800 and all("event_time" in m.attributes for m in messages)


def test_generate_summary_only_prints_the_summary_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["--messages", "300", "--keys", "20", "--summary", "-"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["messages"] == 300 and set(printed["by_kind"]) >= {"occurrence", "status_change"}


def test_generate_needs_somewhere_to_send_the_messages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        generate.main(["--messages", "10"])
    assert "give --topic (publish), --output (archive) or --summary" in capsys.readouterr().err


def test_an_impossible_output_is_a_clear_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    code = archive.main(["generate", "--messages", "10", "--output", str(tmp_path / "a.avro"), "--raw"])
    assert code == 2
    assert "raw payload lines are an NDJSON format" in capsys.readouterr().err


def test_presets_and_explicit_options() -> None:
    stream = workload_config(parse("--preset", "stream"))
    assert (stream.messages, stream.keys, stream.hot_key_share) == (200_000, 20_000, 0.05)
    backfill = workload_config(parse("--preset", "backfill", "--messages", "5000"))
    assert (backfill.messages, backfill.keys, backfill.hot_key_share) == (5000, 50_000, 0.10)
    config = workload_config(
        parse(
            "--projects",
            "7,8",
            "--hot_key_share",
            "0.2",
            "--types",
            "1=2,1018=1",
            "--no-noise",
            "--seed",
            "9",
        )
    )
    assert config.projects == (7, 8) and config.hot_key_share == 0.2 and config.seed == 9
    assert config.type_weights == ((1, 2.0), (1018, 1.0)) and config.noise is False


def test_an_invalid_workload_is_reported_as_a_usage_error() -> None:
    with pytest.raises(SystemExit, match="keys must be at least 2"):
        workload_config(parse("--keys", "1"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("45s", 45), ("30m", 1800), ("6h", 21600), ("2d", 172800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds * MICROS


@pytest.mark.parametrize("text", ["", "soon", "-5", "0", "5x"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_start_times() -> None:
    assert parse_start("2026-05-28T00:00:00Z") == WorkloadConfig().start
    assert parse_start("2026-05-28T02:00:00+02:00") == WorkloadConfig().start
    assert parse_start("now") % 1000 == 0
    with pytest.raises(argparse.ArgumentTypeError, match="use now or RFC 3339"):
        parse_start("yesterday")


def test_the_modules_run_as_commands(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.generate", "--messages", "50", "--keys", "5", "--summary", "-"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["messages"] == 50
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.archive", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "pull" in done.stdout and "generate" in done.stdout
