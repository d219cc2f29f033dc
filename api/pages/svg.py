"""Pictures drawn on the server as inline SVG (no JavaScript library): an entity's neighbourhood in the graph and the
agreement chart. Every text is escaped; every link is built by the caller's ``href`` function."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from markupsafe import Markup, escape

#: Neighbours drawn per group; the rest are counted in a "+N" node.
MAX_PER_GROUP = 7
LABEL_CHARS = 24


@dataclass(frozen=True)
class Node:
    id: str
    label: str


@dataclass(frozen=True)
class Group:
    """Neighbours of one kind, drawn on one side: ``top``, ``bottom``, ``left`` or ``right``; ``total`` counts all."""

    title: str
    side: str
    nodes: tuple[Node, ...]
    total: int


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node(x: float, y: float, label: str, href: str | None, css: str, title: str = "") -> str:
    width = max(72.0, min(190.0, 7.2 * len(label) + 20))
    rect = (f'<rect x="{x - width / 2:.1f}" y="{y - 14:.1f}" width="{width:.1f}" height="28" rx="14" class="{css}"/>'
            f'<text x="{x:.1f}" y="{y + 4.5:.1f}" text-anchor="middle">{escape(label)}</text>')
    tooltip = f"<title>{escape(title)}</title>" if title else ""
    if href:
        return f'<a href="{escape(href)}">{tooltip}{rect}</a>'
    return f"<g>{tooltip}{rect}</g>"


@dataclass(frozen=True)
class _Layout:
    """Bands of the neighbourhood picture: parents on top, children at the bottom, the two side columns between."""

    width: float
    top: float
    middle: float
    bottom: float

    @property
    def height(self) -> float:
        return self.top + self.middle + self.bottom

    @property
    def centre(self) -> tuple[float, float]:
        return self.width / 2, self.top + self.middle / 2

    def positions(self, side: str, count: int) -> list[tuple[float, float]]:
        if count == 0:
            return []
        if side in ("top", "bottom"):
            y = self.top / 2 + 8 if side == "top" else self.top + self.middle + self.bottom / 2
            step = (self.width - 40) / count
            return [(20 + step * (i + 0.5), y) for i in range(count)]
        x = 105.0 if side == "left" else self.width - 105.0
        step = (self.middle - 40) / count
        return [(x, self.top + 34 + step * (i + 0.5)) for i in range(count)]

    def title_position(self, side: str) -> tuple[float, float]:
        return {"top": (self.width / 2, 16.0), "bottom": (self.width / 2, self.height - 6.0),
                "left": (12.0, self.top + 18), "right": (self.width - 12.0, self.top + 18)}[side]


def _layout(groups: Sequence[Group]) -> _Layout:
    drawn = {g.side: min(len(g.nodes), MAX_PER_GROUP) + (1 if g.total > min(len(g.nodes), MAX_PER_GROUP) else 0)
             for g in groups if g.nodes}
    side_rows = max(drawn.get("left", 0), drawn.get("right", 0))
    return _Layout(width=820.0, top=80.0 if "top" in drawn else 0.0, middle=max(170.0, 44.0 * side_rows + 50),
                   bottom=80.0 if "bottom" in drawn else 0.0)


def neighbourhood_svg(centre: Node, groups: Sequence[Group], href: Callable[[str], str], *,
                      more_label: str = "more") -> Markup:
    """The entity in the middle, each group of neighbours on its side, an edge to each; nodes link to their pages.

    The picture is as tall as its groups need: a band above for parents and below for children only when there are
    any, and side columns tall enough for the longer of the two.
    """
    layout = _layout(groups)
    cx, cy = layout.centre
    edges: list[str] = []
    nodes: list[str] = []
    titles: list[str] = []
    for group in groups:
        shown = list(group.nodes[:MAX_PER_GROUP])
        extra = group.total - len(shown)
        points = layout.positions(group.side, len(shown) + (1 if extra > 0 else 0))
        for (x, y), node in zip(points, shown):
            edges.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" class="edge edge-{group.side}"/>')
            nodes.append(_node(x, y, _short(node.label), href(node.id), f"node node-{group.side}", f"{node.label} ({node.id})"))
        if extra > 0:
            x, y = points[-1]
            edges.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" class="edge edge-more"/>')
            nodes.append(_node(x, y, f"+{extra} {more_label}", None, "node node-more"))
        if shown:
            tx, ty = layout.title_position(group.side)
            anchor = "middle" if group.side in ("top", "bottom") else ("start" if group.side == "left" else "end")
            titles.append(f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" class="group-title">'
                          f'{escape(group.title)} ({group.total})</text>')
    nodes.append(_node(cx, cy, _short(centre.label, 30), None, "node node-centre", f"{centre.label} ({centre.id})"))
    body = "".join(edges + titles + nodes)
    return Markup(f'<svg class="graph" viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" role="img" '
                  f'aria-label="{escape(centre.label)}">{body}</svg>')


@dataclass(frozen=True)
class Bar:
    """One bar of the agreement chart: its label, value (None = undefined) and the note under it (e.g. ``n=12``)."""

    label: str
    value: float | None
    note: str
    series: int  # 0 = between reviewers, 1 = model vs consensus


def agreement_chart_svg(bars: Sequence[Bar], legends: Sequence[str], undefined_label: str) -> Markup:
    """Grouped bars of kappa per scale on a −1…1 axis (0 = chance agreement), two series side by side."""
    labels = list(dict.fromkeys(bar.label for bar in bars))
    width, height = 760.0, 300.0
    left, right, top, bottom = 56.0, 16.0, 34.0, 56.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def y_of(v: float) -> float:
        return top + (1 - (v + 1) / 2) * plot_h

    parts = []
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        y = y_of(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="{"axis" if tick == 0 else "grid"}"/>'
                     f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">{tick:g}</text>')
    slot = plot_w / max(1, len(labels))
    bar_w = min(44.0, slot / 3)
    for i, label in enumerate(labels):
        x0 = left + slot * i + slot / 2
        parts.append(f'<text x="{x0:.1f}" y="{height - bottom + 20:.1f}" text-anchor="middle" class="label">{escape(label)}</text>')
        for bar in (b for b in bars if b.label == label):
            x = x0 - bar_w - 2 if bar.series == 0 else x0 + 2
            if bar.value is None:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y_of(0) - 6:.1f}" text-anchor="middle" '
                             f'class="undefined">{escape(undefined_label)}</text>')
            else:
                y, y0 = y_of(max(-1.0, min(1.0, bar.value))), y_of(0)
                parts.append(f'<rect x="{x:.1f}" y="{min(y, y0):.1f}" width="{bar_w:.1f}" height="{abs(y0 - y):.1f}" '
                             f'class="kbar series-{bar.series}"><title>{escape(label)}: {bar.value:.2f}</title></rect>'
                             f'<text x="{x + bar_w / 2:.1f}" y="{min(y, y0) - 5:.1f}" text-anchor="middle" class="value">'
                             f'{bar.value:.2f}</text>')
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 36:.1f}" text-anchor="middle" '
                         f'class="note">{escape(bar.note)}</text>')
    for s, legend in enumerate(legends):
        lx = left + 10 + s * 260
        parts.append(f'<rect x="{lx}" y="8" width="14" height="14" class="kbar series-{s}"/>'
                     f'<text x="{lx + 20}" y="20" class="legend">{escape(legend)}</text>')
    return Markup(f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" role="img">{"".join(parts)}</svg>')
