"""The C path of an attached occurrence's tags (``transforms/core/engine/_tags.c``) gives the Python's answer.

``tags.index_tags`` is ``index_tags_native`` where the extension is built from the source beside it, else
``index_tags_python``. The C function may decline (None: the Python then decides) but never answers
differently: compared here on generated events, their odd values and wrong types included.
"""

from __future__ import annotations

import logging
import math
import shutil
import sysconfig
import tarfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.infra.test_packaging import _sdist
from tests.native_paths import ROOT, leaked_blocks, run_without
from transforms.core import extensions
from transforms.core.engine import tags
from transforms.core.model import Event, EventTrees, carried_event, event_trees, full_event

_COMPILER = (sysconfig.get_config_var("CC") or "cc").split()[0]
native = pytest.mark.skipif(tags._native is None, reason="the C extension is not built here")

_TEXT = st.text(max_size=12)  # any code point, lone surrogates included
_LONG = st.integers(min_value=195, max_value=205).map(lambda n: "v" * n)
_WORDS = st.sampled_from(
    ["", " ", "a", " a ", "x y", "a\nb", "é", "\u2003pad\u2003", "web-1", "\x00", "🙂", "0", "nan"]
)
_STRS = _WORDS | _TEXT | _LONG
_KEYS = (
    st.sampled_from(
        [
            *(
                "environment",
                "release",
                "dist",
                "user",
                "filename",
                "function",
                "url",
                "level",
                "server_name",
            ),
            "os",
            "os.name",
            "browser",
            "customer",
            "a:b",
            "bad key",
            "ünï",
            "",
            "k" * 201,
            "k" * 200,
        ]
    )
    | _TEXT
)
_IPS = st.sampled_from(
    [
        *("1.2.3.4", "255.255.255.255", "256.1.1.1", "01.2.3.4", "0.0.0.0", "1.2.3", "1.2.3.4.5", "::1"),
        "fe80::1%eth0",
        "1.2.3.4/32",
        "١.٢.٣.٤",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1..2.3",
        "2001:db8::",
        "a.b.c.d",
    ]
)
# What JSON gives, and what it does not (tuples, sets, str and int subclasses, objects).
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _STRS
    | _IPS
)


class _Text(str):
    pass


class _Int(int):
    pass


_ODD = st.sampled_from([(), ("a",), frozenset(), _Text("x"), _Int(7), b"x", object()])
_VALUES = st.recursive(
    _SCALARS | _ODD, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_STRS, inner, max_size=2)
)
_USER = st.dictionaries(
    st.sampled_from(["id", "username", "email", "ip_address", "name"]), _SCALARS | _ODD | _VALUES, max_size=5
)
_SDK = st.dictionaries(st.sampled_from(["name", "version", "other"]), _SCALARS | _VALUES, max_size=3)
_REQUEST = st.dictionaries(
    st.sampled_from(["url", "method"]),
    st.sampled_from(["http://x/a?b#c", "http://x/#f?q", "?only", "#", "", "http://é/ü?x"]) | _SCALARS,
    max_size=2,
)
_CONTEXT = st.dictionaries(
    st.sampled_from(["type", "name", "version", "rooted", "model", "family", "vendor_name", "id"])
    | st.sampled_from(["device_app_hash"]),
    st.sampled_from(["os", "browser", "runtime", "device", "gpu", "app", "monitor", "trace", "Linux"])
    | _SCALARS
    | _VALUES,
    max_size=6,
)
_CONTEXTS = st.dictionaries(
    st.sampled_from(
        ["os", "browser", "runtime", "device", "gpu", "app", "monitor", "trace", "client_os", "ü"]
    )
    | _TEXT,
    _CONTEXT | _VALUES,
    max_size=4,
)
_PAIRS = st.lists(st.tuples(_KEYS, _STRS), max_size=6).map(tuple)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def _events(draw: st.DrawFn) -> Event:
    """Events as decoding builds them (typed fields), and now and then a field of a type it never gives."""
    odd = draw(st.booleans()) and draw(st.booleans())
    field = (lambda s: s | _VALUES | _ODD) if odd else (lambda s: s)
    return Event(
        "0" * 32,
        1,
        "python",
        1,
        None,
        draw(field(_PAIRS) if not odd else _PAIRS | st.lists(st.tuples(_KEYS, _SCALARS | _ODD)).map(tuple)),
        draw(_maybe(field(_STRS))),  # release
        draw(_maybe(field(_STRS))),  # environment
        draw(_maybe(field(_STRS))),  # dist
        draw(_maybe(field(_STRS))),  # transaction
        draw(_maybe(field(_STRS))),  # server_name
        draw(_maybe(field(_SDK))),
        draw(_maybe(field(_USER))),
        draw(_maybe(field(_REQUEST))),
        draw(_maybe(field(_CONTEXTS))),
        None,
    )


