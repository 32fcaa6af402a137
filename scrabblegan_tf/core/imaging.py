"""Conversions between model images ([-1, 1], white = +1) and 8-bit pictures; PNG grids."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from PIL import ImageFont

from scrabblegan_tf.core import run_folder


def crop_width(image: np.ndarray, width: int) -> np.ndarray:
    """The first ``width`` columns of an [H, W(, 1)] image."""
    return image[:, : int(width)]


def grid(images: list[np.ndarray], *, columns: int = 1, pad: int = 4) -> np.ndarray:
    """Tiles uint8 [H, W] / [H, W, 1] images (possibly of different widths) on a white canvas,
    row-major, ``columns`` per row; each cell is as wide as the widest image."""
    images = [np.asarray(im).reshape(im.shape[0], im.shape[1]) for im in images]
    if not images:
        raise ValueError("grid() needs at least one image")
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    rows = (len(images) + columns - 1) // columns
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        canvas[y : y + im.shape[0], x : x + im.shape[1]] = im
    return canvas


# Fonts with Latin-1 and Latin Extended-A glyphs (umlauts, ß, accents) for captions; Pillow's
# built-in default lacks them.
CAPTION_FONTS = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                 "LiberationSans-Regular.ttf",
                 "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")


def caption_font(size: int = 11):
    """A PIL font for captions: the first of CAPTION_FONTS found, else Pillow's default."""
    for name in CAPTION_FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def save_png(image: np.ndarray, path: str) -> str:
    """Writes a uint8 [H, W] or [H, W, 1] image atomically (temp file + rename)."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., 0]
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="PNG")
    return run_folder.write_bytes(path, buf.getvalue())


def save_png_rgb(image: np.ndarray, path: str) -> str:
    """Writes a uint8 [H, W, 3] image atomically (temp file + rename)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), mode="RGB").save(buf, format="PNG")
    return run_folder.write_bytes(path, buf.getvalue())
