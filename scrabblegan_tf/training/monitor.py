"""The legibility signal of a training run: fixed held-out words, fixed styles, read back.

Every ``run.eval_every`` iterations the trainer renders ``run.eval_words`` words that G never trains
on (held out from the fake-word lexicon and absent from the training labels) with fixed style
seeds, in inference mode (moving batch-norm statistics, as ``generate`` and the export use), and
reports their character error rate (CER) as read by

- ``cer_r``: the GAN's own recognizer R (greedy CTC decoding). Cheap but biased: G was trained to
  please R, so a low value is necessary, not sufficient;
- ``cer_htr``: an evaluation HTR trained on real images only (``--eval_htr=<htr workdir>``), which
  took no part in training G: the figure that says whether the words are legible.

Sample grids show the intended word to the left of each generated image.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from scrabblegan_tf.core import metrics, run_folder
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.imaging import caption_font
from scrabblegan_tf.models.crnn import greedy_decode

# A reader: uint8 images [32, W] (0 ink, 255 paper) -> transcriptions.
Reader = Callable[[list], list]


def ctc_greedy_texts(logits: np.ndarray, logit_lengths: np.ndarray, alphabet: Alphabet) -> list[str]:
    """Best-path CTC transcriptions (argmax per column, merge repeats, drop blanks)."""
    return [alphabet.decode(ids) for ids in greedy_decode(np.asarray(logits), np.asarray(logit_lengths))]


def labelled_grid(images: Sequence[np.ndarray], words: Sequence[str], *, label_width: int = 0,
                  pad: int = 4) -> np.ndarray:
    """uint8 grid, one row per image: the intended word in small print on the left, the image on
    its right (white canvas)."""
    font = caption_font()
    if not label_width:
        label_width = 8 + max(int(np.ceil(font.getlength(w))) for w in words)
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    canvas = Image.new("L", (label_width + w + 2 * pad, len(images) * (h + pad) + pad), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (im, word) in enumerate(zip(images, words)):
        y = pad + i * (h + pad)
        draw.text((pad, y + h // 2), word, fill=96, font=font, anchor="lm")
        canvas.paste(Image.fromarray(np.asarray(im).reshape(im.shape[0], im.shape[1])),
                     (pad + label_width, y))
    return np.asarray(canvas)


class LegibilityMonitor:
    """Renders the fixed held-out words and reads them back (see the module docstring).

    ``render(words, z) -> list of uint8 [32, 16 len] images`` (G in inference mode);
    ``read_r(words, images) -> transcriptions`` by R; ``readers``: more named readers
    (e.g. ``{"htr": ...}``) of uint8 images.
    """

    def __init__(self, words: Sequence[str], *, z: np.ndarray, render, read_r: Reader | None = None,
                 readers: dict[str, Reader] | None = None, batch_size: int = 64):
        if not words:
            raise ValueError("The legibility monitor needs at least one held-out word")
        self.words = list(words)
        self.z = np.asarray(z, np.float32)
        self.render = render
        self.read_r = read_r
        self.readers = dict(readers or {})
        self.batch_size = batch_size

    def images(self) -> list[np.ndarray]:
        out = []
        for i in range(0, len(self.words), self.batch_size):
            out.extend(self.render(self.words[i:i + self.batch_size], self.z[i:i + self.batch_size]))
        return out

    def evaluate(self) -> tuple[dict, list[np.ndarray], dict]:
        """({"cer_r": ..., "cer_htr": ..., ...}, the images, {reader: transcriptions})."""
        images = self.images()
        results, reads = {}, {}
        named = ({"r": self.read_r} if self.read_r else {}) | self.readers
        for name, reader in named.items():
            preds = reader(images)
            reads[name] = preds
            m = metrics.evaluate_texts(preds, self.words)
            results[f"cer_{name}"] = m["cer"]
            results[f"wer_{name}"] = m["wer"]
        return results, images, reads

    def grid(self, images: Sequence[np.ndarray], limit: int = 16) -> np.ndarray:
        """The first ``limit`` words with their images (words of every length: evenly spaced)."""
        idx = np.unique(np.linspace(0, len(self.words) - 1, min(limit, len(self.words))).round()
                        .astype(int))
        return labelled_grid([images[i] for i in idx], [self.words[i] for i in idx])


def save_images(path: str, images: Sequence[np.ndarray], words: Sequence[str]) -> str:
    """The held-out images of one evaluation as .npz (``images`` uint8 [N, 32, W_max] padded with
    white, ``widths`` [N], ``words``), so that any reader can read them later."""

    widths = np.asarray([im.shape[1] for im in images], np.int32)
    h = max(im.shape[0] for im in images)
    out = np.full((len(images), h, int(widths.max())), 255, np.uint8)
    for i, im in enumerate(images):
        out[i, : im.shape[0], : im.shape[1]] = im
    with run_folder.atomic_path(path, ".npz") as tmp:
        np.savez_compressed(tmp, images=out, widths=widths, words=np.asarray(list(words)))
    return path


def load_images(path: str) -> tuple[list[np.ndarray], list[str]]:
    """The images (cropped to their widths) and words of ``save_images``."""
    with np.load(path) as data:
        images, widths, words = data["images"], data["widths"], [str(w) for w in data["words"]]
    return [im[:, :w] for im, w in zip(images, widths)], words
