"""Publishing the workload to the Pub/Sub emulator and pulling a subscription into archives (integration)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline import archive, generate
from pipeline.archive_writer import ArchiveWriter
from pipeline.publishing import publish, pull_to_archive
from pipeline.workload import Workload, WorkloadConfig
from tests.archive.helpers import read_archive

CONFIG = WorkloadConfig(
    messages=1_500, keys=150, seed=12, invalid_share=0.03, timestamp_attribute="event_time"
)


def content(messages) -> Counter:
    """What survives Pub/Sub: bytes, attributes and (through the attribute) the message time; not the ids."""
    return Counter((m.data, tuple(sorted(m.attributes.items())), m.message_time) for m in messages)


def test_published_workload_pulled_into_avro_reads_back_with_the_generated_times(
    pubsub_topics, tmp_path: Path
):
    ref = pubsub_topics.create("workload")
    generated = list(Workload(CONFIG))
    stats = publish(generated, ref.topic)
    assert stats.published == len(generated) and stats.failed == 0

    written: list[str] = []
    writer = ArchiveWriter(
        str(tmp_path / "pulled.avro"),
        max_records_per_file=500,
        subscription_name=ref.subscription,
        on_file_written=lambda path, count: written.append(path),
    )
    pulled = pull_to_archive(ref.subscription, writer, idle_timeout=3)
    assert pulled.written == len(generated) and pulled.acknowledged == len(generated)
    assert len(written) == 3 and pulled.files == written

    result = read_archive(str(tmp_path / "pulled-*.avro"), timestamp_attribute="event_time")
    assert result.dead_letters == []
    assert content(result.messages) == content(generated)
    assert len({m.message_id for m in result.messages}) == len(generated)  # Pub/Sub's own ids

    again = pull_to_archive(ref.subscription, ArchiveWriter(str(tmp_path / "again.avro")), idle_timeout=2)
    assert again.written == 0  # everything was acknowledged


def test_pulling_stops_at_max_messages_and_leaves_the_rest_for_the_next_pull(pubsub_topics, tmp_path: Path):
    ref = pubsub_topics.create("partial")
    generated = list(Workload(WorkloadConfig(messages=400, keys=40, seed=1)))
    publish(generated, ref.topic)
    first = pull_to_archive(
        ref.subscription, ArchiveWriter(str(tmp_path / "a.jsonl")), max_messages=150, batch_size=40
    )
    second = pull_to_archive(ref.subscription, ArchiveWriter(str(tmp_path / "b.jsonl")), idle_timeout=3)
    assert first.written == 150 and second.written == 250
    both = read_archive(str(tmp_path / "*.jsonl")).messages
    assert Counter((m.data, tuple(sorted(m.attributes.items()))) for m in both) == Counter(
        (m.data, tuple(sorted(m.attributes.items()))) for m in generated
    )


class _FailingWriter(ArchiveWriter):
    """Fails when its second file is complete, before that file's messages are acknowledged."""

    def _finish_file(self) -> None:
        if len(self.paths) == 1 and self._file is not None:
            raise OSError("disk full")
        super()._finish_file()


def test_messages_of_a_file_that_could_not_be_written_are_redelivered(pubsub_topics, tmp_path: Path):
    ref = pubsub_topics.create("failing")
    generated = list(Workload(WorkloadConfig(messages=300, keys=30, seed=2)))
    publish(generated, ref.topic)
    writer = _FailingWriter(str(tmp_path / "x.jsonl"), max_records_per_file=100)
    with pytest.raises(OSError, match="disk full"):
        pull_to_archive(ref.subscription, writer, idle_timeout=3, batch_size=50)
    rest = pull_to_archive(ref.subscription, ArchiveWriter(str(tmp_path / "rest.jsonl")), idle_timeout=3)
    assert rest.written == 200  # the first file's 100 were acknowledged; the others come back at once


def test_generate_command_publishes_and_archive_command_pulls(pubsub_topics, tmp_path: Path, capsys):
    ref = pubsub_topics.create("cli")
    args = ["--messages", "600", "--keys", "60", "--seed", "3", "--timestamp_attribute", "event_time"]
    assert generate.main([*args, "--topic", ref.topic]) == 0
    assert "published 600 messages" in capsys.readouterr().err
    code = archive.main(
        [
            "pull",
            "--subscription",
            ref.subscription,
            "--output",
            str(tmp_path / "p.jsonl.gz"),
            "--idle-timeout",
            "3",
        ]
    )
    assert code == 0
    result = read_archive(str(tmp_path / "p.jsonl.gz"), timestamp_attribute="event_time")
    expected = list(Workload(WorkloadConfig(messages=600, keys=60, seed=3, timestamp_attribute="event_time")))
    assert content(result.messages) == content(expected)


def test_publishing_to_a_missing_topic_counts_every_message_as_failed(pubsub_topics, capsys):
    ref = pubsub_topics.create("exists")
    missing = ref.topic + "-missing"
    stats = publish(list(Workload(WorkloadConfig(messages=50, keys=5))), missing)
    assert stats.published == 0 and stats.failed == 50
    assert stats.errors and "NotFound" in stats.errors[0]
    assert generate.main(["--messages", "20", "--keys", "4", "--topic", missing]) == 1
    assert "20 failed" in capsys.readouterr().err


def test_batches_respect_the_message_and_byte_limits(pubsub_topics, tmp_path: Path):
    ref = pubsub_topics.create("limits")
    generated = list(Workload(WorkloadConfig(messages=700, keys=50, seed=9, invalid_share=0.05)))
    stats = publish(generated, ref.topic, max_batch_messages=64, max_batch_bytes=200_000)
    assert stats.published == len(generated)  # oversized messages (1 MB) go in batches of their own
    pulled = pull_to_archive(ref.subscription, ArchiveWriter(str(tmp_path / "l.avro")), idle_timeout=3)
    assert pulled.written == len(generated)
