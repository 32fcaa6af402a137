"""Words that G draws fake images of: from a word-list file or from the training labels.

Only words the alphabet can write are kept; the rest are counted (``num_dropped``, the characters that
caused it in ``dropped_chars``, and ``num_too_long`` for words over ``max_len``). Words are NFC-normalised
and, by default, deduplicated: sampling is uniform over distinct words, as in the official ScrabbleGAN
code (``unique=False`` keeps label frequencies).

Capitalisation (``capitalize=True``): a sampled word gets an upper-case first letter with probability
0.5, when its first letter is a lower-case letter whose upper-case form is in the alphabet (otherwise it
is unchanged). This is the official code's augmentation (IAM has many sentence-initial capitals).

Sampling inside the training graph:

- ``as_tensors()`` returns ``(ids [R, L], lengths [R])``, int32, 0-padded. Without capitalisation
  R = number of words. With it R = 2 * number of words: row ``i`` is word ``i`` and row ``i + N`` is
  the same word with a capital first letter (an exact copy when it cannot be capitalised). Drawing
  rows uniformly therefore gives uniform words, each capitalised with probability 0.5: a GAN that
  samples rows of ``as_tensors()`` uniformly (``ScrabbleGAN.sample_words``) needs nothing else.
- ``sample_tensors(n, generator)``: the same distribution with a ``tf.random.Generator``; usable in a
  ``tf.function`` (graph mode); ids are cut to the longest word of the sample.
"""

from __future__ import annotations

import collections
import pathlib
from typing import Iterable, Sequence
import unicodedata

import numpy as np
import tensorflow as tf

from scrabblegan_tf.core.alphabet import Alphabet


def _capitalized(word: str, alphabet: Alphabet) -> str:
    """``word`` with an upper-case first letter, or ``word`` when that is impossible."""
    if not word:
        return word
    first = word[0]
    upper = first.upper()
    if first.islower() and len(upper) == 1 and upper in alphabet:
        return upper + word[1:]
    return word


