"""The inputs of a GAN training run, assembled from its config.

``training_inputs(cfg, replicas=...)`` returns a ``TrainingInputs``: the alphabet, the training
labels, the held-out words of the legibility signal (never fake-word targets, never training
labels), the fake-word lexicon and the batched tf.data stream (labelled, zipped with the unlabeled
stream in semi-supervised runs). The pieces (``load_split``, ``training_texts``, ``make_lexicon``,
``unlabeled_images``) are used alone by ``synthesize``, the HTR and the experiments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import tensorflow as tf
import tensorflow_datasets as tfds

from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.config import DATASET_ALPHABETS, DEFAULT_WORD_LISTS, Config
from scrabblegan_tf.data import builders
from scrabblegan_tf.data import pipeline
from scrabblegan_tf.data.image_folder import load_image_folder
from scrabblegan_tf.data.lexicon import Lexicon, heldout_words


def resolve_alphabet(cfg: Config) -> Alphabet:
    """``data.alphabet``, or the dataset's alphabet (``DATASET_ALPHABETS``), or English."""
    name = cfg.data.alphabet or DATASET_ALPHABETS.get(cfg.data.dataset, "english")
    return Alphabet.preset(name)


def load_split(cfg: Config, split: str, *, data_dir=None, manual_dir=None, decoders=None):
    """The TFDS split of the configured dataset, building it on first use."""
    builder = builders.get_builder(cfg.data.dataset, data_dir=data_dir,
                                   config=cfg.data.builder_config or None, manual_dir=manual_dir)
    builders.ensure_prepared(builder, manual_dir=manual_dir)
    return builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)


def split_texts(cfg: Config, split: str, *, data_dir=None, manual_dir=None) -> list[str]:
    """The labels of ``split`` of the configured dataset (images not decoded)."""
    ds = load_split(cfg, split, data_dir=data_dir, manual_dir=manual_dir,
                    decoders={"image": tfds.decode.SkipDecoding()})
    return [t.decode("utf-8") for t in ds.map(lambda ex: ex["text"]).as_numpy_iterator()]


def training_texts(cfg: Config, *, data_dir=None, manual_dir=None) -> list[str]:
    """The labels of the training split."""
    return split_texts(cfg, cfg.data.train_split, data_dir=data_dir, manual_dir=manual_dir)


def _split_texts_or_empty(cfg: Config, split: str, data_dir, manual_dir) -> list[str]:
    """The texts of ``split`` of the configured dataset, or [] when it has no such split."""
    try:
        return split_texts(cfg, split, data_dir=data_dir, manual_dir=manual_dir)
    except (ValueError, KeyError):
        return []


def make_lexicon(cfg: Config, alphabet: Alphabet, texts: list[str], *, exclude=()) -> Lexicon:
    """The fake-word lexicon of ``cfg.data.lexicon`` (see ``DataConfig``), without ``exclude``."""
    kw = dict(alphabet=alphabet, max_len=cfg.data.lexicon_max_len,
              capitalize=cfg.data.lexicon_capitalize, exclude=exclude)
    path = cfg.data.lexicon
    if path == "auto":
        path = DEFAULT_WORD_LISTS.get(alphabet.name, "")
        if path and not os.path.exists(path):
            path = ""  # e.g. wamerican not installed: the labels, as the log line says
        if path:
            return Lexicon.from_file(path, letters_only=True, **kw)
    if path in ("", "labels"):
        return Lexicon.from_labels(texts, **kw)
    return Lexicon.from_file(path, **kw)


def parse_unlabeled_spec(spec: str) -> tuple[str, str | None, str]:
    """``"<name>[/<config>][:<split>]"`` -> (name, config or None, split (default train)).
    ``"folder:/path"`` -> ("folder", None, "/path")."""
    if spec.startswith("folder:"):
        path = spec[len("folder:"):]
        if not path:
            raise ValueError("--unlabeled_dataset=folder:<path> needs a path")
        return "folder", None, path
    name, _, split = spec.partition(":")
    name, _, config = name.partition("/")
    if not name:
        raise ValueError(f"Bad unlabeled dataset spec {spec!r}: expected <name>[/<config>][:<split>]")
    return name, config or None, split or "train"


def unlabeled_images(cfg: Config, *, data_dir=None, log=print):
    """The unlabeled image source named by ``cfg.data.unlabeled_dataset`` (a tf.data.Dataset of
    dicts with ``image``; any labels are ignored)."""
    name, config, split = parse_unlabeled_spec(cfg.data.unlabeled_dataset)
    if name == "folder":
        ds, _ = load_image_folder(split, height=cfg.model.image_height, log=log)
        return ds
    manual_dir = cfg.data.unlabeled_manual_dir or None
    builder = builders.get_builder(name, data_dir=data_dir, config=config, manual_dir=manual_dir)
    builders.ensure_prepared(builder, manual_dir=manual_dir, log=log)
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            decoders={"image": tfds.decode.SkipDecoding()})
    return ds.map(lambda ex: {"image": ex["image"]})


