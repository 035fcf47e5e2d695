"""Status-change payloads (rule 1.4, 5.1): required fields, our extensions, valid pairs."""

from __future__ import annotations

import hashlib

import pytest

from tests.decode.payloads import DELETE, MESSAGE_ID, dead_letter, load, message, status_change
from transforms.core import reasons
from transforms.core.enums import VALID_STATUS_CHANGES, GroupStatus, GroupSubStatus
from transforms.core.model import Resolution, StatusChange


@pytest.mark.parametrize(
    ("sample", "status", "substatus"),
    [
        ("status-change-delete.json", 3, None),
        ("status-change-ignore-forever.json", 2, 5),
        ("status-change-resolve-in-next-release.json", 1, None),
    ],
)
def test_samples_decode_to_status_changes(
    encoding: str, sample: str, status: int, substatus: int | None
) -> None:
    payload = load(sample)
    change = message(payload, encoding).payload
    assert isinstance(change, StatusChange)
    assert change.id == payload["id"]
    assert change.project_id == 1
    assert change.fingerprint == ("slow-endpoint:/api/0/foo",)
    assert change.hashes == (hashlib.md5(b"slow-endpoint:/api/0/foo").hexdigest(),)
    assert (change.new_status, change.new_substatus) == (status, substatus)


def test_resolution_is_kept(encoding: str) -> None:
    change = message(status_change(), encoding).payload
    assert change.resolution == Resolution("in_next_release", "backend@1.4.0")


def test_in_release_resolution_is_accepted(encoding: str) -> None:
    change = message(status_change(resolution={"type": "in_release", "version": "2.0.0"}), encoding).payload
    assert change.resolution == Resolution("in_release", "2.0.0")


def test_absent_id_is_the_message_id(encoding: str) -> None:
    assert message(status_change(id=DELETE), encoding).payload.id == MESSAGE_ID


def test_uuid_shaped_id_is_normalised_like_every_uuid(encoding: str) -> None:
    change = message(status_change(id="5F0E1D2C-3B4A-4978-8796-A5B4C3D2E1F0"), encoding).payload
    assert change.id == "5f0e1d2c3b4a49788796a5b4c3d2e1f0"


def test_other_ids_are_kept_as_given(encoding: str) -> None:
    assert message(status_change(id="bulk-update-17"), encoding).payload.id == "bulk-update-17"


@pytest.mark.parametrize("field", ["project_id", "fingerprint", "new_status"])
def test_required_field_absent_is_missing_field(field: str) -> None:
    failed = dead_letter(status_change(**{field: DELETE}))
    assert failed.reason == reasons.MISSING_FIELD
    assert failed.error == f"missing required field: {field}"


@pytest.mark.parametrize("field", ["project_id", "new_status"])
def test_required_field_absent_in_protobuf_is_missing_field(field: str) -> None:
    from tests.decode.payloads import PROTOBUF_CONTENT_TYPE

    assert (
        dead_letter(status_change(**{field: DELETE}), PROTOBUF_CONTENT_TYPE).reason == reasons.MISSING_FIELD
    )


def test_null_new_status_is_missing_field() -> None:
    assert dead_letter(status_change(new_status=None)).reason == reasons.MISSING_FIELD


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"new_status": "1"}, "new_status must be an integer group status, got '1'"),
        ({"new_status": True}, "new_status must be an integer group status, got true"),
        ({"new_substatus": "5"}, "new_substatus must be an integer group substatus or null, got '5'"),
        ({"id": 5}, "id must be a non-empty string, got 5"),
        ({"fingerprint": ["ok", 3]}, "fingerprint[1] must be a non-empty string, got 3"),
        ({"resolution": "next"}, "resolution must be an object with type and version, got 'next'"),
        (
            {"resolution": {"type": "in_release", "version": 3}},
            "resolution.version must be a non-empty string, got 3",
        ),
    ],
)
def test_wrong_json_types_are_invalid_field(fields: dict, error: str) -> None:
    failed = dead_letter(status_change(**fields))
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == error


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"id": ""}, "id must be a non-empty string, got ''"),
        ({"fingerprint": []}, "fingerprint must be a non-empty list of non-empty strings, got []"),
        (
            {"resolution": {"type": "someday", "version": "1.0"}},
            "resolution.type must be one of in_release, in_next_release, got 'someday'",
        ),
        (
            {"resolution": {"type": "in_release", "version": ""}},
            "resolution.version must be a non-empty string, got ''",
        ),
        ({"resolution": {"version": "1.0"}}, "resolution.type is missing"),
        ({"resolution": {"type": "in_release"}}, "resolution.version is missing"),
    ],
)
def test_invalid_values_are_invalid_field_in_either_encoding(encoding: str, fields: dict, error: str) -> None:
    failed = dead_letter(status_change(**fields), encoding)
    assert failed.reason == reasons.INVALID_FIELD
    assert failed.error == error


@pytest.mark.parametrize(
    ("status", "substatus"), sorted(VALID_STATUS_CHANGES, key=lambda p: (p[0], p[1] or 0))
)
def test_every_valid_status_pair_is_accepted(encoding: str, status: int, substatus: int | None) -> None:
    change = message(
        status_change(new_status=int(status), new_substatus=substatus, resolution=None), encoding
    )
    assert (change.payload.new_status, change.payload.new_substatus) == (status, substatus)


@pytest.mark.parametrize(
    ("status", "substatus"),
    [
        (GroupStatus.UNRESOLVED, GroupSubStatus.NEW),
        (GroupStatus.UNRESOLVED, None),
        (GroupStatus.IGNORED, None),
        (GroupStatus.IGNORED, GroupSubStatus.ESCALATING),
        (GroupStatus.RESOLVED, GroupSubStatus.FOREVER),
        (GroupStatus.PENDING_DELETION, GroupSubStatus.ONGOING),
        (GroupStatus.REPROCESSING, None),
        (99, None),
        (-1, None),
        (GroupStatus.UNRESOLVED, 42),
    ],
)
def test_pairs_outside_the_table_are_invalid_status_change(
    encoding: str, status: int, substatus: int | None
) -> None:
    failed = dead_letter(
        status_change(new_status=int(status), new_substatus=substatus, resolution=None), encoding
    )
    assert failed.reason == reasons.INVALID_STATUS_CHANGE
    assert failed.project_id == 1
    assert failed.after_project_check
    assert failed.error.startswith(f"new_status {int(status)} (")
    assert failed.error.endswith("is not a valid status change")


def test_invalid_pair_error_names_the_statuses() -> None:
    failed = dead_letter(status_change(new_status=0, new_substatus=7, resolution=None))
    assert failed.error == "new_status 0 (unresolved) with new_substatus 7 (new) is not a valid status change"


@pytest.mark.parametrize(("status", "substatus"), [(2, 5), (3, None), (0, 3)])
def test_resolution_without_resolved_status_is_invalid_status_change(
    encoding: str, status: int, substatus: int | None
) -> None:
    failed = dead_letter(status_change(new_status=status, new_substatus=substatus), encoding)
    assert failed.reason == reasons.INVALID_STATUS_CHANGE
    assert failed.error == f"a resolution is only valid with new_status 1 (resolved), got new_status {status}"


def test_null_resolution_is_absent(encoding: str) -> None:
    assert message(status_change(resolution=None), encoding).payload.resolution is None
