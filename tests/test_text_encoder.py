"""The in-graph text encoder (scrabblegan_tf/core/text_encoder.py), shared by the training pipelines and
the SavedModel: it agrees with Alphabet.encode (Python, full NFC) on every text whose NFC form is
made of alphabet symbols, and marks anything else -1."""

import random
import unicodedata

import numpy as np
import tensorflow as tf

from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.text_encoder import TextEncoder, nfc_equivalents, re2_literal

FR = Alphabet.preset("french")
DE = Alphabet.preset("german")


def ids(encoder, text):
    return encoder.encode(tf.constant(text)).numpy().tolist()


def test_nfc_forms_map_to_the_symbols():
    enc = TextEncoder(FR)
    assert ids(enc, "été") == FR.encode("été")
    assert ids(enc, "e\u0301te\u0301") == FR.encode("été")  # NFD
    assert ids(enc, "c\u0327a") == FR.encode("ça")
    assert ids(enc, "\u212aepi") == FR.encode("Kepi")  # U+212A KELVIN SIGN -> K
    single, multi = nfc_equivalents(FR)
    assert single["\u212a"] == "K" and multi["e\u0301"] == "é" and "K" not in single


def test_unknown_and_invalid_characters_are_minus_one():
    enc = TextEncoder(Alphabet.preset("english"))
    a = Alphabet.preset("english").encode("a")[0]
    assert ids(enc, "aé") == [a, -1]
    assert ids(enc, "a\u4e00\U0001F600") == [a, -1, -1]  # beyond the table
    assert ids(enc, b"a\xff") == [a, -1]  # invalid UTF-8 -> U+FFFD -> unknown
    assert ids(enc, "") == []


def test_batches_are_ragged_and_match_the_scalar_encoding():
    enc = TextEncoder(DE)
    texts = ["Straße", "Mu\u0308ller", "", "Ülm"]
    got = enc.encode(tf.constant(texts)).to_list()
    assert got == [ids(enc, t) for t in texts]
    assert got[1] == DE.encode("Müller") and got[2] == []


def test_random_texts_agree_with_alphabet_encode():
    """Random words of alphabet symbols, each written in NFC or NFD: same ids as Alphabet.encode."""
    rng = random.Random(0)
    for alphabet in (FR, DE):
        enc = TextEncoder(alphabet)
        for _ in range(200):
            word = "".join(rng.choice(alphabet.symbols) for _ in range(rng.randint(1, 12)))
            form = rng.choice(["NFC", "NFD"])
            text = unicodedata.normalize(form, word)
            assert ids(enc, text) == alphabet.encode(text), (word, form)


def test_codepoints_and_re2_literal():
    enc = TextEncoder(FR)
    np.testing.assert_array_equal(enc.codepoints(tf.constant("e\u0301")).numpy(), [ord("é")])
    assert re2_literal("a.b(c)") == "a\\.b\\(c\\)"
