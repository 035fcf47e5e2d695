"""Beam transforms for decoding messages and checking their projects (rule 1, 3.1, E1).

Both return a ``DoOutputsTuple`` with the main output ``messages`` (valid
``Message`` values) and the tagged output ``dead_letter`` (``DeadLetter``
values). Every dead letter is counted once, under its final reason
(``occurrence_pipeline:dead_letters.<reason>``): ``DecodeMessages`` counts
those whose reason is final at decoding, ``CheckProjects`` those that rank
after ``unknown_project`` and the ``unknown_project`` ones it makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from transforms import internal_errors
from transforms.coders import typed
from transforms.core import metrics, reasons
from transforms.core.decode import DEFAULT_MAX_BYTES, check_max_bytes, decode
from transforms.core.model import DeadLetter, Message, ProjectInfo, RawMessage
from transforms.core.projects import check_project

MESSAGES = "messages"
DEAD_LETTER = "dead_letter"


def _dead_letter_counters() -> dict[str, Any]:
    return {
        reason: Metrics.counter(metrics.NAMESPACE, metrics.dead_letter_counter(reason))
        for reason in reasons.COUNTED_REASONS
    }


class DecodeFn(beam.DoFn):
    """Decodes each message on its own: a bad message never affects another, and nothing is buffered. An
    exception decoding did not expect makes the message a dead letter ``internal_error`` (stage ``decode``).

    Counts what decoding removed from the messages it accepted (``event.release_removed``,
    ``event.environment_removed``). ``carry``: events come carried (``decode``'s ``carry``), for a streaming
    job's shuffle (``Routed.of``)."""

    def __init__(self, max_bytes: int, carry: bool = False) -> None:
        self._max_bytes = max_bytes
        self._carry = carry
        self._sizes = Metrics.distribution(metrics.NAMESPACE, metrics.MESSAGE_BYTES)
        self._dead_letters = _dead_letter_counters()
        self._removed_counters = {
            name: Metrics.counter(metrics.NAMESPACE, name)
            for name in (metrics.EVENT_RELEASE_REMOVED, metrics.EVENT_ENVIRONMENT_REMOVED)
        }
        self._removed: list[str] = []

    def process(self, raw: RawMessage) -> Iterable[Any]:
        # A tuple, not a generator: Beam iterates whatever process returns (one output a message here).
        removed = self._removed
        try:
            self._sizes.update(len(raw.data))
            decoded = decode(raw, max_bytes=self._max_bytes, removed=removed, carry=self._carry)
        except Exception as error:  # the last line of defence: the message, not the pipeline
            removed.clear()
            decoded = internal_errors.dead_letter(
                raw.message_id, raw.message_time, raw.data, raw.attributes, reasons.STAGE_DECODE, error
            )
        if removed:
            for name in removed:
                self._removed_counters[name].inc()
            removed.clear()
        if decoded.__class__ is Message:
            return (decoded,)
        if not decoded.after_project_check:  # CheckProjects decides their final reason and counts them
            self._dead_letters[decoded.reason].inc()
        return (pvalue.TaggedOutput(DEAD_LETTER, decoded),)

    def count_dead_letter(self, dead_letter: DeadLetter) -> None:
        """Count a dead letter made outside ``process`` (``transforms.ingest``'s guard)."""
        self._dead_letters[dead_letter.reason].inc()


class DecodeMessages(beam.PTransform):
    """``RawMessage`` → ``messages`` (``Message``) and ``dead_letter`` (``DeadLetter``).

    Dead letters whose reason ranks after ``unknown_project`` still carry their
    project id: pass both outputs to ``CheckProjects`` before using them. ``carry``: as ``DecodeFn``'s.
    """

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, label: str | None = None, *, carry: bool = False
    ) -> None:
        super().__init__(label)
        check_max_bytes(max_bytes)
        self._max_bytes = max_bytes
        self._carry = carry

    def expand(self, raw_messages: beam.PCollection) -> pvalue.DoOutputsTuple:
        outputs = raw_messages | "Decode" >> beam.ParDo(DecodeFn(self._max_bytes, self._carry)).with_outputs(
            DEAD_LETTER, main=MESSAGES
        )
        return typed(outputs, **{MESSAGES: Message, DEAD_LETTER: DeadLetter})


class CheckProjectFn(beam.DoFn):
    """Applies ``check_project`` with the registry from the side input; keeps no state. An exception it did
    not expect makes the message a dead letter ``internal_error`` (stage ``validate``)."""

    def __init__(self) -> None:
        self._dead_letters = _dead_letter_counters()

    def process(self, decoded: Message | DeadLetter, projects: Mapping[int, ProjectInfo]) -> Iterable[Any]:
        try:
            checked = check_project(decoded, projects)
        except Exception as error:  # the last line of defence: the message, not the pipeline
            if isinstance(decoded, Message):
                checked = internal_errors.for_message(decoded, reasons.STAGE_VALIDATE, error)
            else:
                checked = internal_errors.dead_letter(
                    decoded.message_id,
                    decoded.message_time,
                    decoded.data,
                    decoded.attributes,
                    reasons.STAGE_VALIDATE,
                    error,
                )
        if checked.__class__ is Message:
            return (checked,)
        if checked is not decoded or decoded.after_project_check:
            self._dead_letters[checked.reason].inc()
        return (pvalue.TaggedOutput(DEAD_LETTER, checked),)


class CheckProjects(beam.PTransform):
    """Messages and dead letters → ``messages`` and ``dead_letter``, with ``unknown_project`` applied (E1).

    Input: the output of ``DecodeMessages``, or a ``(messages, dead_letters)``
    tuple of PCollections. ``projects`` is a side input giving a mapping of
    project id → ``ProjectInfo``: ``beam.pvalue.AsDict`` of ``(id, info)`` pairs
    or ``beam.pvalue.AsSingleton`` of one dict. Every input dead letter comes
    out on ``dead_letter``, those ranked after ``unknown_project`` re-examined.
    """

    def __init__(self, projects: pvalue.AsSideInput, label: str | None = None) -> None:
        super().__init__(label)
        self._projects = projects

    def __ror__(self, pvalueish: Any, label: str | None = None) -> Any:
        # Beam would take only the main output of a DoOutputsTuple; both outputs are needed here.
        if isinstance(pvalueish, pvalue.DoOutputsTuple):
            pvalueish = (pvalueish[MESSAGES], pvalueish[DEAD_LETTER])
        return super().__ror__(pvalueish, label)

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> dict[str, beam.PCollection]:
        messages, dead_letters = inputs
        # Messages and dead letters are checked by two steps rather than one over their union, so each
        # keeps its own coder (a union would be pickled between stages).
        checked = typed(
            messages
            | "CheckMessages"
            >> beam.ParDo(CheckProjectFn(), self._projects).with_outputs(DEAD_LETTER, main=MESSAGES),
            **{MESSAGES: Message, DEAD_LETTER: DeadLetter},
        )
        rechecked = dead_letters | "CheckDeadLetters" >> beam.ParDo(
            CheckProjectFn(), self._projects
        ).with_outputs(DEAD_LETTER, main=MESSAGES)
        typed(rechecked, **{DEAD_LETTER: DeadLetter})
        all_dead = (checked[DEAD_LETTER], rechecked[DEAD_LETTER]) | "MergeDeadLetters" >> beam.Flatten()
        all_dead.element_type = DeadLetter
        return {MESSAGES: checked[MESSAGES], DEAD_LETTER: all_dead}
