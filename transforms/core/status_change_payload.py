"""Decoding a status change payload (rule 1.4, 5.1).

``status_change_from_payload`` checks the fields in the order of E1 and raises
``Rejected`` naming the first thing wrong; ``invalid_status_change`` (a status and
substatus that do not go together, or a resolution without the resolved status)
is ranked after ``unknown_project``, so it carries the project id.
"""

from __future__ import annotations

from typing import Any

from transforms.core import limits, reasons
from transforms.core.enums import (
    STATUS_NAMES,
    SUBSTATUS_NAMES,
    VALID_STATUS_CHANGES,
    GroupStatus,
    ResolutionType,
)
from transforms.core.model import Resolution, StatusChange
from transforms.core.payload_fields import (
    Rejected,
    check_fingerprint,
    check_project_id,
    invalid,
    missing_message,
    normalised_uuid,
)

_STATUS_CHANGE_REQUIRED = ("project_id", "fingerprint", "new_status")


def status_change_from_payload(p: dict[str, Any], message_id: str) -> StatusChange:
    missing = [name for name in _STATUS_CHANGE_REQUIRED if p.get(name) is None]
    if missing:
        raise Rejected(reasons.MISSING_FIELD, missing_message(p, missing))

    project_id = check_project_id(p["project_id"])
    fingerprint, hashes = check_fingerprint(p["fingerprint"], project_id)
    new_status = p["new_status"]
    if type(new_status) is not int:
        raise invalid("new_status", "must be an integer group status", new_status, project_id)
    new_substatus = p.get("new_substatus")
    if new_substatus is not None and type(new_substatus) is not int:
        raise invalid(
            "new_substatus", "must be an integer group substatus or null", new_substatus, project_id
        )
    change_id = p.get("id")
    if change_id is None:
        change_id = message_id
    elif type(change_id) is not str or not change_id:
        raise invalid("id", "must be a non-empty string", change_id, project_id)
    else:
        change_id = normalised_uuid(change_id) or change_id
    resolution = p.get("resolution")
    if resolution is not None:
        resolution = _resolution(resolution, project_id)

    # invalid_status_change: ranked after unknown_project
    if (new_status, new_substatus) not in VALID_STATUS_CHANGES:
        raise Rejected(
            reasons.INVALID_STATUS_CHANGE,
            f"new_status {_named(new_status, STATUS_NAMES)} with new_substatus "
            f"{_named(new_substatus, SUBSTATUS_NAMES)} is not a valid status change",
            project_id,
        )
    if resolution is not None and new_status != GroupStatus.RESOLVED:
        raise Rejected(
            reasons.INVALID_STATUS_CHANGE,
            f"a resolution is only valid with new_status {int(GroupStatus.RESOLVED)} (resolved), "
            f"got new_status {new_status}",
            project_id,
        )
    return StatusChange(
        id=change_id,
        project_id=project_id,
        fingerprint=fingerprint,
        hashes=hashes,
        new_status=new_status,
        new_substatus=new_substatus,
        resolution=resolution,
    )


def _named(value: int | None, names: dict[int, str]) -> str:
    if value is None:
        return "null"
    name = names.get(value)
    return f"{value} ({name})" if name else f"{value} (unknown)"


def _resolution(value: Any, project_id: int) -> Resolution:
    if type(value) is not dict:
        raise invalid("resolution", "must be an object with type and version", value, project_id)
    kind = value.get("type")
    version = value.get("version")
    if kind is None or version is None:
        absent = "resolution.type" if kind is None else "resolution.version"
        raise Rejected(reasons.INVALID_FIELD, f"{absent} is missing", project_id)
    if type(kind) is not str or kind not in ResolutionType.ALL:
        raise invalid("resolution.type", f"must be one of {', '.join(ResolutionType.ALL)}", kind, project_id)
    if type(version) is not str or not version:
        raise invalid("resolution.version", "must be a non-empty string", version, project_id)
    size = limits.exceeds(version, limits.MAX_RELEASE_BYTES)
    if size is not None:
        raise Rejected(
            reasons.INVALID_FIELD,
            f"resolution.version is {size} bytes, more than the limit of {limits.MAX_RELEASE_BYTES} "
            "(Sentry's limit of a release name)",
            project_id,
        )
    return Resolution(kind, version)
