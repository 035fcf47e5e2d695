"""Helpers for the archive tests: run ``ReadArchive`` on a local runner and get its outputs back.

The local runners used here (FnApiRunner in memory, BundleBasedDirectRunner) run DoFns in this process, and
functions of an importable module are pickled by reference, so ``_Collect`` can append to a module-level
list that the test then reads.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.archive_io import ReadArchive
from transforms.core import metrics
from transforms.core.model import DeadLetter, RawMessage
from transforms.decode_messages import DEAD_LETTER, MESSAGES

RUNNERS = ["FnApiRunner", "BundleBasedDirectRunner"]

_lock = threading.Lock()
_collected: dict[str, list[Any]] = {}


class _Collect(beam.DoFn):
    def __init__(self, token: str) -> None:
        self._token = token

    def process(self, element: Any):  # no "-> None": Beam 2.78 reads it as a type hint and refuses it
        with _lock:
            _collected.setdefault(self._token, []).append(element)


class ReadResult:
    def __init__(self, messages: list[RawMessage], dead_letters: list[DeadLetter], counters: dict[str, int]):
        self.messages = messages
        self.dead_letters = dead_letters
        self.counters = counters


def read_archive(pattern: str, runner: str = "FnApiRunner", **kwargs: Any) -> ReadResult:
    """Runs ``ReadArchive(pattern, **kwargs)``; returns its messages, dead letters and dead-letter counters."""
    tokens = {MESSAGES: uuid.uuid4().hex, DEAD_LETTER: uuid.uuid4().hex}
    pipeline = beam.Pipeline(options=PipelineOptions([f"--runner={runner}"]))
    outputs = pipeline | ReadArchive(pattern, **kwargs)
    for tag, token in tokens.items():
        _ = outputs[tag] | f"Collect {tag}" >> beam.ParDo(_Collect(token))
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        item.key.metric.name: item.committed
        for item in result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE))["counters"]
    }
    with _lock:
        messages = _collected.pop(tokens[MESSAGES], [])
        dead_letters = _collected.pop(tokens[DEAD_LETTER], [])
    return ReadResult(messages, dead_letters, counters)


def by_id(messages: list[RawMessage]) -> list[RawMessage]:
    return sorted(messages, key=lambda m: (m.message_id, m.message_time, m.data))