def _same_answer(level: Any, event: Event) -> bool:
    """The C answer, where it gives one, equals the Python's (and encodes to the same bytes); a Python error
    means C gave no answer. True where C answered."""
    try:
        expected: Any = tags.index_tags_python(level, event)
    except Exception:
        expected = None
    found = tags._native.index_tags(level, event)
    if found is None:
        return False
    assert expected is not None, "C answered where the Python raises"
    assert found == expected
    assert msgspec.msgpack.encode(found) == msgspec.msgpack.encode(expected)
    assert all(type(text) is str for pairs in found for pair in pairs for text in pair)
    return True


@native
@settings(max_examples=3000, deadline=None)
@given(level=st.sampled_from(["error", "info", "fatal", ""]) | _STRS, event=_events())
@example(level="error", event=Event("0" * 32, 1, "python", 1, user={"ip_address": "1.2.3.4"}))
@example(level="error", event=Event("0" * 32, 1, "python", 1, contexts={"os": {"name": math.nan}}))
def test_generated_events_get_the_pythons_tags(level: Any, event: Event) -> None:
    _same_answer(level, event)


@native
def test_the_usual_events_are_answered_in_c() -> None:
    """The fast path is not a path that always declines: the workload's kinds of events get a C answer."""
    usual = [
        Event(
            "0" * 32, 1, "java", 1, None, (("server_name", "web-7"), ("transaction", "GET /a")), "r1", "prod"
        ),
        Event(
            "0" * 32,
            2,
            "javascript",
            1,
            tags=(("environment", "staging"), ("customer", "acme")),
            release="frontend@2.4.0",
            transaction="PUT /b",
            sdk={"name": "sentry.javascript.browser", "version": "8.9.2"},
            user={"id": 42, "email": "a@example.com", "ip_address": "10.0.0.1"},
            request={"url": "https://example.com/a?b=1#c"},
            contexts={"trace": {"trace_id": "6f12"}, "os": {"name": "iOS", "version": "17", "rooted": False}},
        ),
        Event("0" * 32, 3, "python", 1, user={"ip_address": "2001:db8::1"}, contexts={"gpu": {"name": 1.5}}),
    ]
    assert all(_same_answer("error", event) for event in usual)


@native
def test_an_event_c_declines_still_gets_the_pythons_tags() -> None:
    odd = Event("0" * 32, 1, "python", 1, user={"id": _Int(7)}, release="r")
    assert tags._native.index_tags("error", odd) is None
    assert tags.index_tags("error", odd) == tags.index_tags_python("error", odd)
    assert dict(tags.index_tags("error", odd)[0])["user"] == "id:7"
    huge = Event("0" * 32, 1, "python", 1, user={"id": 2**20000})  # past str()'s digit limit: Python's error
    assert tags._native.index_tags("error", huge) is None
    with pytest.raises(ValueError, match="integer string conversion"):
        tags.index_tags("error", huge)


