"""The stateless steps of the streaming job before its stateful one, as one step for local runs.

On Dataflow the job's stateless steps (``ToRawMessage``, ``DecodeMessages``, ``CheckProjects``, ``KeyByGroup``
and ``ApplyPerGroup/AttachProject``) keep their own names, so a running job can be updated, and Dataflow
fuses them into one stage anyway. The local runner does not fuse: every step hands every element over
through its own bundle, with Beam's bookkeeping for each. ``Ingest`` runs the same DoFns, in the same order,
inside one step: a Pub/Sub message in, ``(key, Routed)`` or a dead letter out, the same counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from transforms import internal_errors
from transforms.coders import typed
from transforms.core import metrics, reasons
from transforms.core.engine.events import without_bytes
from transforms.core.model import DeadLetter, Message, ProjectInfo, group_key
from transforms.decode_messages import DEAD_LETTER, CheckProjectFn, DecodeFn
from transforms.per_group.routed import AttachProject, Routed
from transforms.pubsub_io import ToRawMessage

ROUTED = "routed"


def key_by_group(message: Message) -> tuple[str, Message]:
    """``KeyByGroup``: the message keyed by (project, primary hash), without bytes it no longer needs."""
    payload = message.payload  # message.key, without the property's call
    return group_key(payload.project_id, payload.hashes[0]), without_bytes(message)


class KeyByGroupFn(beam.DoFn):
    """``KeyByGroup`` on Dataflow: ``key_by_group``, or a dead letter ``internal_error`` (stage ``key``) for a
    message it fails on."""

    def setup(self) -> None:
        self._failed = Metrics.counter(metrics.NAMESPACE, metrics.dead_letter_counter(reasons.INTERNAL_ERROR))

    def process(self, message: Message) -> Iterable[Any]:
        # A tuple, not a generator: Beam iterates whatever process returns (one output a message here).
        try:
            return (key_by_group(message),)
        except Exception as error:
            self._failed.inc()
            return (
                pvalue.TaggedOutput(
                    DEAD_LETTER, internal_errors.for_message(message, reasons.STAGE_KEY, error)
                ),
            )


class _IngestFn(beam.DoFn):
    """The ingest steps, message by message. An exception none of them expected for a message makes that
    message a dead letter ``internal_error`` at the stage that raised (``transforms.internal_errors``); the
    outputs are made inside the guard and given outside it, so what a later step does with them is never
    taken for this message's failure."""

    def __init__(self, max_bytes: int, timestamp_attribute: str | None = None) -> None:
        self._to_raw = ToRawMessage(timestamp_attribute)
        self._decode = DecodeFn(max_bytes, carry=True)  # events carried across the shuffle (Routed.of)
        self._check = CheckProjectFn()
        self._attach = AttachProject()

    def start_bundle(self) -> None:
        self._to_raw.start_bundle()

    def finish_bundle(self) -> None:
        self._to_raw.finish_bundle()  # the bundle's messages read, to the local progress count

    def process(
        self,
        message: PubsubMessage,
        projects: Mapping[int, ProjectInfo],
        windowed=beam.DoFn.WindowedValueParam,
    ) -> Iterator[Any]:
        published = windowed.timestamp_micros  # as ToRawMessage.process reads it
        stage = reasons.STAGE_READ
        raw = output = None
        try:
            raw = self._to_raw.to_raw(message, published)
            if type(raw) is DeadLetter:  # its timestamp attribute cannot be read
                output, raw = pvalue.TaggedOutput(DEAD_LETTER, raw), None
            else:
                stage = reasons.STAGE_DECODE
                for decoded in self._decode.process(raw):
                    if isinstance(decoded, pvalue.TaggedOutput):  # CheckDeadLetters
                        decoded = decoded.value
                    stage = reasons.STAGE_VALIDATE
                    for checked in self._check.process(decoded, projects):
                        if isinstance(checked, pvalue.TaggedOutput):
                            output = checked
                        else:
                            stage = reasons.STAGE_KEY
                            (output,) = self._attach.process(key_by_group(checked), projects)
                            if raw.message_time != published:  # the element's timestamp is the message time
                                output = TimestampedValue(output, Timestamp(micros=raw.message_time))
        except Exception as error:
            if raw is None:
                dead = internal_errors.for_delivered(message, published, stage, error)
            else:
                dead = internal_errors.dead_letter(
                    raw.message_id, raw.message_time, raw.data, raw.attributes, stage, error
                )
            self._decode.count_dead_letter(dead)
            output = pvalue.TaggedOutput(DEAD_LETTER, dead)
        if output is not None:
            yield output


class Ingest(beam.PTransform):
    """Pub/Sub messages → ``routed`` (``(key, Routed)``, the input of ``ApplyPerGroup(routed=True)``) and
    ``dead_letter`` (``DeadLetter``). ``projects``: the registry side input; ``timestamp_attribute``: as for
    ``transforms.pubsub_io.ReadMessages``."""

    def __init__(
        self,
        projects: pvalue.AsSideInput,
        max_bytes: int,
        label: str | None = None,
        *,
        timestamp_attribute: str | None = None,
    ) -> None:
        super().__init__(label)
        self._projects = projects
        self._max_bytes = max_bytes
        self._timestamp_attribute = timestamp_attribute

    def expand(self, messages: beam.PCollection) -> pvalue.DoOutputsTuple:
        fn = _IngestFn(self._max_bytes, self._timestamp_attribute)
        outputs = messages | "Ingest" >> beam.ParDo(fn, self._projects).with_outputs(DEAD_LETTER, main=ROUTED)
        return typed(outputs, **{ROUTED: beam.typehints.Tuple[str, Routed], DEAD_LETTER: DeadLetter})
