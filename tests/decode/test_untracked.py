"""An event's JSON trees are kept out of the garbage collector's way (``model.Event.__post_init__``).

Where the C extension ``_payload`` is built, every ``Event`` (decoded from a payload by C or Python, decoded by
msgspec from the shuffle's or the state's msgpack or from a stored row, or built by hand) untracks the
containers of its fields that hold only JSON values (``_payload.untrack_fields``): no collection visits them
again. That changes no value; a container holding anything else (a set, a subclass, an object, a cycle) stays
tracked, and so does every container above it; and a dict untracked so is tracked again by CPython as soon as
a container is put in it. Without the extension nothing is untracked and every value is the same.
"""

from __future__ import annotations

import copy
import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.decode import payloads, strategies
from tests.native_paths import run_without
from transforms.core import model, occurrence_payload
from transforms.core.decode import PROTOBUF_CONTENT_TYPE, decode
from transforms.core.encode import raw_message
from transforms.core.model import Event, Message, RawMessage

native = pytest.mark.skipif(model._native is None, reason="the C extension is not built here")


def _with_path() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    }


EVENT = {
    "tags": [["server_name", "web-4"], ["transaction", "PUT /api/0/teams/{team_id}/"]],
    "sdk": {"name": "sentry.python", "version": "2.5.1", "integrations": ["django", "celery"]},
    "user": {"id": 42, "email": "a@example.com", "geo": {"country_code": "DE"}},
    "request": {"url": "https://e.com/a", "headers": [["Accept", "*/*"], ["Host", "e.com"]]},
    "contexts": {"trace": {"trace_id": "e864069d1ff32b10dde532681c59d84a", "op": "http.server"}},
}


def _containers(value: Any) -> Iterator[Any]:
    """Every dict, list and tuple in ``value``, ``value`` included."""
    if type(value) in (dict, list, tuple):
        yield value
        for item in value.values() if type(value) is dict else value:
            yield from _containers(item)


def _tracked(event: Event) -> list[Any]:
    return [
        container
        for field in ("tags", "sdk", "user", "request", "contexts")
        for container in _containers(getattr(event, field))
        if gc.is_tracked(container)
    ]


def _event(message: Any) -> Event:
    assert type(message) is Message, message
    event = message.payload.event
    assert event is not None
    return event


@native
def test_the_events_json_trees_are_untracked_whichever_path_decodes_them() -> None:
    payload = payloads.with_event(event=EVENT)
    raw = RawMessage("1", 2, orjson.dumps(payload), {})
    decoded = decode(raw)
    assert occurrence_payload.native_decode_json(raw, 1 << 20, False) == decoded  # the C path's answer
    events = {
        "c": _event(decoded),
        "python fast path": occurrence_payload.valid_occurrence(orjson.loads(raw.data)).event,  # type: ignore[union-attr]
        "python checks": occurrence_payload.occurrence_from_payload(orjson.loads(raw.data)).event,
        "protobuf": _event(
            decode(raw_message(payload, message_id="1", message_time=2, content_type=PROTOBUF_CONTENT_TYPE))
        ),
        "msgpack (the shuffle, the buffer)": _event(
            msgspec.msgpack.Decoder(Message).decode(msgspec.msgpack.encode(decoded))
        ),
        "json (a stored row)": msgspec.json.decode(msgspec.json.encode(_event(decoded)), type=Event),
        "convert (a stored row)": msgspec.convert(
            orjson.loads(msgspec.json.encode(_event(decoded))), type=Event
        ),
    }
    for path, event in events.items():
        assert event == _event(decoded), path
        assert event.tags and event.contexts and event.request and event.sdk and event.user, path
        assert _tracked(event) == [], path


@native
@settings(max_examples=300, deadline=None)
@given(
    tree=strategies.json_values(),
    tags=st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), max_size=4),
)
def test_untracking_changes_no_value_and_leaves_no_json_container_tracked(
    tree: Any, tags: list[tuple[str, str]]
) -> None:
    contexts = {"a": tree, "b": [tree, {"c": tree}]}
    before = copy.deepcopy(contexts)
    event = Event("0" * 32, 1, "python", 1, tags=tuple(tags), contexts=contexts)
    assert event.contexts is contexts and contexts == before
    assert msgspec.json.decode(msgspec.json.encode(event), type=Event) == event
    assert _tracked(event) == []


