"""The last line of defence in streaming: an exception nobody expected for one message (decoding, the project
check, keying, the engine) dead-letters that message (``internal_error`` with its stage) and its neighbours,
in the same bundles and keys, are applied; the pipeline never stops for it.

Failures are injected into the real code for chosen messages (each stage's function raises for a marked
message), plus one message the real code cannot handle: ``evidence_data`` nested 1,000 levels deep, which
decoding accepted and the shuffle's encoder could not write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from hashlib import md5
from typing import Any

import orjson
import pytest

from tests.stream import harness, runs
from tests.stream.environment import StreamEnv
from transforms import decode_messages as decode_step
from transforms import ingest
from transforms.core import metrics, reasons
from transforms.core.engine import engine as engine_module
from transforms.core.engine.ids import group_id
from transforms.core.model import MICROS, Message

SECOND = MICROS


def occurrence(n: int, key: str, title: str = "fine", **extra: Any) -> dict[str, Any]:
    occurrence_id = md5(f"occurrence:{n}".encode()).hexdigest()
    event_id = md5(f"event:{n}".encode()).hexdigest()
    return {
        "payload_type": "occurrence",
        "id": occurrence_id,
        "project_id": 1,
        "event_id": event_id,
        "fingerprint": [f"last-line:{key}"],
        "issue_title": title,
        "subtitle": "s",
        "type": 1,
        "detection_time": 1_780_000_000.0,
        "evidence_display": [],
        "level": "error",
        "event": {"event_id": event_id, "project_id": 1, "platform": "python", "timestamp": 1_780_000_000},
        **extra,
    }


def group_of(key: str) -> int:
    return group_id(1, md5(f"last-line:{key}".encode()).hexdigest(), 0)


DEEP = "<nested 1,000 levels>"


def deep_json(levels: int) -> bytes:
    return b'{"a":' * levels + b'{"leaf":1}' + b"}" * levels


def _marked(title: str):
    def check(value: Any) -> bool:
        payload = getattr(value, "payload", None)
        return getattr(payload, "issue_title", None) == title

    return check


@pytest.fixture
def injected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each stage raises for the message whose title names it."""
    real_decode, real_check = decode_step.decode, decode_step.check_project
    real_key, real_occurrence = ingest.key_by_group, engine_module._Application._occurrence

    def decode(raw, **kwargs):
        if b"poison-decode" in raw.data:
            raise RuntimeError("injected at decode")
        return real_decode(raw, **kwargs)

    def check_project(decoded, projects):
        if _marked("poison-validate")(decoded):
            raise RuntimeError("injected at validate")
        return real_check(decoded, projects)

    def key_by_group(message: Message):
        if _marked("poison-key")(message):
            raise RuntimeError("injected at key")
        return real_key(message)

    def occurrence_step(application, message, payload):
        if payload.issue_title == "poison-apply":
            raise RuntimeError("injected at apply")
        return real_occurrence(application, message, payload)

    monkeypatch.setattr(decode_step, "decode", decode)
    monkeypatch.setattr(decode_step, "check_project", check_project)
    monkeypatch.setattr(ingest, "key_by_group", key_by_group)
    monkeypatch.setattr(engine_module._Application, "_occurrence", occurrence_step)


def test_an_unexpected_failure_dead_letters_only_its_message(env: StreamEnv, injected: None) -> None:
    plan = [  # (payload, key of a valid message or None)
        (occurrence(1, "a"), "a"),
        (occurrence(2, "a", "poison-apply"), None),
        (occurrence(3, "a"), "a"),
        (occurrence(4, "b", "poison-decode"), None),
        (occurrence(5, "b"), "b"),
        (occurrence(6, "b", "poison-validate"), None),
        (occurrence(7, "b", "poison-key"), None),
        (occurrence(8, "b"), "b"),
        (occurrence(9, "c", evidence_data=DEEP), None),
        (occurrence(10, "c"), "c"),
        (occurrence(11, "a"), "a"),
    ]
    done = _run_plan(env, plan, "m", 5, "the valid messages to be applied and the others dead-lettered")
    published, messages, counters, dead = done.published, done.messages, done.counters, done.dead
    by_label = {published.labels[m.attributes["original_message_id"]]: m for m in dead}
    assert sorted(by_label) == ["m1", "m3", "m5", "m6", "m8"]
    stages = {
        label: (m.attributes["dead_letter_reason"], m.attributes["dead_letter_stage"])
        for label, m in by_label.items()
    }
    internal = reasons.INTERNAL_ERROR
    assert stages["m1"] == (internal, reasons.STAGE_APPLY)
    assert stages["m3"] == (internal, reasons.STAGE_DECODE)
    assert stages["m5"] == (internal, reasons.STAGE_VALIDATE)
    assert stages["m6"] == (internal, reasons.STAGE_KEY)
    for label in ("m1", "m3", "m5", "m6"):
        assert "injected at" in by_label[label].attributes["dead_letter_error"]
    # Each dead letter replays its message: the original bytes, or the payload as JSON (apply stage).
    assert orjson.loads(by_label["m1"].data)["id"] == plan[1][0]["id"]
    assert by_label["m3"].data == messages[3].data
    assert counters[metrics.dead_letter_counter(internal)] >= 4


def _json(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload).replace(orjson.dumps(DEEP), deep_json(1000))


@dataclass
class _PlanRun:
    messages: list[harness.Scripted]
    published: harness.Published
    counters: dict[str, int]
    dead: list[Any]
    rows: dict[str, list[dict[str, Any]]]


