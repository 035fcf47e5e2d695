"""The generator: one pass over message times, each message decided from what was generated before it."""

from __future__ import annotations

import heapq
import random
from bisect import bisect
from collections.abc import Iterator
from typing import Any

import orjson

from pipeline.workload.config import (
    BURST_KEY_SHARE,
    JSON,
    PROTOBUF,
    ZIPF_OFFSET,
    WorkloadConfig,
    noise_free,
)
from pipeline.workload.invalid import invalidate, reason_for
from pipeline.workload.keys import Key, KeyPool, make_key, semver_slot
from pipeline.workload.payloads import (
    JSON_ATTRIBUTES,
    NO_ATTRIBUTES,
    PROTOBUF_ATTRIBUTES,
    Releases,
    encoding_of,
    occurrence_payload,
    protobuf_or_none,
)
from pipeline.workload.summary import (
    DELETE,
    ESCALATING,
    IGNORE_FOREVER,
    IGNORE_UNTIL_CONDITION_MET,
    IGNORE_UNTIL_ESCALATING,
    KIND_BUFFERED_SPANS,
    KIND_INVALID,
    KIND_LOOKUP,
    KIND_OCCURRENCE,
    KIND_REDELIVERY,
    KIND_REPUBLISH,
    KIND_STATUS_CHANGE,
    KIND_UNKNOWN_PROJECT,
    RESOLVE,
    RESOLVE_IN_NEXT_RELEASE,
    RESOLVE_IN_RELEASE,
    STATUS_CHANGE_WEIGHTS,
    STATUS_CHANGES,
    WorkloadSummary,
)
from transforms.core import reasons
from transforms.core.model import MICROS, RawMessage, to_rfc3339


def _fraction(share: float) -> float:
    return max(0.0, min(1.0, share))


class Workload:
    """Iterate to get the messages (each iteration regenerates the same ones); ``summary()`` describes them.

    Generation is single-pass and streaming: memory grows with the number of
    keys, not of messages (except the map of expected dead letters).
    """

    def __init__(self, config: WorkloadConfig | None = None) -> None:
        self.config = config or WorkloadConfig()
        self._summary: WorkloadSummary | None = None

    def __iter__(self) -> Iterator[RawMessage]:
        summary = WorkloadSummary()
        messages = _Generator(self.config, summary).messages()
        window = self.config.shuffle_window
        if window > 1:
            messages = _shuffle(messages, window, random.Random(f"shuffle:{self.config.seed}"))
        yield from messages
        self._summary = summary

    def summary(self) -> WorkloadSummary:
        """The summary of the messages; generates them (without keeping them) if they were not iterated."""
        if self._summary is None:
            for _ in self:
                pass
        assert self._summary is not None
        return self._summary


def _shuffle(messages: Iterator[RawMessage], window: int, rng: random.Random) -> Iterator[RawMessage]:
    """Each message leaves at a random point among the next ``window`` positions (a local shuffle)."""
    buffer: list[RawMessage] = []
    randrange = rng.randrange
    for message in messages:
        buffer.append(message)
        if len(buffer) >= window:
            index = randrange(len(buffer))
            buffer[index], buffer[-1] = buffer[-1], buffer[index]
            yield buffer.pop()
    while buffer:
        index = randrange(len(buffer))
        buffer[index], buffer[-1] = buffer[-1], buffer[index]
        yield buffer.pop()


