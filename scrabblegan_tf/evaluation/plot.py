"""Line charts as PNG with Pillow only (no plotting library is a dependency): a legibility curve,
CER against training minutes, one line per reader, dashed reference levels."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from scrabblegan_tf.core.imaging import caption_font

COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))


def _nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 (times a power of ten) times 5 that is >= x, so that the 5
    axis intervals have round labels (51.3 -> 60, 7 -> 10)."""
    p = 10 ** math.floor(math.log10(x / 5))
    for m in (1, 2, 2.5, 5, 10):
        if 5 * m * p >= x:
            return 5 * m * p
    return 50 * p


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, title: str,
               xlabel: str, ylabel: str, references: dict[str, float] | None = None,
               ymax: float | None = None, size=(720, 420)) -> np.ndarray:
    """uint8 RGB [H, W, 3]: ``series`` {name: (xs, ys)} as lines with dots, ``references``
    {name: y} as dashed horizontal lines, a legend top right."""
    font = caption_font()
    w, h = size
    left, right, top, bottom = 60, 20, 36, 48
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    xs_all = [x for xs, _ in series.values() for x in xs] or [0.0, 1.0]
    ys_all = [y for _, ys in series.values() for y in ys] + list((references or {}).values())
    x0, x1 = 0.0, _nice_ceiling(max(max(xs_all), 1e-6))
    y1 = ymax if ymax is not None else max(max(ys_all or [1.0]) * 1.05, 1e-6)
    y0 = 0.0

    def px(x, y):
        return (left + (x - x0) / (x1 - x0) * (w - left - right),
                h - bottom - (min(y, y1) - y0) / (y1 - y0) * (h - top - bottom))

    # axes, ticks, grid
    draw.line([px(x0, y0), px(x1, y0)], fill=(0, 0, 0))
    draw.line([px(x0, y0), px(x0, y1)], fill=(0, 0, 0))
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        p = px(x0, y)
        draw.line([p, px(x1, y)], fill=(230, 230, 230))
        draw.text((p[0] - 6, p[1]), f"{y:.2f}", fill=(0, 0, 0), font=font, anchor="rm")
        x = x0 + (x1 - x0) * i / 5
        q = px(x, y0)
        draw.text((q[0], q[1] + 6), f"{x:.0f}", fill=(0, 0, 0), font=font, anchor="mt")
    draw.text((w / 2, 8), title, fill=(0, 0, 0), font=font, anchor="mt")
    draw.text((w / 2, h - 14), xlabel, fill=(0, 0, 0), font=font, anchor="mm")
    draw.text((8, top - 18), ylabel, fill=(0, 0, 0), font=font, anchor="lt")
    legend = []
    for k, (name, y) in enumerate((references or {}).items()):
        color = tuple(int(c * 0.6 + 102) for c in COLORS[(k + 2) % len(COLORS)])
        a, b = px(x0, y), px(x1, y)
        x = a[0]
        while x < b[0]:  # dashes
            draw.line([(x, a[1]), (min(x + 6, b[0]), a[1])], fill=color, width=1)
            x += 12
        legend.append((name, color, True))
    for k, (name, (xs, ys)) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        pts = [px(x, y) for x, y in zip(xs, ys)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        for p in pts:
            draw.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=color)
        legend.append((name, color, False))
    ly = top + 4
    text_width = max((font.getlength(name) for name, _, _ in legend), default=0)
    lx = max(left, w - right - 24 - int(np.ceil(text_width)))  # wide enough for the longest name
    for name, color, dashed in legend:
        if dashed:
            draw.line([(lx, ly + 5), (lx + 6, ly + 5)], fill=color)
            draw.line([(lx + 12, ly + 5), (lx + 18, ly + 5)], fill=color)
        else:
            draw.line([(lx, ly + 5), (lx + 18, ly + 5)], fill=color, width=2)
        draw.text((lx + 24, ly), name, fill=(0, 0, 0), font=font)
        ly += 14
    return np.asarray(img)
