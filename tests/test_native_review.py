"""Cases found by reviewing the optional C extensions: inputs on which C crashed, leaked or answered otherwise
than the Python it stands for. Each runs in a fresh interpreter under ``python -X dev`` (a crash there fails
the test instead of ending the run) and checks what the Python path does on the same input."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from tests.native_paths import ROOT
from transforms.storage import spanner_rows

mutations = pytest.mark.skipif(spanner_rows._native is None, reason="the C extension is not built here")


def _natives() -> tuple[object, ...]:
    from transforms.core import occurrence_payload
    from transforms.core.engine import dedup, tags
    from transforms.storage import tag_writer

    return occurrence_payload._native, tags._native, spanner_rows._native, dedup.native, tag_writer._native


def _run(script: str) -> str:
    """stdout of ``script`` run by ``python -X dev`` in the checkout; fails on a crash or a non-zero exit."""
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    return run.stdout.strip()


@mutations
@pytest.mark.parametrize("nested", ["a = []; a.append(a)", "a = []\nfor _ in range(200_000): a = [a]"])
def test_a_list_inside_itself_or_nested_too_deep_raises_recursion_error_in_both_paths(nested: str) -> None:
    script = f"""
from transforms.storage import spanner_rows
{nested}
for build in (spanner_rows.write_mutation_python, spanner_rows.write_mutation_native):
    try:
        build("insert_or_update", "T", ["A"], [[a]])
    except RecursionError:
        print("RecursionError")
"""
    assert _run(script).split() == ["RecursionError", "RecursionError"]


# Every C function on its answered, its declined ("not sure") and its raising paths; each call's objects are
# dropped, so what stays allocated after many calls is a leak (one object a call would be thousands).
_LEAK_SCRIPT = """
import gc, sys
import orjson
from tests.decode import payloads
from transforms.core import occurrence_payload as op
from transforms.core.engine import dedup, tags as tg
import msgspec
from transforms.core.model import Event, RawMessage, carried_event
from transforms.storage import spanner_rows as sr, tag_writer as tw
P, T, M, E, L = op._native, tg._native, sr._native, dedup.native, tw._native
good = payloads.with_event()
data, other = orjson.dumps(good), orjson.dumps({**good, "level": "loud"})
event = Event("0" * 32, 2, "javascript", 1, tags=(("environment", "staging"), ("customer", "acme")),
    release="frontend@2.4.0", transaction="PUT /b", sdk={"name": "sentry.javascript.browser", "version": "8.9.2"},
    user={"id": 42, "email": "a@example.com", "ip_address": "2001:db8::1"}, request={"url": "https://e.com/a?b=1#c"},
    contexts={"os": {"name": "iOS", "version": 17.5, "rooted": False}})
huge_user = Event("0" * 32, 1, "python", 1, user={"id": 2**20000})
carried = carried_event(event)
odd_carried = msgspec.structs.replace(carried, received=1.5)
bad_text = msgspec.structs.replace(carried, stored_json='{"tags": 5}')
ids, times = bytes(range(16)) * 50, ((1).to_bytes(8, "little") + (3).to_bytes(8, "little")) * 25
known = frozenset({(7, "k", "v")})
planned = {(1, "a"): (("A", "Type"), (1, 2)), (2, "b"): (("A",), (3,))}
def raising(call, *args):
    try:
        call(*args)
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        pass
def write_values(row):
    return L.write_values({("k", "v"): row, ("k", "w"): [1, 5, 9, 3]}, 7, 1, 2, {}, set(), [], {})
