"""Line and bar charts drawn with Pillow (the demo adds no plotting dependency)."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]
WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 170, 36, 48


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(math.ceil((high - first) / step) + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.0e}"


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str,
               y_label: str, hlines: dict[str, float] | None = None) -> Image.Image:
    """Each series as a polyline (points as dots when few), optional dashed reference lines."""
    hlines = hlines or {}
    xs = [x for points in series.values() for x, _ in points] or [0.0, 1.0]
    ys = [y for points in series.values() for _, y in points] + list(hlines.values()) or [0.0, 1.0]
    x_ticks, y_ticks = _ticks(min(xs), max(xs)), _ticks(min(ys), max(ys))
    x_low, x_high, y_low, y_high = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (LEFT + (x - x_low) / (x_high - x_low) * plot_w,
                TOP + (1 - (y - y_low) / (y_high - y_low)) * plot_h)

    for tick in y_ticks:
        _, y = to_px(x_low, tick)
        draw.line([(LEFT, y), (LEFT + plot_w, y)], fill=(232, 232, 232))
        draw.text((LEFT - 6, y), _label(tick), fill="black", anchor="rm")
    for tick in x_ticks:
        x, _ = to_px(tick, y_low)
        draw.line([(x, TOP + plot_h), (x, TOP + plot_h + 4)], fill="black")
        draw.text((x, TOP + plot_h + 8), _label(tick), fill="black", anchor="mt")
    draw.rectangle([LEFT, TOP, LEFT + plot_w, TOP + plot_h], outline="black")
    draw.text((WIDTH / 2, 12), title, fill="black", anchor="mt")
    draw.text((LEFT + plot_w / 2, HEIGHT - 14), x_label, fill="black", anchor="mm")
    draw.text((8, TOP - 22), y_label, fill="black")
    legend_y = TOP
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        pixels = [to_px(x, y) for x, y in points]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        if len(pixels) <= 12:
            for x, y in pixels:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        legend_y = _legend(draw, legend_y, name, colour)
    for index, (name, value) in enumerate(hlines.items()):
        colour = PALETTE[(len(series) + index) % len(PALETTE)]
        _, y = to_px(x_low, value)
        for start in range(LEFT, LEFT + plot_w, 12):
            draw.line([(start, y), (min(start + 6, LEFT + plot_w), y)], fill=colour, width=2)
        legend_y = _legend(draw, legend_y, name, colour)
    return image


def _legend(draw: ImageDraw.ImageDraw, y: float, name: str, colour) -> float:
    x = WIDTH - RIGHT + 12
    draw.line([(x, y + 6), (x + 18, y + 6)], fill=colour, width=3)
    draw.text((x + 24, y), name, fill="black")
    return y + 18


def bar_chart(groups: dict[str, dict[str, float]], title: str, y_label: str) -> Image.Image:
    """Grouped bars: one group per key of ``groups``, one bar per inner key (same in all)."""
    names = list(next(iter(groups.values())))
    top = max(value for bars in groups.values() for value in bars.values())
    y_ticks = _ticks(0.0, top)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    scale = plot_h / y_ticks[-1]
    for tick in y_ticks:
        y = TOP + plot_h - tick * scale
        draw.line([(LEFT, y), (LEFT + plot_w, y)], fill=(232, 232, 232))
        draw.text((LEFT - 6, y), _label(tick), fill="black", anchor="rm")
    group_w = plot_w / len(groups)
    bar_w = group_w * 0.8 / len(names)
    for g, (group, bars) in enumerate(groups.items()):
        x0 = LEFT + g * group_w + group_w * 0.1
        for b, name in enumerate(names):
            value = bars[name]
            x = x0 + b * bar_w
            draw.rectangle([x, TOP + plot_h - value * scale, x + bar_w - 2, TOP + plot_h],
                           fill=PALETTE[b % len(PALETTE)])
            draw.text((x + bar_w / 2, TOP + plot_h - value * scale - 4), f"{value:.3f}",
                      fill="black", anchor="mb")
        draw.text((x0 + group_w * 0.4, TOP + plot_h + 8), group, fill="black", anchor="mt")
    draw.rectangle([LEFT, TOP, LEFT + plot_w, TOP + plot_h], outline="black")
    draw.text((WIDTH / 2, 12), title, fill="black", anchor="mt")
    draw.text((8, TOP - 22), y_label, fill="black")
    legend_y = TOP
    for b, name in enumerate(names):
        legend_y = _legend(draw, legend_y, name, PALETTE[b % len(PALETTE)])
    return image
