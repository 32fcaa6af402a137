"""Quality measures of a trained generator.

CLI: ``python -m scrabblegan_tf.htr quality --workdir=<HTR trained on real data> --gan_workdir=<GAN>``
(prints one JSON object; see ``scrabblegan_tf/experiments/README.md``).

- **Legibility** (``legibility``): an HTR trained on real data only reads generated images of words
  the GAN never saw as labels (held-out vocabulary: texts of a real evaluation split that are not in
  the GAN's training labels); reported as its WER / CER / NED (``scrabblegan_tf.core.metrics``). Low
  values mean G writes what it is asked to, in a way a recognizer of real handwriting can read.
- **HTR Fréchet distance** (``frechet_distance`` of ``htr_features``): the Fréchet distance between
  Gaussians fitted to the HTR's features (the last BiLSTM's outputs averaged over the valid columns) of
  real images and of generated images of the same texts. The FID formula (Heusel et al., NeurIPS 2017)
  in a handwriting-aware feature space; works offline. Comparable only between runs that use the same
  HTR checkpoint and the same number of images (the estimate is biased upwards for small samples).
- **FID** (``inception_fid``): the standard FID with ImageNet InceptionV3 pool features (images
  resized to 299 x 299, grayscale repeated to RGB). It needs the ImageNet weights, which Keras
  downloads on first use (or a local ``.h5`` file given as ``weights``); where that is impossible
  (offline machines) the result is ``{"status": "unavailable", "reason": ...}``, never an error.
- **Diversity** (``diversity``): for each of some words, ``num_styles`` styles are drawn and the mean
  pairwise distance between the images of the same word is reported, in pixels (mean absolute
  difference of intensities in [0, 1]; all styles of a word have the same size) and in the HTR's
  feature space (Euclidean). 0 means every style draws the word identically (mode collapse).

The Fréchet distance between N(mu1, S1) and N(mu2, S2) is
``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. The trace of the matrix square root is
computed without scipy: with the symmetric square root R = S1^(1/2) (eigendecomposition), S1 S2 is
similar to the symmetric positive semi-definite R S2 R, so tr((S1 S2)^(1/2)) is the sum of the square
roots of R S2 R's eigenvalues (negative round-off eigenvalues clipped to 0).
"""

from __future__ import annotations

import itertools
import unicodedata

import keras
import numpy as np
import tensorflow as tf

from scrabblegan_tf.core import metrics
from scrabblegan_tf.core.pixels import pad_uint8_batch
from scrabblegan_tf.inference.generation import render
from scrabblegan_tf.inference.synthesis import resize_word
from scrabblegan_tf.models.crnn import read_uint8


