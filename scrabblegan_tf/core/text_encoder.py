"""Text -> alphabet ids inside the TensorFlow graph: the one encoder of training pipelines and of the
exported SavedModel (``Alphabet.encode`` is its Python counterpart).

- Unicode normalisation: ``Alphabet.encode`` applies NFC. Core TensorFlow has no
  ``unicode_normalize`` (it lives in tensorflow_text), so the encoder does the part of NFC that can
  change the ids of a text: the decomposed (NFD) form of every symbol that has one (``e`` + U+0301
  -> ``é``) is composed with ``tf.strings.regex_replace`` (longest forms first), and single code
  points whose NFC form is a symbol (U+212A KELVIN SIGN -> ``K``, U+212B ANGSTROM SIGN -> ``Å``)
  map to that symbol's id. For every text whose NFC form is made of alphabet symbols the ids equal
  ``Alphabet.encode``; any other text holds an unknown character (id -1) either way.
- Lookup: a dense code point -> id table held as a constant (``tf.gather``; -1 beyond it or for
  code points that are not symbols), no ``tf.lookup`` resource, so that pipelines using it can be
  checkpointed and distributed, and SavedModels carry no table initializer.
- Invalid UTF-8 decodes to U+FFFD (unknown unless the alphabet holds it).
"""

from __future__ import annotations

import unicodedata

import numpy as np
import tensorflow as tf

from scrabblegan_tf.core.alphabet import Alphabet

# Combining marks (the blocks NFD forms of Latin, Greek and Cyrillic letters use): a scalar text
# without one needs no composition.
_COMBINING = "[\\x{0300}-\\x{036F}\\x{1AB0}-\\x{1AFF}\\x{1DC0}-\\x{1DFF}\\x{20D0}-\\x{20FF}]"
_SINGLETONS: dict[str, str] = {}


def _nfc_singletons() -> dict[str, str]:
    """Every code point whose NFC form is one other code point (U+212A KELVIN SIGN -> K); computed
    once per process (about a second)."""
    if not _SINGLETONS:
        for cp in range(0x110000):
            c = chr(cp)
            d = unicodedata.decomposition(c)
            if d and not d.startswith("<"):  # a canonical decomposition
                n = unicodedata.normalize("NFC", c)
                if len(n) == 1 and n != c:
                    _SINGLETONS[c] = n
    return _SINGLETONS


def nfc_equivalents(alphabet: Alphabet) -> tuple[dict[str, str], dict[str, str]]:
    """(single, multi): code points other than the symbols whose NFC form is a symbol
    (``{"\\u212a": "K"}``), and the decomposed (NFD) forms of the symbols that have one
    (``{"e\\u0301": "é"}``)."""
    symbols = set(alphabet.symbols)
    single = {c: n for c, n in _nfc_singletons().items() if n in symbols and c not in symbols}
    multi = {}
    for s in alphabet.symbols:
        d = unicodedata.normalize("NFD", s)
        if d != s:
            multi[d] = s
    return single, multi


def re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching it literally."""
    return "".join("\\" + c if c in r"\.^$|?*+()[]{}-" else c for c in text)


class TextEncoder:
    """In-graph text -> alphabet ids (1..N; -1 for an unknown character). See the module docstring."""

    def __init__(self, alphabet: Alphabet):
        self.alphabet = alphabet
        single, multi = nfc_equivalents(alphabet)
        pairs = [(ord(s), i + 1) for i, s in enumerate(alphabet.symbols)]
        pairs += [(ord(c), alphabet.encode(n)[0]) for c, n in single.items()]
        table = np.full(max(cp for cp, _ in pairs) + 1, -1, dtype=np.int32)
        for cp, i in pairs:
            table[cp] = i
        self.table_size = len(table)
        self._table = tf.constant(table)
        # Longest decomposed forms first, so that no shorter one eats a part of them.
        self.compose = [(re2_literal(d), s) for d, s in sorted(multi.items(), key=lambda kv: -len(kv[0]))]

    def normalize(self, text):
        """``text`` (tf.string, any shape) with the alphabet's decomposed symbols composed."""
        if not self.compose:
            return text

        def compose(t):
            for pattern, symbol in self.compose:
                t = tf.strings.regex_replace(t, pattern, symbol)
            return t

        if text.shape.rank == 0:
            has_mark = tf.strings.regex_full_match(text, f".*{_COMBINING}.*")
            return tf.cond(has_mark, lambda: compose(text), lambda: text)
        return compose(text)

    def ids(self, codepoints):
        """int32 code points (any shape) -> ids of the same shape (-1: not in the alphabet)."""
        codepoints = tf.convert_to_tensor(codepoints, tf.int32)
        known = (codepoints >= 0) & (codepoints < self.table_size)
        ids = tf.gather(self._table, tf.clip_by_value(codepoints, 0, self.table_size - 1))
        return tf.where(known, ids, -1)

    def codepoints(self, text):
        """Normalised code points of ``text``: int32 [len] for a scalar, ragged [B, None] for [B]."""
        return tf.strings.unicode_decode(self.normalize(text), "UTF-8", errors="replace")

    def encode(self, text):
        """Scalar tf.string -> int32 ids [len]; [B] -> ragged [B, None] (-1: unknown character)."""
        cps = self.codepoints(text)
        if hasattr(cps, "flat_values"):
            return cps.with_flat_values(self.ids(cps.flat_values))
        return self.ids(cps)
