"""The C fast path of occurrence payloads (``transforms/core/_payload.c``) gives Python's answer or none.

``occurrence_payload.native_occurrence`` is ``_payload.valid_occurrence`` where the extension is built from the
source beside it, else None. Whenever it returns an ``Occurrence`` it must be the one the field-by-field checks
(``occurrence_from_payload``) build: equal, and encoded to the same bytes; when it returns None the Python
paths decide. Compared here on generated payloads (valid ones, broken ones, and values JSON never gives: str
and int subclasses, tuples, huge and negative ints, bools where ints go, lone surrogates) and on times in
every form ``parse_time`` reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.decode import payloads, strategies
from tests.decode.test_properties import EDGE_VALUES, EVENT_FIELDS, OCCURRENCE_FIELDS
from tests.infra.test_packaging import _sdist
from tests.native_paths import leaked_blocks
from transforms.core import decode as decoding
from transforms.core import limits, occurrence_payload
from transforms.core.decode import PROTOBUF_CONTENT_TYPE, decode
from transforms.core.model import Message, Occurrence, RawMessage, carried_message, full_event
from transforms.core.payload_fields import Rejected, hash_cache, parse_time

ROOT = Path(__file__).resolve().parents[2]
_COMPILER = (sysconfig.get_config_var("CC") or "cc").split()[0]
native = pytest.mark.skipif(occurrence_payload._native is None, reason="the C extension is not built here")
SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _python_answer(payload: Any) -> Any:
    """What the Python paths decide: the Occurrence, or the exception the checks raise (a value to compare)."""
    try:
        return occurrence_payload.valid_occurrence(payload) or occurrence_payload.occurrence_from_payload(
            payload
        )
    except Rejected as rejected:
        return ("rejected", rejected.reason, rejected.error)
    except Exception as error:  # what decode reports as undecodable
        return ("raised", type(error), str(error))


def _same_or_no_answer(payload: Any) -> bool:
    """C's answer, when it gives one, is the Python paths' (equal, and the same bytes); True when it answered."""
    answer = occurrence_payload._native.valid_occurrence(payload)
    if answer is None:
        return False
    python = _python_answer(payload)
    assert answer == python, payload
    for encode in (msgspec.json.encode, msgspec.msgpack.encode):
        assert _encoded(encode, answer) == _encoded(encode, python)
    return True


def _encoded(encode: Any, value: Any) -> Any:
    """The bytes of ``value``, or the error encoding it raised (a key JSON has not, a lone surrogate)."""
    try:
        return encode(value)
    except Exception as error:
        return (type(error), str(error))


def test_the_extension_is_built_where_a_compiler_exists() -> None:
    if shutil.which(_COMPILER) is None:
        pytest.skip(f"no C compiler ({_COMPILER}): the pure-Python path is the one that runs")
    assert occurrence_payload._native is not None, (
        "transforms.core._payload is not built, or built from another source: "
        "run python setup.py build_ext --inplace (or pip install -e .)"
    )
    assert occurrence_payload.native_occurrence is occurrence_payload._native.valid_occurrence


@native
def test_the_usual_occurrences_are_answered_in_c() -> None:
    for payload in (payloads.with_event(), payloads.lookup()):
        hash_cache.clear()  # digests computed by fingerprint_hashes, then read from its cache
        assert _same_or_no_answer(payload)
        assert _same_or_no_answer(payload)


class _Text(str):
    pass


class _Number(int):
    pass


# Values no JSON parser gives, which C must leave to Python (or treat exactly as Python does).
_ODD = st.sampled_from(
    [_Text("x"), _Text("0" * 32), _Number(1), _Number(25), (), ("a",), ("a", "b"), True, False, 1 << 64,
     -(1 << 64), 2**63, -1, 0, "\ud800", ["\udc80"], [{"name": "\ud800", "value": "v", "important": True}],
     float("nan"), float("inf"), -0.0, 5e-324, b"bytes", {1: "a"}, {"a": _Text("b")}, [("a", "b")]]
)  # fmt: skip

_UNUSUAL_TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.text(max_size=40)


@st.composite
def _times(draw: st.DrawFn) -> Any:
    """Times in the forms C reads itself and in the ones it leaves to parse_time (any fraction's length, other
    separators and offsets, leap days, the first and last years, numbers at and past the range)."""
    kind = draw(st.sampled_from(["iso", "text", "number"]))
    if kind == "number":
        return draw(
            st.integers(-62_135_596_801, 253_402_300_800)
            | st.integers()
            | st.floats(-62_135_596_801, 253_402_300_800)
            | st.floats()
            | st.sampled_from([-62_135_596_800, 253_402_300_799, -62_135_596_800.0, 253_402_300_799.9999996])
        )
    if kind == "text":
        return draw(
            _UNUSUAL_TEXT | st.from_regex(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)?")
        )
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0")
    fraction = draw(st.sampled_from(["", ".", ".1", ".123", ".1234", ".123456", ".1234567", ".000000"]))
    offset = draw(
        st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+05:30", "-23:59", "+24:00", "+01:60", "+0100"])
        | st.integers(-1439, 1439).map(lambda m: str(timezone(timedelta(minutes=m)))[3:])
    )
    return text[: draw(st.sampled_from([19, 19, 19, 16, 10]))] + fraction + offset


@native
@SETTINGS
@given(strategies.occurrences() | strategies.mutated_payloads(exact_ints=False))
def test_generated_payloads_through_json_get_pythons_answer_or_none(payload: dict[str, Any]) -> None:
    # through JSON as decoding sees payloads; integers beyond 64 bits, which JSON cannot carry, as they are
    with contextlib.suppress(TypeError):
        payload = orjson.loads(orjson.dumps(payload))
    _same_or_no_answer(payload)


@native
@SETTINGS
@given(strategies.occurrences(), st.data())
def test_odd_values_anywhere_get_pythons_answer_or_none(payload: dict[str, Any], data: st.DataObject) -> None:
    for _ in range(data.draw(st.integers(1, 3))):
        target = payload
        if isinstance(payload.get("event"), dict) and data.draw(st.booleans()):
            target = payload["event"]
        if not target:
            break
        key = data.draw(st.sampled_from(sorted(target)))
        target[key] = data.draw(_ODD | strategies.json_values(exact_ints=False) | _UNUSUAL_TEXT)
    _same_or_no_answer(payload)


@native
@SETTINGS
@given(strategies.occurrences(), _times(), _times(), _times())
def test_times_in_every_form_get_parse_times_micros(
    payload: dict[str, Any], detection: Any, timestamp: Any, received: Any
) -> None:
    payload["detection_time"] = detection
    if isinstance(payload.get("event"), dict):
        payload["event"]["timestamp"] = timestamp
        payload["event"]["received"] = received
    if _same_or_no_answer(payload):
        assert occurrence_payload._native.valid_occurrence(payload).detection_time == parse_time(detection)


@native
def test_every_field_at_its_edges_gets_pythons_answer_or_none() -> None:
    answered = 0
    for base in (payloads.with_event(), payloads.lookup()):
        for field in OCCURRENCE_FIELDS:
            answered += _same_or_no_answer({key: value for key, value in base.items() if key != field})
            for value in EDGE_VALUES:
                answered += _same_or_no_answer(orjson.loads(orjson.dumps({**base, field: value})))
    base = payloads.with_event()
    for field in EVENT_FIELDS:
        answered += _same_or_no_answer(
            {**base, "event": {k: v for k, v in base["event"].items() if k != field}}
        )
        for value in EDGE_VALUES:
            answered += _same_or_no_answer(
                orjson.loads(orjson.dumps({**base, "event": {**base["event"], field: value}}))
            )
    assert answered > 300  # it answers the valid variants, not only the two base payloads


@native
def test_what_c_leaves_alone_is_left_to_python() -> None:
    base = payloads.with_event()
    for broken in (
        [],  # not a dict
        {**base, "fingerprint": ["\ud800"]},  # Python raises hashing it: C must not answer
        {**base, "project_id": True},
        {**base, "type": 1.0},
        {**base, "event": {**base["event"], "project_id": base["project_id"] + 1}},
        {**base, "event_id": "f" * 32},  # event_id_mismatch
    ):
        assert occurrence_payload._native.valid_occurrence(broken) is None
        assert isinstance(_python_answer(broken), tuple)  # a dead letter
    # a str subclass (never from JSON): msgspec's conversion takes it, so Python answers; C leaves it to Python
    odd = {**base, "culprit": _Text("c")}
    assert occurrence_payload._native.valid_occurrence(odd) is None
    assert _python_answer(odd).culprit == "c"


def _decode_in_python(raw: RawMessage, max_bytes: int, removed: list[str], carry: bool = False) -> Any:
    """``decode`` with the C paths switched off (as without the extension)."""
    saved = decoding.native_decode_json, decoding.native_occurrence
    decoding.native_decode_json = decoding.native_occurrence = None
    try:
        return decode(raw, max_bytes=max_bytes, removed=removed, carry=carry)
    finally:
        decoding.native_decode_json, decoding.native_occurrence = saved


_ATTRIBUTES = st.sampled_from(
    [{}, {"content_type": "application/json"}, {"content_type": ""}, {"content_type": "APPLICATION/JSON"},
     {"content_type": "application/json; charset=utf-8"}, {"content_type": PROTOBUF_CONTENT_TYPE},
     {"content_type": "text/plain"}, {"other": "x"}]
)  # fmt: skip


@st.composite
def _raw_messages(draw: st.DrawFn) -> tuple[RawMessage, int]:
    """A JSON payload (valid, broken, a status change; sometimes padded past the size that is measured, or with
    brackets past the depth limit in a string, or cut short) as a delivered message, and a max_bytes."""
    payload = draw(strategies.valid_payloads | strategies.mutated_payloads())
    padding = draw(st.sampled_from(["", "", "[" * 40, "{" * 10 + "[" * 10, "x" * 70_000, "é" * 20]))
    if padding and isinstance(payload.get("event"), dict):
        payload["event"][draw(st.sampled_from(["release", "environment", "platform", "dist"]))] = padding
    elif padding:
        payload["culprit"] = padding
    data = orjson.dumps(payload)
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    max_bytes = draw(st.sampled_from([1 << 20, 1 << 20, len(data), max(1, len(data) - 1)]))
    return RawMessage(
        draw(st.text(max_size=5)), draw(st.integers(0, 1 << 62)), data, draw(_ATTRIBUTES)
    ), max_bytes


@native
@SETTINGS
@given(_raw_messages())
def test_decode_with_the_c_paths_gives_what_python_gives(raw_and_limit: tuple[RawMessage, int]) -> None:
    """The same Message or dead letter (equal, same bytes) and the same removed names, whichever path decides."""
    raw, max_bytes = raw_and_limit
    removed: list[str] = []
    removed_in_python: list[str] = []
    result = decode(raw, max_bytes=max_bytes, removed=removed)
    expected = _decode_in_python(raw, max_bytes, removed_in_python)
    assert result == expected
    assert msgspec.msgpack.encode(result) == msgspec.msgpack.encode(expected)
    assert removed == removed_in_python
    # carried (decode's carry): the C path's carried event is the one carried_message makes of the whole
    carried = decode(raw, max_bytes=max_bytes, carry=True)
    for other in (
        _decode_in_python(raw, max_bytes, [], carry=True),
        carried_message(result) if type(result) is Message else result,
    ):
        assert carried == other
        assert msgspec.msgpack.encode(carried) == msgspec.msgpack.encode(other)
    if type(result) is Message and type(result.payload) is Occurrence and result.payload.event is not None:
        event = carried.payload.event
        assert event.stored_json == msgspec.json.encode(result.payload.event).decode()
        assert full_event(event) == result.payload.event


@native
def test_decode_json_carries_the_event_whole_where_its_json_cannot_be_made(monkeypatch) -> None:
    """An event whose JSON text cannot be made (an error carried_event catches) crosses whole, as
    carried_event leaves it; another error leaves the message to the Python path (no answer)."""
    raw = RawMessage("1", 2, orjson.dumps(payloads.with_event()), {})
    whole = decode(raw)

    def refusing(error: type[Exception]) -> Any:
        def encode(value: Any) -> bytes:
            raise error("no")

        return encode

    try:
        for error, expected in ((ValueError, whole), (OverflowError, whole), (KeyError, raw.data)):
            monkeypatch.setattr(msgspec.json, "encode", refusing(error))
            occurrence_payload._load_native()
            answer = occurrence_payload._native.decode_json(raw, 1 << 20, True)
            assert (answer if type(answer) is Message else raw.data) == expected
    finally:
        monkeypatch.undo()
        occurrence_payload._load_native()
    assert decode(raw, carry=True) == carried_message(whole) != whole


@native
def test_decode_json_answers_the_usual_message_and_hands_back_what_it_parsed() -> None:
    data = orjson.dumps(payloads.with_event())
    message = occurrence_payload._native.decode_json(RawMessage("1", 2, data, {}), 1 << 20, False)
    assert message == decode(RawMessage("1", 2, data, {}))
    for other in ({**payloads.with_event(), "level": "loud"}, {"payload_type": "status_change"}):
        parsed = occurrence_payload._native.decode_json(
            RawMessage("1", 2, orjson.dumps(other), {}), 1 << 20, False
        )
        assert parsed == other  # parsed, not decided: decode checks it without parsing it again
    for raw, max_bytes in (
        (RawMessage("1", 2, data, {"content_type": PROTOBUF_CONTENT_TYPE}), 1 << 20),
        (RawMessage("1", 2, data, {}), len(data) - 1),
        (RawMessage("1", 2, b"[1]", {}), 1 << 20),
        (RawMessage("1", 2, b"{", {}), 1 << 20),
    ):
        assert occurrence_payload._native.decode_json(raw, max_bytes, False) is None


@native
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["{", "[", "]", "}", ";", "Û", "é", "x", "\x7f", "\\", '"', "💥"]), max_size=200
    ),
    st.integers(0, 7),
)
def test_the_brackets_are_counted_exactly_at_the_depth_limit(parts: list[str], shift: int) -> None:
    """decode_json leaves a payload with more opening brackets than the depth limit to Python (None, before
    parsing it) and parses one with no more (here a status change, which it hands back parsed): at every
    alignment of the eight-byte words it counts in."""
    text = "".join(parts)
    data = orjson.dumps({"payload_type": "status_change", "pad": "y" * shift, "x": text})
    brackets = data.count(b"{") + data.count(b"[")
    for extra in range(limits.MAX_JSON_FIELD_DEPTH - brackets, limits.MAX_JSON_FIELD_DEPTH - brackets + 2):
        if extra < 0:
            continue
        padded = orjson.dumps({"payload_type": "status_change", "pad": "y" * shift, "x": text + "[" * extra})
        parsed = occurrence_payload._native.decode_json(RawMessage("1", 2, padded, {}), 1 << 20, False)
        assert (parsed is None) == (brackets + extra > limits.MAX_JSON_FIELD_DEPTH)
        if parsed is not None:
            assert parsed == orjson.loads(padded)


@native
@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([0, 4_070, 4_080, 4_090, 8_150, 8_170]), st.integers(0, 15), st.sampled_from(["{", "["])
)
def test_the_brackets_of_a_long_payload_are_counted_in_every_block(
    filler: int, shift: int, bracket: str
) -> None:
    """decode_json counts sixteen bytes at a time and sums its byte lanes every 4,080 bytes (before a lane
    could pass 255): brackets after a long filler are counted exactly at the depth limit, and runs of more
    brackets than a lane can hold are all counted."""
    head = {"payload_type": "status_change", "pad": "y" * (filler + shift)}
    brackets = orjson.dumps({**head, "x": ""}).count(b"{") + orjson.dumps({**head, "x": ""}).count(b"[")
    for extra in range(limits.MAX_JSON_FIELD_DEPTH - brackets, limits.MAX_JSON_FIELD_DEPTH - brackets + 2):
        padded = orjson.dumps({**head, "x": bracket * extra})
        parsed = occurrence_payload._native.decode_json(RawMessage("1", 2, padded, {}), 1 << 20, False)
        assert (parsed is None) == (brackets + extra > limits.MAX_JSON_FIELD_DEPTH)
    for run in (4_080, 4_096, 8_192 + shift):
        data = orjson.dumps({**head, "x": bracket * run})
        assert occurrence_payload._native.decode_json(RawMessage("1", 2, data, {}), 1 << 20, False) is None


_WITHOUT_SSE2 = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("transforms.core._payload", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules["transforms.core._payload"] = module
import orjson
from transforms.core import limits, occurrence_payload
from transforms.core.model import RawMessage
assert occurrence_payload._native is module
wrong = []
for filler in (0, 8, 4_070, 4_080, 8_150):
    for shift in range(16):
        for bracket in "{[":
            head = {"payload_type": "status_change", "pad": "y" * (filler + shift)}
            plain = orjson.dumps({**head, "x": ""})
            brackets = plain.count(b"{") + plain.count(b"[")
            for extra in (limits.MAX_JSON_FIELD_DEPTH - brackets, limits.MAX_JSON_FIELD_DEPTH - brackets + 1, 300):
                data = orjson.dumps({**head, "x": bracket * extra})
                parsed = module.decode_json(RawMessage("1", 2, data, {}), 1 << 20, False)
                if (parsed is None) != (brackets + extra > limits.MAX_JSON_FIELD_DEPTH):
                    wrong.append((filler, shift, bracket, extra))
print(wrong)
"""


