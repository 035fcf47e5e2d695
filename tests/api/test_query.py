"""The search language: what each term means, the errors it gives, and that no input crashes it."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.query import (
    ALL_STATUS_PAIRS,
    DEFAULT_QUERY,
    HIDDEN_TYPES,
    PRIORITY_VALUES,
    Interval,
    IssueFilter,
    QueryError,
    Related,
    TextMatch,
    parse_query,
    parse_relative_period,
    tokenize,
)
from transforms.core.enums import GroupStatus, GroupSubStatus, Priority
from transforms.core.model import MICROS

NOW = 1_767_225_600 * MICROS  # 2026-01-01T00:00:00Z
HOUR = 3600 * MICROS
DAY = 24 * HOUR


def q(text: str | None) -> IssueFilter:
    return parse_query(text, now=NOW)


def error(text: str) -> QueryError:
    with pytest.raises(QueryError) as caught:
        q(text)
    return caught.value


# ---- defaults


def test_absent_query_is_sentrys_default_unresolved_high_and_medium():
    flt = q(None)
    assert flt == q(DEFAULT_QUERY)
    assert flt.statuses == (GroupStatus.UNRESOLVED,)
    assert flt.priorities == {Priority.HIGH, Priority.MEDIUM}
    assert flt.types.exclude == HIDDEN_TYPES


def test_empty_query_has_no_status_or_priority_filter_and_hides_feedback_as_sentry():
    for text in ("", "   "):
        flt = q(text)
        assert flt == IssueFilter()
        assert flt.statuses == (GroupStatus.UNRESOLVED, GroupStatus.RESOLVED, GroupStatus.IGNORED)
        assert flt.priorities == set(PRIORITY_VALUES)
        assert flt.types.exclude == HIDDEN_TYPES and flt.types.include is None


def test_any_non_empty_query_hides_feedback_unless_it_names_a_category_or_type():
    assert 6001 in q("level:error").types.exclude
    assert 6001 not in q("issue.category:feedback").types.exclude
    assert q("issue.category:feedback").categories.include == {6}
    assert q("issue.type:feedback").types.include == {6001}
    assert 6001 not in q("!issue.type:error").types.exclude


# ---- is:


def test_is_status_names_and_legacy_aliases():
    assert q("is:unresolved").statuses == (GroupStatus.UNRESOLVED,)
    assert q("is:resolved").statuses == (GroupStatus.RESOLVED,)
    for name in ("ignored", "archived", "muted"):
        assert q(f"is:{name}").statuses == (GroupStatus.IGNORED,)


def test_is_substatus_implies_its_status_and_is_checked_per_row():
    flt = q("is:ongoing")
    assert flt.statuses == (GroupStatus.UNRESOLVED,)
    assert flt.status_pairs == {(GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING)}
    assert flt.substatus_filtered(GroupStatus.UNRESOLVED)
    flt = q("is:archived_until_escalating")
    assert flt.statuses == (GroupStatus.IGNORED,)
    assert not q("is:unresolved").substatus_filtered(GroupStatus.UNRESOLVED)


def test_negated_is_keeps_the_other_statuses():
    flt = q("!is:unresolved")
    assert flt.statuses == (GroupStatus.RESOLVED, GroupStatus.IGNORED)
    flt = q("is:unresolved !is:regressed")
    assert (GroupStatus.UNRESOLVED, GroupSubStatus.REGRESSED) not in flt.status_pairs
    assert (GroupStatus.UNRESOLVED, GroupSubStatus.ONGOING) in flt.status_pairs


def test_a_negated_substatus_without_a_status_excludes_its_status_as_sentry():
    # Sentry's expand_substatus_query_values: the first negated substatus adds "status NOT IN [its status]"
    assert q("!is:ongoing").statuses == (GroupStatus.RESOLVED, GroupStatus.IGNORED)
    flt = q("!is:ongoing !is:archived_until_escalating")
    assert flt.statuses == (GroupStatus.RESOLVED, GroupStatus.IGNORED)
    assert (GroupStatus.IGNORED, GroupSubStatus.UNTIL_ESCALATING) not in flt.status_pairs
    assert (GroupStatus.IGNORED, GroupSubStatus.FOREVER) in flt.status_pairs
    assert q("!is:archived_forever !is:ongoing").statuses == (GroupStatus.UNRESOLVED, GroupStatus.RESOLVED)


def test_separate_is_terms_must_all_hold_and_is_takes_no_list():
    assert q("is:resolved is:unresolved").matches_nothing
    assert '"in" syntax invalid for "is" search' in str(error("is:[resolved, ignored]"))
    assert q("status:[resolved, ignored]").statuses == (GroupStatus.RESOLVED, GroupStatus.IGNORED)


def test_is_assigned_and_unassigned():
    assert q("is:assigned").assigned is True
    assert q("is:unassigned").assigned is False
    assert q("!is:assigned").assigned is False
    assert q("is:assigned is:unassigned").matches_nothing


# ---- enumerated keys


def test_priority_list_and_negation():
    assert q("issue.priority:[high, low]").priorities == {Priority.HIGH, Priority.LOW}
    assert q("!issue.priority:low").priorities == set(PRIORITY_VALUES) - {Priority.LOW}
    assert q("issue.priority:HIGH").priorities == {Priority.HIGH}


def test_level_category_type_and_first_release_sets():
    flt = q("level:[error,fatal] !issue.category:cron issue.type:performance_n_plus_one_db_queries")
    assert q("first-release:1.0") == q("first_release:1.0") == q("firstRelease:1.0")
    assert flt.levels.include == {40, 50}
    assert flt.categories.exclude == {4}
    assert flt.types.include == {1006}
    assert q("first_release:1.0").first_releases.include == {"1.0"}
    assert q("!first_release:1.0").first_releases.exclude == {"1.0"}


def test_issue_type_slug_selects_its_aliases_too():
    assert q("issue.type:monitor_check_in_failure").types.include == {4001, 4002, 4003}


def test_release_and_environment_terms_are_memberships():
    flt = q('release:[1.0,"2.0 beta"] !environment:staging')
    assert flt.releases == (Related("release", frozenset({"1.0", "2.0 beta"})),)
    assert flt.environments == (Related("environment", frozenset({"staging"}), negated=True),)


# ---- times and counts


def test_relative_times_minus_is_within_plus_is_older_than():
    assert q("lastSeen:-24h").last_seen == Interval(NOW - DAY, None)
    assert q("firstSeen:+14d").first_seen == Interval(None, NOW - 14 * DAY)
    assert q("age:-1w").first_seen == Interval(NOW - 7 * DAY, None)
    assert q("!lastSeen:-24h").last_seen == Interval(None, NOW - DAY - 1)


def test_absolute_times_with_operators():
    jan2 = NOW + DAY
    assert q("firstSeen:>2026-01-02").first_seen == Interval(jan2 + 1, None)
    assert q("firstSeen:>=2026-01-02").first_seen == Interval(jan2, None)
    assert q("lastSeen:<2026-01-02T00:00:00Z").last_seen == Interval(None, jan2 - 1)
    assert q("lastSeen:<=2026-01-02T01:00:00+01:00").last_seen == Interval(None, jan2)
    assert q("!lastSeen:>2026-01-02").last_seen == Interval(None, jan2)


def test_bare_date_is_that_day_and_bare_datetime_five_minutes_either_side():
    assert q("firstSeen:2026-01-02").first_seen == Interval(NOW + DAY, NOW + 2 * DAY - 1)
    minute = 60 * MICROS
    assert q("lastSeen:2026-01-01T00:00:00").last_seen == Interval(NOW - 5 * minute, NOW + 5 * minute - 1)


def test_times_seen_comparisons_and_suffixes():
    assert q("timesSeen:>10").times_seen == Interval(11, None)
    assert q("timesSeen:<=1k").times_seen == Interval(None, 1000)
    assert q("timesSeen:5").times_seen == Interval(5, 5)
    assert q("timesSeen:>=2 timesSeen:<5").times_seen == Interval(2, 4)
    assert q("!timesSeen:>10").times_seen == Interval(None, 10)
    assert q("timesSeen:>5 timesSeen:<3").matches_nothing


# ---- free text


def test_consecutive_free_text_words_are_one_phrase_and_other_terms_split_phrases():
    def words(text: str) -> list[tuple[tuple[str, ...], bool]]:
        return [(c.words, c.negated) for c in q(text).tags]

    # free text goes to the word index: the words of each phrase (api.tag_search.WordCondition)
    assert words("database timeout") == [(("database", "timeout"), False)]
    assert words('database "connection refused"') == [
        (("database",), False),
        (("connection", "refused"), False),
    ]
    assert words("a is:unresolved b") == [(("a",), False), (("b",), False)]
    assert words('"a:b"') == [(("a", "b"), False)]
    assert words("!foo") == [(("foo",), False)]
    assert words("!message:foo") == [(("foo",), True)]
    assert q("database timeout").texts == ()
    # a wildcard, a list or text without words is matched on the group's title and message
    assert q("so*t").texts == (TextMatch((("so*t", True),)),)
    assert q("!!!").texts == (TextMatch((("!!!", False),)),)
    assert q("message:[a, b]").texts == (TextMatch((("a", False), ("b", False))),)
    assert q(r"so\*t").tags[0].words == ("so", "t")


def test_tag_terms_become_tag_conditions():
    (cond,) = q('tags[browser]:"Chrome 120"').tags
    assert (cond.key, cond.values, cond.negated) == ("browser", {"Chrome 120"}, False)
    (cond,) = q("!user.email:[a@x.io, b@x.io]").tags
    assert (cond.key, cond.values, cond.negated) == ("@user.email", {"a@x.io", "b@x.io"}, True)
    (cond,) = q("server_name:web-*").tags
    assert (cond.pattern, cond.lead) == ("web-*", "web-")
    (cond,) = q(r"url:a\*b*").tags
    assert cond.lead == "a*b"
    assert [(c.key, c.values, c.negated) for c in q('!has:os browser:""').tags] == [
        ("os", frozenset(), True),
        ("browser", frozenset(), True),
    ]


def test_quoted_values_keep_spaces_and_escaped_quotes():
    assert q(r'release:"my app@1.0 \"rc\""').releases[0].values == {'my app@1.0 "rc"'}


# ---- errors


@pytest.mark.parametrize(
    ("text", "position", "needle"),
    [
        ("is:unresolved error.handled:1", 14, '"error.handled" cannot be searched here'),
        ("is:unresolved browser:[a*, b]", 14, "a list cannot hold wildcards"),
        ("level:", 0, 'missing value after "level:"'),
        ("is:unresolved level:loud", 14, "Invalid level value of 'loud'"),
        ("issue.priority:urgent", 0, "Invalid priority value of 'urgent'"),
        ("is:sleeping", 0, 'Invalid value for "is" search'),
        ("issue.type:nope", 0, "Invalid type value of 'nope'"),
        ("lastSeen:yesterday", 0, 'invalid date "yesterday"'),
        ("firstSeen:2026-02-30", 0, "invalid date"),
        ("timesSeen:many", 0, 'invalid number "many"'),
        ("timesSeen:1.5", 0, "whole count"),
        ("!timesSeen:5", 0, "cannot be negated"),
        ("!firstSeen:2026-01-01", 0, "cannot be negated"),
        ("timesSeen:[1,2]", 0, "a list is not allowed"),
        ("is:unresolved or level:error", 14, 'Boolean statements containing "OR" or "AND"'),
        ("first-release:1.*", 0, "does not take wildcards"),
        ('release:"1.0', 0, "unterminated quoted string"),
        ("level:[error", 0, "unterminated list"),
        ("level:[error,,fatal]", 0, "Lists should not have empty values"),
        ('level:["error" fatal]', 0, "expected ',' or ']'"),
        ('level:"error"x', 0, "unexpected characters"),
        ("foo OR bar", 4, "Boolean statements"),
        ("timesSeen:>", 0, "missing value after the comparison operator"),
    ],
)
def test_errors_name_the_term_and_its_position(text: str, position: int, needle: str):
    exc = error(text)
    assert needle in str(exc)
    assert exc.position == position
    assert f"at position {position}" in str(exc)
    assert str(exc).startswith("Invalid search query: ")


def test_long_terms_are_shortened_in_messages():
    exc = error("level:" + "x" * 500)
    assert len(str(exc)) < 300


def test_stats_period():
    assert parse_relative_period("24h") == DAY
    assert parse_relative_period("14d") == 14 * DAY
    with pytest.raises(QueryError):
        parse_relative_period("fortnight")


def test_tokenize_keeps_positions():
    terms = tokenize('  is:unresolved  "two words" level:[error, fatal]')
    assert [(t.key, t.start) for t in terms] == [("is", 2), (None, 17), ("level", 29)]
    assert terms[2].values == ("error", "fatal")


# ---- properties

_names = {
    "is": [
        "unresolved",
        "resolved",
        "ignored",
        "archived",
        "ongoing",
        "new",
        "regressed",
        "escalating",
        "archived_until_escalating",
        "archived_until_condition_met",
        "archived_forever",
    ],
    "issue.priority": ["high", "medium", "low"],
    "issue.category": ["error", "performance", "cron", "feedback", "replay", "uptime"],
    "issue.type": ["error", "feedback", "performance_slow_db_query", "monitor_check_in_failure"],
    "level": ["debug", "info", "warning", "error", "fatal"],
}
_free = st.text(alphabet=string.ascii_letters + string.digits + "_-./@", min_size=1, max_size=12).filter(
    lambda word: word.upper() not in ("OR", "AND") and ":" not in word
)


@st.composite
def enumerated_term(draw) -> str:
    key = draw(st.sampled_from(sorted(_names)))
    values = draw(st.lists(st.sampled_from(_names[key]), min_size=1, max_size=1 if key == "is" else 3))
    bang = "!" if draw(st.booleans()) else ""
    value = values[0] if len(values) == 1 else "[" + ", ".join(values) + "]"
    return f"{bang}{key}:{value}"


@st.composite
def time_term(draw) -> str:
    key = draw(st.sampled_from(["firstSeen", "lastSeen", "age"]))
    if draw(st.booleans()):
        value = draw(st.sampled_from("+-")) + str(draw(st.integers(0, 999))) + draw(st.sampled_from("smhdw"))
        return f"{key}:{value}"
    op = draw(st.sampled_from([">", ">=", "<", "<="]))
    day = draw(st.dates())
    return f"{key}:{op}{day.isoformat()}"


@st.composite
def count_term(draw) -> str:
    op = draw(st.sampled_from(["", ">", ">=", "<", "<="]))
    return f"timesSeen:{op}{draw(st.integers(0, 10**6))}{draw(st.sampled_from(['', 'k']))}"


@st.composite
def text_term(draw) -> str:
    key = draw(st.sampled_from(["release", "first_release", "environment"]))
    value = draw(_free)
    return f'{key}:"{value} x"' if draw(st.booleans()) else f"{key}:{value}"


assignment_term = st.sampled_from(["is:assigned", "is:unassigned", "!is:assigned", "is:for_review"])

valid_query = st.lists(
    st.one_of(enumerated_term(), time_term(), count_term(), text_term(), assignment_term, _free),
    min_size=1,
    max_size=6,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(valid_query)
def test_generated_valid_queries_parse(text: str):
    flt = q(text)
    assert flt.status_pairs <= ALL_STATUS_PAIRS
    assert flt.priorities <= set(PRIORITY_VALUES)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_random_strings_parse_or_raise_query_error_only(text: str):
    try:
        q(text)
    except QueryError as exc:
        assert str(exc).startswith("Invalid search query: ")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='!:[]",<>=-+ abcdefilrstvuyz0123456789.kmhdw_', max_size=60))
def test_query_syntax_soup_never_crashes(text: str):
    with contextlib.suppress(QueryError):
        q(text)