class _Generator:
    """One pass of generation: walks message times in order and decides each message from the state so far."""

    def __init__(self, config: WorkloadConfig, summary: WorkloadSummary) -> None:
        self.config = config
        self.summary = summary
        self.rng = random.Random(f"workload:{config.seed}")
        rng = self.rng

        # Keys: key 0 is the hot key, an error of the first project; the others follow a Zipf popularity.
        weights = [
            (type_id, weight)
            for type_id, weight in config.type_weights
            if weight > 0 and (config.noise or noise_free(type_id))
        ]
        type_ids = [type_id for type_id, _ in weights]
        type_cum = _cumulative([weight for _, weight in weights])
        project_cum = _cumulative([1.0 / (rank + 1) for rank in range(len(config.projects))])
        first_type = 1 if 1 in type_ids else type_ids[0]
        self.keys: list[Key] = [make_key(0, config.projects[0], first_type, rng, semver_slot(0))]
        for index in range(1, config.keys):
            slot = bisect(project_cum, rng.random() * project_cum[-1])
            type_id = type_ids[bisect(type_cum, rng.random() * type_cum[-1])]
            self.keys.append(make_key(index, config.projects[slot], type_id, rng, semver_slot(slot)))
        # Zipf-Mandelbrot popularity (weight 1 / (rank + 5)^s): a skewed head that stays below the hot key.
        self.zipf_cum = _cumulative(
            [1.0 / ((rank + ZIPF_OFFSET) ** config.zipf_exponent) for rank in range(1, config.keys)]
        )
        summary.hot_key = self.keys[0].label

        # Keys of unregistered projects (valid messages, dead-lettered as unknown_project).
        self.foreign_keys = [
            make_key(-1 - i, config.unknown_projects[i % len(config.unknown_projects)], 1, rng)
            for i in range(max(1, min(50, config.keys // 100)))
        ]

        # What each message slot is, by cumulative share; "occurrence" takes the rest.
        kinds = (
            (KIND_INVALID, config.invalid_share),
            (KIND_STATUS_CHANGE, config.status_change_share),
            (KIND_LOOKUP, config.lookup_share),
            (KIND_BUFFERED_SPANS, config.buffered_spans_share),
            (KIND_REDELIVERY, config.redelivery_share),
            (KIND_REPUBLISH, config.republish_share),
            (KIND_UNKNOWN_PROJECT, config.unknown_project_share),
        )
        self.kind_names = [name for name, _ in kinds]
        self.kind_cum = _cumulative([share for _, share in kinds])
        # Occurrence slots pick the hot key with this probability; status changes pick it 10% of the time.
        picking = 1.0 - config.invalid_share - config.unknown_project_share - config.status_change_share
        wanted = config.hot_key_share - 0.1 * config.status_change_share
        self.hot_probability = _fraction(max(0.0, wanted) / max(picking, 1e-9))
        self.sc_names = [name for name, _ in STATUS_CHANGE_WEIGHTS]
        self.sc_cum = _cumulative([weight for _, weight in STATUS_CHANGE_WEIGHTS])

        self.next_id = 0
        self.releases = Releases(config)
        self.grouped = KeyPool("grouped")  # keys that (roughly) have a group
        self.ignored = KeyPool("ignored")
        self.followups: list[tuple[int, int, int]] = []  # heap of (due time, sequence, key index)
        self.events: dict[int, list[str]] = {p: [] for p in config.projects}  # recent stored event ids
        self.recent_payloads: list[dict[str, Any]] = []  # recent valid occurrence payloads (republish)
        self.previous: RawMessage | None = None
        self.previous_meta: tuple[str | None, int | None, str | None] = (None, None, None)
        self.invalid_count = 0
        self.burst_key: Key | None = None
        self.keys_used: set[int] = set()

    # -- times -----------------------------------------------------------------------------------------

    def _times(self) -> Iterator[tuple[int, bool]]:
        """``messages`` sorted message times (whole ms) with bursts; yields (time, in a burst)."""
        config = self.config
        rng = random.Random(f"times:{config.seed}")
        bucket = (
            60 * MICROS if config.duration >= 600 * MICROS else max(MICROS // 1000, config.duration // 10)
        )
        buckets = max(1, -(-config.duration // bucket))
        weights = []
        bursts = []
        for index in range(buckets):
            # A daily cycle (quieter at night) and occasional bursts of 4 to 15 times the traffic.
            hour = ((config.start + index * bucket) // (3600 * MICROS)) % 24
            weight = 0.6 + 0.4 * (1 - abs(hour - 14) / 12)
            burst = rng.random() < config.burst_share
            if burst:
                weight *= rng.uniform(4, 15)
            weights.append(weight)
            bursts.append(burst)
        total = sum(weights)
        # Largest-remainder allocation of the messages to buckets, then uniform times within each bucket.
        exact = [config.messages * w / total for w in weights]
        counts = [int(x) for x in exact]
        remainder = config.messages - sum(counts)
        order = sorted(range(buckets), key=lambda i: (counts[i] - exact[i], i))
        for i in order[:remainder]:
            counts[i] += 1
        for index, count in enumerate(counts):
            if not count:
                continue
            low = config.start + index * bucket
            width_ms = max(1, min(bucket, config.end - low) // 1000)
            random_ = rng.random
            times = sorted(low + int(random_() * width_ms) * 1000 for _ in range(count))
            if bursts[index]:
                # An incident: any key, popular or not, suddenly fires (30% of the minute's messages).
                self.burst_key = self.keys[1 + int(rng.random() * (len(self.keys) - 1))]
            else:
                self.burst_key = None
            for time in times:
                yield time, bursts[index]

    # -- the main loop ----------------------------------------------------------------------------------

    def messages(self) -> Iterator[RawMessage]:
        rng = self.rng
        random_ = rng.random
        kind_cum = self.kind_cum
        kind_names = self.kind_names
        summary = self.summary
        for time, in_burst in self._times():
            roll = random_()
            index = bisect(kind_cum, roll)
            kind = kind_names[index] if index < len(kind_names) else KIND_OCCURRENCE
            if kind == KIND_OCCURRENCE:
                message = self._occurrence(time, in_burst)
            elif kind == KIND_REDELIVERY and self.previous is not None:
                message = self._redelivery()
            elif kind == KIND_LOOKUP:
                message = self._lookup(time, in_burst)
            elif kind == KIND_BUFFERED_SPANS:
                message = self._occurrence(time, in_burst, buffered=True)
            elif kind == KIND_STATUS_CHANGE:
                message = self._status_change(time)
            elif kind == KIND_INVALID:
                message = self._invalid(time)
            elif kind == KIND_REPUBLISH and self.recent_payloads:
                message = self._republish(time)
            elif kind == KIND_UNKNOWN_PROJECT:
                message = self._unknown_project(time)
            else:  # nothing to copy yet
                message = self._occurrence(time, in_burst)
            self.previous = message
            if summary.first_time is None:
                summary.first_time = time
            summary.last_time = time
            summary.messages += 1
            yield message
        summary.keys_used = len(self.keys_used)

    # -- message kinds ----------------------------------------------------------------------------------

    def _pick_key(self, time: int, in_burst: bool) -> Key:
        followups = self.followups
        if followups and followups[0][0] <= time:
            _, _, index = heapq.heappop(followups)
            return self.keys[index]
        roll = self.rng.random()
        if roll < self.hot_probability:
            return self.keys[0]
        if in_burst and self.burst_key is not None and roll < self.hot_probability + BURST_KEY_SHARE:
            return self.burst_key
        return self.keys[self._zipf_index()]

    def _zipf_index(self) -> int:
        cum = self.zipf_cum
        return 1 + bisect(cum, self.rng.random() * cum[-1])

    def _occurrence(
        self, time: int, in_burst: bool, *, buffered: bool = False, key: Key | None = None
    ) -> RawMessage:
        key = key or self._pick_key(time, in_burst)
        payload = occurrence_payload(key, time, self.rng, self.releases, with_event=True)
        if buffered:
            payload["is_buffered_spans"] = True
        elif key.released:
            events = self.events[key.project_id]
            events.append(payload["event_id"])
            if len(events) > 512:
                del events[:256]
        self._count_valid_occurrence(key, time)
        self._remember_payload(payload)
        return self._emit(payload, time, KIND_BUFFERED_SPANS if buffered else KIND_OCCURRENCE, key=key)

    def _lookup(self, time: int, in_burst: bool) -> RawMessage:
        key = self._pick_key(time, in_burst)
        events = self.events.get(key.project_id)
        if not events:  # no stored event in this project yet: carry one
            return self._occurrence(time, in_burst, key=key)
        payload = occurrence_payload(key, time, self.rng, self.releases, with_event=False)
        payload["event_id"] = events[int(self.rng.random() * len(events))]
        self._count_valid_occurrence(key, time)
        self._remember_payload(payload)
        return self._emit(payload, time, KIND_LOOKUP, key=key)

    def _count_valid_occurrence(self, key: Key, time: int) -> None:
        if key.resolved:
            self.summary.occurrences_after_resolve += 1
            key.resolved = False
        key.seen += 1
        self.summary.by_type[key.type_id] += 1
        if key.released and not key.grouped and key.seen >= key.threshold:
            key.grouped = True
            self.grouped.add(key)

    def _remember_payload(self, payload: dict[str, Any]) -> None:
        recent = self.recent_payloads
        recent.append(payload)
        if len(recent) > 256:
            del recent[:128]

    def _status_change(self, time: int) -> RawMessage:
        rng = self.rng
        name = self.sc_names[bisect(self.sc_cum, rng.random() * self.sc_cum[-1])]
        key: Key | None = None
        if name == ESCALATING and rng.random() < 0.8:
            key = self.ignored.pick(rng)
        if key is None and (rng.random() < 0.12 or not self.grouped.keys):
            # Before its group exists: a key with no occurrence yet, which usually gets some soon after.
            for _ in range(8):
                candidate = self.keys[self._zipf_index()]
                if candidate.seen == 0 and candidate.released:
                    key = candidate
                    break
            if key is not None and rng.random() < 0.7:
                self._follow_up(key, time + rng.randrange(1, 20 * 60) * 1000 * 1000)
        if key is None and self.keys[0].grouped and rng.random() < 0.1:
            key = self.keys[0]
        if key is None:
            key = self.grouped.pick(rng) or self.keys[self._zipf_index()]
        status, substatus, resolution_type = STATUS_CHANGES[name]
        payload: dict[str, Any] = {"payload_type": "status_change"}
        if rng.random() < 0.95:  # without an id, the message id stands for it
            payload["id"] = f"{rng.getrandbits(128):032x}"
        payload["project_id"] = key.project_id
        payload["fingerprint"] = key.fingerprint
        payload["new_status"] = int(status)
        payload["new_substatus"] = None if substatus is None else int(substatus)
        if resolution_type is not None:
            payload["resolution"] = {
                "type": resolution_type,
                "version": self.releases.name(key.project_id, time, 0),
            }
        self._track_status(key, name, time)
        self.summary.status_changes[name] += 1
        if key.seen == 0:  # no occurrence yet (or none since its group was deleted)
            self.summary.status_changes_before_group += 1
        return self._emit(payload, time, KIND_STATUS_CHANGE, key=key)

    def _track_status(self, key: Key, name: str, time: int) -> None:
        if name in (RESOLVE, RESOLVE_IN_RELEASE, RESOLVE_IN_NEXT_RELEASE):
            key.resolved = True
            if self.rng.random() < 0.6:  # the issue comes back, in this release or a later one
                self._follow_up(key, time + self.rng.randrange(1, 90 * 60) * 1000 * 1000)
        elif name in (IGNORE_UNTIL_ESCALATING, IGNORE_UNTIL_CONDITION_MET, IGNORE_FOREVER):
            key.resolved = False
            key.ignored = True
            self.ignored.add(key)
        elif name == DELETE:
            key.resolved = False
            key.seen = 0
            key.grouped = False
        else:
            key.resolved = False
        if name not in (IGNORE_UNTIL_ESCALATING, IGNORE_UNTIL_CONDITION_MET, IGNORE_FOREVER):
            key.ignored = False

    def _follow_up(self, key: Key, due: int) -> None:
        if due < self.config.end:
            heapq.heappush(self.followups, (due, self.next_id, key.index))

    def _redelivery(self) -> RawMessage:
        previous = self.previous
        assert previous is not None
        summary = self.summary
        key_label, project_id, reason = self.previous_meta
        summary.by_kind[KIND_REDELIVERY] += 1
        summary.by_encoding[encoding_of(previous)] += 1
        if key_label is not None:
            summary.key_messages[key_label] += 1
        if project_id is not None:
            summary.by_project[project_id] += 1
        if reason is not None:
            summary.by_reason[reason] += 1
        return previous

    def _republish(self, time: int) -> RawMessage:
        payload = self.recent_payloads[self.rng.randrange(len(self.recent_payloads))]
        return self._emit(
            payload, time, KIND_REPUBLISH, key_label=f"{payload['project_id']}:{payload['fingerprint'][0]}"
        )

    def _unknown_project(self, time: int) -> RawMessage:
        key = self.foreign_keys[self.rng.randrange(len(self.foreign_keys))]
        payload = occurrence_payload(key, time, self.rng, self.releases, with_event=True)
        return self._emit(payload, time, KIND_UNKNOWN_PROJECT, reason=reasons.UNKNOWN_PROJECT)

    # -- invalid messages -------------------------------------------------------------------------------

    def _invalid(self, time: int) -> RawMessage:
        """A message failing exactly one check (``invalid.reason_for``)."""
        reason, variant = reason_for(self.invalid_count)
        self.invalid_count += 1
        key = self.keys[self._zipf_index()]
        while not key.released:
            key = self.keys[self._zipf_index()]
        payload = occurrence_payload(key, time, self.rng, self.releases, with_event=True)
        payload, data, attributes = invalidate(reason, variant, payload, key, self.config, self.rng)
        return self._emit(payload, time, KIND_INVALID, reason=reason, data=data, attributes=attributes)

    # -- encoding ---------------------------------------------------------------------------------------

    def _emit(
        self,
        payload: dict[str, Any],
        time: int,
        kind: str,
        *,
        key: Key | None = None,
        key_label: str | None = None,
        reason: str | None = None,
        data: bytes | None = None,
        attributes: dict[str, str] | None = None,
    ) -> RawMessage:
        config = self.config
        summary = self.summary
        message_id = f"{config.id_prefix}{1_000_000_000_000 + self.next_id}"
        self.next_id += 1
        encoding = JSON
        if data is None:
            if config.encoding != JSON and (
                config.encoding == PROTOBUF or self.rng.random() < config.protobuf_share
            ):
                encoded = protobuf_or_none(payload)
                if encoded is not None:
                    data = encoded
                    encoding = PROTOBUF
            if data is None:
                data = orjson.dumps(payload)
        if attributes is None:
            if encoding == PROTOBUF:
                attributes = PROTOBUF_ATTRIBUTES
            elif self.rng.random() < config.missing_content_type_share:
                attributes = NO_ATTRIBUTES
            else:
                attributes = JSON_ATTRIBUTES
        if config.timestamp_attribute:
            attributes = {**attributes, config.timestamp_attribute: to_rfc3339(time)}
        summary.by_kind[kind] += 1
        summary.by_encoding[encoding] += 1
        project_id = payload.get("project_id")
        if type(project_id) is int:
            summary.by_project[project_id] += 1
        else:
            project_id = None
        if key is not None:
            key_label = key.label
            self.keys_used.add(key.index)
        if key_label is not None:
            summary.key_messages[key_label] += 1
        if reason is not None:
            summary.by_reason[reason] += 1
            summary.dead_letters[message_id] = reason
        self.previous_meta = (key_label, project_id, reason)
        return RawMessage(message_id, time, data, attributes)


def _cumulative(weights: list[float]) -> list[float]:
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative
