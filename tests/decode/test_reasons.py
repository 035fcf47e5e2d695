"""Every reason code decoding can give, in both encodings, and their precedence (rule 1.5, E1, E15)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.decode.payloads import (
    ENCODINGS,
    MESSAGE_ID,
    MESSAGE_TIME,
    PROJECTS,
    PROTOBUF_CONTENT_TYPE,
    dead_letter,
    lookup,
    raw,
    status_change,
    with_event,
)
from transforms.core import reasons
from transforms.core.decode import CONTENT_TYPE_ATTRIBUTE, JSON_CONTENT_TYPE, decode
from transforms.core.model import DeadLetter, Message, RawMessage
from transforms.core.projects import check_project


def decode_and_check(delivered: RawMessage, max_bytes: int = 1 << 20) -> Message | DeadLetter:
    return check_project(decode(delivered, max_bytes=max_bytes), PROJECTS)


# --- one case per reason, each in both encodings --------------------------------------------------------


def test_oversized_counts_the_delivered_bytes(encoding: str) -> None:
    delivered = raw(with_event(), encoding)
    assert isinstance(decode(delivered, max_bytes=len(delivered.data)), Message)
    failed = decode(delivered, max_bytes=len(delivered.data) - 1)
    assert failed.reason == reasons.OVERSIZED
    assert (
        failed.error
        == f"message is {len(delivered.data)} bytes, more than the limit of {len(delivered.data) - 1}"
    )
    assert failed.stage == reasons.STAGE_DECODE


def test_default_size_limit_is_one_mebibyte(encoding: str) -> None:
    payload = lookup(evidence_data={"blob": "x" * (1 << 20)})
    assert decode(raw(payload, encoding)).reason == reasons.OVERSIZED
    payload = lookup(evidence_data={"blob": "x" * ((1 << 20) - 1000)})
    assert isinstance(decode(raw(payload, encoding)), Message)


@pytest.mark.parametrize(
    ("content_type", "data", "error"),
    [
        (JSON_CONTENT_TYPE, b"{not json", "data is not valid JSON: "),
        (JSON_CONTENT_TYPE, b"", "data is not valid JSON: "),
        (JSON_CONTENT_TYPE, b"\xff\xfe{}", "data is not valid JSON: "),
        (JSON_CONTENT_TYPE, b"[1, 2]", "the payload must be a JSON object, got a list of 2 item(s)"),
        (JSON_CONTENT_TYPE, b'"not a payload"', "the payload must be a JSON object, got 'not a payload'"),
        (JSON_CONTENT_TYPE, b"null", "the payload must be a JSON object, got null"),
        (PROTOBUF_CONTENT_TYPE, b"\xff\xff\xff", "data is not a valid protobuf IngestMessage: "),
        (PROTOBUF_CONTENT_TYPE, b'{"id": 1}', "data is not a valid protobuf IngestMessage: "),
        ("text/plain", b"{}", "unsupported content_type 'text/plain': expected 'application/json'"),
    ],
)
def test_undecodable_data_or_content_type(content_type: str, data: bytes, error: str) -> None:
    failed = decode(RawMessage(MESSAGE_ID, MESSAGE_TIME, data, {CONTENT_TYPE_ATTRIBUTE: content_type}))
    assert failed.reason == reasons.UNDECODABLE
    assert failed.error.startswith(error)
    assert failed.data == data
    assert failed.project_id is None


def test_content_type_parameters_and_case_are_ignored() -> None:
    delivered = raw(lookup())
    for content_type in ("application/json; charset=utf-8", "Application/JSON", ""):
        attributes = {CONTENT_TYPE_ATTRIBUTE: content_type}
        assert isinstance(decode(RawMessage(MESSAGE_ID, 0, delivered.data, attributes)), Message)


def test_absent_content_type_means_json() -> None:
    assert isinstance(decode(RawMessage(MESSAGE_ID, 0, raw(lookup()).data, {})), Message)


def test_protobuf_bytes_sent_as_json_are_undecodable() -> None:
    protobuf = raw(lookup(), PROTOBUF_CONTENT_TYPE).data
    assert decode(RawMessage(MESSAGE_ID, 0, protobuf, {})).reason == reasons.UNDECODABLE


def test_invalid_payload_type() -> None:
    failed = dead_letter(lookup(payload_type="alert"))
    assert failed.reason == reasons.INVALID_PAYLOAD_TYPE
    assert failed.error == "payload_type must be 'occurrence' (the default) or 'status_change', got 'alert'"
    assert dead_letter(lookup(payload_type=1)).reason == reasons.INVALID_PAYLOAD_TYPE


def test_protobuf_message_without_payload_is_invalid_payload_type() -> None:
    failed = decode(RawMessage(MESSAGE_ID, 0, b"", {CONTENT_TYPE_ATTRIBUTE: PROTOBUF_CONTENT_TYPE}))
    assert failed.reason == reasons.INVALID_PAYLOAD_TYPE
    assert failed.error == "the IngestMessage has no payload (set occurrence or status_change)"


def test_protobuf_unknown_fields_only_is_invalid_payload_type() -> None:
    unknown_field_99 = b"\x98\x06\x01"  # field 99, varint 1
    failed = decode(
        RawMessage(MESSAGE_ID, 0, unknown_field_99, {CONTENT_TYPE_ATTRIBUTE: PROTOBUF_CONTENT_TYPE})
    )
    assert failed.reason == reasons.INVALID_PAYLOAD_TYPE


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    reasons.MISSING_FIELD: lambda: lookup(issue_title=None),
    reasons.INVALID_FIELD: lambda: lookup(level="loud"),
    reasons.UNKNOWN_GROUP_TYPE: lambda: lookup(type=424242),
    reasons.UNKNOWN_PROJECT: lambda: with_event(project_id=77, event={"project_id": 77}),
    reasons.PROJECT_MISMATCH: lambda: with_event(event={"project_id": 2}),
    reasons.INVALID_EVENT: lambda: with_event(event={"platform": ""}),
    reasons.EVENT_ID_MISMATCH: lambda: with_event(event={"event_id": "f" * 32}),
    reasons.INVALID_STATUS_CHANGE: lambda: status_change(new_status=0, new_substatus=7, resolution=None),
}


@pytest.mark.parametrize("reason", list(CASES))
def test_each_payload_reason_in_both_encodings(encoding: str, reason: str) -> None:
    result = decode_and_check(raw(CASES[reason](), encoding))
    assert isinstance(result, DeadLetter)
    assert result.reason == reason
    expected_stage = reasons.STAGE_VALIDATE if reason == reasons.UNKNOWN_PROJECT else reasons.STAGE_DECODE
    assert result.stage == expected_stage
    assert result.message_id == MESSAGE_ID and result.message_time == MESSAGE_TIME


def test_every_reason_of_the_precedence_list_is_covered() -> None:
    covered = {reasons.OVERSIZED, reasons.UNDECODABLE, reasons.INVALID_PAYLOAD_TYPE, *CASES}
    assert covered == set(reasons.PRECEDENCE)


def test_dead_letter_keeps_the_original_bytes_and_attributes(encoding: str) -> None:
    delivered = raw(CASES[reasons.INVALID_FIELD](), encoding, attributes={"origin": "replay"})
    failed = decode(delivered)
    assert (failed.data, failed.attributes) == (delivered.data, delivered.attributes)


# --- precedence (E1): a message failing two checks reports the first ---------------------------------------
# Each mutation breaks one check of an occurrence with an event and leaves the others passing, so that any
# two of them together fail exactly those two checks. They are applied in precedence order.

Mutation = Callable[[dict[str, Any], dict[str, str], dict[str, int]], None]


def _oversized(p: dict, attributes: dict, limits: dict) -> None:
    limits["max_bytes"] = 10


def _undecodable(p: dict, attributes: dict, limits: dict) -> None:
    attributes[CONTENT_TYPE_ATTRIBUTE] = "text/csv"


def _payload_type(p: dict, attributes: dict, limits: dict) -> None:
    p["payload_type"] = "check_in"


def _missing(p: dict, attributes: dict, limits: dict) -> None:
    del p["subtitle"]


def _invalid_field(p: dict, attributes: dict, limits: dict) -> None:
    p["fingerprint"] = ["a", ""]


def _unknown_type(p: dict, attributes: dict, limits: dict) -> None:
    p["type"] = 31337


def _unknown_project(p: dict, attributes: dict, limits: dict) -> None:
    p["project_id"] = 77
    p["event"]["project_id"] = 77


def _mismatch(p: dict, attributes: dict, limits: dict) -> None:
    p["event"]["project_id"] = p["project_id"] + 1000


def _invalid_event(p: dict, attributes: dict, limits: dict) -> None:
    p["event"]["timestamp"] = "not a time"


def _event_id_mismatch(p: dict, attributes: dict, limits: dict) -> None:
    p["event"]["event_id"] = "e" * 32


OCCURRENCE_MUTATIONS: list[tuple[str, Mutation]] = [
    (reasons.OVERSIZED, _oversized),
    (reasons.UNDECODABLE, _undecodable),
    (reasons.INVALID_PAYLOAD_TYPE, _payload_type),
    (reasons.MISSING_FIELD, _missing),
    (reasons.INVALID_FIELD, _invalid_field),
    (reasons.UNKNOWN_GROUP_TYPE, _unknown_type),
    (reasons.UNKNOWN_PROJECT, _unknown_project),
    (reasons.PROJECT_MISMATCH, _mismatch),
    (reasons.INVALID_EVENT, _invalid_event),
    (reasons.EVENT_ID_MISMATCH, _event_id_mismatch),
]


def _unknown_field_99(payload: dict[str, Any]) -> bytes:
    content = orjson.dumps(payload)
    length = bytearray()
    size = len(content)
    while True:
        byte, size = size & 0x7F, size >> 7
        length.append(byte | (0x80 if size else 0))
        if not size:
            break
    return b"\x9a\x06" + bytes(length) + content


def _apply(base: dict[str, Any], mutations: list[Mutation], encoding: str) -> Message | DeadLetter:
    payload = copy.deepcopy(base)
    attributes: dict[str, str] = {}
    limits: dict[str, int] = {}
    for mutate in mutations:
        mutate(payload, attributes, limits)
    if payload.get("payload_type") == "check_in" and encoding == PROTOBUF_CONTENT_TYPE:
        # Protobuf has no payload type field: a message with neither payload stands for an unknown one.
        # It carries the payload in an unknown field (99) so that its size stays realistic.
        delivered = RawMessage(
            MESSAGE_ID, MESSAGE_TIME, _unknown_field_99(payload), {CONTENT_TYPE_ATTRIBUTE: encoding}
        )
    else:
        delivered = raw(payload, encoding)
    delivered = RawMessage(
        delivered.message_id, delivered.message_time, delivered.data, {**delivered.attributes, **attributes}
    )
    return decode_and_check(delivered, **limits)


@pytest.mark.parametrize("mutation", OCCURRENCE_MUTATIONS, ids=[name for name, _ in OCCURRENCE_MUTATIONS])
def test_each_mutation_alone_fails_its_own_check(encoding: str, mutation: tuple[str, Mutation]) -> None:
    reason, mutate = mutation
    assert _apply(with_event(), [mutate], encoding).reason == reason


PAIRS = list(itertools.combinations(OCCURRENCE_MUTATIONS, 2))


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a[0]}+{b[0]}" for a, b in PAIRS])
def test_message_failing_two_checks_reports_the_first_in_precedence_order(
    encoding: str, pair: tuple[tuple[str, Mutation], tuple[str, Mutation]]
) -> None:
    (first, mutate_first), (_second, mutate_second) = pair
    assert _apply(with_event(), [mutate_first, mutate_second], encoding).reason == first


def test_message_failing_every_check_reports_oversized(encoding: str) -> None:
    assert _apply(with_event(), [m for _, m in OCCURRENCE_MUTATIONS], encoding).reason == reasons.OVERSIZED


STATUS_MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    (reasons.MISSING_FIELD, lambda p: p.pop("new_status")),
    (reasons.INVALID_FIELD, lambda p: p.update(resolution={"type": "someday", "version": "1"})),
    (reasons.UNKNOWN_PROJECT, lambda p: p.update(project_id=77)),
    (reasons.INVALID_STATUS_CHANGE, lambda p: p.update(new_substatus=7)),
]
STATUS_PAIRS = list(itertools.combinations(STATUS_MUTATIONS, 2))


@pytest.mark.parametrize("pair", STATUS_PAIRS, ids=[f"{a[0]}+{b[0]}" for a, b in STATUS_PAIRS])
def test_status_change_failing_two_checks_reports_the_first(encoding: str, pair: tuple) -> None:
    (first, mutate_first), (_second, mutate_second) = pair
    payload = status_change()
    mutate_first(payload)
    mutate_second(payload)
    assert decode_and_check(raw(payload, encoding)).reason == first


def test_invalid_status_change_of_an_unknown_project_is_unknown_project(encoding: str) -> None:
    payload = status_change(project_id=77, new_status=0, new_substatus=7)
    assert decode_and_check(raw(payload, encoding)).reason == reasons.UNKNOWN_PROJECT


@pytest.mark.parametrize("content_type", ENCODINGS)
def test_dead_letters_before_the_project_check_carry_the_project_when_known(content_type: str) -> None:
    assert dead_letter(lookup(level="loud"), content_type).project_id == 1
    assert dead_letter(lookup(project_id=None)).project_id is None
