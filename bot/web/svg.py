"""Charts as server-rendered SVG: no script, no CDN, works offline and in any browser.

Every plotted value is also an element attribute (``data-key`` / ``data-value`` on elements of class ``datum``),
so a test, or a curious operator, can read the exact figures behind a chart. Every text written here (keys,
labels, titles, series, colours, units) goes through ``escape`` and every count through ``int``/``_fmt``: the
dashboard passes the output on to its templates as Markup (tests/test_dashboard_http.py checks it).
"""

from __future__ import annotations

from html import escape

W, H = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 44, 12, 14, 30
PALETTE = {"core": "#b5179e", "new": "#4361ee", "active": "#2a9d8f", "casual": "#8ab17d", "silent": "#e9c46a",
           "lost": "#e76f51"}


def _fmt(v: float) -> str:
    return f"{v:.1f}" if isinstance(v, float) and not v.is_integer() else f"{int(v)}"


def _frame(chart_id: str, title: str, inner: str, top: float, unit: str = "") -> str:
    plot_h = H - PAD_T - PAD_B
    grid = []
    for i in range(5):
        y = PAD_T + plot_h * i / 4
        value = top * (4 - i) / 4
        grid.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" class="grid"/>'
                    f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_fmt(value)}{unit}</text>')
    return (f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {W} {H}" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
            + "".join(grid) + inner + "</svg>")


def _nice_top(values: list[float]) -> float:
    """A top for the y axis whose quarters are round numbers (1, 2 or 5 × 10^k, at least 1)."""
    top = max([v for v in values if v is not None] or [0])
    step = 1.0
    while 4 * step < top:
        for factor in (2, 2.5, 2):  # 1 → 2 → 5 → 10 → 20 ...
            step *= factor
            if 4 * step >= top:
                break
    return 4 * step


def _x_labels(keys: list[str], x_of) -> str:
    out = []
    every = max(1, len(keys) // 6)
    for i, k in enumerate(keys):
        if i % every == 0 or i == len(keys) - 1:
            out.append(f'<text x="{x_of(i):.1f}" y="{H - 10}" class="axis" text-anchor="middle">{escape(k[5:])}</text>')
    return "".join(out)


def bar_chart(chart_id: str, title: str, data: list[tuple[str, float]], color: str = "#4361ee") -> str:
    color = escape(color)
    if not data:
        return empty(chart_id, title)
    top = _nice_top([v for _, v in data])
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    step = plot_w / len(data)
    bars = []
    for i, (key, value) in enumerate(data):
        h = plot_h * value / top
        x = PAD_L + i * step + step * 0.15
        bars.append(f'<rect class="datum" data-key="{escape(key)}" data-value="{_fmt(value)}" x="{x:.1f}" '
                    f'y="{PAD_T + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
                    f'<title>{escape(key)}: {_fmt(value)}</title></rect>')
    return _frame(chart_id, title, "".join(bars) + _x_labels([k for k, _ in data], lambda i: PAD_L + (i + .5) * step),
                  top)


def line_chart(chart_id: str, title: str, data: list[tuple[str, float | None]], color: str = "#2a9d8f",
               unit: str = "", top: float | None = None) -> str:
    """Missing values (None) break the line and have no point; they are still listed with data-value=""."""
    color, unit = escape(color), escape(unit)
    if not data:
        return empty(chart_id, title)
    top = top or _nice_top([v for _, v in data if v is not None])
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    step = plot_w / max(1, len(data) - 1)
    segments, current, points = [], [], []
    for i, (key, value) in enumerate(data):
        x = PAD_L + i * step if len(data) > 1 else PAD_L + plot_w / 2
        if value is None:
            if current:
                segments.append(current)
            current = []
            points.append(f'<g class="datum" data-key="{escape(key)}" data-value=""></g>')
            continue
        y = PAD_T + plot_h - plot_h * value / top
        current.append(f"{x:.1f},{y:.1f}")
        points.append(f'<circle class="datum" data-key="{escape(key)}" data-value="{_fmt(value)}" cx="{x:.1f}" '
                      f'cy="{y:.1f}" r="3" fill="{color}"><title>{escape(key)}: {_fmt(value)}{unit}</title></circle>')
    if current:
        segments.append(current)
    lines = "".join(f'<polyline points="{" ".join(s)}" fill="none" stroke="{color}" stroke-width="2"/>'
                    for s in segments)
    x_of = (lambda i: PAD_L + i * step) if len(data) > 1 else (lambda i: PAD_L + plot_w / 2)
    return _frame(chart_id, title, lines + "".join(points) + _x_labels([k for k, _ in data], x_of), top, unit)


def stacked_bars(chart_id: str, title: str, data: list[tuple[str, dict[str, int]]], order: tuple[str, ...],
                 names: dict[str, str]) -> str:
    if not data:
        return empty(chart_id, title, "还没有分层记录：每晚汇总一次")
    top = _nice_top([sum(v.values()) for _, v in data])
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    step = plot_w / len(data)
    parts = []
    for i, (key, values) in enumerate(data):
        y = PAD_T + plot_h
        x = PAD_L + i * step + step * 0.15
        for series in order:
            v = int(values.get(series, 0))
            h = plot_h * v / top
            y -= h
            parts.append(f'<rect class="datum" data-key="{escape(key)}" data-series="{escape(series)}" data-value="{v}" '
                         f'x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                         f'fill="{escape(PALETTE.get(series, "#999"))}"><title>{escape(key)} {escape(names.get(series, series))}: '
                         f'{v}</title></rect>')
    return _frame(chart_id, title, "".join(parts) + _x_labels([k for k, _ in data],
                                                              lambda i: PAD_L + (i + .5) * step), top) + legend(order, names)


def legend(order: tuple[str, ...], names: dict[str, str]) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{escape(PALETTE.get(s, "#999"))}"></i>{escape(names.get(s, s))}</span>' for s in order) + "</p>"


def funnel(chart_id: str, title: str, stages: list[tuple[str, str, int]]) -> str:
    """Horizontal bars, each stage as a share of the first: (key, label, count)."""
    if not stages:
        return empty(chart_id, title)
    first = stages[0][2] or 1
    row_h = 34
    height = PAD_T + row_h * len(stages) + 6
    label_w, plot_w = 120, W - 120 - 90
    rows = []
    for i, (key, label, n) in enumerate(stages):
        n = int(n)
        y = PAD_T + i * row_h
        w = plot_w * n / first if first else 0
        share = f"{100 * n / stages[0][2]:.0f}%" if stages[0][2] else "—"
        rows.append(f'<text x="{label_w - 8}" y="{y + 20}" class="label" text-anchor="end">{escape(label)}</text>'
                    f'<rect class="datum" data-key="{escape(key)}" data-value="{n}" x="{label_w}" y="{y + 4}" '
                    f'width="{max(w, 1):.1f}" height="{row_h - 10}" fill="#4361ee"><title>{escape(label)}: {n}</title>'
                    f'</rect><text x="{label_w + max(w, 1) + 6:.1f}" y="{y + 20}" class="label">{n}（{share}）</text>')
    return (f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {W} {height}" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
            + "".join(rows) + "</svg>")


def empty(chart_id: str, title: str, note: str = "暂无数据") -> str:
    return (f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {W} 60" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg"><text x="{W / 2}" y="34" class="label" text-anchor="middle">'
            f'{escape(note)}</text></svg>')
