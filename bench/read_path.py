"""CPU per message of the local read path with a timestamp attribute: Beam's reader parsing it, or our step.

``python -m bench.read_path [--messages 20000] [--rounds 5]``

Until the timestamp attribute was read by ``transforms.pubsub_io.ToRawMessage``, Beam's Pub/Sub reader parsed
it (``read_from_pubsub(..., timestamp_attribute)``, the local runner's copy of Beam's) and ``ToRawMessage``
took the element's timestamp; since, the reader is given no attribute (element timestamp: the publish time)
and ``ToRawMessage`` parses it, giving its element the message time as timestamp (a ``TimestampedValue``).
Both configurations run here over the same pulled responses (2,000 messages each, as the local runner reads a
backlog) of the streaming workload's messages, with the time in an RFC 3339 attribute: from the pulled
response to the ``RawMessage``s, what the runner's thread does per message on that path. Needs no stack.
Rounds alternate the two (each goes first every other round); each figure is the median of its rounds, in µs per message (``time.process_time``).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time

from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

_GLOBAL = (GlobalWindow(),)

ATTRIBUTE = "event_time"
READ = 2000


class _Subscriber:
    def __init__(self, response) -> None:
        self.response = response

    def pull(self, subscription, max_messages=None, timeout=None, **kwargs):
        return self.response

    def acknowledge(self, subscription, ack_ids, **kwargs) -> None:
        pass


class _Evaluator:
    """What ``read_from_pubsub`` uses of Beam's read evaluator."""

    def __init__(self, response) -> None:
        self._client = _Subscriber(response)
        self._applied_ptransform = None
        self._sub_name = "projects/p/subscriptions/s"

    def _get_subscriber_client(self, transform):
        return self._client


def _responses(messages: int, *, with_attribute: bool = True) -> list:
    from google.protobuf import timestamp_pb2
    from google.pubsub_v1 import PubsubMessage, PullResponse, ReceivedMessage

    from pipeline.workload import Workload, stream_config

    generated = list(
        Workload(stream_config(messages=messages, keys=max(1, messages // 10), timestamp_attribute=ATTRIBUTE))
    )
    responses = []
    for start in range(0, len(generated), READ):
        received = []
        for index, message in enumerate(generated[start : start + READ]):
            published = timestamp_pb2.Timestamp()
            published.FromMicroseconds(message.message_time + 1_000_000)
            attributes = dict(message.attributes)
            if not with_attribute:
                del attributes[ATTRIBUTE]
            pulled = PubsubMessage(
                data=message.data,
                attributes=attributes,
                message_id=str(1_000_000 + start + index),
                publish_time=published,
            )
            received.append(ReceivedMessage(ack_id=f"ack-{start + index}", message=pulled))
        responses.append(PullResponse(received_messages=received))
    return responses


def _run(responses: list, ours: bool, to_raw_class=None) -> float:
    """CPU seconds for every response: the reader's pairs, then ``ToRawMessage.process`` on each."""
    from pipeline.local_runner import read_from_pubsub
    from transforms.pubsub_io import ToRawMessage

    to_raw_class = to_raw_class or ToRawMessage
    to_raw = to_raw_class(ATTRIBUTE) if ours else to_raw_class()
    reader_attribute = None if ours else ATTRIBUTE
    # Beam gives process the element (WindowedValueParam) or, before, its Timestamp (TimestampParam).
    by_element = "windowed" in inspect.signature(to_raw_class.process).parameters
    evaluators = [_Evaluator(response) for response in responses]
    began = time.process_time()
    for evaluator in evaluators:
        to_raw.start_bundle()
        for timestamp, message in read_from_pubsub(evaluator, reader_attribute):
            element = WindowedValue(message, timestamp, _GLOBAL)  # as Beam wraps each element it reads
            outputs = (
                to_raw.process(message, windowed=element)
                if by_element
                else to_raw.process(message, timestamp=element.timestamp)
            )
            for _ in outputs:
                pass
    spent = time.process_time() - began
    to_raw.finish_bundle()
    return spent


def _load_to_raw(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("baseline_pubsub_io", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "ToRawMessage", None) or module._ToRawMessage  # older versions: private


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.read_path",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--no-attribute",
        action="store_true",
        help="messages without a timestamp attribute (the publish time is their time), read without one: the "
        "path of pipelines without --timestamp_attribute",
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="with --no-attribute: a transforms/pubsub_io.py of another version (git show REV:transforms/"
        "pubsub_io.py > FILE), whose ToRawMessage is measured in the same rounds, alternating with this one's",
    )
    args = parser.parse_args(argv)
    from pipeline.local_runner import prepare_direct_runner

    prepare_direct_runner()
    responses = _responses(args.messages, with_attribute=not args.no_attribute)
    count = sum(len(response.received_messages) for response in responses)
    if args.no_attribute:
        modes = [("no attribute", False, None)]
        if args.baseline:
            modes.append((f"no attribute, {args.baseline}", False, _load_to_raw(args.baseline)))
    else:
        modes = [("beam parses", False, None), ("ours parses", True, None)]
    figures: dict[str, list[float]] = {name: [] for name, _, _ in modes}
    for round_ in range(args.rounds):
        for name, ours, to_raw_class in modes if round_ % 2 == 0 else reversed(modes):  # each first in turn
            figures[name].append(1e6 * _run(responses, ours, to_raw_class) / count)
    for name, values in figures.items():
        shown = ", ".join(f"{value:.2f}" for value in values)
        print(f"{name}: median {statistics.median(values):.2f} µs a message ({shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
