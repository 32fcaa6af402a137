"""Writing a labelled synthetic handwriting dataset with a trained generator, readable by TFDS.

    python -m scrabblegan_tf.synthesize --workdir=runs/dhsd --num_words=100000 --out_dir=synth/dhsd
    python -m scrabblegan_tf.synthesize --workdir=runs/iam --lexicon=words.txt --num_words=50000 \\
        --out_dir=synth/iam --char_width=12

Loading it (no builder code needed; the features are those of the project's real builders)::

    import tensorflow_datasets as tfds
    ds = tfds.builder_from_directory("synth/dhsd").as_dataset(split="train")
    # {"image": uint8 [32, W, 1], "text": tf.string, "writer_id": style seed, "id": "syn0-00000042"}

and mixing it into HTR training: ``python -m scrabblegan_tf.htr train --dataset=dhsd
--synthetic_dir=synth/dhsd --synthetic_ratio=0.5 --workdir=...`` (``scrabblegan_tf.htr``).

What is written (``out_dir``):

- ``scrabblegan_synthetic-train.tfrecord-XXXXX-of-YYYYY``: shards of ``shard_size`` examples, TFDS'
  file naming, one split ``train``;
- ``dataset_info.json``, ``features.json`` (``tfds.folder_dataset.write_metadata``), at the end;
- ``synthesis.json`` (the settings; ``complete`` once the metadata is written) and ``alphabet.json``.

Progress: a line per shard written (words/s, words done, minutes left) and, on a terminal, a progress
bar over all words updated after every generator batch.

Example ``i`` (0-based) has the style seed ``seed * 2**32 + i`` (``generate.style_vectors``; stored as
``writer_id``) and the id ``syn<seed>-<i:08d>``. Words are drawn uniformly (with replacement) from the
distinct words of ``--lexicon`` (one per line) or, by default, of the GAN's training labels, with a
random generator keyed by ``(seed, shard)``: shard k always holds examples ``k*S .. (k+1)*S - 1`` with
the same words and styles.

Resuming: each shard is written under a temporary name and renamed when complete; a rerun with the
same settings skips the complete shards and writes the others, so an interrupted run loses at most
the shard in progress and never duplicates an example. A rerun with other settings (or another
generator checkpoint) into the same ``out_dir`` is refused.

Image width: G draws ``model.char_width`` pixels per character (16 in the paper's geometry, 12 in
the ``cpu`` preset). ``--char_width=N`` resizes each word to N pixels per
character and ``--fixed_width=W`` to W pixels (Lanczos; height stays 32), to match a real dataset's
geometry (DHSD's names are written into fixed boxes: every h32 image is 128 pixels wide).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from tqdm import tqdm

from scrabblegan_tf.core import run_folder
from scrabblegan_tf.data.inputs import training_texts
from scrabblegan_tf.data.lexicon import Lexicon
from scrabblegan_tf.inference.generation import load_generator, render, resolve_model

DATASET_NAME = "scrabblegan_synthetic"
SPLIT = "train"
STATE_FILE = "synthesis.json"
SEED_STRIDE = 2**32
_TMP_PREFIX = "partial-shard-"


def features():
    """The feature dict of the project's real handwriting builders (datasets/_shared)."""
    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
        "text": tfds.features.Text(),
        "writer_id": tfds.features.Text(),
        "id": tfds.features.Text(),
    })


def shard_filename(k: int, num_shards: int) -> str:
    return f"{DATASET_NAME}-{SPLIT}.tfrecord-{k:05d}-of-{num_shards:05d}"


def style_seed(seed: int, index: int) -> int:
    return int(seed) * SEED_STRIDE + int(index)


def shard_words(lexicon, seed: int, shard: int, n: int) -> list[str]:
    """The ``n`` words of shard ``shard`` (a pure function of the lexicon, seed and shard)."""
    return lexicon.sample(n, np.random.default_rng([int(seed), int(shard)]))


def resize_word(image: np.ndarray, *, num_chars: int, char_width: int | None = None,
                fixed_width: int | None = None) -> np.ndarray:
    """uint8 [H, W] -> [H, W'] with W' = ``fixed_width`` or ``char_width * num_chars`` (Lanczos);
    unchanged without either."""
    width = fixed_width or (char_width * num_chars if char_width else None)
    if not width or width == image.shape[1]:
        return image
    pil = Image.fromarray(np.asarray(image, np.uint8), mode="L")
    return np.asarray(pil.resize((max(1, int(width)), image.shape[0]), Image.LANCZOS), np.uint8)


