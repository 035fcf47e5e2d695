"""Events-over-time charts drawn as SVG on the server: a sparkline for each issue of the stream and a bar
chart with axes for the issue page. No script draws anything, so a chart is the same in every browser and in
the screenshots, and each bar carries its bucket and count (``data-start``, ``data-count`` and a ``<title>``
tooltip) for assistive technology and tests.

Output is markup built from numbers and from labels this module formats itself; nothing user-supplied is put
in it, so it is safe to insert unescaped (``markupsafe.Markup``).
"""

from __future__ import annotations

from markupsafe import Markup, escape

from api.issue_details import HOUR, EventSeries
from transforms.core.model import to_datetime
from web.timerange import iso


def _bucket_label(start: int, size: int) -> str:
    moment = to_datetime(start)
    if size <= HOUR:
        return f"{moment:%b} {moment.day}, {moment:%H}:00 UTC"
    return f"{moment:%b} {moment.day}, {moment.year}"


def _plural(count: int) -> str:
    return f"{count:,} event{'s' if count != 1 else ''}"


def sparkline(series: EventSeries | None, width: int = 120, height: int = 28) -> Markup:
    """A small bar chart of ``series``; a dash when it could not be counted within the page's budget."""
    if series is None or not series.complete:
        return Markup(
            '<span class="sparkline-none" title="Too many events in this range to count on the list;'
            ' the issue page has them">—</span>'
        )
    counts = series.counts
    peak = max(counts) if counts else 0
    step = width / max(1, len(counts))
    gap = 1 if step >= 3 else 0
    bars = []
    for i, count in enumerate(counts):
        if count == 0:
            bar_height = 1.0
            css = "spark-bar spark-zero"
        else:
            bar_height = max(2.0, (height - 2) * count / peak)
            css = "spark-bar"
        x = i * step
        bars.append(
            f'<rect class="{css}" x="{x:.2f}" y="{height - bar_height:.2f}" width="{max(step - gap, 1):.2f}"'
            f' height="{bar_height:.2f}" data-count="{count}"></rect>'
        )
    label = f"{_plural(series.total)} in this range"
    return Markup(
        f'<svg class="sparkline" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' aria-label="{escape(label)}" data-total="{series.total}"><title>{escape(label)}</title>'
        f"{''.join(bars)}</svg>"
    )


def bar_chart(series: EventSeries, width: int = 860, height: int = 180) -> Markup:
    """The issue page's chart: one bar per bucket with its count, a y axis with three gridlines and a
    handful of x labels."""
    left, right, top, bottom = 44, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    counts = series.counts
    peak = max(counts) if counts else 0
    scale_top = _nice_ceiling(peak)
    step = plot_w / max(1, len(counts))
    gap = max(1.0, step * 0.18) if step > 4 else 0.0
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" preserveAspectRatio="none"'
        f' aria-labelledby="chart-title" data-total="{series.total}" data-buckets="{len(counts)}">',
        f'<title id="chart-title">{escape(_plural(series.total))} over the range,'
        f" one bar per {'hour' if series.buckets.size <= HOUR else 'day'}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h - plot_h * fraction
        value = round(scale_top * fraction)
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"></line>'
            f'<text class="chart-axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,}</text>'
        )
    labelled = _labelled(series.buckets.start, len(counts), series.buckets.size)
    for i, count in enumerate(counts):
        start = series.buckets.start + i * series.buckets.size
        x = left + i * step
        bar_h = plot_h * count / scale_top if scale_top else 0.0
        if count and bar_h < 2:
            bar_h = 2.0
        parts.append(
            f'<g class="chart-bucket"><rect class="chart-hit" x="{x:.2f}" y="{top}" width="{step:.2f}"'
            f' height="{plot_h}"></rect><rect class="chart-bar" x="{x + gap / 2:.2f}"'
            f' y="{top + plot_h - bar_h:.2f}" width="{max(step - gap, 1):.2f}" height="{bar_h:.2f}"'
            f' data-start="{iso(start)}" data-count="{count}"></rect>'
            f"<title>{escape(_bucket_label(start, series.buckets.size))}: {escape(_plural(count))}</title></g>"
        )
        if i in labelled:
            parts.append(
                f'<text class="chart-axis" x="{x + step / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                f"{escape(_axis_label(start, series.buckets.size))}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _labelled(start: int, count: int, size: int) -> set[int]:
    """The buckets that get an x label: about six, at midnights (labelled with the date) when hourly bars span
    more than two days, and none so close to the right edge that it would be cut."""
    step = max(1, -(-count // 6))
    last = count - max(1, step // 2)
    if size <= HOUR and count > 48:
        days = max(1, round(step / 24))
        first_midnight = (-(start // HOUR)) % 24
        return {i for i in range(first_midnight, last + 1, 24) if ((i - first_midnight) // 24) % days == 0}
    return set(range(0, last + 1, step))


def _axis_label(start: int, size: int) -> str:
    moment = to_datetime(start)
    if size <= HOUR and moment.hour:
        return f"{moment:%H}:00"
    return f"{moment:%b} {moment.day}"


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 4 x 10^k at or above ``value`` (at least 2): round numbers whose half, the middle
    gridline, is a whole number too."""
    if value <= 2:
        return 2
    magnitude = 1
    while True:
        for factor in (1, 2, 4):
            if factor * magnitude >= value:
                return factor * magnitude
        magnitude *= 10
