"""Where our encoders and parsers break: the deepest JSON nesting each takes (docs/limits.md, "Our encoders").

    python -m bench.limits

For each step a decoded message goes through, the deepest ``evidence_data`` (objects nested in objects) it
handles, found by bisection: the JSON parser of decoding (orjson), protobuf's parser of a Struct, the shuffle
coder (``MessageCoder``, msgpack), the key state encoder holding the occurrence while it waits for its event,
the JSON of the Spanner rows (orjson for EvidenceData, msgspec for an event's Payload). msgspec's limit is
Python's recursion limit less the stack already in use, so it is also measured 300 frames down (a Beam
worker's stack is deeper than this script's). Decoding refuses anything deeper than
``limits.MAX_JSON_FIELD_DEPTH`` (79), below every one of these.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import msgspec
import orjson

from transforms.coders import MessageCoder
from transforms.core import limits
from transforms.core.encode import encode_protobuf
from transforms.core.engine.state import WaitingLookup, encode_state, new_state
from transforms.core.model import Event, Message, Occurrence
from transforms.storage.spanner_rows import event_inline_values

_PROTOBUF = "application/x-protobuf"


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def nested_text(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def occurrence(evidence: dict) -> Occurrence:
    return Occurrence("a" * 32, 1, "e" * 32, ("fp",), ("b" * 32,), "t", "s", 1, 0, evidence_data=evidence)


def deepest(works: Callable[[int], object], high: int = 5000) -> int:
    """The largest depth in 1..high for which ``works(depth)`` does not raise."""
    low = 1
    try:
        works(high)
        return high
    except Exception:
        pass
    while high - low > 1:
        middle = (low + high) // 2
        try:
            works(middle)
            low = middle
        except Exception:
            high = middle
    return low


def down(frames: int, call: Callable[[], object]) -> object:
    return call() if frames == 0 else down(frames - 1, call)


def _protobuf(depth: int) -> None:
    from tests.decode.payloads import with_event
    from transforms.core.decode import decode
    from transforms.core.model import DeadLetter, RawMessage

    data = encode_protobuf(with_event(evidence_data=nested(depth)))
    if isinstance(decode(RawMessage("1", 0, data, {"content_type": _PROTOBUF})), DeadLetter):
        raise ValueError("refused")


def _state(depth: int) -> None:
    waiting = WaitingLookup("m", 0, occurrence(nested(depth)), b"", {}, 0, 0)
    state = msgspec.structs.replace(new_state(1, "b" * 32), waiting=(waiting,))
    encode_state(state)


def _event_payload(depth: int) -> None:
    from transforms.core.intents import RecordEvent

    event = Event("e" * 32, 1, "python", 0, contexts=nested(depth))
    event_inline_values(RecordEvent(event, "info"))


def measure() -> list[tuple[str, int]]:
    coder = MessageCoder()
    steps: list[tuple[str, Callable[[int], object]]] = [
        ("orjson.loads (decoding a JSON payload)", lambda d: orjson.loads(nested_text(d))),
        ("protobuf parser (decoding a Struct)", _protobuf),
        ("orjson.dumps (Spanner rows: EvidenceData, Groups.Data)", lambda d: orjson.dumps(nested(d))),
        ("msgspec JSON (Spanner rows: the event's Payload)", _event_payload),
        (
            "shuffle coder (MessageCoder, msgpack)",
            lambda d: coder.encode(Message("m", 0, occurrence(nested(d)))),
        ),
        ("key state encoder (a waiting occurrence)", _state),
    ]
    results = [(name, deepest(step)) for name, step in steps]
    results.append(
        (
            "shuffle coder, 300 Python frames down",
            deepest(lambda d: down(300, lambda: coder.encode(Message("m", 0, occurrence(nested(d)))))),
        )
    )
    return results


def main() -> int:
    print(
        f"Python {sys.version.split()[0]}, recursion limit {sys.getrecursionlimit()}, "
        f"orjson {orjson.__version__}, msgspec {msgspec.__version__}"
    )
    print(f"{'step':<58} deepest evidence_data")
    for name, depth in measure():
        print(f"{name:<58} {depth:>5}")
    print(f"{'decoding accepts at most (limits.MAX_JSON_FIELD_DEPTH)':<58} {limits.MAX_JSON_FIELD_DEPTH:>5}")
    print(
        f"{'Spanner JSON (documented; the emulator does not check)':<58} {limits.SPANNER_MAX_JSON_DEPTH:>5}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
