"""The tags, search tags and words of an attached occurrence (``transforms.core.engine.tags``), and what the
engine gives the writer for them (``IndexOccurrence``)."""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.engine.builders import NOISY, PROJECT, T0, Run, context, occurrence
from tests.engine.sequences import key_order, sequences
from tests.engine.test_properties import PROPERTY_SETTINGS, apply_batches, splits
from transforms.core import limits
from transforms.core.engine import apply
from transforms.core.engine import tags as tags_module
from transforms.core.engine.tags import (
    occurrence_tags,
    query_terms,
    search_tags,
    text_terms,
    user_tag,
    valid_tag,
)
from transforms.core.intents import IndexOccurrence
from transforms.core.model import Event


def event(**fields) -> Event:
    return Event(event_id="0" * 32, project_id=1, platform="python", timestamp=T0, **fields)


def tags_of(level: str = "error", **fields) -> dict[str, str]:
    return dict(occurrence_tags(level, event(**fields)))


# ---- the event's own tags, as Relay normalizes them


def test_event_tags_as_an_object_or_pairs_are_kept_with_the_level():
    assert tags_of(tags=(("server", "web-1"), ("customer", "acme"))) == {
        "server": "web-1",
        "customer": "acme",
        "level": "error",
    }


def test_of_a_repeated_key_the_first_value_wins():
    assert tags_of(tags=(("customer", "acme"), ("customer", "globex")))["customer"] == "acme"


@pytest.mark.parametrize("key", ["release", "dist", "user", "filename", "function"])
def test_keys_sentry_sets_itself_are_not_taken_from_the_event_tags(key):
    assert key not in tags_of(tags=((key, "from-client"),))


def test_an_environment_tag_names_the_environment_only_when_the_event_has_none():
    assert tags_of(tags=(("environment", "prod"),))["environment"] == "prod"
    assert tags_of(tags=(("environment", "prod"),), environment="staging")["environment"] == "staging"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("", "v"),
        ("bad key", "v"),
        ("ünïcode", "v"),
        ("k" * 201, "v"),
        ("k", ""),
        ("k", "two\nlines"),
        ("k", "v" * 201),
    ],
)
def test_invalid_tags_are_dropped_as_relay_drops_them(key, value):
    assert not valid_tag(key, value)
    assert key not in tags_of(tags=((key, value),)) or key == "level"


def test_keys_and_values_at_the_length_limits_are_kept():
    key, value = "k." * 100, "v" * 200
    assert tags_of(tags=((key, value),))[key] == value


# ---- fields Sentry turns into tags


def test_built_in_fields_become_tags_and_replace_client_tags_of_the_same_key():
    tags = tags_of(
        "warning",
        tags=(("server_name", "client"), ("level", "client"), ("transaction", "client")),
        server_name="web-7",
        environment="production",
        transaction="GET /checkout",
        release="backend@1.2.0",
        dist="42",
    )
    assert tags == {
        "server_name": "web-7",
        "level": "warning",
        "transaction": "GET /checkout",
        "environment": "production",
        "release": "backend@1.2.0",
        "dist": "42",
    }


def test_dist_is_a_tag_only_with_a_release():
    assert "dist" not in tags_of(dist="42")


@pytest.mark.parametrize(
    ("user", "tag"),
    [
        ({"id": 42, "email": "a@example.com"}, "id:42"),
        ({"username": "ann", "email": "a@example.com"}, "username:ann"),
        ({"email": "a@example.com", "ip_address": "10.0.0.1"}, "email:a@example.com"),
        ({"ip_address": "10.0.0.1"}, "ip:10.0.0.1"),
        ({"ip_address": "not an ip"}, None),
        ({"name": "Ann"}, None),
        ({"id": ""}, None),
    ],
)
def test_the_user_tag_is_the_first_identifier_sentry_knows(user, tag):
    assert user_tag(user) == tag
    assert tags_of(user=user).get("user") == tag


