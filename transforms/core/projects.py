"""The project check (rule 3.1, E1): messages of unregistered projects become ``unknown_project``.

It runs after decoding, once the project registry is at hand, and ranks
between ``unknown_group_type`` and ``project_mismatch``: a dead letter whose
reason ranks after it (``DeadLetter.after_project_check``) is re-examined and
becomes ``unknown_project`` when its project is not registered either.
"""

from __future__ import annotations

from collections.abc import Mapping

from transforms.core import reasons
from transforms.core.model import DeadLetter, Message, ProjectInfo


def check_project(decoded: Message | DeadLetter, projects: Mapping[int, ProjectInfo]) -> Message | DeadLetter:
    """``decoded`` unchanged, or an ``unknown_project`` dead letter (stage "validate") for the same message.

    Dead letters that rank before the project check (``undecodable``,
    ``missing_field``...) pass through unchanged: their reason wins.
    """
    if isinstance(decoded, Message):
        project_id: int | None = decoded.payload.project_id  # Message.project_id without the property's call
    elif decoded.after_project_check:
        project_id = decoded.project_id
    else:
        return decoded
    # ``get``, not ``in``: the registry's ``get`` is its dict's own (``RegistryView``), ``in`` a Python call; a
    # registered project's ``ProjectInfo`` is never None.
    if project_id is None or projects.get(project_id) is not None:
        return decoded
    return DeadLetter(
        message_id=decoded.message_id,
        message_time=decoded.message_time,
        data=decoded.data,
        attributes=decoded.attributes,
        reason=reasons.UNKNOWN_PROJECT,
        error=f"project {project_id} is not registered",
        stage=reasons.STAGE_VALIDATE,
        project_id=project_id,
    )