def match_geometry(widths, num_chars, *, fixed_share: float = 0.9) -> dict:
    """Resize settings that give generated words the geometry of real ones (height 32 images with
    ``widths`` and label lengths ``num_chars``): ``{"fixed_width": W}`` when at least ``fixed_share``
    of the real images are exactly W wide (words written into fixed boxes, like DHSD), else
    ``{"char_width": median(width / characters)}`` (rounded, at least 1)."""
    widths = np.asarray(widths, np.float64)
    num_chars = np.maximum(np.asarray(num_chars, np.float64), 1.0)
    if widths.size == 0:
        raise ValueError("match_geometry needs at least one real image")
    values, counts = np.unique(widths, return_counts=True)
    if counts.max() >= fixed_share * widths.size:
        return {"fixed_width": int(values[counts.argmax()]), "char_width": None}
    return {"fixed_width": None, "char_width": max(1, int(round(float(np.median(widths / num_chars)))))}


def _lexicon(cfg, alphabet, lexicon_path, max_len, capitalize, data_dir, manual_dir, log):
    kw = dict(alphabet=alphabet, max_len=max_len, capitalize=capitalize)
    if lexicon_path:
        lex = Lexicon.from_file(lexicon_path, **kw)
    else:
        lex = Lexicon.from_labels(training_texts(cfg, data_dir=data_dir, manual_dir=manual_dir), **kw)
    log(f"lexicon: {len(lex)} distinct words from {lex.source} ({lex.num_dropped} dropped: "
        f"{lex.num_unencodable} outside the alphabet, {lex.num_too_long} longer than {max_len})")
    return lex


