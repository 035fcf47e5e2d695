"""The occurrence path of ``apply``: an occurrence's event, then creation of its group or attachment to it.

Duplicates (rule 2), the feature gate (3.1), the three event paths and lookups that wait (3.2, 3.3, E7, E13),
the noise gate and the creation quota (3.5, E5, E6), creation, attachment with its environments, releases,
tags and words (3.4), category mismatch, and regression (5.3). A group created here takes the status changes
held for it (``status_change_path``).
"""

from __future__ import annotations

from transforms.core import metrics
from transforms.core.engine.application import KeyApplication, key_order
from transforms.core.engine.creation import create_group
from transforms.core.engine.dedup import memory_id as native_memory_id
from transforms.core.engine.environments import record_environment, record_group_release
from transforms.core.engine.events import event_not_found, waiting_lookup
from transforms.core.engine.ids import creation_id, group_id, occurrence_memory_id
from transforms.core.engine.noise import count_occurrence, passes_gate
from transforms.core.engine.occurrences import attach
from transforms.core.engine.regression import regress, should_regress
from transforms.core.engine.rows import search_message
from transforms.core.engine.state import MutableGroup, WaitingLookup
from transforms.core.engine.tags import index_tags, text_terms
from transforms.core.enums import ActivityType, GroupStatus
from transforms.core.grouptypes import GROUP_TYPES, GroupType
from transforms.core.intents import (
    IndexOccurrence,
    InsertOccurrence,
    LinkHashes,
    RecordEnvironment,
    RecordEvent,
    RecordGroupRelease,
)
from transforms.core.model import Event, Message, Occurrence

_RESOLVED = GroupStatus.RESOLVED
_DUPLICATES = metrics.DUPLICATES
_DROPPED_NOISE = metrics.DROPPED_NOISE
_DROPPED_RATE_LIMITING = metrics.DROPPED_RATE_LIMITING