@native
def test_the_brackets_are_counted_exactly_without_sse2(tmp_path: Path) -> None:
    """On a machine without SSE2, decode_json counts the brackets eight bytes at a time (the source's other
    branch, which an x86-64 build never compiles): built here with ``__SSE2__`` undefined, it counts them
    exactly too, at every alignment and after a long filler."""
    if shutil.which(_COMPILER) is None:
        pytest.skip(f"no C compiler ({_COMPILER})")
    source = ROOT / "transforms/core/_payload.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    flags = ["-U__SSE2__", f"-I{sysconfig.get_paths()['include']}"]
    preprocessed = subprocess.run(
        [_COMPILER, "-E", *flags, str(source)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert "_mm_sad_epu8" not in preprocessed  # the eight-byte branch is the one compiled
    built = tmp_path / f"_payload{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run(
        [
            _COMPILER,
            "-shared",
            "-fPIC",
            "-O2",
            *flags,
            f'-DSOURCE_SHA256="{digest}"',
            str(source),
            "-o",
            str(built),
        ],
        check=True,
        timeout=300,
    )
    run = subprocess.run(
        [sys.executable, "-c", _WITHOUT_SSE2, str(built)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


@native
def test_the_answers_do_not_depend_on_which_str_objects_the_keys_are() -> None:
    """decode_json looks the payload's keys up by the key objects orjson gave it last (it learns them every
    few thousand parses): any equal str finds the same values, so a payload whose keys are other objects (built
    in Python, parsed by json) gets the same answer, before and after the objects are learned."""
    good, loud = payloads.with_event(), {**payloads.with_event(), "level": "loud"}
    expected = _python_answer(good)
    fresh = json.loads(json.dumps(good))  # keys other than orjson's objects (and other than interned ones)
    for _ in range(2):
        for _ in range(5_000):  # more than the parses between two learnings
            assert occurrence_payload._native.decode_json(
                RawMessage("1", 2, orjson.dumps(good), {}), 1 << 20, False
            )
        assert occurrence_payload._native.valid_occurrence(fresh) == expected
        assert occurrence_payload._native.valid_occurrence(json.loads(json.dumps(loud))) is None
        message = occurrence_payload._native.decode_json(
            RawMessage("1", 2, orjson.dumps(good), {}), 1 << 20, False
        )
        assert message.payload == expected


def test_decode_gives_the_same_message_with_and_without_the_c_path() -> None:
    """decode takes C's answer first: the same Message as the Python paths give (here and in the subprocess)."""
    raw = RawMessage("7", 1, orjson.dumps(payloads.with_event()), {})
    script = (
        "import sys\n"
        "sys.modules['transforms.core._payload'] = None\n"
        "import msgspec, orjson\n"
        "from transforms.core.decode import decode\n"
        "from transforms.core.model import RawMessage\n"
        "print(msgspec.msgpack.encode(decode(RawMessage('7', 1, bytes.fromhex(sys.argv[1]), {}))).hex())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, raw.data.hex()], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert bytes.fromhex(run.stdout.strip()) == msgspec.msgpack.encode(decode(raw))


def test_without_the_extension_the_python_path_runs_and_says_so() -> None:
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')\n"
        "sys.modules['transforms.core._payload'] = None\n"
        "from transforms.core import occurrence_payload as p\n"
        "assert p._native is None and p.native_occurrence is None and p.native_decode_json is None\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    assert [line for line in run.stderr.splitlines() if "Occurrence payloads" in line] == [
        "INFO Occurrence payloads: pure-Python path (the C extension transforms.core._payload is not built)"
    ]


@native
def test_only_a_build_of_this_source_is_used(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    """A build of this source is used (an INFO line); one of another is refused (a WARNING to rebuild)."""
    with caplog.at_level(logging.INFO, logger=occurrence_payload.__name__):
        assert occurrence_payload._load_native() is occurrence_payload._native
        monkeypatch.setattr(occurrence_payload._native, "SOURCE_SHA256", "0" * 64)
        assert occurrence_payload._load_native() is None
    messages = [(record.levelname, record.getMessage().split(" (")[0]) for record in caplog.records]
    assert messages[0] == ("INFO", "Occurrence payloads: C path")
    assert messages[1][0] == "WARNING" and "built from another version of _payload.c" in messages[1][1]


def test_the_worker_package_carries_the_payload_source(tmp_path: Path) -> None:
    with tarfile.open(_sdist(ROOT, tmp_path)) as archive:
        assert any(name.endswith("/transforms/core/_payload.c") for name in archive.getnames())


@native
def test_the_fingerprint_digests_made_in_c_are_md5s_of_the_parts() -> None:
    """ASCII parts are hashed in C (MD5, every length around its 64-byte blocks); others, mixed in or alone,
    take the cache or Python's: the same digests as hashlib's."""

    def ascii_part(n: int) -> str:  # every block different (a repeated character hides a block read twice)
        return "".join(chr((31 * i + n) % 128) for i in range(n))

    for n in range(1, 300):
        part = ascii_part(n)
        occurrence = occurrence_payload._native.valid_occurrence(payloads.with_event(fingerprint=[part]))
        assert occurrence.hashes == (hashlib.md5(part.encode()).hexdigest(),), n
    parts = [ascii_part(n) for n in (1, 2, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000)]
    parts += ["slow-endpoint:/api/0/items/42", "\x7f~ {}", "é", "snowman ☃", "\U0001f600 emoji"]
    for fingerprint in ([part] for part in parts):
        occurrence = occurrence_payload._native.valid_occurrence(payloads.with_event(fingerprint=fingerprint))
        assert occurrence.hashes == tuple(hashlib.md5(part.encode()).hexdigest() for part in fingerprint)
    hash_cache.clear()
    for fingerprint in (parts[:4], parts[-3:], parts[2:8] + parts[-2:]):
        for _ in range(2):  # the second from the cache, where it is used
            occurrence = occurrence_payload._native.valid_occurrence(
                payloads.with_event(fingerprint=fingerprint)
            )
            assert occurrence.hashes == tuple(hashlib.md5(part.encode()).hexdigest() for part in fingerprint)


@native
def test_decode_json_leaks_nothing() -> None:
    """decode_json's Message (carried or whole) and the payloads it hands back leave no block allocated."""
    script = (
        "import orjson\n"
        "from tests.decode import payloads\n"
        "from transforms.core.model import RawMessage\n"
        "from transforms.core.occurrence_payload import native_decode_json\n"
        "raws = [RawMessage('1', 2, orjson.dumps(payloads.with_event(fingerprint=[f'part-{i}', 'é'[: i % 2]])), {})\n"
        "        for i in range(4)]\n"
        "def call():\n"
        "    for raw in raws:\n"
        "        native_decode_json(raw, 1 << 20, True)\n"
        "        native_decode_json(raw, 1 << 20, False)\n"
    )
    assert leaked_blocks(script, 20_000) < 50
