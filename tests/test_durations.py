"""The three duration grammars users write, pinned input by input.

``--watermark_delay`` and the pipeline's other duration flags (``pipeline.options.parse_duration``: one
number with an optional unit ms/s/m/h/d, seconds), the workload generator's ``--duration``
(``pipeline.workload_options.parse_duration``: seconds as any float, or d/h/m/s terms combined in that order,
case-insensitive, positive, whole milliseconds) and the issue index's ``statsPeriod``
(``api.query.parse_relative_period``: a whole number of at most nine digits and a unit s/m/h/d/w) are three
variants of one parser (``transforms.core.durations``). These tables were written against the three parsers
as they were before they shared one, so that every input each accepted is still accepted with the same value,
and every input each refused is still refused with the same error.
"""

from __future__ import annotations

import argparse
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.query import QueryError, parse_relative_period
from pipeline.options import parse_duration as parse_option_duration
from pipeline.workload_options import parse_duration as parse_workload_duration
from transforms.core import durations
from transforms.core.model import MICROS

# input -> seconds (a float) for the pipeline's duration flags
OPTION_ACCEPTED = {
    "90": 90.0,
    "45s": 45.0,
    "30m": 1800.0,
    "6h": 21600.0,
    "2d": 172800.0,
    "500ms": 0.5,
    "1.5h": 5400.0,
    " 5s ": 5.0,
    "5 s": 5.0,
    "10 ms": 0.01,
    "0": 0.0,
    "0s": 0.0,
    "0.001s": 0.001,
    "1.0005s": 1.0005,
    "0.1ms": 0.0001,
    "1ms": 0.001,
    "٥s": 5.0,  # any Unicode decimal digit, as Python's \d and float() read them
    "5s\n": 5.0,
    "\t10m": 600.0,
    "1000000000s": 1000000000.0,
    "00012h": 43200.0,
    "1.5": 1.5,
    "1.5d": 129600.0,
    "3600": 3600.0,
}
OPTION_REFUSED = [
    "1w", "1h30m", "1d2h3m4s", "30m1h", "1h1h", "5S", "1H30M", "", " ", "soon", "-5", "5x", "1e3", "1_000",
    "+5", ".5s", "5.s", "5m30s", "2w", "h", "inf", "nan", "1 h30m", "24H",
]  # fmt: skip

# input -> microseconds for the workload generator's --duration
WORKLOAD_ACCEPTED = {
    "90": 90 * MICROS,
    "45s": 45 * MICROS,
    "30m": 1800 * MICROS,
    "6h": 21600 * MICROS,
    "2d": 172800 * MICROS,
    "1.5h": 5400 * MICROS,
    "1h30m": 5400 * MICROS,
    "1d2h3m4s": 93784 * MICROS,
    "5m30s": 330 * MICROS,
    " 5s ": 5 * MICROS,
    "5S": 5 * MICROS,
    "1H30M": 5400 * MICROS,
    "24H": 86400 * MICROS,
    "1e3": 1000 * MICROS,
    "1_000": 1000 * MICROS,
    "+5": 5 * MICROS,
    "0.001s": 1000,
    "1.0005s": 1_000_000,  # whole milliseconds, rounded half to even
    "0.0001s": 0,  # positive, then rounded to whole milliseconds
    "٥s": 5 * MICROS,
    "5s\n": 5 * MICROS,
    "\t10m": 600 * MICROS,
    "1000000000s": 1_000_000_000 * MICROS,
    "00012h": 43200 * MICROS,
    "1.5": 1_500_000,
    "1.5d": 129600 * MICROS,
    "3600": 3600 * MICROS,
}
WORKLOAD_NOT_A_DURATION = [
    "1w", "500ms", "30m1h", "1h1h", "5 s", "", " ", "soon", "5x", ".5s", "5.s", "0.1ms", "1ms", "2w", "h",
    "10 ms", "1 h30m", "inf", "nan",
]  # fmt: skip
WORKLOAD_NOT_POSITIVE = ["-5", "0", "0s", "-inf"]

# input -> microseconds for the issue index's statsPeriod
PERIOD_ACCEPTED = {
    "45s": 45 * MICROS,
    "30m": 1800 * MICROS,
    "6h": 21600 * MICROS,
    "24h": 86400 * MICROS,
    "2d": 172800 * MICROS,
    "14d": 14 * 86400 * MICROS,
    "1w": 604800 * MICROS,
    "2w": 1209600 * MICROS,
    " 5s ": 5 * MICROS,
    "0s": 0,
    "٥s": 5 * MICROS,
    "5s\n": 5 * MICROS,
    "\t10m": 600 * MICROS,
    "999999999s": 999_999_999 * MICROS,
    "00012h": 43200 * MICROS,
}
PERIOD_REFUSED = [
    "90", "500ms", "1.5h", "1h30m", "1d2h3m4s", "30m1h", "1h1h", "5 s", "5S", "1H30M", "", " ", "soon", "-5",
    "0", "5x", "1e3", "1_000", "+5", ".5s", "5.s", "0.001s", "1ms", "1000000000s", "1.5", "5m30s", "h",
    "1.5d", "inf", "nan", "3600", "10 ms", "24H", "fortnight",
]  # fmt: skip


