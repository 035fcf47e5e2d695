"""Durations as users write them (``500ms``, ``10m``, ``1h30m``, ``14d``): one parser, three grammars.

Each command line or API parameter that takes a duration names the grammar it
documents; ``parse`` reads a text with it and returns seconds:

- ``OPTION``: the pipeline's duration flags (``--watermark_delay 2s``): one
  number with an optional unit ``ms``, ``s``, ``m``, ``h`` or ``d`` (none means
  seconds), blanks allowed around and between them, lower case.
- ``WORKLOAD``: the workload generator's ``--duration``: a number of seconds in
  any form Python's ``float`` reads (``90``, ``1e3``), or terms ``d``, ``h``,
  ``m``, ``s`` in that order, each at most once (``1h30m``), in any case.
- ``STATS_PERIOD``: the issue index's ``statsPeriod`` (Sentry's): a whole number
  of at most nine digits and a unit ``s``, ``m``, ``h``, ``d`` or ``w``; seconds
  come back as an ``int``.

Numbers use any Unicode decimal digits, as Python's ``\\d`` and ``float`` read
them. Signs are refused except where ``float`` reads them (``WORKLOAD``), so a
caller that needs a positive duration checks it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["OPTION", "STATS_PERIOD", "WORKLOAD", "DurationError", "Grammar", "parse"]


class DurationError(ValueError):
    """The text is not a duration in the grammar asked for."""


@dataclass(frozen=True)
class Grammar:
    """How one command line or parameter writes a duration (see the module's docstring)."""

    name: str
    # One term: group 1 the number, group 2 the unit (None when the grammar allows a bare number).
    term: re.Pattern[str]
    # Seconds per unit; a None key is the unit of a bare number.
    units: dict[str | None, float | int]
    compound: bool = False  # terms may follow each other, largest unit first, each unit once
    lower: bool = False  # read in lower case
    float_seconds: bool = False  # a text Python's float() reads is a number of seconds
    whole: bool = False  # numbers are integers (int arithmetic, exact)


OPTION = Grammar(
    name="option",
    term=re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?"),
    units={"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1},
)
WORKLOAD = Grammar(
    name="workload",
    term=re.compile(r"(\d+(?:\.\d+)?)([dhms])"),
    units={"d": 86_400, "h": 3_600, "m": 60, "s": 1},
    compound=True,
    lower=True,
    float_seconds=True,
)
STATS_PERIOD = Grammar(
    name="statsPeriod",
    term=re.compile(r"(\d{1,9})([smhdw])"),
    units={"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800},
    whole=True,
)


def parse(text: str, grammar: Grammar) -> float:
    """Seconds that ``text`` stands for in ``grammar``; raises ``DurationError`` when it is not a duration there.

    Whole-number grammars return an ``int``; the others a ``float``, except that
    ``WORKLOAD`` returns whatever ``float()`` read (infinities and NaN included:
    its caller refuses them).
    """
    value = text.strip()
    if grammar.lower:
        value = value.lower()
    if grammar.float_seconds:
        try:
            return float(value)
        except ValueError:
            pass
    units = grammar.units
    total: float = 0.0
    previous: float = math.inf
    position = 0
    while True:
        match = grammar.term.match(value, position)
        if match is None:
            raise DurationError(f"{text!r} is not a duration ({grammar.name})")
        amount, unit = match.groups()
        size = units[unit]
        if size >= previous:  # a unit repeated or out of order
            raise DurationError(f"{text!r} is not a duration ({grammar.name})")
        number = int(amount) if grammar.whole else float(amount)
        total = number * size if position == 0 else total + number * size
        position = match.end()
        if position == len(value):
            return total
        if not grammar.compound:
            raise DurationError(f"{text!r} is not a duration ({grammar.name})")
        previous = size