class OccurrencePath(KeyApplication):
    """The occurrence messages of one ``apply`` call."""

    __slots__ = ()

    def _occurrence(self, message: Message, occurrence: Occurrence) -> None:
        message_time = message.message_time
        occurrence_id = occurrence.id
        memory_id = native_memory_id(b"occurrence:", occurrence_id) or occurrence_memory_id(occurrence_id)
        stored = self.context.stored_occurrence_ids
        if (
            (stored and occurrence_id in stored)
            or self.memory.is_duplicate(memory_id, message_time, self.config.duplicate_retention)
            or (self.waiting and self._is_waiting(occurrence_id))
        ):
            self._count(_DUPLICATES)
            return
        self.occurrence_messages += 1
        message_id = message.message_id
        group_type = GROUP_TYPES[occurrence.type]
        if not (group_type.released or self._allowed(group_type)):  # a released type needs no feature
            self._take_in(message_time, message_id)
            self._count(metrics.DROPPED_FEATURE_DISABLED)
            self.memory.remember(memory_id, message_time)
            if not self._ended_generation(message_time, message_id):
                self.run_open = False
                self.member = None
            return
        event = occurrence.event
        if event is None:
            event = self._find_event(occurrence.event_id)
            if event is None:
                self._lookup_missed(message, occurrence)
                return
            self._take_in(message_time, message_id)
        else:
            self._take_in(message_time, message_id)
            # An occurrence of an ended generation would (normally) have been attached to the deleted group,
            # its event on its occurrence row, gone with the group: it stores none.
            if not occurrence.is_buffered_spans and (
                self.generation_start_time is None or not self._ended_generation(message_time, message_id)
            ):
                self.intents.append(RecordEvent(event, occurrence.level))
                self.recorded_events[event.event_id] = event
        self._apply_occurrence(message_time, message_id, occurrence, group_type, event, memory_id)

    def _allowed(self, group_type: GroupType) -> bool:
        """The feature gate of rule 3.1 (unreleased types need the organization's feature)."""
        allowed = self.features_allowed.get(group_type.type_id)
        if allowed is None:
            allowed = self.features_allowed[group_type.type_id] = group_type.allow_ingest(
                self.context.project.features
            )
        return allowed

    def _find_event(self, event_id: str) -> Event | None:
        event = self.context.events.get(event_id)
        if event is None:
            event = self.recorded_events.get(event_id)
        return event

    def _is_waiting(self, occurrence_id: str) -> bool:
        return any(waiting.occurrence.id == occurrence_id for waiting in self.waiting)

    def _lookup_missed(self, message: Message, occurrence: Occurrence) -> None:
        if self.config.wait_for_events:
            self._take_in(message.message_time, message.message_id)
            self.waiting.append(
                waiting_lookup(message, occurrence, self.context.now, self.config.lookup_retry_window)
            )
            self._count(metrics.EVENT_LOOKUP_WAITING)
        else:
            self.dead_letters.append(
                event_not_found(
                    message.message_id,
                    message.message_time,
                    occurrence,
                    message.data,
                    message.attributes,
                    waited=False,
                )
            )

    def _retry_waiting(self, final: bool) -> None:
        """Apply waiting lookups whose event is now known; dead-letter those past their deadline.

        At the start of a call (``final`` False) every waiting lookup is
        retried against the prefetched events; at its end only against the
        events stored during the call, and nothing is given up.
        """
        now = self.context.now
        give_up = not self.config.wait_for_events
        still_waiting: list[WaitingLookup] = []
        for waiting in sorted(self.waiting, key=key_order):
            occurrence = waiting.occurrence
            event = self._find_event(occurrence.event_id)
            if event is not None:
                self._take_in(waiting.message_time, waiting.message_id)
                self._apply_occurrence(
                    waiting.message_time,
                    waiting.message_id,
                    occurrence,
                    GROUP_TYPES[occurrence.type],
                    event,
                    occurrence_memory_id(occurrence.id),
                )
            elif not final and (give_up or now >= waiting.deadline):
                self.seq += 1
                self.dead_letters.append(
                    event_not_found(
                        waiting.message_id,
                        waiting.message_time,
                        occurrence,
                        waiting.data,
                        waiting.attributes,
                        waited=True,
                    )
                )
            else:
                still_waiting.append(waiting)
        self.waiting = still_waiting

    def _apply_occurrence(
        self,
        message_time: int,
        message_id: str,
        occurrence: Occurrence,
        group_type: GroupType,
        event: Event,
        memory_id: bytes,
    ) -> None:
        """Everything after the event is known: releases, then creation or attachment (3.4, 3.5).

        An occurrence of an ended generation stops after its release: its group was deleted after it.
        """
        self.memory.remember(memory_id, message_time)
        release = event.release
        if release is not None:
            recorded = self.releases.get(release)  # record_release's "nothing to do", without the call
            if recorded is None or recorded > message_time:
                self._record_release(release, message_time)
        if self.generation_start_time is not None and self._ended_generation(message_time, message_id):
            self._count(metrics.DROPPED_GROUP_DELETED)
            return
        self.run_open = False
        self.member = None
        group = self.group
        if group is None:
            self._try_create(message_time, message_id, occurrence, group_type, event)
        elif group.type != occurrence.type and GROUP_TYPES[group.type].category != group_type.category:
            self._count(metrics.CATEGORY_MISMATCH)
        else:
            self._attach(group, message_time, message_id, occurrence, group_type, event)

    def _try_create(
        self, message_time: int, message_id: str, occurrence: Occurrence, group_type: GroupType, event: Event
    ) -> None:
        noise_config = group_type.noise_config
        if noise_config is not None:
            self.noise_count, self.noise_last = count_occurrence(
                self.noise_count, self.noise_last, message_time, noise_config
            )
            if not passes_gate(self.noise_count, noise_config):
                counters = self.counters
                counters[_DROPPED_NOISE] = counters.get(_DROPPED_NOISE, 0) + 1
                return
        quota = self.context.quota
        if quota is not None and not quota.try_acquire(
            self.project_id, group_type, message_time, creation_id(self.primary_hash, self.generation)
        ):
            counters = self.counters
            counters[_DROPPED_RATE_LIMITING] = counters.get(_DROPPED_RATE_LIMITING, 0) + 1
            return
        group = create_group(
            group_id(self.project_id, self.primary_hash, self.generation),
            occurrence,
            event,
            group_type,
            message_time,
            message_id,
        )
        self.group = group
        self.noise_count = 0
        self.noise_last = 0
        self.relink = True
        self._touch()
        self.intents.append(LinkHashes(self.project_id, group.group_id, (self.primary_hash,)))
        self._insert_occurrence(group, message_time, message_id, occurrence, event)
        self._count(metrics.GROUP_CREATED)
        if self.held:
            self._apply_held(message_time)

    def _attach(
        self,
        group: MutableGroup,
        message_time: int,
        message_id: str,
        occurrence: Occurrence,
        group_type: GroupType,
        event: Event,
    ) -> None:
        attach(group, occurrence, event, group_type, message_time, message_id)
        if self.group_slot < 0:
            self._touch()
        self._insert_occurrence(group, message_time, message_id, occurrence, event)
        if group.status == _RESOLVED and should_regress(group, message_time, event.release, self._first_seen):
            data = regress(group, message_time, event.event_id, event.release)
            self._activity(
                group.group_id, occurrence.id, ActivityType.SET_REGRESSION, message_time, message_id, data
            )
            self._count(metrics.REGRESSIONS)

    def _insert_occurrence(
        self, group: MutableGroup, message_time: int, message_id: str, occurrence: Occurrence, event: Event
    ) -> None:
        self.intents.append(
            InsertOccurrence(
                group.group_id,
                message_id,
                message_time,
                event.timestamp,
                occurrence,
                event.release,
                event.environment,
            )
        )
        self._index(group.group_id, occurrence, event)
        environment = event.environment or ""  # environments.environment_name, inlined on the hot path
        if record_environment(group.environments, environment, message_time, message_id):
            self.intents.append(RecordEnvironment(group.group_id, environment, event.release, message_time))
        release = event.release
        if release and record_group_release(group.releases, release, message_time):
            self.intents.append(RecordGroupRelease(group.group_id, release))
        self.attached += 1

    def _index(self, group_id: int, occurrence: Occurrence, event: Event) -> None:
        """The occurrence's tags, counted; its search tags and words, unless this call already gave them
        for the group (they only record that the group has them: ``tags``)."""
        tags, search = index_tags(occurrence.level, event)
        text = (group_id, occurrence.issue_title, occurrence.subtitle, occurrence.culprit)
        given = self.indexed
        if given is None and self.first_indexed is None:
            # The call's first: nothing was given, and an event's search tags are distinct (their keys are:
            # ``search_tags``), so all of them and its words are given. What was given is kept as it is, and
            # made a set only if the call indexes another occurrence (most index one).
            self.first_indexed = (group_id, search, text)
            new_text = True
        else:
            if given is None:  # the call's second: first_indexed is set, and becomes a set
                first_group, first_search, first_text = self.first_indexed  # type: ignore[misc]
                given = self.indexed = {(first_group, tag) for tag in first_search}
                given.add(first_text)
            new_search = []
            for tag in search:
                mark = (group_id, tag)
                if mark not in given:
                    given.add(mark)
                    new_search.append(tag)
            search = tuple(new_search)
            new_text = text not in given
            if new_text:
                given.add(text)
        terms: tuple[str, ...] = ()
        if new_text:
            terms = text_terms(
                search_message(occurrence.issue_title, occurrence.subtitle, occurrence.culprit)
            )
        self.intents.append(
            IndexOccurrence(
                group_id,
                self.context.project.organization_id,
                self.project_id,
                occurrence.id,
                event.timestamp,
                tags,
                search,
                terms,
            )
        )