@pytest.mark.parametrize(("text", "seconds"), OPTION_ACCEPTED.items())
def test_option_durations_keep_their_values(text: str, seconds: float) -> None:
    value = parse_option_duration(text)
    assert type(value) is float and value == seconds


@pytest.mark.parametrize("value", [5, 2.5, 0, -3, True])
def test_option_durations_given_as_numbers_are_seconds(value: float) -> None:
    assert parse_option_duration(value) == float(value)


@pytest.mark.parametrize("text", OPTION_REFUSED)
def test_option_durations_refuse_what_they_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*: use a number with a unit, e.g. 500ms, 2s"):
        parse_option_duration(text)


@pytest.mark.parametrize(("text", "micros"), WORKLOAD_ACCEPTED.items())
def test_workload_durations_keep_their_values(text: str, micros: int) -> None:
    value = parse_workload_duration(text)
    assert type(value) is int and value == micros


@pytest.mark.parametrize("text", WORKLOAD_NOT_A_DURATION)
def test_workload_durations_refuse_what_is_not_one(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration: use seconds"):
        parse_workload_duration(text)


@pytest.mark.parametrize("text", WORKLOAD_NOT_POSITIVE)
def test_workload_durations_must_be_positive(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="the duration must be positive"):
        parse_workload_duration(text)


@pytest.mark.parametrize(("text", "micros"), PERIOD_ACCEPTED.items())
def test_stats_periods_keep_their_values(text: str, micros: int) -> None:
    value = parse_relative_period(text)
    assert type(value) is int and value == micros


@pytest.mark.parametrize("text", PERIOD_REFUSED)
def test_stats_periods_refuse_what_they_refused(text: str) -> None:
    with pytest.raises(QueryError, match=r"invalid statsPeriod .* \(use e.g. 24h, 14d or 90d\)"):
        parse_relative_period(text)


def test_each_caller_names_its_grammar() -> None:
    """The three grammars are named variants of one parser, each with the units it documents."""
    assert set(durations.OPTION.units) == {"ms", "s", "m", "h", "d", None}  # None: a bare number
    assert set(durations.WORKLOAD.units) == {"d", "h", "m", "s"}
    assert set(durations.STATS_PERIOD.units) == {"s", "m", "h", "d", "w"}
    assert durations.parse("1h30m", durations.WORKLOAD) == 5400.0
    assert durations.parse("14d", durations.STATS_PERIOD) == 14 * 86_400
    with pytest.raises(durations.DurationError):
        durations.parse("1h30m", durations.OPTION)


# The three parsers as they were before they shared one (b97875e), as oracles for texts drawn from the
# characters durations are written with.
_OLD_OPTION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_OLD_OPTION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_OLD_WORKLOAD = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?"
)
_OLD_PERIOD_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _old_option(text: str) -> float | None:
    match = _OLD_OPTION.match(text)
    return None if match is None else float(match.group(1)) * _OLD_OPTION_UNITS[match.group(2)]


def _old_workload(text: str) -> int | str:
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        match = _OLD_WORKLOAD.fullmatch(value)
        if not value or match is None or not any(match.groups()):
            return "not a duration"
        days, hours, minutes, secs = (float(part) if part else 0.0 for part in match.groups())
        seconds = days * 86_400 + hours * 3_600 + minutes * 60 + secs
    if seconds <= 0:
        return "not positive"
    if not math.isfinite(seconds):
        return "not a duration"  # was an OverflowError or a ValueError escaping argparse's type check
    return round(seconds * 1000) * 1000


def _old_period(text: str) -> int | None:
    match = re.fullmatch(r"(\d{1,9})([smhdw])", text.strip())
    return None if match is None else int(match.group(1)) * _OLD_PERIOD_UNITS[match.group(2)] * MICROS


_TEXTS = st.text(alphabet="0123456789.smhdwSMHDW _+-e\t\n٥", max_size=12) | st.builds(
    "".join,
    st.lists(
        st.tuples(
            st.from_regex(r"\d{1,3}(\.\d{1,3})?", fullmatch=True), st.sampled_from(["d", "h", "m", "s"])
        ).map("".join),
        min_size=1,
        max_size=4,
    ),
)


@settings(max_examples=3000, deadline=None)
@given(_TEXTS)
def test_every_text_reads_as_it_did(text: str) -> None:
    expected_option = _old_option(text)
    try:
        assert parse_option_duration(text) == expected_option
    except ValueError:
        assert expected_option is None

    expected_workload = _old_workload(text)
    try:
        assert parse_workload_duration(text) == expected_workload
    except argparse.ArgumentTypeError as exc:
        assert expected_workload == ("not positive" if "positive" in str(exc) else "not a duration")

    expected_period = _old_period(text)
    try:
        assert parse_relative_period(text) == expected_period
    except QueryError:
        assert expected_period is None
