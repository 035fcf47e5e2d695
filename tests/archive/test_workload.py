"""The workload generator: deterministic, and as realistic as it claims (``pipeline.workload``)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest
from apache_beam.utils.timestamp import Timestamp

from pipeline.workload import Workload, WorkloadConfig
from pipeline.workload.summary import KIND_LOOKUP, KIND_REDELIVERY, KIND_REPUBLISH, KIND_STATUS_CHANGE
from transforms.core import reasons
from transforms.core.decode import decode
from transforms.core.enums import VALID_STATUS_CHANGES
from transforms.core.grouptypes import GROUP_TYPES
from transforms.core.model import MICROS, DeadLetter, Message, ProjectInfo, RawMessage
from transforms.core.projects import check_project

SMALL = WorkloadConfig(messages=6_000, keys=600, seed=7)


@pytest.fixture(scope="module")
def stream_like() -> tuple[list[RawMessage], Any]:
    """A scaled-down stream workload (40,000 messages over 4,000 keys, 5% hot key)."""
    workload = Workload(WorkloadConfig(messages=40_000, keys=4_000, hot_key_share=0.05, seed=3))
    messages = list(workload)
    return messages, workload.summary()


def payloads(messages: list[RawMessage], summary: Any) -> list[tuple[RawMessage, dict[str, Any]]]:
    """The valid-looking JSON payloads (not expected to be dead-lettered), with their messages."""
    result = []
    for message in messages:
        if message.message_id in summary.dead_letters:
            continue
        result.append((message, orjson.loads(message.data)))
    return result


def key_of(payload: dict[str, Any]) -> str:
    return f"{payload['project_id']}:{payload['fingerprint'][0]}"


# ---------------------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_gives_the_same_messages() -> None:
    assert list(Workload(SMALL)) == list(Workload(SMALL))


def test_iterating_again_regenerates_the_same_messages() -> None:
    workload = Workload(SMALL)
    assert list(workload) == list(workload)


def test_another_seed_gives_other_messages() -> None:
    first = list(Workload(SMALL))
    second = list(Workload(dataclasses.replace(SMALL, seed=8)))
    assert len(first) == len(second)
    assert sum(a.data == b.data for a, b in zip(first, second)) < len(first) // 100


def test_summary_without_iterating_matches_the_summary_after_iterating() -> None:
    iterated = Workload(SMALL)
    list(iterated)
    assert Workload(SMALL).summary() == iterated.summary()


# ---------------------------------------------------------------------------------------------------------
# Shape of the stream


def test_messages_come_in_message_time_order_in_whole_milliseconds_within_the_span(stream_like) -> None:
    messages, summary = stream_like
    times = [m.message_time for m in messages]
    assert times == sorted(times)
    config = WorkloadConfig()
    assert config.start <= times[0] and times[-1] < config.start + config.duration
    assert all(t % 1000 == 0 for t in times)
    assert summary.first_time == times[0] and summary.last_time == times[-1]
    assert len(messages) == summary.messages == 40_000


def test_traffic_has_bursts(stream_like) -> None:
    messages, _ = stream_like
    per_minute = Counter(m.message_time // (60 * MICROS) for m in messages)
    counts = sorted(per_minute.values())
    median = counts[len(counts) // 2]
    assert counts[-1] > 3 * median  # some minutes carry several times the usual traffic


def test_message_ids_are_unique_except_redeliveries_which_copy_the_message_before(stream_like) -> None:
    messages, summary = stream_like
    by_id: dict[str, RawMessage] = {}
    copies = 0
    for previous, message in zip([None, *messages], messages):
        if message.message_id in by_id:
            assert message == previous  # an exact copy: same id, time, bytes and attributes
            copies += 1
        by_id[message.message_id] = message
    assert copies == summary.by_kind[KIND_REDELIVERY] > 0


def test_republished_occurrences_repeat_an_earlier_occurrence_id_under_a_new_message_id(stream_like) -> None:
    messages, summary = stream_like
    first_message_of: dict[str, str] = {}
    republished = 0
    for message, payload in payloads(messages, summary):
        if payload.get("payload_type") != "occurrence":
            continue
        first = first_message_of.setdefault(payload["id"], message.message_id)
        if first != message.message_id:
            republished += 1
    assert republished >= summary.by_kind[KIND_REPUBLISH] > 0


def test_hot_key_holds_its_share_of_all_messages(stream_like) -> None:
    messages, summary = stream_like
    counted = Counter(key_of(p) for _, p in payloads(messages, summary) if "fingerprint" in p)
    hot, hot_count = counted.most_common(1)[0]
    assert hot == summary.hot_key
    assert 0.045 <= hot_count / len(messages) <= 0.055
    assert summary.hot_key_messages == hot_count


def test_backfill_hot_key_holds_ten_percent() -> None:
    workload = Workload(WorkloadConfig(messages=20_000, keys=2_000, hot_key_share=0.10, seed=5))
    list(workload)
    summary = workload.summary()
    assert 0.09 <= summary.hot_key_messages / summary.messages <= 0.11


def test_key_popularity_is_skewed_and_most_keys_appear(stream_like) -> None:
    messages, summary = stream_like
    counted = Counter(key_of(p) for _, p in payloads(messages, summary) if "fingerprint" in p)
    del counted[summary.hot_key]
    ranked = [count for _, count in counted.most_common()]
    top_percent = sum(ranked[: len(ranked) // 100])
    assert top_percent > 0.15 * sum(ranked)  # the top 1% of keys hold far more than 1% of the traffic
    mean = sum(ranked) / len(ranked)
    assert ranked[len(ranked) // 2] < 0.75 * mean  # while the median key is rarer than the average one
    assert summary.keys_used > 0.8 * 4_000


# ---------------------------------------------------------------------------------------------------------
# Content


def test_group_types_follow_the_mix_including_noise_gated_and_unreleased_types(stream_like) -> None:
    messages, summary = stream_like
    types = Counter(
        p["type"] for _, p in payloads(messages, summary) if p.get("payload_type") == "occurrence"
    )
    for type_id in (1, 1006, 1001, 1018, 4001, 6001, 2001):
        assert types[type_id] > 0, type_id
    assert not GROUP_TYPES[2001].released
    assert (
        GROUP_TYPES[1006].noise_config.ignore_limit == 3
        and GROUP_TYPES[1001].noise_config.ignore_limit == 100
    )


def test_no_noise_leaves_out_types_with_a_noise_gate() -> None:
    workload = Workload(dataclasses.replace(SMALL, noise=False))
    messages = list(workload)
    types = {
        p["type"] for _, p in payloads(messages, workload.summary()) if p.get("payload_type") == "occurrence"
    }
    assert types and all(GROUP_TYPES[t].noise_config is None for t in types)


def test_a_type_mix_can_be_given() -> None:
    workload = Workload(dataclasses.replace(SMALL, type_weights=((1018, 1.0),)))
    messages = list(workload)
    types = {
        p["type"] for _, p in payloads(messages, workload.summary()) if p.get("payload_type") == "occurrence"
    }
    assert types == {1018}


def test_occurrences_carry_events_with_advancing_releases_of_both_kinds_and_environments(stream_like) -> None:
    messages, summary = stream_like
    releases_by_project: dict[int, list[str]] = defaultdict(list)
    environments = Counter()
    for _, payload in payloads(messages, summary):
        event = payload.get("event")
        if not event:
            continue
        assert event["event_id"] == payload["event_id"] and event["project_id"] == payload["project_id"]
        environments[event["environment"]] += 1
        if event["release"]:
            releases_by_project[payload["project_id"]].append(event["release"])
    assert set(environments) == {"production", "staging"}
    semver = re.compile(r"[a-z]+@\d+\.\d+\.\d+(-rc\.1)?")
    assert all(semver.fullmatch(r) for r in releases_by_project[1])
    assert all(re.fullmatch(r"[0-9a-f]{12}", r) for r in releases_by_project[3])  # commit shas
    for releases in releases_by_project.values():
        assert len(set(releases)) >= 5  # several releases over the six hours
        first, last = releases[: len(releases) // 10], releases[-len(releases) // 10 :]
        assert not set(last) <= set(first)  # later events run newer releases


def test_lookups_name_an_event_carried_earlier_in_the_same_project(stream_like) -> None:
    messages, summary = stream_like
    stored: set[tuple[int, str]] = set()
    lookups = 0
    for _, payload in payloads(messages, summary):
        if payload.get("payload_type") != "occurrence":
            continue
        event = payload.get("event")
        if event is not None:
            if not payload.get("is_buffered_spans") and GROUP_TYPES[payload["type"]].released:
                stored.add((payload["project_id"], event["event_id"]))
        else:
            lookups += 1
            assert (payload["project_id"], payload["event_id"]) in stored
    assert lookups >= summary.by_kind[KIND_LOOKUP] > 0


def test_buffered_spans_occurrences_carry_their_event(stream_like) -> None:
    messages, summary = stream_like
    buffered = [p for _, p in payloads(messages, summary) if p.get("is_buffered_spans")]
    assert buffered and all(p["event"]["event_id"] == p["event_id"] for p in buffered)


def test_status_changes_use_every_valid_pair_and_both_resolutions(stream_like) -> None:
    messages, summary = stream_like
    pairs = set()
    resolutions = set()
    for _, payload in payloads(messages, summary):
        if payload.get("payload_type") == "status_change":
            pairs.add((payload["new_status"], payload["new_substatus"]))
            if "resolution" in payload:
                resolutions.add(payload["resolution"]["type"])
    assert pairs == {(int(s), None if sub is None else int(sub)) for s, sub in VALID_STATUS_CHANGES}
    assert resolutions == {"in_release", "in_next_release"}


def test_status_changes_mostly_follow_their_keys_first_occurrence_and_some_precede_it(stream_like) -> None:
    messages, summary = stream_like
    seen: set[str] = set()
    after = before = 0
    delivered: set[str] = set()
    for message, payload in payloads(messages, summary):
        if message.message_id in delivered:  # a redelivery
            continue
        delivered.add(message.message_id)
        if payload.get("payload_type") == "status_change":
            if key_of(payload) in seen:
                after += 1
            else:
                before += 1
        elif "fingerprint" in payload:
            seen.add(key_of(payload))
    assert after + before == summary.by_kind[KIND_STATUS_CHANGE]
    # The generator also counts keys whose group was deleted and that have not come back yet.
    assert 0 < before <= summary.status_changes_before_group
    assert 0.02 < before / (after + before) < 0.25


def test_resolved_keys_get_later_occurrences(stream_like) -> None:
    messages, summary = stream_like
    resolved_at: dict[str, int] = {}
    came_back = set()
    for message, payload in payloads(messages, summary):
        key = key_of(payload) if "fingerprint" in payload else None
        if payload.get("payload_type") == "status_change" and payload["new_status"] == 1:
            resolved_at[key] = message.message_time
        elif payload.get("payload_type") == "occurrence" and key in resolved_at:
            came_back.add(key)
    assert len(came_back) > 0.4 * len(resolved_at)
    assert summary.occurrences_after_resolve > 0


def test_every_dead_letter_reason_appears() -> None:
    workload = Workload(dataclasses.replace(SMALL, invalid_share=0.05))
    list(workload)
    summary = workload.summary()
    assert set(summary.by_reason) == set(reasons.ALL_REASONS)
    assert set(summary.dead_letters.values()) == set(reasons.ALL_REASONS)
    oversized = [m for m in Workload(dataclasses.replace(SMALL, invalid_share=0.05)) if len(m.data) > 1 << 20]
    assert len(oversized) == summary.by_reason[reasons.OVERSIZED]


def test_messages_of_unregistered_projects_are_expected_as_unknown_project(stream_like) -> None:
    messages, summary = stream_like
    registered = set(WorkloadConfig().projects)
    for message in messages:
        if message.message_id in summary.dead_letters:
            continue
        payload = orjson.loads(message.data)
        assert payload["project_id"] in registered
    assert summary.by_reason[reasons.UNKNOWN_PROJECT] > 0


def test_json_messages_mostly_carry_a_content_type() -> None:
    messages = list(Workload(SMALL))
    with_type = sum(1 for m in messages if m.attributes.get("content_type") == "application/json")
    assert 0.8 < with_type / len(messages) < 0.95


def test_timestamp_attribute_carries_the_message_time_as_beam_reads_it() -> None:
    messages = list(Workload(dataclasses.replace(SMALL, messages=500, timestamp_attribute="event_time")))
    for message in messages:
        stamp = Timestamp.from_rfc3339(message.attributes["event_time"])
        assert stamp.micros == message.message_time


def test_shuffle_window_reorders_locally_without_changing_the_messages() -> None:
    ordered = list(Workload(SMALL))
    shuffled = list(Workload(dataclasses.replace(SMALL, shuffle_window=50)))
    assert shuffled != ordered
    assert Counter(map(repr, shuffled)) == Counter(map(repr, ordered))
    position = {m.message_id: i for i, m in enumerate(ordered)}
    assert max(abs(position[m.message_id] - i) for i, m in enumerate(shuffled)) < 2_000


def test_summary_counts_add_up(stream_like) -> None:
    messages, summary = stream_like
    assert sum(summary.by_kind.values()) == len(messages)
    assert sum(summary.by_encoding.values()) == len(messages)
    assert sum(summary.status_changes.values()) == summary.by_kind[KIND_STATUS_CHANGE]
    ids = {m.message_id for m in messages}
    assert set(summary.dead_letters) <= ids
    assert summary.to_dict()["hot_key_messages"] == summary.hot_key_messages


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keys": 1}, "keys must be at least 2"),
        ({"start": 1_000_000_000_123_456}, "whole milliseconds"),
        ({"invalid_share": 1.5}, "invalid_share must be between 0 and 1"),
        ({"projects": ()}, "at least one project"),
        ({"unknown_projects": (1,)}, "must not contain a registered project"),
        ({"type_weights": ((4242, 1.0),)}, "unknown group types in the type mix: [4242]"),
        ({"type_weights": ((1006, 1.0),), "noise": False}, "no type left"),
        ({"encoding": "xml"}, "encoding must be one of"),
        ({"lookup_share": 0.5, "status_change_share": 0.5}, "keep them under 0.9"),
    ],
)
def test_invalid_configs_are_refused_with_a_clear_message(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        WorkloadConfig(**changes)


@pytest.mark.parametrize("encoding", ["json", "protobuf", "mixed"])
def test_every_message_decodes_as_the_summary_expects(encoding: str) -> None:
    workload = Workload(dataclasses.replace(SMALL, invalid_share=0.05, encoding=encoding))
    messages = list(workload)
    summary = workload.summary()
    projects = {p: ProjectInfo(p, 1 if p < 3 else 2, f"project-{p}") for p in WorkloadConfig().projects}
    outcomes = Counter()
    for message in messages:
        decoded = check_project(decode(message), projects)
        expected = summary.dead_letters.get(message.message_id)
        if expected == reasons.EVENT_NOT_FOUND:
            expected = None  # decodes; its lookup finds no event later
        actual = decoded.reason if isinstance(decoded, DeadLetter) else None
        assert actual == expected, (message, decoded)
        outcomes[actual] += 1
    assert set(outcomes) == {None, *(r for r in reasons.ALL_REASONS if r != reasons.EVENT_NOT_FOUND)}
    if encoding != "json":
        assert summary.by_encoding["protobuf"] > (0.9 if encoding == "protobuf" else 0.4) * len(messages)
        protobuf = [m for m in messages if m.attributes.get("content_type") == "application/x-protobuf"]
        assert all(isinstance(decode(m), Message) or m.message_id in summary.dead_letters for m in protobuf)