def test_url_is_the_request_url_without_query_or_fragment_unless_the_event_has_a_url_tag():
    assert tags_of(request={"url": "https://shop.example.com/cart?id=1#top"})["url"] == (
        "https://shop.example.com/cart"
    )
    assert tags_of(tags=(("url", "mine"),), request={"url": "https://x/"})["url"] == "mine"


def test_contexts_become_tags_named_by_their_key_and_chosen_by_their_type():
    contexts = {
        "browser": {"name": "Chrome", "version": "120.0"},
        "client_os": {"type": "os", "name": "Windows", "version": "11", "rooted": False},
        "runtime": {"name": "CPython", "version": "3.11.4"},
        "device": {"model": "Pixel 8", "family": "Pixel"},
        "gpu": {"name": "Adreno", "vendor_name": "Qualcomm"},
        "app": {"device_app_hash": "abc"},
        "monitor": {"id": "m-1"},
        "trace": {"trace_id": "a" * 32},
        "custom": {"name": "ignored"},
    }
    tags = tags_of(contexts=contexts)
    del tags["level"]
    assert tags == {
        "browser": "Chrome 120.0",
        "browser.name": "Chrome",
        "client_os": "Windows 11",
        "client_os.name": "Windows",
        "client_os.rooted": "no",
        "runtime": "CPython 3.11.4",
        "runtime.name": "CPython",
        "device": "Pixel 8",
        "device.family": "Pixel",
        "gpu.name": "Adreno",
        "gpu.vendor": "Qualcomm",
        "app.device": "abc",
        "monitor.id": "m-1",
    }


def test_a_context_tag_needs_every_field_it_is_made_of():
    tags = tags_of(contexts={"browser": {"name": "Chrome"}, "os": {"version": "11"}, "bad": "not an object"})
    assert tags.get("browser.name") == "Chrome"
    assert "browser" not in tags and "os" not in tags and "os.name" not in tags


# ---- search-only tags and words


def test_search_tags_hold_every_user_identifier_and_the_sdk():
    found = search_tags(
        event(
            user={"id": "7", "email": "a@example.com", "username": "ann", "ip_address": "::1"},
            sdk={"name": "sentry.python", "version": "2.1.0", "packages": []},
        )
    )
    assert dict(found) == {
        "@user.id": "7",
        "@user.email": "a@example.com",
        "@user.username": "ann",
        "@user.ip": "::1",
        "@sdk.name": "sentry.python",
        "@sdk.version": "2.1.0",
    }


def test_an_events_search_tags_have_distinct_keys():
    """The engine gives the first occurrence a call indexes all of its search tags without checking them
    against each other (``OccurrencePath._index``): no two can be the same, as no two keys are."""
    keys = [key for _field, key in tags_module._USER_SEARCH_KEYS + tags_module._SDK_SEARCH_KEYS]
    assert len(set(keys)) == len(keys)


def test_no_tag_key_can_look_like_a_search_key():
    assert not valid_tag("@user.email", "a@example.com")


def test_terms_are_the_distinct_lower_cased_words_cut_to_64_characters():
    long = "x" * 70
    assert text_terms(f"TypeError: Cannot read 'foo' of undefined foo {long} ÉCOLE") == (
        "typeerror",
        "cannot",
        "read",
        "foo",
        "of",
        "undefined",
        "x" * 64,
        "école",
    )
    assert query_terms("cannot READ") == ("cannot", "read")


# ---- what the engine gives the writer


def indexed(messages, ctx=None) -> list[IndexOccurrence]:
    _state, outputs = apply(None, messages, ctx or context())
    return [intent for intent in outputs.write.intents if isinstance(intent, IndexOccurrence)]