@native
def test_what_is_not_json_stays_tracked_and_so_does_what_holds_it() -> None:
    class Mapping(dict[str, Any]):
        pass

    class Box:  # its instances can hold references (unlike object()'s, which are atoms to the collector)
        pass

    odd: list[Any] = [{1, 2}, Mapping(a=[1]), Box(), (Box(),), [Box()]]
    for value in odd:
        json_sibling = {"k": ["v"]}
        contexts = {"odd": {"inner": value}, "plain": json_sibling}
        Event("0" * 32, 1, "python", 1, contexts=contexts)
        assert gc.is_tracked(contexts) and gc.is_tracked(contexts["odd"]), value
        assert not gc.is_tracked(json_sibling) and not gc.is_tracked(json_sibling["k"]), value


@native
def test_a_cycle_or_a_tree_deeper_than_the_walk_stays_tracked() -> None:
    cycle: list[Any] = ["x"]
    cycle.append(cycle)
    contexts: dict[str, Any] = {"cycle": cycle}
    Event("0" * 32, 1, "python", 1, contexts=contexts)
    assert gc.is_tracked(cycle) and gc.is_tracked(contexts)  # the collector can still free it

    for depth, tracked in ((60, False), (100, True)):  # the walk descends 64 levels at most
        levels: list[Any] = [["leaf"]]
        for _ in range(depth):
            levels.append([levels[-1]])
        Event("0" * 32, 1, "python", 1, contexts={"deep": levels[-1]})
        assert {gc.is_tracked(level) for level in levels} == {tracked}


@native
def test_a_dict_is_tracked_again_when_a_container_is_put_in_it() -> None:
    contexts: dict[str, Any] = {"trace": {"op": "x"}, "list": [1]}
    Event("0" * 32, 1, "python", 1, contexts=contexts)
    assert not gc.is_tracked(contexts)
    contexts["later"] = {}  # the model never does this (its trees are never changed): CPython still copes
    assert gc.is_tracked(contexts)


@native
def test_untracking_a_shared_tree_that_stays_tracked_takes_bounded_time() -> None:
    """A container that stays tracked (a cycle, or one holding a set) reached by many paths is not walked once
    per path: a list holding itself twice, or 40 levels of a list holding the one below twice, is done at once
    (walked per path, that was 2**64 and 2**40 visits: the process hung)."""
    script = (
        "import gc\n"
        "from transforms.core.model import Event\n"
        "loop = []\n"
        "loop += [loop, loop]\n"
        "tree = [set()]\n"
        "for _ in range(40):\n"
        "    tree = [tree, tree]\n"
        "Event('0' * 32, 1, 'python', 1, contexts={'loop': loop, 'tree': tree, 'json': {'a': [1]}})\n"
        "assert gc.is_tracked(loop) and gc.is_tracked(tree)\n"
        "print('done')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=20, env=_with_path()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"


@native
def test_untracking_takes_and_leaves_no_reference() -> None:
    assert model._native is not None
    untrack = model._native.untrack_fields
    event = Event("0" * 32, 1, "python", 1, tags=(("a", "b"),), contexts={"t": {"o": ["x"]}}, sdk={"n": "s"})
    fields = [event.tags, event.tags[0], event.contexts, event.contexts["t"], event.sdk]
    counts = [sys.getrefcount(value) for value in fields]
    for _ in range(1000):
        assert untrack(event) is None
        assert untrack(Event("0" * 32, 1, "python", 1, contexts={"t": [{"o": ("x", ["y"])}]})) is None
    assert [sys.getrefcount(value) for value in fields] == counts
    gc.collect()
    blocks = sys.getallocatedblocks()
    for _ in range(20_000):
        untrack(Event("0" * 32, 1, "python", 1, contexts={"t": [{"o": ("x", ["y"])}]}))
    gc.collect()
    assert sys.getallocatedblocks() - blocks < 1000


def test_without_the_extension_nothing_is_untracked_and_decoding_gives_the_same_message() -> None:
    raw = RawMessage("7", 1, orjson.dumps(payloads.with_event(event=EVENT)), {})
    script = (
        "import gc, msgspec, orjson\n"
        "from transforms.core import model\n"
        "from transforms.core.decode import decode\n"
        "from transforms.core.model import Event, RawMessage\n"
        "assert model._native is None and '__post_init__' not in Event.__dict__\n"
        f"message = decode(RawMessage('7', 1, bytes.fromhex({raw.data.hex()!r}), {{}}))\n"
        "assert gc.is_tracked(message.payload.event.contexts) and gc.is_tracked(message.payload.event.tags)\n"
        "print(msgspec.msgpack.encode(message).hex())\n"
    )
    logged, printed = run_without("transforms.core._payload", "Untracking", script)
    assert logged == [
        "INFO Untracking decoded JSON trees: pure-Python path (the C extension transforms.core._payload is not built)"
    ]
    assert bytes.fromhex(printed) == msgspec.msgpack.encode(decode(raw))
