"""Tests of scrabblegan_tf.data.lexicon: filtering with counts, max_len, capitalisation, tensors."""

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.data.lexicon import Lexicon

EN = Alphabet.preset("english")

# Capitalisation is a Bernoulli(0.5) per sampled word. Over N = 4000 samples the capitalised share has
# standard deviation sqrt(0.25 / N) = 0.0079; the tolerance 0.03 is 3.8 standard deviations (a
# two-sided chance of 1.4e-4 for a correct implementation). The seeds are fixed, so the test is
# deterministic; the tolerance only says how far a correct sampler may land from 0.5.
N_SAMPLES = 4000
TOLERANCE = 0.03


def test_filtering_counts_what_it_dropped():
    words = ["hello", "héllo", "wörld", "", "   ", "ok", "toolongword", "#", "x y", "naïve", "hello"]
    lex = Lexicon(words, alphabet=EN, max_len=6)
    assert lex.words == ["hello", "ok", "#", "x y"]  # deduplicated, input order
    assert lex.num_unencodable == 3  # héllo, wörld, naïve
    assert lex.num_empty == 2
    assert lex.num_too_long == 1  # toolongword (11 > 6)
    assert lex.num_dropped == 6
    assert lex.num_duplicates == 1
    assert lex.dropped_chars == {"é": 1, "ö": 1, "ï": 1}
    assert len(lex) == 4


def test_nfc_and_keeping_frequencies():
    fr = Alphabet.preset("french")
    lex = Lexicon(["e\u0301te\u0301", "été", "été"], alphabet=fr, unique=False)
    assert lex.words == ["été"] * 3  # decomposed input is NFC-normalised
    assert Lexicon(["e\u0301te\u0301", "été"], alphabet=fr).words == ["été"]


def test_from_file_skips_blank_lines_and_comments(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\ufeff# a comment\nalpha\n\n  beta  \n#\n#1\nGamma\nzürich\n", encoding="utf-8")
    lex = Lexicon.from_file(path, alphabet=EN)
    assert lex.words == ["alpha", "beta", "#", "#1", "Gamma"]
    assert lex.num_dropped == 1 and lex.dropped_chars == {"ü": 1}
    assert str(path) in repr(lex)


def test_from_labels_accepts_bytes():
    lex = Lexicon.from_labels([b"MOVE", "to", b"stop"], alphabet=EN)
    assert lex.words == ["MOVE", "to", "stop"]


def test_no_surviving_word_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"No word .* 'english' alphabet.*'ä'"):
        Lexicon(["ä", "äö"], alphabet=EN)
    with pytest.raises(ValueError, match="max_len=2"):
        Lexicon(["long", "longer"], alphabet=EN, max_len=2)


def test_capitalisation_rate_is_about_one_half():
    words = ["apple", "berry", "cherry", "date", "elder"]
    lex = Lexicon(words, alphabet=EN, capitalize=True)
    sample = lex.sample(N_SAMPLES, np.random.default_rng(0))
    capitalised = sum(w[0].isupper() for w in sample) / N_SAMPLES
    assert abs(capitalised - 0.5) < TOLERANCE, capitalised
    assert {w.lower() for w in sample} == set(words)  # every word drawn, only the first letter changes
    assert all(w[1:] == w[1:].lower() for w in sample)
    # Without capitalisation nothing changes; with a fixed seed the sample is reproducible.
    plain = Lexicon(words, alphabet=EN)
    assert all(w in words for w in plain.sample(500, np.random.default_rng(1)))
    assert lex.sample(50, np.random.default_rng(3)) == lex.sample(50, np.random.default_rng(3))


def test_words_that_cannot_be_capitalised_stay_as_they_are():
    lex = Lexicon(["1984", "Paris", "'tis"], alphabet=EN, capitalize=True)
    assert set(lex.sample(200, np.random.default_rng(0))) == {"1984", "Paris", "'tis"}


def test_as_tensors_round_trip():
    words = ["a", "tree", "of", "Knowledge"]
    ids, lengths = Lexicon(words, alphabet=EN).as_tensors()
    assert ids.dtype == np.int32 and lengths.dtype == np.int32
    assert ids.shape == (4, 9) and lengths.tolist() == [1, 4, 2, 9]
    assert [EN.decode(row) for row in ids] == words
    assert all((row[n:] == 0).all() for row, n in zip(ids, lengths))  # 0-padded

    # With capitalisation: rows N.. are the capitalised variants (sample rows uniformly).
    ids, lengths = Lexicon(words, alphabet=EN, capitalize=True).as_tensors()
    assert ids.shape[0] == 8
    assert [EN.decode(row) for row in ids] == words + ["A", "Tree", "Of", "Knowledge"]
    assert lengths.tolist() == [1, 4, 2, 9] * 2


def test_sample_tensors_in_graph_mode():
    words = ["apple", "berry", "kiwi", "fig"]
    lex = Lexicon(words, alphabet=EN, capitalize=True)
    gen = tf.random.Generator.from_seed(0)

    @tf.function
    def draw(n):
        return lex.sample_tensors(n, gen)

    ids, lengths = draw(tf.constant(N_SAMPLES))
    assert ids.dtype == tf.int32 and lengths.dtype == tf.int32
    assert ids.shape[0] == N_SAMPLES and ids.shape[1] == int(tf.reduce_max(lengths))
    decoded = [EN.decode(row) for row in ids.numpy()]
    assert [len(w) for w in decoded] == lengths.numpy().tolist()
    assert {w.lower() for w in decoded} == set(words)
    capitalised = sum(w[0].isupper() for w in decoded) / N_SAMPLES
    assert abs(capitalised - 0.5) < TOLERANCE, capitalised
    # The generator advances: the next draw differs.
    ids2, _ = draw(tf.constant(8))
    assert not np.array_equal(ids.numpy()[:8, : ids2.shape[1]], ids2.numpy())


def test_letters_only_and_exclude():
    """letters_only drops words with any non-letter (apostrophe, digit, hyphen; accents are
    letters); exclude drops the held-out words; both are counted in num_dropped."""
    lex = Lexicon(["naïve", "it's", "R2D2", "well-known", "moon", "sun"], alphabet=Alphabet.preset("french"),
                  letters_only=True, exclude=["sun"])
    assert lex.words == ["naïve", "moon"]
    assert (lex.num_not_letters, lex.num_excluded, lex.num_dropped) == (3, 1, 4)
    assert lex.summary()["not_letters"] == 3 and lex.summary()["excluded"] == 1