def test_every_attached_occurrence_is_indexed_with_its_tags_and_event_time():
    first = occurrence(T0, tags=(("server_name", "web-1"),), event_time=T0 - 5)
    second = occurrence(T0 + 1, tags=(("server_name", "web-2"),))
    found = indexed([first, second])
    assert [(i.occurrence_id, i.seen) for i in found] == [
        (first.payload.id, T0 - 5),
        (second.payload.id, T0 + 1),
    ]
    assert dict(found[0].tags)["server_name"] == "web-1" and dict(found[1].tags)["server_name"] == "web-2"
    assert {i.organization_id for i in found} == {PROJECT.organization_id}


def test_words_and_search_tags_are_given_once_per_call_for_the_same_text_and_values():
    user = {"id": "1"}
    found = indexed(
        [
            occurrence(T0, title="Slow query", user=user),
            occurrence(T0 + 1, title="Slow query", user=user),
            occurrence(T0 + 2, title="Slow DB query", user={"id": "2"}),
        ]
    )
    assert [i.terms for i in found] == [
        ("slow", "query", "p95", "went", "from", "120ms", "to", "900ms", "get", "api", "0", "checkout"),
        (),
        ("slow", "db", "query", "p95", "went", "from", "120ms", "to", "900ms", "get", "api", "0", "checkout"),
    ]
    assert [i.search_tags for i in found] == [(("@user.id", "1"),), (), (("@user.id", "2"),)]
    assert [dict(i.tags)["user"] for i in found] == ["id:1", "id:1", "id:2"]


def test_an_occurrence_not_attached_is_not_indexed():
    assert indexed([occurrence(T0, type=NOISY)]) == []


def test_tags_counted_over_several_calls_equal_one_call():
    messages = [occurrence(T0 + n, tags=(("k", str(n % 2)),), user={"id": str(n % 3)}) for n in range(4)]
    one = Run().apply(messages)
    split = Run()
    for batch in (messages[:1], messages[1:3], messages[3:]):
        split.apply(batch)
    assert one.tables.tag_values == split.tables.tag_values
    assert one.tables.tag_values[(one.group.group_id, "k", "0")] == [2, T0, T0 + 2]


# ---- caps, with generated sequences (the table model applies them as the writer does)


@contextlib.contextmanager
def small_caps():
    saved = (limits.TAG_VALUES_PER_KEY, limits.TAG_KEYS_PER_GROUP, limits.TERMS_PER_GROUP)
    limits.TAG_VALUES_PER_KEY, limits.TAG_KEYS_PER_GROUP, limits.TERMS_PER_GROUP = 1, 3, 2
    try:
        yield
    finally:
        limits.TAG_VALUES_PER_KEY, limits.TAG_KEYS_PER_GROUP, limits.TERMS_PER_GROUP = saved


@PROPERTY_SETTINGS
@given(sequence=sequences(), data=st.data())
def test_past_the_caps_totals_stay_right_and_every_batching_keeps_the_same_values(sequence, data):
    ordered = key_order(sequence.messages)
    with small_caps():
        whole = apply_batches(sequence, [ordered])
        split = apply_batches(sequence, data.draw(splits(ordered)))
    assert split.tables.tag_values == whole.tables.tag_values
    assert split.tables.tag_keys == whole.tables.tag_keys
    carried: Counter = Counter()  # occurrences of the stored groups that had each key
    seen: set = set()
    for write in whole.writes:
        for intent in write.intents:
            if isinstance(intent, IndexOccurrence) and (intent.group_id, intent.occurrence_id) not in seen:
                seen.add((intent.group_id, intent.occurrence_id))
                for key, _value in intent.tags:
                    carried[(intent.group_id, key)] += 1
    tables = whole.tables
    for (group, key), (values_seen, other) in tables.tag_keys.items():
        counts = [row[0] for (g, k, _v), row in tables.tag_values.items() if (g, k) == (group, key)]
        assert values_seen == len(counts) <= (2 if key == "@text" else 1)
        if not key.startswith("@"):
            assert sum(counts) + other == carried[(group, key)]
    for group in tables.groups:
        assert sum(1 for g, k in tables.tag_keys if g == group and not k.startswith("@")) <= 3