@dataclass
class TrainingInputs:
    """What a GAN training run reads: see the module docstring."""
    alphabet: Alphabet
    texts: list[str]            # the training labels
    eval_words: list[str]       # held-out words of the legibility signal (may be empty)
    lexicon: Lexicon            # fake-word targets (without eval_words)
    dataset: tf.data.Dataset    # global batches of batch_size * g_every * replicas, repeating
    semi_supervised: bool       # batches also hold unlabeled_image / unlabeled_width


def training_inputs(cfg: Config, *, replicas: int = 1, dataset=None, eval_texts=None,
                    data_dir=None, manual_dir=None,
                    log: Callable[[str], None] = print) -> TrainingInputs:
    """The inputs of a run of ``cfg`` over ``replicas`` replicas. ``dataset``: a ready
    tf.data.Dataset of ``{"image": uint8 [H, W, 1], "text": tf.string}`` used instead of TFDS
    (tests); ``eval_texts``: candidate held-out words (default: the texts of ``data.eval_split``).

    Every process (worker) reads the same pipeline with the same seed, so all see the same global
    batches; each replica slices its rows by its global replica id."""
    alphabet = resolve_alphabet(cfg)
    if dataset is None:
        texts = training_texts(cfg, data_dir=data_dir, manual_dir=manual_dir)
        raw = load_split(cfg, cfg.data.train_split, data_dir=data_dir, manual_dir=manual_dir)
    else:
        raw = dataset
        texts = [t.decode("utf-8") for t in raw.map(lambda ex: ex["text"]).as_numpy_iterator()]
    counts = pipeline.count_unencodable(texts, alphabet, max_label_len=cfg.data.max_label_len)
    if counts.get("dropped", 0):
        log(f"warning: {counts['dropped']} of {len(texts)} training labels dropped "
            f"(outside the {alphabet.name} alphabet, empty or longer than "
            f"{cfg.data.max_label_len}): {counts}")
    eval_words: list[str] = []
    if cfg.run.eval_every > 0 and cfg.run.eval_words > 0:
        if eval_texts is None:  # the eval split's texts (none for a dataset given directly)
            eval_texts = ([] if dataset is not None else
                          _split_texts_or_empty(cfg, cfg.data.eval_split, data_dir, manual_dir))
        candidates = list(eval_texts) + make_lexicon(cfg, alphabet, texts).words
        eval_words = heldout_words(candidates, texts, alphabet, num=cfg.run.eval_words,
                                   max_len=cfg.data.lexicon_max_len, seed=cfg.run.seed)
        if not eval_words:
            log("legibility signal off: no candidate word outside the training labels")
    lexicon = make_lexicon(cfg, alphabet, texts, exclude=eval_words)
    log(f"lexicon: {len(lexicon)} words from {lexicon.source} ({lexicon.num_dropped} dropped"
        + (f", {lexicon.num_excluded} of them held out for the legibility signal)"
           if eval_words else ")"))

    global_batch = cfg.data.batch_size * cfg.optim.g_every * replicas
    ds = pipeline.labelled_pipeline(
        raw, alphabet=alphabet, batch_size=global_batch,
        char_width=cfg.model.char_width, height=cfg.model.image_height,
        max_label_len=cfg.data.max_label_len, shuffle_buffer=cfg.data.shuffle_buffer,
        seed=cfg.run.seed, bucket_boundaries=cfg.data.bucket_boundaries)
    semi = bool(cfg.data.unlabeled_dataset)
    if cfg.data.disjoint and not semi:
        raise ValueError("--disjoint needs --unlabeled_dataset")
    if semi:
        # Both streams repeat forever, so the zip never ends: the shorter one simply repeats.
        unl = pipeline.unlabeled_pipeline(
            unlabeled_images(cfg, data_dir=data_dir, log=log), batch_size=global_batch,
            height=cfg.model.image_height, max_width=cfg.data.unlabeled_max_width,
            shuffle_buffer=cfg.data.shuffle_buffer, seed=cfg.run.seed + 1)
        ds = tf.data.Dataset.zip((ds, unl)).map(
            lambda lab, u: {**lab, "unlabeled_image": u["image"], "unlabeled_width": u["image_width"]})
        log(f"semi-supervised: unlabeled images from {cfg.data.unlabeled_dataset}"
            + (" (disjoint: D on unlabeled only, R on labelled only)" if cfg.data.disjoint else ""))
    return TrainingInputs(alphabet=alphabet, texts=texts, eval_words=eval_words, lexicon=lexicon,
                          dataset=ds, semi_supervised=semi)
