"""Unlabeled images from a plain folder (``--unlabeled_dataset=folder:/path/to/images``).

Every PNG, JPEG, TIFF, BMP or GIF file under the folder (recursively, sorted) is read with Pillow,
converted to grayscale (transparency composited over white), resized to ``height`` pixels keeping
its aspect ratio, and kept in memory PNG-encoded (a few KB per word image). A file that cannot be
read is skipped and counted; the log names the first few. The result is a ``tf.data.Dataset`` of
``{"image": <PNG bytes>}`` that ``data.unlabeled_pipeline`` decodes; it is built from tensors, so
its iterator can be checkpointed like the TFDS ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import io
import os

import numpy as np
from PIL import Image
import tensorflow as tf

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")


@dataclass
class FolderStats:
    found: int = 0
    loaded: int = 0
    skipped: int = 0
    skipped_examples: list = field(default_factory=list)


def to_gray_height(im: Image.Image, height: int) -> np.ndarray:
    """uint8 [height, W, 1], W = round(width * height / original height) >= 1."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, np.float64)
        hi = arr.max() or 1.0
        im = Image.fromarray(np.uint8(np.clip(arr / hi * 255.0, 0, 255)))
    im = im.convert("L")
    w, h = im.size
    width = max(1, int(round(w * height / h)))
    im = im.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(im, np.uint8)[..., None]


def load_image_folder(path: str, *, height: int = 32, log=print, max_examples_logged: int = 5):
    """(dataset of {"image": PNG bytes}, FolderStats). Raises if no image can be read."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Unlabeled image folder {path!r} does not exist")
    files = sorted(
        os.path.join(root, f) for root, _, names in os.walk(path) for f in names
        if f.lower().endswith(EXTENSIONS))
    stats = FolderStats(found=len(files))
    encoded = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                arr = to_gray_height(im, height)
        except Exception as e:  # unreadable, truncated, 0-byte, not an image: skip and count
            stats.skipped += 1
            if len(stats.skipped_examples) < max_examples_logged:
                stats.skipped_examples.append(f"{f}: {type(e).__name__}: {e}")
            continue
        buf = io.BytesIO()
        Image.fromarray(arr[..., 0], mode="L").save(buf, format="PNG")
        encoded.append(buf.getvalue())
    stats.loaded = len(encoded)
    log(f"folder {path}: {stats.loaded} images loaded, {stats.skipped} unreadable skipped"
        + ("".join(f"\n  skipped {s}" for s in stats.skipped_examples) if stats.skipped else ""))
    if not encoded:
        raise ValueError(f"No readable image ({', '.join(EXTENSIONS)}) in {path!r} "
                         f"({stats.found} candidate files)")
    return tf.data.Dataset.from_tensor_slices({"image": tf.constant(encoded, tf.string)}), stats
