"""The web interface's plain parts: time ranges and buckets, charts, CSRF tokens and redirects, the tags
panel's content."""

from __future__ import annotations

import re

import pytest

from api.issue_details import DAY, HOUR, Buckets, EventSeries, LatestEvent
from tests.api.factories import T0
from transforms.core.model import MICROS
from web import charts, session, tags_panel
from web.timerange import RangeError, parse_range, relative


def test_presets_and_their_buckets():
    window = parse_range("24h", None, None, T0 + 30 * 60 * MICROS)
    assert (window.start, window.end) == (T0 + 30 * 60 * MICROS - DAY, T0 + 30 * 60 * MICROS)
    assert window.list_params() == {"statsPeriod": "24h"}
    assert window.buckets == Buckets(T0 - DAY, HOUR, 25)  # the hours covering the range
    assert parse_range("7d", None, None, T0).buckets.size == HOUR
    assert parse_range("14d", None, None, T0).buckets == Buckets(T0 - 14 * DAY, DAY, 14)
    assert parse_range("7d", None, None, T0).sparkline_buckets.size == DAY
    assert parse_range("nonsense", None, None, T0).period == "14d"


def test_custom_ranges_are_checked():
    window = parse_range("custom", "2026-01-01T00:00", "2026-01-02T12:00", T0)
    assert (window.start, window.end) == (T0, T0 + 36 * HOUR)
    assert window.list_params() == {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T12:00:00Z"}
    assert window.query_params() == {
        "period": "custom",
        "start": "2026-01-01T00:00",
        "end": "2026-01-02T12:00",
    }
    for start, end, message in (
        ("2026-01-01T00:00", "", "needs both"),
        ("yesterday", "2026-01-02T00:00", 'start "yesterday" is not a date'),
        ("2026-01-02T00:00", "2026-01-01T00:00", "must be before"),
        ("2024-01-01T00:00", "2026-01-01T00:00", "at most a year"),
    ):
        with pytest.raises(RangeError, match=message):
            parse_range("custom", start, end, T0)


def test_relative_times():
    assert relative(T0 - 30 * MICROS, T0) == "just now"
    assert relative(T0 - 5 * 60 * MICROS, T0) == "5 min ago"
    assert relative(T0 - 3 * HOUR, T0) == "3 hr ago"
    assert relative(T0 - DAY, T0) == "1 day ago"
    assert relative(T0 - 65 * DAY, T0) == "2 mo ago"
    assert relative(T0 + 2 * HOUR, T0) == "in 2 hr"


def test_charts_carry_every_bucket_and_count():
    series = EventSeries(Buckets(T0, HOUR, 4), [0, 3, 12, 1])
    svg = str(charts.bar_chart(series))
    assert re.findall(r'data-count="(\d+)"', svg) == ["0", "3", "12", "1"]
    assert 'data-start="2026-01-01T01:00:00Z"' in svg and "Jan 1, 02:00 UTC: 12 events" in svg
    assert 'data-total="16"' in svg
    spark = str(charts.sparkline(series))
    assert (
        re.findall(r'data-count="(\d+)"', spark) == ["0", "3", "12", "1"]
        and "16 events in this range" in spark
    )
    assert "—" in str(charts.sparkline(EventSeries(Buckets(T0, HOUR, 4), [0] * 4, complete=False)))


def test_csrf_tokens_belong_to_their_session_and_next_stays_on_the_site():
    assert session.csrf_token("sntryu_a") != session.csrf_token("sntryu_b")
    assert session.csrf_ok("sntryu_a", session.csrf_token("sntryu_a"))
    assert not session.csrf_ok("sntryu_a", session.csrf_token("sntryu_b"))
    assert not session.csrf_ok("sntryu_a", None)
    for bad in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", ""):
        assert session.safe_next(bad, "/home") == "/home"
    assert (
        session.safe_next("/organizations/acme/issues/?query=", "/") == "/organizations/acme/issues/?query="
    )


def test_the_tags_panel_shows_the_latest_event_labelled_as_such():
    latest = LatestEvent("o", "e", 1, T0, T0, "T", "", "", "error", "1.4.0", "production", [], {}, None)
    event = {
        "platform": "python",
        "tags": [["browser", "Chrome"], ["release", "ignored duplicate"]],
        "sdk": {"name": "sentry.python", "version": "2.0"},
    }
    panel = tags_panel.tag_panel(latest, event)
    assert panel.source == tags_panel.LATEST_EVENT
    assert [(k.key, [v.value for v in k.values]) for k in panel.keys] == [
        ("environment", ["production"]),
        ("release", ["1.4.0"]),
        ("level", ["error"]),
        ("platform", ["python"]),
        ("sdk", ["sentry.python 2.0"]),
        ("browser", ["Chrome"]),
    ]
    assert all(v.share is None for k in panel.keys for v in k.values)
    assert tags_panel.tag_panel(None, None).keys == []


def test_the_chart_scale_is_round_and_its_middle_line_whole():
    for peak, top in ((0, 2), (1, 2), (3, 4), (4, 4), (5, 10), (263, 400), (401, 1000)):
        svg = str(charts.bar_chart(EventSeries(Buckets(T0, HOUR, 1), [peak])))
        labels = re.findall(r'text-anchor="end">([\d,]+)</text>', svg)
        assert labels == ["0", f"{top // 2:,}", f"{top:,}"], (peak, labels)


def test_hourly_charts_over_days_label_days():
    week = EventSeries(Buckets(T0 - 7 * DAY, HOUR, 7 * 24 + 1), [1] * (7 * 24 + 1))
    labels = re.findall(r'text-anchor="middle">([^<]+)</text>', str(charts.bar_chart(week)))
    assert labels == ["Dec 25", "Dec 26", "Dec 27", "Dec 28", "Dec 29", "Dec 30", "Dec 31"]
    # a range starting in the afternoon still labels midnights
    later = EventSeries(Buckets(T0 - 7 * DAY + 16 * HOUR, HOUR, 7 * 24 + 1), [1] * (7 * 24 + 1))
    labels = re.findall(r'text-anchor="middle">([^<]+)</text>', str(charts.bar_chart(later)))
    assert labels == ["Dec 26", "Dec 27", "Dec 28", "Dec 29", "Dec 30", "Dec 31", "Jan 1"]
    day = EventSeries(Buckets(T0, HOUR, 25), [1] * 25)
    labels = re.findall(r'text-anchor="middle">([^<]+)</text>', str(charts.bar_chart(day)))
    assert labels == ["Jan 1", "05:00", "10:00", "15:00", "20:00"]


def test_the_tags_panel_shows_stored_top_values_with_shares_and_the_rest_as_other():
    from api.tag_index import TagKey as StoredKey
    from api.tag_index import TagValue as StoredValue

    values = [StoredValue("browser", f"b{n}", 10 - n, T0, T0 + n) for n in range(7)]
    stored = [
        (StoredKey("browser", 7, 3), values),
        (StoredKey("user", 1, 0), [StoredValue("user", "email:a@example.com", 2, T0, T0)]),
        (StoredKey("huge", 4000, 0), None),
    ]
    panel = tags_panel.tag_panel(None, None, stored)
    assert panel.source == tags_panel.ALL_EVENTS
    assert [k.key for k in panel.keys] == ["browser", "user", "huge"]  # by total, most frequent first
    browser = panel.keys[0]
    assert browser.total == sum(range(4, 11)) + 3 == 52
    assert [v.value for v in browser.values[:5]] == ["b0", "b1", "b2", "b3", "b4"]
    other = browser.values[5]
    assert other.other and other.count == 52 - (10 + 9 + 8 + 7 + 6)
    assert abs(sum(v.share for v in browser.values) - 1) < 1e-9
    assert panel.keys[1].name == "User" and panel.keys[1].values[0].label == "a@example.com"
    assert panel.keys[2].values == [] and panel.keys[2].unique == 4000