def _check_state(out_dir: str, settings: dict) -> None:
    path = os.path.join(out_dir, STATE_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        old = json.load(f)
    old_settings = old.get("settings", {})
    diff = {k: (old_settings.get(k), v) for k, v in settings.items() if old_settings.get(k) != v}
    if diff:
        raise ValueError(
            f"{out_dir} holds a synthesis with other settings {diff} (old, new); use a new --out_dir "
            "or the same flags and generator checkpoint to resume.")


def _write_json(path: str, obj) -> None:
    run_folder.write_text(path, json.dumps(obj, indent=2, ensure_ascii=False))


def synthesize(workdir: str | None, out_dir: str, *, num_words: int, lexicon: str | None = None,
               shard_size: int = 1000, batch_size: int = 64, seed: int = 0,
               char_width: int | None = None, fixed_width: int | None = None,
               max_len: int | None = None, capitalize: bool = False, checkpoint: str | None = None,
               data_dir: str | None = None, manual_dir: str | None = None,
               max_shards: int | None = None, progress: bool | None = None, progress_file=None,
               precision: str = "float32", log=print) -> dict:
    """Writes (or completes) the synthetic dataset; see the module docstring.

    ``progress``: a progress bar over all words (tqdm, updated after every generator batch) on
    ``progress_file`` (default stderr); None shows it only when that file is a terminal (logs then
    get the per-shard lines of ``log`` alone).

    ``max_len``: longest word drawn (None: the GAN config's ``data.lexicon_max_len``).
    ``precision``: G's compute precision ("float32", or "bfloat16": faster on CPUs with AMX or
    AVX512-BF16; images slightly different, so it is part of the resume check).
    ``max_shards``: write at most this many new shards, then return without metadata (a test hook
    that simulates an interruption). Returns a summary dict (``complete``, ``num_examples``,
    ``shards_written``, ``shards_skipped``, ...).
    """
    workdir = resolve_model(workdir)
    if num_words < 1 or shard_size < 1 or batch_size < 1:
        raise ValueError("num_words, shard_size and batch_size must be >= 1")
    if not 0 <= seed < 2**31:
        raise ValueError(f"seed must be in [0, 2**31), got {seed}")
    if char_width is not None and char_width < 1 or fixed_width is not None and fixed_width < 1:
        raise ValueError("char_width and fixed_width must be >= 1")
    gen, cfg, alphabet, ckpt_path = load_generator(workdir, checkpoint, precision=precision)
    max_len = max_len if max_len is not None else cfg.data.lexicon_max_len
    lex = _lexicon(cfg, alphabet, lexicon, max_len, capitalize, data_dir, manual_dir, log)
    num_shards = math.ceil(num_words / shard_size)
    settings = {
        "gan_workdir": os.path.abspath(workdir),
        "checkpoint": os.path.basename(ckpt_path),
        "num_words": int(num_words), "shard_size": int(shard_size), "seed": int(seed),
        "lexicon": os.path.abspath(lexicon) if lexicon else "training labels",
        "lexicon_sha256": hashlib.sha256("\n".join(lex.words).encode()).hexdigest(),
        "lexicon_size": len(lex), "max_len": max_len, "capitalize": bool(capitalize),
        "precision": precision,
        "char_width": char_width, "fixed_width": fixed_width,
    }
    os.makedirs(out_dir, exist_ok=True)
    _check_state(out_dir, settings)
    _write_json(os.path.join(out_dir, STATE_FILE), {"settings": settings, "complete": False})
    run_folder.write_text(os.path.join(out_dir, run_folder.ALPHABET_FILE), alphabet.to_json())
    for name in os.listdir(out_dir):  # leftovers of an interrupted shard
        if name.startswith(_TMP_PREFIX):
            os.remove(os.path.join(out_dir, name))

    feats = features()
    lengths = [min(shard_size, num_words - k * shard_size) for k in range(num_shards)]
    todo = [k for k in range(num_shards)
            if not os.path.exists(os.path.join(out_dir, shard_filename(k, num_shards)))]
    skipped = num_shards - len(todo)
    log(f"synthesizing {num_words} words into {out_dir}: {num_shards} shard(s) of {shard_size}, "
        f"{skipped} already complete; generator {ckpt_path}")
    written = 0
    t0 = time.perf_counter()
    done_words = 0
    bar = tqdm(total=num_words, initial=num_words - sum(lengths[k] for k in todo), unit="word",
               desc="synthesize", file=progress_file or sys.stderr, dynamic_ncols=True,
               disable=None if progress is None else not progress)
    for k in todo:
        if max_shards is not None and written >= max_shards:
            bar.close()
            log(f"stopped after {written} new shard(s) (max_shards)")
            return {"complete": False, "num_shards": num_shards, "shards_written": written,
                    "shards_skipped": skipped, "out_dir": out_dir}
        first = k * shard_size
        words = shard_words(lex, seed, k, lengths[k])
        images: list = [None] * len(words)
        order = sorted(range(len(words)), key=lambda j: len(words[j]))  # less padding per batch
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            seeds = [style_seed(seed, first + j) for j in idx]
            for j, im in zip(idx, render(gen, alphabet, [words[j] for j in idx], seeds=seeds)):
                images[j] = resize_word(im, num_chars=len(words[j]), char_width=char_width,
                                        fixed_width=fixed_width)
            bar.update(len(idx))
        final = os.path.join(out_dir, shard_filename(k, num_shards))
        tmp = os.path.join(out_dir, f"{_TMP_PREFIX}{k:05d}-{os.getpid()}")
        with tf.io.TFRecordWriter(tmp) as w:
            for j, (word, im) in enumerate(zip(words, images)):
                i = first + j
                w.write(feats.serialize_example({
                    "image": im[..., None], "text": word, "writer_id": str(style_seed(seed, i)),
                    "id": f"syn{seed}-{i:08d}"}))
        os.replace(tmp, final)
        written += 1
        done_words += len(words)
        rate = done_words / max(time.perf_counter() - t0, 1e-9)
        left = sum(lengths[m] for m in todo[written:])
        log(f"shard {k + 1}/{num_shards} written ({len(words)} words, {rate:.1f} words/s, "
            f"{num_words - left}/{num_words} done, about {left / max(rate, 1e-9) / 60:.1f} min left)")
    bar.close()

    write_metadata(out_dir, lengths, description=(
        f"ScrabbleGAN synthetic words: generator {settings['gan_workdir']} ({settings['checkpoint']}), "
        f"{num_words} words from {settings['lexicon']}, seed {seed}."))
    _write_json(os.path.join(out_dir, STATE_FILE), {"settings": settings, "complete": True})
    log(f"done: {num_words} examples in {out_dir} ({written} shard(s) written, {skipped} skipped); "
        f"load with tfds.builder_from_directory({out_dir!r})")
    return {"complete": True, "num_examples": num_words, "num_shards": num_shards,
            "shards_written": written, "shards_skipped": skipped, "out_dir": out_dir}


def write_metadata(out_dir: str, shard_lengths: list[int], *, description: str = "") -> None:
    """``dataset_info.json`` and ``features.json`` for the complete shards in ``out_dir``."""
    num_shards = len(shard_lengths)
    files = [os.path.join(out_dir, shard_filename(k, num_shards)) for k in range(num_shards)]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise FileNotFoundError(f"Cannot write metadata: missing shards {missing[:5]}")
    template = tfds.core.ShardedFileTemplate(
        data_dir=tfds.core.Path(out_dir), template=tfds.core.naming.DEFAULT_FILENAME_TEMPLATE,
        dataset_name=DATASET_NAME, split=SPLIT, filetype_suffix="tfrecord")
    split = tfds.core.SplitInfo(name=SPLIT, shard_lengths=list(shard_lengths),
                                num_bytes=sum(os.path.getsize(f) for f in files),
                                filename_template=template)
    tfds.folder_dataset.write_metadata(
        data_dir=out_dir, features=features(), split_infos=[split],
        filename_template=template.replace(split=None), check_data=True, description=description)
