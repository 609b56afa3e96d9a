"""A tiny line-chart PNG writer (numpy raster, zlib), so sweeps need no plotting library."""

import struct
import zlib

import numpy as np

__all__ = ["Canvas", "line_chart", "write_png"]

# 5×7 glyphs, one string of 7 rows of 5 bits ('#' set) per character.
_FONT_ROWS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 11001 10101 10011 10001 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    " ": "00000 00000 00000 00000 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    "%": "11000 11001 00010 00100 01000 10011 00011",
    "/": "00001 00001 00010 00100 01000 10000 10000",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000",
    "*": "00000 00100 10101 01110 10101 00100 00000",
    "=": "00000 00000 11111 00000 11111 00000 00000",
}
_FONT = {ch: np.array([[c == "1" for c in row] for row in rows.split()], dtype=bool)
         for ch, rows in _FONT_ROWS.items()}

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def write_png(path, pixels):
    """Write an RGB ``uint8`` array [height, width, 3] as a PNG file."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"pixels must be a uint8 array [height, width, 3], not "
                         f"{pixels.dtype} {pixels.shape}")
    height, width, _ = pixels.shape
    # Filter type 0 (none) before every row.
    raw = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, -1)], axis=1)

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as file:
        file.write(data)


class Canvas:
    """An RGB raster with lines, boxes and 5×7 text."""

    def __init__(self, width, height, background=(255, 255, 255)):
        self.pixels = np.empty((height, width, 3), np.uint8)
        self.pixels[:] = background

    @property
    def size(self):
        return self.pixels.shape[1], self.pixels.shape[0]

    def point(self, x, y, color, radius=0):
        width, height = self.size
        x0, x1 = max(int(x) - radius, 0), min(int(x) + radius + 1, width)
        y0, y1 = max(int(y) - radius, 0), min(int(y) + radius + 1, height)
        if x0 < x1 and y0 < y1:
            self.pixels[y0:y1, x0:x1] = color

    def line(self, x0, y0, x1, y1, color, width=1):
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for t in np.linspace(0.0, 1.0, steps):
            self.point(round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t), color, width // 2)

    def text(self, x, y, string, color=(0, 0, 0), scale=1):
        for index, char in enumerate(str(string).upper()):
            glyph = _FONT.get(char, _FONT["*"])
            ys, xs = np.nonzero(glyph)
            for gy, gx in zip(ys.tolist(), xs.tolist(), strict=True):
                px, py = x + (index * 6 + gx) * scale, y + gy * scale
                self.pixels[py:py + scale, px:px + scale] = color

    def text_width(self, string, scale=1):
        return len(str(string)) * 6 * scale


def _ticks(lo, hi, count=5):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** np.floor(np.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    start = np.floor(lo / step) * step
    return [start + i * step for i in range(int(np.ceil((hi - start) / step)) + 1)]


def _label(value):
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.0e}"


def line_chart(canvas, box, x_values, series, *, title, y_label, x_label, y_min=None):
    """Plot ``series`` ({name: [y or None]}) against ``x_values`` inside ``box`` (x, y, w, h)."""
    left, top, width, height = box
    plot_left, plot_top = left + 48, top + 22
    plot_width, plot_height = width - 60, height - 58
    points = [y for ys in series.values() for y in ys if y is not None]
    lo = min(points + ([y_min] if y_min is not None else []), default=0.0)
    hi = max(points, default=1.0)
    y_ticks = _ticks(lo, hi)
    lo, hi = y_ticks[0], y_ticks[-1]
    x_lo, x_hi = min(x_values, default=0), max(x_values, default=1)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1

    def px(x):
        return plot_left + (x - x_lo) / (x_hi - x_lo) * plot_width

    def py(y):
        return plot_top + plot_height - (y - lo) / (hi - lo) * plot_height

    canvas.text(left + (width - canvas.text_width(title)) // 2, top + 4, title)
    grey, black = (220, 220, 220), (0, 0, 0)
    for tick in y_ticks:
        canvas.line(plot_left, py(tick), plot_left + plot_width, py(tick), grey)
        label = _label(tick)
        canvas.text(plot_left - 4 - canvas.text_width(label), int(py(tick)) - 3, label)
    for x in x_values:
        canvas.line(px(x), plot_top + plot_height, px(x), plot_top + plot_height + 3, black)
        canvas.text(int(px(x)) - canvas.text_width(str(x)) // 2, plot_top + plot_height + 6, x)
    canvas.line(plot_left, plot_top, plot_left, plot_top + plot_height, black)
    canvas.line(plot_left, plot_top + plot_height, plot_left + plot_width,
                plot_top + plot_height, black)
    canvas.text(plot_left + (plot_width - canvas.text_width(x_label)) // 2,
                plot_top + plot_height + 18, x_label)
    canvas.text(left + 2, plot_top - 12, y_label)
    legend_x = plot_left + 4
    for index, (name, ys) in enumerate(series.items()):
        color = PALETTE[index % len(PALETTE)]
        previous = None
        for x, y in zip(x_values, ys, strict=True):
            if y is None:
                previous = None
                continue
            if previous is not None:
                canvas.line(*previous, px(x), py(y), color, width=2)
            canvas.point(px(x), py(y), color, radius=2)
            previous = (px(x), py(y))
        canvas.line(legend_x, plot_top + 4, legend_x + 10, plot_top + 4, color, width=2)
        canvas.text(legend_x + 13, plot_top + 1, name, color)
        legend_x += 13 + canvas.text_width(name) + 12
