"""The test oracle: a small in-memory model of the tables the engine's writes land in.

It applies ``KeyWrite``s the way the Spanner writer must: a write whose ``seq``
is not greater than the key's stored one is ignored; intents are applied in
order; rows that hang off a group (occurrences, activities, environments)
require their group to exist, as interleaved tables do; deleting a group
removes them and unlinks its hashes; releases and environments keep the
smallest first-seen time (environments: on equal times, the later write).
An event recorded in the write that attaches its occurrence is stored on that
occurrence's row and goes with its group; the others get an Events row.
``events`` shows every stored event, wherever it is stored. Tags (``IndexOccurrence``) are counted once per
occurrence row, the first time it is written, within the caps of ``transforms.core.limits`` (values past a
full key counted in its ``other``; search-only values only recorded), and go with their group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transforms.core import limits
from transforms.core.intents import (
    DeleteActivity,
    DeleteGroup,
    GroupRow,
    IndexOccurrence,
    InsertActivity,
    InsertOccurrence,
    KeyWrite,
    LinkHashes,
    RecordEnvironment,
    RecordEvent,
    RecordGroupRelease,
    RecordRelease,
    SaveKeyState,
    UpsertGroup,
)
from transforms.storage.org_words import FULL_KEY, FULL_VALUE


@dataclass
class Tables:
    groups: dict[int, GroupRow] = field(default_factory=dict)
    occurrences: dict[tuple[int, str], InsertOccurrence] = field(default_factory=dict)
    activities: dict[tuple[int, str], InsertActivity] = field(default_factory=dict)
    environments: dict[tuple[int, str], tuple[int, str | None]] = field(default_factory=dict)
    group_releases: set[tuple[int, str]] = field(default_factory=set)
    hashes: dict[tuple[int, str], int] = field(default_factory=dict)
    events: dict[tuple[int, str], RecordEvent] = field(default_factory=dict)
    event_rows: set[tuple[int, str]] = field(default_factory=set)  # events with an Events row
    # Events stored on occurrence rows: (project, event id) -> the (group, occurrence) rows holding them.
    held_events: dict[tuple[int, str], set[tuple[int, str]]] = field(default_factory=dict)
    releases: dict[tuple[int, str], int] = field(default_factory=dict)
    key_states: dict[str, tuple[int, int | None, bytes]] = field(default_factory=dict)
    key_seq: dict[str, int] = field(default_factory=dict)
    ignored_writes: int = 0
    # (group, key, value) -> [times seen, first seen, last seen] (None for search-only values)
    tag_values: dict[tuple[int, str, str], list] = field(default_factory=dict)
    tag_keys: dict[tuple[int, str], list] = field(default_factory=dict)  # (group, key) -> [values, other]
    indexed: set[tuple[int, str]] = field(default_factory=set)  # occurrence rows whose tags are counted

    def apply(self, write: KeyWrite) -> None:
        if write.seq <= self.key_seq.get(write.key, 0):
            self.ignored_writes += 1
            return
        self.key_seq[write.key] = write.seq
        assert isinstance(write.intents[-1], SaveKeyState), "a KeyWrite must end with SaveKeyState"
        pending: dict[tuple[int, str], RecordEvent] = {}
        for intent in write.intents:
            if isinstance(intent, RecordEvent):
                pending[(intent.event.project_id, intent.event.event_id)] = intent
                continue
            if isinstance(intent, InsertOccurrence):
                key = (intent.occurrence.project_id, intent.occurrence.event_id)
                if key in pending:
                    self.events[key] = pending.pop(key)
                    self.held_events.setdefault(key, set()).add((intent.group_id, intent.occurrence.id))
            self._apply(intent)
        for key, record in pending.items():
            self.event_rows.add(key)
            self.events[key] = record

    def _require_group(self, group_id: int, what: str) -> None:
        assert group_id in self.groups, f"{what} for group {group_id} written before its group row"

    def _apply(self, intent: Any) -> None:
        if isinstance(intent, UpsertGroup):
            self.groups[intent.row.group_id] = intent.row
        elif isinstance(intent, DeleteGroup):
            group_id = intent.group_id
            self.groups.pop(group_id, None)
            for table in (self.occurrences, self.activities, self.environments):
                for key in [key for key in table if key[0] == group_id]:
                    del table[key]
            self.group_releases = {pair for pair in self.group_releases if pair[0] != group_id}
            for table in (self.tag_values, self.tag_keys):
                for key in [key for key in table if key[0] == group_id]:
                    del table[key]
            self.indexed = {pair for pair in self.indexed if pair[0] != group_id}
            for key, holders in list(self.held_events.items()):
                holders.difference_update({holder for holder in holders if holder[0] == group_id})
                if not holders:
                    del self.held_events[key]
                    if key not in self.event_rows:
                        del self.events[key]
            for key in [key for key, value in self.hashes.items() if value == group_id]:
                del self.hashes[key]
        elif isinstance(intent, InsertOccurrence):
            self._require_group(intent.group_id, "occurrence")
            self.occurrences[(intent.group_id, intent.occurrence.id)] = intent
        elif isinstance(intent, InsertActivity):
            self._require_group(intent.group_id, "activity")
            self.activities[(intent.group_id, intent.activity_id)] = intent
        elif isinstance(intent, DeleteActivity):
            self.activities.pop((intent.group_id, intent.activity_id), None)
        elif isinstance(intent, RecordEnvironment):
            self._require_group(intent.group_id, "environment")
            key = (intent.group_id, intent.environment)
            current = self.environments.get(key)
            if current is None or intent.first_seen <= current[0]:  # the minimum; on a tie the later write
                self.environments[key] = (intent.first_seen, intent.first_release)
        elif isinstance(intent, RecordGroupRelease):
            self._require_group(intent.group_id, "group release")
            self.group_releases.add((intent.group_id, intent.release))
        elif isinstance(intent, LinkHashes):
            self._require_group(intent.group_id, "hash link")
            for hash_ in intent.hashes:
                self.hashes[(intent.project_id, hash_)] = intent.group_id
        elif isinstance(intent, IndexOccurrence):
            self._require_group(intent.group_id, "tags")
            self._index(intent)
        elif isinstance(intent, RecordRelease):
            key = (intent.project_id, intent.version)
            current = self.releases.get(key)
            if current is None or intent.first_seen < current:
                self.releases[key] = intent.first_seen
        elif isinstance(intent, SaveKeyState):
            # ``relink`` is an instruction to the writer (rewrite KeyStates), not data.
            self.key_states[f"{intent.project_id}:{intent.primary_hash}"] = (
                intent.generation,
                intent.group_id,
                intent.state,
            )
        else:  # pragma: no cover - a new intent type must be modelled here
            raise AssertionError(f"unknown intent {intent!r}")

    def _index(self, intent: IndexOccurrence) -> None:
        occurrence = (intent.group_id, intent.occurrence_id)
        if occurrence in self.indexed:
            return
        self.indexed.add(occurrence)
        group = intent.group_id
        for key, value in intent.tags:
            row = self.tag_values.get((group, key, value))
            if row is not None:
                row[0] += 1
                row[1], row[2] = min(row[1], intent.seen), max(row[2], intent.seen)
                continue
            key_row = self._tag_key(group, key)
            if key_row is None:
                continue
            if key_row[0] < limits.TAG_VALUES_PER_KEY:
                key_row[0] += 1
                self.tag_values[(group, key, value)] = [1, intent.seen, intent.seen]
            else:
                key_row[1] += 1
        marks = [*intent.search_tags, *(("@text", term) for term in intent.terms)]
        for key, value in marks:
            if (group, key, value) in self.tag_values:
                continue
            key_row = self._tag_key(group, key)
            cap = limits.TERMS_PER_GROUP if key == "@text" else limits.TAG_VALUES_PER_KEY
            if key_row[0] < cap:
                key_row[0] += 1
                self.tag_values[(group, key, value)] = [None, None, None]
            elif key == "@text" and (group, FULL_KEY, FULL_VALUE) not in self.tag_values:
                self.tag_values[(group, FULL_KEY, FULL_VALUE)] = [None, None, None]  # a word was dropped
                self.tag_keys[(group, FULL_KEY)] = [1, 0]

    def _tag_key(self, group: int, key: str) -> list | None:
        row = self.tag_keys.get((group, key))
        if row is None:
            keys = sum(1 for g, k in self.tag_keys if g == group and not k.startswith("@"))
            if not key.startswith("@") and keys >= limits.TAG_KEYS_PER_GROUP:
                return None
            row = self.tag_keys[(group, key)] = [0, 0]
        return row

    def rows(self) -> dict[str, Any]:
        """Every table but the saved key states, for comparing two runs."""
        return {
            "groups": self.groups,
            "occurrences": self.occurrences,
            "activities": self.activities,
            "environments": self.environments,
            "group_releases": self.group_releases,
            "hashes": self.hashes,
            "events": self.events,
            "releases": self.releases,
            "tag_values": self.tag_values,
            "tag_keys": self.tag_keys,
        }