@native
@settings(max_examples=500, deadline=None)
@given(
    level=st.sampled_from(["error", "info", "fatal", ""]) | _STRS,
    event=_events(),
    other=st.none()
    | st.tuples(
        st.sampled_from(["event_id", "project_id", "platform", "timestamp", "received", "trace_id"]),
        _VALUES | _ODD | st.none() | st.integers(),
    ),
)
def test_a_carried_event_gets_the_pythons_tags_of_its_whole_event(
    level: Any, event: Event, other: tuple[str, Any] | None
) -> None:
    """A carried event (``model.carried_event``: its trees in its JSON text) is answered from its whole event
    (C decodes only its trees, ``model.event_trees``, and reads its other fields: one of a type decoding never
    gives, which its whole event's JSON does not give back, leaves it to the Python)."""
    if other is not None:
        event = msgspec.structs.replace(event, **{other[0]: other[1]})
    carried = carried_event(event)
    if carried is None:  # no JSON of it: it crosses whole
        return
    try:
        whole: Event | None = full_event(carried)
    except msgspec.ValidationError:  # a field of a type decoding never gives: no event again, C declines
        whole = None
    answered = whole is not None and tags._native.index_tags(level, whole) is not None
    same = _same_answer(level, carried)  # never another answer than the Python's
    if whole == event:  # JSON gave every field back: C answers as on the whole event (else it may decline)
        assert same == answered


_LEAK_SCRIPT = """
from transforms.core.engine import tags
from transforms.core.model import Event, carried_event
whole = Event("0" * 32, 1, "java", 1, None, (("server_name", "web-7"),), "r1", "prod",
              user={"id": 4, "ip_address": "::1"}, contexts={"os": {"name": "iOS", "version": 17}},
              sdk={"name": "s", "version": "1"}, request={"url": "http://x/a?b"})
carried = carried_event(whole)
broken = Event("0" * 32, 1, "java", 1, stored_json="{")  # its JSON text is no event: the Python's error
def call():
    tags._native.index_tags("error", whole)
    tags._native.index_tags("error", carried)
    assert tags._native.index_tags("error", broken) is None
"""


@native
def test_tags_in_c_leak_nothing() -> None:
    calls = 5_000
    assert leaked_blocks(_LEAK_SCRIPT, calls) < calls // 20


def test_the_extension_is_built_where_a_compiler_exists() -> None:
    if shutil.which(_COMPILER) is None:
        pytest.skip(f"no C compiler ({_COMPILER}): the pure-Python path is the one that runs")
    assert tags._native is not None, (
        "transforms.core.engine._tags is not built, or built from another source: "
        "run python setup.py build_ext --inplace (or pip install -e .)"
    )
    assert tags.index_tags is tags.index_tags_native


def test_without_the_extension_the_python_path_runs_and_says_so() -> None:
    lines, printed = run_without(
        "transforms.core.engine._tags",
        "Occurrence tags",
        "from transforms.core.engine import tags\n"
        "assert tags._native is None and tags.index_tags is tags.index_tags_python\n"
        "from transforms.core.model import Event\n"
        "print(tags.index_tags('error', Event('0' * 32, 1, 'python', 1, user={'id': 3})))\n",
    )
    assert lines == [
        "INFO Occurrence tags: pure-Python path (the C extension transforms.core.engine._tags is not built)"
    ]
    assert printed == "((('level', 'error'), ('user', 'id:3')), (('@user.id', '3'),))"


@native
def test_a_build_of_another_source_is_not_used(monkeypatch, caplog) -> None:
    monkeypatch.setattr(tags._native, "SOURCE_SHA256", "0" * 64)
    with caplog.at_level(logging.INFO, logger=extensions.__name__):
        assert extensions.load_extension("transforms.core.engine", "_tags", "Occurrence tags") is None
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "built from another version of _tags.c" in caplog.records[0].getMessage()


@native
def test_a_current_build_is_used_and_says_so(caplog) -> None:
    with caplog.at_level(logging.INFO, logger=extensions.__name__):
        assert extensions.load_extension("transforms.core.engine", "_tags", "Occurrence tags") is tags._native
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == ["Occurrence tags: C path"]


@native
def test_it_refuses_to_run_on_tables_of_another_shape() -> None:
    with pytest.raises(ValueError, match="tables not of the shape"):
        tags._native.configure(
            Event,
            tags._valid_ip,
            200,
            200,
            frozenset(),
            {"os": (("", ()),)},
            (),
            (),
            (),
            EventTrees,
            event_trees,
        )


def test_the_worker_package_carries_the_c_source(tmp_path: Path) -> None:
    with tarfile.open(_sdist(ROOT, tmp_path)) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "transforms/core/engine/_tags.c" in names
    assert not any(name.endswith(".so") for name in names)
