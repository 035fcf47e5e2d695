"""``apply``: one key's state and a batch of its messages in, the new state and the writes out.

Contract:

* Pure and deterministic: no clock (``context.now`` is used only for lookup
  waits), no randomness, no I/O. ``apply`` never mutates its input state.
* Order (rule 2, E4): the batch is applied in (message time, message id)
  order, ids compared as strings. The state remembers the greatest order it
  took in; a message below it is late (counted) and follows the late rules,
  which converge to the in-order result wherever the rules allow.
* Generations (rule 6.4): a message belongs to the group generation of its
  key order. One older than the delete that ended its generation (late, or
  an occurrence that waited for its event) touches nothing of the next one:
  an occurrence is remembered, records its release (not its event: that
  would have gone with the group's occurrence rows) and is counted
  ``occurrences.dropped_group_deleted``; a status change is stale. In key
  order it would have gone with the deleted group, so this is the in-order
  result.
* Batch independence: for a key-ordered stream, any split into consecutive
  batches, any permutation within a batch and any redelivery of messages give
  the same final state (byte for byte) and the same rows. ``seq`` increases by
  one for every non-duplicate message taken in (applied, held, waiting, or
  dropped by a rule) and for every waiting lookup later settled; a message
  dead-lettered at once leaves no trace (E13), so it takes no ``seq``.
* Writes: one ``KeyWrite`` per call when anything was taken in, carrying the
  new ``seq``; its intents are in the order a writer must apply them (a group
  row before the rows that hang off it) and always end with ``SaveKeyState``.

Every rule lives in a module named for it: duplicates (``dedup``), noise gate
(``noise``), creation (``creation``), existing groups (``occurrences``), status
transitions (``status_changes``), pruning of status-change runs (``runs``),
status changes before their group (``held``), regressions (``regression``),
releases and versions (``releases``), environments (``environments``), events
and lookup waits (``events``), ids (``ids``), rows (``rows``), the stored state
(``state``). Two paths apply them, as Sentry splits its consumers: occurrences
(``occurrence_path``) and status changes (``status_change_path``), over one
working copy of the key (``application``); the commonest call, one occurrence on a
key without a group that does not create one, is applied without the working copy
(``groupless``). This module only sequences them.
"""

from __future__ import annotations

from collections.abc import Sequence

from transforms.core.engine import groupless
from transforms.core.engine.application import key_order
from transforms.core.engine.context import EngineContext
from transforms.core.engine.occurrence_path import OccurrencePath
from transforms.core.engine.state import KeyState, new_state
from transforms.core.engine.status_change_path import StatusChangePath
from transforms.core.intents import Outputs
from transforms.core.model import Message, Occurrence, StatusChange, group_key


def apply(
    state: KeyState | None, messages: Sequence[Message], context: EngineContext
) -> tuple[KeyState, Outputs]:
    """Apply ``messages`` (all of one key, any order) to ``state`` (None for a new key).

    ``apply(state, [], context)`` only retries the key's waiting lookups.
    Raises ``ValueError`` if a message belongs to another key than ``state``, or
    ``context.project`` to another project.
    """
    if state is None:
        if not messages:
            raise ValueError("apply needs a state or at least one message to know its key")
        payload = messages[0].payload
        state = new_state(payload.project_id, payload.hashes[0])
    if context.project.project_id != state.project_id:
        raise ValueError(
            f"context is for project {context.project.project_id}, the key belongs to project {state.project_id}"
        )
    if len(messages) > 1:
        messages = sorted(messages, key=key_order)
    elif messages:
        # The commonest call: one occurrence on a key without a group that does not create one.
        lean = groupless.occurrence(state, messages[0], context)
        if lean is not None:
            if lean.__class__ is tuple:
                return lean
            context = lean  # type: ignore[assignment]
    return _Application(state, context).process(messages)


class _Application(OccurrencePath, StatusChangePath):
    """One key's ``apply`` call: both message paths over one working copy (``application.KeyApplication``)."""

    __slots__ = ()

    def process(self, messages: Sequence[Message]) -> tuple[KeyState, Outputs]:
        if self.waiting:
            self._retry_waiting(final=False)
        project_id = self.project_id
        primary_hash = self.primary_hash
        for message in messages:
            payload = message.payload
            if payload.project_id != project_id or payload.hashes[0] != primary_hash:
                raise ValueError(
                    f"message {message.message_id} belongs to key {message.key}, "
                    f"not {group_key(project_id, primary_hash)}"
                )
            if payload.__class__ is Occurrence:
                self._occurrence(message, payload)
            elif payload.__class__ is StatusChange:
                self._status_change(message, payload)
            else:
                raise TypeError(f"message {message.message_id} carries a {type(payload).__name__}")
        if self.waiting and self.recorded_events:
            self._retry_waiting(final=True)
        return self._finish()
