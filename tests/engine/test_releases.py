"""Releases: semver, first-seen times, and when ``RecordRelease`` is written (E8, E14; decision 7)."""

from __future__ import annotations

import pytest

from tests.engine.builders import SECOND, T0, UNRELEASED, occurrence, run, status_change
from transforms.core.engine.releases import MAX_KNOWN_RELEASES, parse_semver, record_release, semver_pair
from transforms.core.enums import GroupStatus
from transforms.core.intents import RecordRelease


@pytest.mark.parametrize("version", ["1.0", "1", "v1.0.0", "1.0.0.0", "01.0.0", "1.0.0-", "latest", ""])
def test_versions_that_are_not_semver(version):
    assert parse_semver(version) is None


@pytest.mark.parametrize(
    "version",
    ["1.0.0", "0.0.0", "10.20.30", "1.0.0-alpha.1", "1.0.0+build.5", "pkg@1.2.3", "@scope/pkg@1.2.3"],
)
def test_versions_that_are_semver(version):
    assert parse_semver(version) is not None


def test_semver_precedence_follows_the_specification():
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
        "10.0.0",
    ]
    keys = [parse_semver(version)[1] for version in ordered]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert parse_semver("1.0.0+a")[1] == parse_semver("1.0.0+b")[1]


def test_semver_compares_only_with_an_identical_package_prefix():
    assert semver_pair("web@1.0.0", "web@2.0.0") is not None
    assert semver_pair("web@1.0.0", "api@2.0.0") is None
    assert semver_pair("1.0.0", "web@2.0.0") is None
    assert semver_pair("1.0", "1.0.0") is None


def test_record_release_emits_only_for_new_or_earlier_versions():
    known: dict[str, int] = {}
    assert record_release(known, "1.0", 10)
    assert not record_release(known, "1.0", 20)
    assert not record_release(known, "1.0", 10)
    assert record_release(known, "1.0", 5)
    assert known == {"1.0": 5}


def test_record_release_forgets_the_version_first_seen_longest_ago_past_the_bound():
    known: dict[str, int] = {}
    for index in range(MAX_KNOWN_RELEASES + 1):
        record_release(known, f"v{index}", 100 + index)
    assert len(known) == MAX_KNOWN_RELEASES
    assert "v0" not in known and f"v{MAX_KNOWN_RELEASES}" in known


def releases_written(result):
    return [
        intent for write in result.writes for intent in write.intents if isinstance(intent, RecordRelease)
    ]


def test_a_key_writes_a_release_once_not_per_message():
    result = run(*[[occurrence(T0 + index * SECOND, release="backend@1.0.0")] for index in range(5)])
    assert [(intent.version, intent.first_seen) for intent in releases_written(result)] == [
        ("backend@1.0.0", T0)
    ]
    assert result.tables.releases == {(1, "backend@1.0.0"): T0}


def test_a_late_message_naming_a_release_earlier_writes_the_earlier_time():
    result = run([occurrence(T0 + 10 * SECOND, release="r")], [occurrence(T0 + 5 * SECOND, release="r")])
    assert [intent.first_seen for intent in releases_written(result)] == [T0 + 10 * SECOND, T0 + 5 * SECOND]
    assert result.tables.releases[(1, "r")] == T0 + 5 * SECOND


def test_a_resolution_names_its_release():
    result = run(
        [occurrence(T0)],
        [status_change(T0 + SECOND, GroupStatus.RESOLVED, resolution=("in_release", "9.9.9"))],
    )
    assert result.tables.releases == {(1, "9.9.9"): T0 + SECOND}


def test_a_feature_gated_occurrence_names_no_release():
    assert run([occurrence(T0, type=UNRELEASED, release="x")]).tables.releases == {}


def test_the_first_release_of_a_group_is_the_creators_event_release():
    result = run([occurrence(T0, release="a")], [occurrence(T0 + SECOND, release="b")])
    assert result.group.first_release == "a"