def _run_plan(
    env: StreamEnv, plan: list[tuple[dict[str, Any], str | None]], label: str, dead_letters: int, what: str
) -> _PlanRun:
    """Publishes ``plan``'s payloads a second apart an hour ago (labelled ``label`` and their index), runs the
    pipeline until the valid ones (a key) are applied and ``dead_letters`` messages dead-lettered, and checks
    that exactly the valid ones were written, as groups ``a`` (3 times seen), ``b`` (2) and ``c`` (1)."""
    t0 = (int(time.time()) - 3600) * MICROS
    messages = [
        harness.Scripted(
            f"{label}{index}", _json(payload), t0 + index * SECOND, {"content_type": "application/json"}
        )
        for index, (payload, _key) in enumerate(plan)
    ]
    published = harness.Published()
    harness.publish(env.input_topic, messages, published)
    valid = [payload["id"] for payload, key in plan if key is not None]
    with harness.StreamRun(env.args(quota=False)) as run:
        run.wait_until(
            lambda: (
                runs.dead_letter_total(run.counters()) >= dead_letters
                and harness.count_rows(env.database.database, "Occurrences") >= len(valid)
            ),
            what,
        )
        counters = run.settled_counters()
        dead = harness.pull_all(env.dead_letter_subscription, expected=dead_letters)
    rows = harness.read_tables(env.database.database)
    assert sorted(row["OccurrenceId"] for row in rows["Occurrences"]) == sorted(valid)
    times_seen = {row["GroupId"]: row["TimesSeen"] for row in rows["Groups"]}
    assert times_seen == {group_of("a"): 3, group_of("b"): 2, group_of("c"): 1}
    return _PlanRun(messages, published, counters, dead, rows)


@pytest.fixture
def past_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values decoding refuses, let through for the messages whose title names them: a release over Spanner's
    8 KiB key limit, and ``evidence_data`` nested deeper than the rows' JSON encoder writes."""
    import msgspec

    real_decode = decode_step.decode

    def decode(raw, **kwargs):
        decoded = real_decode(raw, **kwargs)
        payload = getattr(decoded, "payload", None)
        title = getattr(payload, "issue_title", None)
        if title == "long-release":
            event = msgspec.structs.replace(payload.event, release="r" * 9000)
            decoded = msgspec.structs.replace(decoded, payload=msgspec.structs.replace(payload, event=event))
        elif title == "deep-evidence":
            nested: dict[str, Any] = {"leaf": 1}
            for _ in range(300):
                nested = {"a": nested}
            decoded = msgspec.structs.replace(
                decoded, payload=msgspec.structs.replace(payload, evidence_data=nested)
            )
        return decoded

    monkeypatch.setattr(decode_step, "decode", decode)


def test_a_write_spanner_refuses_dead_letters_its_message_and_the_rest_is_written(
    env: StreamEnv, past_decoding: None
) -> None:
    plan = [
        (occurrence(21, "a"), "a"),
        (occurrence(22, "a", "long-release"), None),
        (occurrence(23, "b"), "b"),
        (occurrence(24, "a"), "a"),
        (occurrence(25, "b", "deep-evidence"), None),
        (occurrence(26, "c"), "c"),
        (occurrence(27, "a"), "a"),
        (occurrence(28, "b"), "b"),
    ]
    done = _run_plan(env, plan, "w", 2, "the valid messages to be applied and the refused ones dead-lettered")
    published, dead, rows = done.published, done.dead, done.rows
    assert all(len(row["Version"]) < 100 for row in rows["Releases"])
    stages = {
        published.labels[m.attributes["original_message_id"]]: (
            m.attributes["dead_letter_reason"],
            m.attributes["dead_letter_stage"],
        )
        for m in dead
    }
    assert stages == {
        "w1": (reasons.INTERNAL_ERROR, reasons.STAGE_WRITE),
        "w4": (reasons.INTERNAL_ERROR, reasons.STAGE_WRITE),
    }


# ---------------------------------------------------------------------------------------------------------
# The Dataflow-shaped steps (separate DoFns where the local run has one Ingest step), one by one


def _raising(*_args, **_kwargs):
    raise RuntimeError("injected")


def _only(outputs) -> Any:
    (output,) = list(outputs)
    return output


def test_each_dataflow_step_dead_letters_a_message_it_fails_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from apache_beam import pvalue

    from transforms.core.decode import decode as real_decode
    from transforms.core.model import ProjectInfo, RawMessage
    from transforms.per_group.routed import AttachProject, Routed

    raw = RawMessage("m1", 1_780_000_000 * MICROS, orjson.dumps(occurrence(1, "a")), {})
    message = real_decode(raw)
    projects = {1: ProjectInfo(1, 1, "backend")}
    cases = [
        (decode_step, "decode", decode_step.DecodeFn(1 << 20), (raw,), reasons.STAGE_DECODE),
        (
            decode_step,
            "check_project",
            decode_step.CheckProjectFn(),
            (message, projects),
            reasons.STAGE_VALIDATE,
        ),
        (ingest, "key_by_group", ingest.KeyByGroupFn(), (message,), reasons.STAGE_KEY),
        (Routed, "of", AttachProject(), (("1:x", message), projects), reasons.STAGE_KEY),
    ]
    for module, name, fn, args, stage in cases:
        with monkeypatch.context() as patch:
            patch.setattr(module, name, _raising)
            if hasattr(fn, "setup"):
                fn.setup()
            output = _only(fn.process(*args))
        assert isinstance(output, pvalue.TaggedOutput), name
        dead = output.value
        assert (dead.message_id, dead.reason, dead.stage) == ("m1", reasons.INTERNAL_ERROR, stage), name
        assert "injected" in dead.error
        assert orjson.loads(dead.data)["id"] == occurrence(1, "a")["id"]  # replayable: bytes or payload
