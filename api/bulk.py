"""Bulk update and bulk delete as status-change messages (rule 1.4, 6.2).

The index never writes groups: it publishes one status-change message per selected group to the pipeline's
input topic, so every change passes through the same serial, per-key processing as any other message. Each
message is Sentry's status-change JSON (``payload_type``, a fresh uuid4 hex ``id``, ``project_id``, the group's
raw ``fingerprint[0]``, ``new_status``, ``new_substatus``) plus our optional ``resolution``; delete is
``new_status`` 3 (PENDING_DELETION).

A bulk update body is Sentry's: ``status`` (``resolved``, ``resolvedInNextRelease``, ``unresolved``,
``ignored``; ``muted`` is Sentry's legacy name for ignored), optional ``substatus``, ``statusDetails``
(``inRelease``: a version, ``inNextRelease``: true; the ``ignore*`` snooze conditions) and the legacy
``snoozeDuration`` (minutes; null means forever). Snoozes are not timed here: an ignore with any condition
becomes IGNORED / UNTIL_CONDITION_MET and stays ignored until a status change or an escalation moves it; an
ignore without one is IGNORED / FOREVER.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from api.errors import bad_request
from api.query.vocabulary import SUBSTATUS_BY_NAME
from transforms.core import limits
from transforms.core.enums import (
    STATUS_NAMES,
    SUBSTATUS_NAMES,
    VALID_STATUS_CHANGES,
    GroupStatus,
    GroupSubStatus,
    ResolutionType,
)

# Sentry's STATUS_UPDATE_CHOICES (with the legacy names).
UPDATE_STATUSES: dict[str, int] = {
    "resolved": GroupStatus.RESOLVED,
    "resolvedInNextRelease": GroupStatus.RESOLVED,
    "unresolved": GroupStatus.UNRESOLVED,
    "ignored": GroupStatus.IGNORED,
    "muted": GroupStatus.IGNORED,
}
# Sentry's SUBSTATUS_UPDATE_CHOICES (as the query language names them), deprecated aliases included.
UPDATE_SUBSTATUSES: dict[str, int] = {
    **SUBSTATUS_BY_NAME,
    "until_escalating": GroupSubStatus.UNTIL_ESCALATING,
    "until_condition_met": GroupSubStatus.UNTIL_CONDITION_MET,
    "forever": GroupSubStatus.FOREVER,
}
_SNOOZE_FIELDS = ("snoozeDuration", "ignoreDuration")
_IGNORE_CONDITIONS = ("ignoreDuration", "ignoreCount", "ignoreWindow", "ignoreUserCount", "ignoreUserWindow")
_BODY_FIELDS = ("status", "substatus", "statusDetails", *_SNOOZE_FIELDS)
_DETAIL_FIELDS = ("inRelease", "inNextRelease", "ignoreUntilEscalating", *_IGNORE_CONDITIONS)
DELETE_STATUS = GroupStatus.PENDING_DELETION
CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A validated bulk update: the pair to send, the resolution, and Sentry's echo of the change."""

    status: int
    substatus: int | None
    resolution_type: str | None = None
    # The version for in_release; for in_next_release it is each project's latest release, found when sending.
    resolution_version: str | None = None
    echo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SelectedGroup:
    group_id: int
    project_id: int
    fingerprint: str