# -- Fréchet distance ---------------------------------------------------------------------------
def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigendecomposition;
    negative round-off eigenvalues clipped to 0)."""
    a = np.asarray(a, np.float64)
    a = (a + a.T) / 2.0
    vals, vecs = np.linalg.eigh(a)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein) distance between two Gaussians (see the module docstring)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"Shapes do not match: mu {mu1.shape} {mu2.shape}, sigma {s1.shape} {s2.shape}")
    r = sqrtm_psd(s1)
    m = r @ ((s2 + s2.T) / 2.0) @ r
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(max(0.0, diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt))


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, N - 1) of features [N, D]; N >= 2."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"Need features [N >= 2, D], got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance_of_features(a, b) -> float:
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


# -- HTR features, legibility -------------------------------------------------------------------
def htr_features(model, images: list[np.ndarray], *, batch_size: int = 64,
                 max_width: int | None = None) -> np.ndarray:
    """``model.features`` of uint8 images [32, W(, 1)] -> [N, D]."""
    out = []
    for i in range(0, len(images), batch_size):
        x, w = pad_uint8_batch(images[i:i + batch_size], height=model.height, max_width=max_width)
        out.append(model.features(x, w).numpy())
    return np.concatenate(out, axis=0)


def legibility(model, alphabet, images: list[np.ndarray], words: list[str], *,
               max_width: int | None = None) -> dict:
    """WER / CER / NED of the HTR ``model`` reading ``images`` of ``words``."""
    preds = read_uint8(model, alphabet, images, max_width=max_width)
    out = metrics.evaluate_texts(preds, words)
    out["examples"] = [{"prediction": p, "truth": t} for p, t in list(zip(preds, words))[:10]]
    return out


# -- generation helpers ---------------------------------------------------------------------------
def generate_words(generator, alphabet, words: list[str], seeds, *, char_width=None,
                   fixed_width=None, batch_size: int = 64) -> list[np.ndarray]:
    """uint8 [32, W] images of ``words`` with the style seeds ``seeds``, resized like
    ``synthesize`` does (``char_width`` pixels per character, or ``fixed_width``)."""
    seeds = list(seeds)
    out = []
    for i in range(0, len(words), batch_size):
        batch = words[i:i + batch_size]
        for w, im in zip(batch, render(generator, alphabet, batch, seeds=seeds[i:i + batch_size])):
            out.append(resize_word(im, num_chars=len(w), char_width=char_width, fixed_width=fixed_width))
    return out


def diversity(generator, alphabet, words: list[str], *, num_styles: int = 8, seed: int = 0,
              htr=None, char_width=None, fixed_width=None, max_width=None) -> dict:
    """Mean pairwise distance between ``num_styles`` styles of each word (see the module docstring):
    ``pixel`` (mean |a - b| of intensities in [0, 1], native generator size) and, with ``htr``,
    ``htr_features`` (Euclidean distance of HTR features of the resized images)."""
    if num_styles < 2:
        raise ValueError("diversity needs num_styles >= 2")
    pixel, feat = [], []
    for k, word in enumerate(words):
        seeds = [seed * 1_000_003 + k * num_styles + s for s in range(num_styles)]
        images = render(generator, alphabet, [word] * num_styles, seeds=seeds)
        x = [im.astype(np.float64) / 255.0 for im in images]
        pixel.extend(np.abs(a - b).mean() for a, b in itertools.combinations(x, 2))
        if htr is not None:
            resized = [resize_word(im, num_chars=len(word), char_width=char_width,
                                   fixed_width=fixed_width) for im in images]
            f = htr_features(htr, resized, max_width=max_width)
            feat.extend(np.linalg.norm(a - b) for a, b in itertools.combinations(f, 2))
    out = {"pixel": float(np.mean(pixel)), "num_words": len(words), "num_styles": num_styles}
    if feat:
        out["htr_features"] = float(np.mean(feat))
    return out


# -- standard FID -------------------------------------------------------------------------------
def inception_fid(real: list[np.ndarray], fake: list[np.ndarray], *, weights: str = "imagenet",
                  batch_size: int = 32) -> dict:
    """Standard FID (InceptionV3 pool features, 299 x 299 RGB). ``{"status": "ok", "fid": x}``, or
    ``{"status": "unavailable", "reason": ...}`` when the weights cannot be had (no network)."""
    try:
        net = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=weights,
                                             input_shape=(299, 299, 3))
    except Exception as e:  # pylint: disable=broad-except  (download / file errors of any kind)
        return {"status": "unavailable", "reason": f"{type(e).__name__}: {e}"[:500]}

    def feats(images):
        out = []
        for i in range(0, len(images), batch_size):
            batch = [tf.image.resize(np.asarray(im, np.float32).reshape(im.shape[0], im.shape[1], 1),
                                     [299, 299]) for im in images[i:i + batch_size]]
            x = tf.image.grayscale_to_rgb(tf.stack(batch))
            out.append(net(keras.applications.inception_v3.preprocess_input(x), training=False).numpy())
        return np.concatenate(out, axis=0)

    return {"status": "ok", "fid": frechet_distance_of_features(feats(real), feats(fake)),
            "num_real": len(real), "num_fake": len(fake)}


# -- everything, for the CLI and the experiment ------------------------------------------------------
def heldout_words(candidates, training_labels, alphabet, *, max_len: int | None = None) -> list[str]:
    """Distinct candidates (NFC) the alphabet can write, not longer than ``max_len``, and not among
    the training labels; in first-seen order."""
    train = {unicodedata.normalize("NFC", t) for t in training_labels}
    out: dict[str, None] = {}
    for c in candidates:
        c = unicodedata.normalize("NFC", c)
        if c and c not in train and alphabet.can_encode(c) and (not max_len or len(c) <= max_len):
            out.setdefault(c, None)
    return list(out)


def evaluate_generator(generator, alphabet, htr, *, real_images: list[np.ndarray],
                       real_texts: list[str], training_labels: list[str], max_len: int | None = None,
                       char_width=None, fixed_width=None, max_width=None, seed: int = 0,
                       diversity_words: int = 16, num_styles: int = 8, inception: bool = False,
                       inception_weights: str = "imagenet", log=print) -> dict:
    """Legibility (held-out words), HTR Fréchet distance, diversity and (optionally) FID of a
    generator against real images ``real_images`` with texts ``real_texts`` (uint8 [32, W])."""
    keep = [i for i, t in enumerate(real_texts) if alphabet.can_encode(t)
            and (not max_len or len(t) <= max_len)]
    texts = [real_texts[i] for i in keep]
    real = [real_images[i] for i in keep]
    if len(texts) < 2:
        raise ValueError("Need at least 2 real images the generator can write")
    seeds = [seed * 1_000_003 + 500_000 + i for i in range(len(texts))]
    fake = generate_words(generator, alphabet, texts, seeds, char_width=char_width,
                          fixed_width=fixed_width)
    log(f"quality: {len(texts)} real images and generated images of the same texts")
    out: dict = {"num_images": len(texts), "char_width": char_width, "fixed_width": fixed_width}
    heldout = heldout_words(texts, training_labels, alphabet, max_len=max_len)
    held_idx = {t: i for i, t in reversed(list(enumerate(texts)))}
    if heldout:
        out["legibility_heldout"] = legibility(htr, alphabet, [fake[held_idx[t]] for t in heldout],
                                               heldout, max_width=max_width)
    out["legibility_all"] = legibility(htr, alphabet, fake, texts, max_width=max_width)
    out["htr_reads_real"] = legibility(htr, alphabet, real, texts, max_width=max_width)
    out["htr_frechet"] = frechet_distance_of_features(
        htr_features(htr, real, max_width=max_width), htr_features(htr, fake, max_width=max_width))
    words = list(dict.fromkeys(texts))[:diversity_words]
    out["diversity"] = diversity(generator, alphabet, words, num_styles=num_styles, seed=seed, htr=htr,
                                 char_width=char_width, fixed_width=fixed_width, max_width=max_width)
    out["inception_fid"] = (inception_fid(real, fake, weights=inception_weights) if inception
                            else {"status": "not requested"})
    return out