cases = {
    "valid_occurrence": lambda: (P.valid_occurrence(good), P.valid_occurrence({**good, "level": "loud"})),
    "decode_json": lambda: (P.decode_json(RawMessage("1", 2, data, {}), 1 << 20, False),
                            P.decode_json(RawMessage("1", 2, other, {}), 1 << 20, False),
                            P.decode_json(RawMessage("1", 2, data, {"content_type": 5}), 1 << 70, False),
                            P.decode_json(RawMessage("1", 2, data, {}), 1 << 20, True)),
    "index_tags": lambda: (T.index_tags("error", event), T.index_tags("error", huge_user),
                           T.index_tags("error", carried), T.index_tags("error", odd_carried),
                           T.index_tags("error", bad_text)),
    "encode_values": lambda: (M.encode_values([["a", None, True, 5, 2**80, 1.5, ["x", (1, 2)], "é"]]),
                              raising(M.encode_values, [["a", object()]]), raising(M.encode_values, [["\\ud800"]]),
                              M.encode_table("Groups", planned, {(1, "a")}, (), True),
                              M.encode_table("T", {**planned, (3, "c"): (("B",), (4,))}, (), {(2, "b")}, False),
                              M.encode_table("T", {(1, "a"): (("A",), (object(),))}, (), (), False),
                              raising(M.encode_table, "T", {(1, "a"): (("A",), ("\\ud800",))}, (), (), False)),
    "rfc3339": lambda: (M.rfc3339(1_700_000_000_123_456), raising(M.rfc3339, -(10**18))),
    "engine": lambda: (E.memory_id(b"o:", "é"), E.memory_id(b"o:", "\\ud800"), E.find(ids, bytes(range(16))),
                       E.time_at(times, 2**70), E.freeze(ids, times, {b"x" * 16: 5}, {0: 9}), E.prune(ids, times, 2)),
    "planning": lambda: (L.missing(known, (7,), (("k", "v"), ("a", "c")), True),
                         L.count_tags({("k", "v"): [1, 5, 9, 1]}, {(7, "k", "z"): (1, 2, 3)}, None, {"k": [1, 0, 0]},
                                      7, (("k", "v"), ("k", "z"), ("k", "n"), ("q", "q")), 0, 4, 100, 100),
                         L.count_tags({}, {}, {(7, "s"): (1, 0), (7, "o"): (1,)}, {}, 7,
                                      (("s", "v"), ("@x", "v"), ("o", "v"), ("q", "q")), 0, 4, 100, 100),
                         L.mark_tags({}, {(7, "@s", "z"): (None, None, None)}, {(7, "@text"): (300, 0)}, {}, 7,
                                     (("@s", "z"), ("@s", "v"), ("@x", "v")), None, 0, known, 100, 256),
                         L.mark_tags({}, {}, {(7, "@text"): (300, 0)}, {}, 7, ("w",), "@text", 0, known, 100, 256),
                         write_values([1, 5, 9, 1]), raising(write_values, [1, 5, "x", 1]),
                         L.group_rows("Groups", planned, {(1, "a")}, (), True)),
}
calls = int(sys.argv[1])
for name, call in cases.items():
    for _ in range(1000):
        call()
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(calls):
        call()
    gc.collect()
    print(name, sys.getallocatedblocks() - before)
"""


@pytest.mark.skipif(
    any(module is None for module in _natives()), reason="the C extensions are not all built here"
)
def test_no_c_function_leaks_on_its_answered_declined_or_raising_paths() -> None:
    calls = 20_000
    grown = dict(
        line.rsplit(" ", 1) for line in _run(_LEAK_SCRIPT.replace("sys.argv[1]", str(calls))).splitlines()
    )
    assert len(grown) == 7
    assert all(int(blocks) < calls // 20 for blocks in grown.values()), grown


@pytest.mark.skipif(_natives()[1] is None, reason="the C extension is not built here")
def test_tags_refuses_search_keys_whose_fields_are_not_the_users_in_order() -> None:
    """_tags reads the user's four fields once, in _USER_FIELDS' order, for the user tag and the search tags;
    search keys of another order would give ``@user.id`` the username. configure must refuse them."""
    script = """
from transforms.core.engine import tags
from transforms.core.model import Event
swapped = (tags._USER_SEARCH_KEYS[1], tags._USER_SEARCH_KEYS[0], *tags._USER_SEARCH_KEYS[2:])
try:
    tags._native.configure(tags.Event, tags._valid_ip, tags.TAG_KEY_MAX_CHARS, tags.TAG_VALUE_MAX_CHARS,
        tags.RESERVED_KEYS, tags._CONTEXT_TAGS, tags._USER_FIELDS, swapped, tags._SDK_SEARCH_KEYS,
        tags.EventTrees, tags.event_trees)
    print("accepted")
except ValueError:
    print("refused")
event = Event("0" * 32, 1, "python", 1, user={"id": 7, "username": "ann"})
print(tags._native.index_tags("error", event)[1] == tags.search_tags(event))
"""
    assert _run(script).split() == ["refused", "True"]


@pytest.mark.skipif(_natives()[4] is None, reason="the C extension is not built here")
@pytest.mark.parametrize("truth", [1, 0, "yes", "", None, 2.0])
def test_planning_given_a_truth_that_is_not_a_bool_answers_as_python_or_not_at_all(truth: object) -> None:
    """The Python loops read ``pairs`` and ``groups`` by their truth; C compared them with True, so 1 counted
    as false: ("ab",) as pairs is the key (7, "a", "b") to Python and was (7, "ab") to C."""
    from tests.test_native_planning import _python_missing
    from transforms.storage import commit_plan, tag_writer

    native = tag_writer._native
    known, items = {(7, "a", "b"), (7, "cd")}, ("ab", "cd")
    python = None
    with contextlib.suppress(ValueError):  # a str of another length than two does not unpack as a pair
        python = _python_missing(known, (7,), items, truth)
    assert native.missing(known, (7,), items, truth) in (None, python)
    planned = {(1,): (("State",), ("s",)), (2,): (("Type", "State"), ("t", "s"))}
    grouped = native.group_rows("Groups", planned, (), (), truth)
    assert grouped is None or grouped == commit_plan._group_rows("Groups", planned, (), (), truth)