def parse_update(body: Any) -> StatusUpdate:
    """Validate a bulk update body; raises ``ApiError`` (400) naming what is wrong."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    _refuse_unknown(
        body,
        _BODY_FIELDS,
        '"{name}" is not supported by this issue index: bulk updates change status only (fields: {known}).',
    )
    status_name = body.get("status")
    if status_name is None:
        raise bad_request('"status" is required.')
    if not isinstance(status_name, str) or status_name not in UPDATE_STATUSES:
        raise bad_request(f'Invalid status "{status_name}" (expected one of: {", ".join(UPDATE_STATUSES)}).')
    status = UPDATE_STATUSES[status_name]
    details = body.get("statusDetails")
    if details is None:
        details = {}
    if not isinstance(details, dict):
        raise bad_request('"statusDetails" must be an object.')
    _refuse_unknown(details, _DETAIL_FIELDS, "statusDetails.{name} is not supported (supported: {known}).")
    substatus = _substatus(body.get("substatus"))
    snooze = _snooze(body, details)

    if status == GroupStatus.RESOLVED:
        return _resolve(status_name, details, substatus, snooze)
    if details.get("inRelease") is not None or details.get("inNextRelease"):
        raise bad_request("statusDetails.inRelease and inNextRelease apply to status resolved only.")
    if status == GroupStatus.UNRESOLVED:
        if snooze or details.get("ignoreUntilEscalating"):
            raise bad_request("Snooze conditions apply to status ignored only.")
        substatus = GroupSubStatus.ONGOING if substatus is None else substatus
        _check_pair(status, substatus)
        return StatusUpdate(status, substatus, echo=_echo(status, substatus, {}))
    # ignored
    if substatus is None:
        if details.get("ignoreUntilEscalating"):
            substatus = GroupSubStatus.UNTIL_ESCALATING
        elif snooze:
            substatus = GroupSubStatus.UNTIL_CONDITION_MET
        else:
            substatus = GroupSubStatus.FOREVER
    _check_pair(status, substatus)
    return StatusUpdate(status, substatus, echo=_echo(status, substatus, {}))


def _resolve(status_name: str, details: dict, substatus: int | None, snooze: bool) -> StatusUpdate:
    if substatus is not None:
        raise bad_request(f'substatus "{SUBSTATUS_NAMES[substatus]}" cannot be set with status resolved.')
    if snooze or details.get("ignoreUntilEscalating"):
        raise bad_request("Snooze conditions apply to status ignored only.")
    in_release = details.get("inRelease")
    in_next = details.get("inNextRelease")
    if in_next not in (None, True, False):
        raise bad_request("statusDetails.inNextRelease must be true or false.")
    next_release = status_name == "resolvedInNextRelease" or in_next is True
    if in_release is not None:
        if not isinstance(in_release, str) or not in_release.strip():
            raise bad_request("statusDetails.inRelease must be a release version (a non-empty string).")
        size = limits.exceeds(in_release, limits.MAX_RELEASE_BYTES)
        if size is not None:
            raise bad_request(
                f"statusDetails.inRelease is {size} bytes long; a release version is at most "
                f"{limits.MAX_RELEASE_BYTES} bytes."
            )
        if next_release:
            raise bad_request("statusDetails.inRelease and inNextRelease cannot be combined.")
        return _resolved(ResolutionType.IN_RELEASE, in_release, {"inRelease": in_release})
    if next_release:
        return _resolved(ResolutionType.IN_NEXT_RELEASE, None, {"inNextRelease": True})
    return _resolved(None, None, {})


def _resolved(resolution_type: str | None, version: str | None, details: dict[str, Any]) -> StatusUpdate:
    return StatusUpdate(
        GroupStatus.RESOLVED, None, resolution_type, version, _echo(GroupStatus.RESOLVED, None, details)
    )


def _refuse_unknown(given: dict, known: tuple[str, ...], message: str) -> None:
    """A 400 for the first name in ``given`` that is not ``known``: ``message`` with ``{name}`` and ``{known}``
    (the known names, comma-separated) filled in."""
    unknown = next((name for name in given if name not in known), None)
    if unknown is not None:
        raise bad_request(message.format(name=unknown, known=", ".join(known)))


def _substatus(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in UPDATE_SUBSTATUSES:
        choices = ", ".join(UPDATE_SUBSTATUSES)
        raise bad_request(f'Invalid substatus "{value}" (expected one of: {choices}).')
    return UPDATE_SUBSTATUSES[value]


def _snooze(body: dict, details: dict) -> bool:
    """Whether any snooze condition is set (a non-negative number; null means none, i.e. forever)."""
    present = False
    for name, value in [
        *((n, body.get(n)) for n in _SNOOZE_FIELDS),
        *((n, details.get(n)) for n in _IGNORE_CONDITIONS),
    ]:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad_request(f'"{name}" must be a non-negative whole number or null.')
        present = True
    flag = details.get("ignoreUntilEscalating")
    if flag not in (None, True, False):
        raise bad_request("statusDetails.ignoreUntilEscalating must be true or false.")
    return present


def _check_pair(status: int, substatus: int | None) -> None:
    if (status, substatus) not in VALID_STATUS_CHANGES:
        raise bad_request(
            f'substatus "{SUBSTATUS_NAMES.get(substatus, substatus)}" cannot be set with status '
            f"{STATUS_NAMES[status]}."
        )


def _echo(status: int, substatus: int | None, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": STATUS_NAMES[status],
        "substatus": SUBSTATUS_NAMES.get(substatus) if substatus is not None else None,
        "statusDetails": details,
    }


def status_change(
    group: SelectedGroup,
    status: int,
    substatus: int | None,
    resolution: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The status-change payload for one group (rule 1.4)."""
    payload: dict[str, Any] = {
        "payload_type": "status_change",
        "id": uuid.uuid4().hex,
        "project_id": group.project_id,
        "fingerprint": [group.fingerprint],
        "new_status": int(status),
        "new_substatus": None if substatus is None else int(substatus),
    }
    if resolution is not None:
        payload["resolution"] = {"type": resolution[0], "version": resolution[1]}
    return payload


def update_payloads(
    groups: Iterable[SelectedGroup], update: StatusUpdate, latest_releases: dict[int, str]
) -> list[dict[str, Any]]:
    """One payload per group; ``latest_releases`` gives each project's version for in_next_release."""
    payloads = []
    for group in groups:
        resolution = None
        if update.resolution_type == ResolutionType.IN_RELEASE:
            resolution = (ResolutionType.IN_RELEASE, update.resolution_version or "")
        elif update.resolution_type == ResolutionType.IN_NEXT_RELEASE:
            resolution = (ResolutionType.IN_NEXT_RELEASE, latest_releases[group.project_id])
        payloads.append(status_change(group, update.status, update.substatus, resolution))
    return payloads


def delete_payloads(groups: Iterable[SelectedGroup]) -> list[dict[str, Any]]:
    return [status_change(group, DELETE_STATUS, None) for group in groups]


class PublishError(RuntimeError):
    """Some status changes could not be published (the others may have been)."""


class StatusChangePublisher:
    """Publishes status-change payloads as JSON to one topic and waits until Pub/Sub has them all."""

    def __init__(self, client: Any, topic_path: str, timeout: float = 60.0) -> None:
        self._client = client
        self.topic_path = topic_path
        self._timeout = timeout

    def publish(self, payloads: list[dict[str, Any]]) -> list[str]:
        """The message ids, in payload order; raises ``PublishError`` if any publish failed."""
        futures = [
            self._client.publish(self.topic_path, orjson.dumps(payload), content_type=CONTENT_TYPE)
            for payload in payloads
        ]
        ids, errors = [], []
        for future in futures:
            try:
                ids.append(future.result(timeout=self._timeout))
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise PublishError(
                f"{len(errors)} of {len(payloads)} status changes could not be published to "
                f"{self.topic_path}: {errors[0]}"
            )
        return ids


def topic_path(project: str, topic: str) -> str:
    """``projects/P/topics/T`` from a full path or a topic name in ``project``."""
    if topic.startswith("projects/"):
        return topic
    return f"projects/{project}/topics/{topic}"