class Lexicon:
    """A list of alphabet-valid words to sample from (see the module docstring)."""

    def __init__(
        self,
        words: Iterable[str],
        *,
        alphabet: Alphabet,
        max_len: int | None = None,
        capitalize: bool = False,
        unique: bool = True,
        letters_only: bool = False,
        exclude: Iterable[str] = (),
        source: str = "words",
    ):
        """``max_len``: drop longer words (None or 0: no limit). ``letters_only``: drop words with a
        character that is not a letter (``str.isalpha``: punctuation, digits, apostrophes), as the
        official code does with its word lists. ``exclude``: words to leave out (held-out words).

        Raises:
          ValueError: when no word survives (the message gives the counts and offending characters).
        """
        self.alphabet = alphabet
        self.max_len = int(max_len) if max_len else None
        self.capitalize = bool(capitalize)
        self.source = source
        self.num_input = 0
        self.num_empty = 0
        self.num_too_long = 0
        self.num_unencodable = 0
        self.num_not_letters = 0
        self.num_excluded = 0
        excluded = {unicodedata.normalize("NFC", w) for w in exclude}
        self.dropped_chars: collections.Counter[str] = collections.Counter()  # char -> words dropped
        kept: list[str] = []
        for raw in words:
            self.num_input += 1
            word = unicodedata.normalize("NFC", raw.strip())
            if not word:
                self.num_empty += 1
                continue
            bad = alphabet.unknown(word)
            if bad:
                self.num_unencodable += 1
                self.dropped_chars.update(bad)
                continue
            if letters_only and not word.isalpha():
                self.num_not_letters += 1
                continue
            if self.max_len is not None and len(word) > self.max_len:
                self.num_too_long += 1
                continue
            if word in excluded:
                self.num_excluded += 1
                continue
            kept.append(word)
        self.num_duplicates = 0
        if unique:
            deduped = list(dict.fromkeys(kept))
            self.num_duplicates = len(kept) - len(deduped)
            kept = deduped
        self.words: list[str] = kept
        if not self.words:
            raise ValueError(
                f"No word of {source} survives the {alphabet.name!r} alphabet"
                + (f" and max_len={self.max_len}" if self.max_len else "")
                + f": {self.summary()}"
            )
        self._capital_words = [_capitalized(w, alphabet) for w in self.words] if capitalize else None
        self._tensor_cache = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | pathlib.Path, *, alphabet: Alphabet, **kwargs) -> "Lexicon":
        """One word (or phrase) per line, UTF-8 (a BOM is ignored).

        Blank lines and comment lines starting with ``"# "`` (hash and space) are skipped; ``#`` or
        ``#1`` alone are words. Other keyword arguments as in the constructor.
        """
        text = pathlib.Path(path).read_text(encoding="utf-8-sig")
        words = [
            line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("# ")
        ]
        return cls(words, alphabet=alphabet, source=str(path), **kwargs)

    @classmethod
    def from_labels(cls, labels: Iterable[str], *, alphabet: Alphabet, **kwargs) -> "Lexicon":
        """The training labels (str or UTF-8 bytes) as the lexicon."""
        words = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in labels]
        return cls(words, alphabet=alphabet, source="the training labels", **kwargs)

    # -- queries --------------------------------------------------------------------------
    @property
    def num_dropped(self) -> int:
        """Input words not kept: empty, outside the alphabet, not letters, too long or excluded
        (duplicates not counted)."""
        return (self.num_empty + self.num_unencodable + self.num_not_letters + self.num_too_long
                + self.num_excluded)

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} words from {self.source}, {self.num_dropped} dropped)"

    def summary(self) -> dict:
        return {
            "input": self.num_input,
            "kept": len(self.words) if hasattr(self, "words") else 0,
            "dropped": self.num_dropped,
            "empty": self.num_empty,
            "unencodable": self.num_unencodable,
            "not_letters": getattr(self, "num_not_letters", 0),
            "too_long": self.num_too_long,
            "excluded": getattr(self, "num_excluded", 0),
            "duplicates": getattr(self, "num_duplicates", 0),
            "dropped_chars": dict(self.dropped_chars.most_common()),
        }

    # -- sampling -------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """``n`` words drawn uniformly (with replacement), capitalised with probability 0.5 if enabled."""
        idx = rng.integers(0, len(self.words), size=int(n))
        if not self.capitalize:
            return [self.words[i] for i in idx]
        caps = rng.random(int(n)) < 0.5
        return [self._capital_words[i] if c else self.words[i] for i, c in zip(idx, caps)]

    def as_tensors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids [R, L], lengths [R])`` int32, 0-padded, L = longest word; R: see the module doc."""
        if self._tensor_cache is None:
            words = self.words + (self._capital_words or [])
            ids, lengths = self.alphabet.encode_batch(words)
            self._tensor_cache = (ids.astype(np.int32), lengths.astype(np.int32))
        ids, lengths = self._tensor_cache
        return ids.copy(), lengths.copy()

    def sample_tensors(self, n, generator):
        """``n`` words as ``(ids [n, l], lengths [n])`` int32 tensors, l = longest word sampled.

        ``generator``: a ``tf.random.Generator`` (its state advances). Works eagerly and inside a
        ``tf.function``; the lexicon is embedded as constants.
        """
        ids_np, lengths_np = self.as_tensors()
        ids = tf.constant(ids_np)
        lengths = tf.constant(lengths_np)
        num_words = len(self.words)
        idx = generator.uniform([n], minval=0, maxval=num_words, dtype=tf.int32)
        if self.capitalize:
            cap = tf.cast(generator.uniform([n]) < 0.5, tf.int32)
            idx = idx + cap * num_words
        out_lengths = tf.gather(lengths, idx)
        out_ids = tf.gather(ids, idx)[:, : tf.reduce_max(out_lengths)]
        return out_ids, out_lengths


def heldout_words(candidates: Sequence[str], exclude: Sequence[str], alphabet: Alphabet, *,
                  num: int, min_len: int = 2, max_len: int = 20, seed: int = 0) -> list[str]:
    """Up to ``num`` distinct words of ``candidates`` (NFC) that the alphabet can write, of
    ``min_len``..``max_len`` symbols, not in ``exclude``; a seeded shuffle picks them, so the set
    does not depend on the order of the candidates, then sorted by length (shorter batches)."""
    skip = {unicodedata.normalize("NFC", w) for w in exclude}
    pool = sorted({w for w in (unicodedata.normalize("NFC", c.strip()) for c in candidates)
                   if min_len <= len(w) <= max_len and w not in skip and alphabet.can_encode(w)})
    order = np.random.default_rng(seed).permutation(len(pool))
    chosen = [pool[i] for i in order[:num]]
    return sorted(chosen, key=lambda w: (len(w), w))
