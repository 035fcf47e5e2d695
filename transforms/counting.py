"""Counting from DoFns: Beam counters (namespace ``occurrence_pipeline``) and the process-wide progress.

The names come from ``transforms.core.metrics``. Counters are made on first use and kept per DoFn instance.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms import progress
from transforms.core import metrics


class CountingDoFn(beam.DoFn):
    """A DoFn that counts named metrics both as Beam counters and as local progress (``_count``)."""

    def setup(self) -> None:
        self._counters: dict[str, Any] = {}

    def _count(self, name: str, amount: int) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(metrics.NAMESPACE, name)
        counter.inc(amount)
        progress.add(name, amount)
