"""WER / CER / NED against hand-computed cases."""

import unicodedata

import pytest

from scrabblegan_tf.core import metrics


@pytest.mark.parametrize("a, b, d", [
    ("kitten", "sitting", 3),  # k->s, e->i, insert g (the textbook case)
    ("hello", "hallo", 1),  # one substitution
    ("helo", "hello", 1),  # one insertion needed
    ("helllo", "hello", 1),  # one deletion needed
    ("", "abc", 3),
    ("abc", "", 3),
    ("", "", 0),
    ("Straße", "Strasse", 2),  # ß -> s plus an inserted s: ß is one code point
    ("flaw", "lawn", 2),
])
def test_edit_distance_hand_computed(a, b, d):
    assert metrics.edit_distance(a, b) == d
    assert metrics.edit_distance(b, a) == d


def test_unicode_nfc_and_code_points():
    composed = "Jüdenstraße"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed and len(decomposed) == len(composed) + 1
    # Same text after NFC: no edit, exact word.
    assert metrics.edit_distance(decomposed, composed) == 0
    assert metrics.wer([(decomposed, composed)]) == 0.0
    # ü vs u is one substitution of one code point, not two (decomposed form is not compared).
    assert metrics.edit_distance("Judenstraße", decomposed) == 1
    assert metrics.cer([("Judenstraße", composed)]) == pytest.approx(1 / 11)
    # Astral-plane symbols are single code points too; bytes are UTF-8.
    assert metrics.edit_distance("a😀b", "ab") == 1
    assert metrics.edit_distance("Grüne".encode(), "Grune") == 1


def test_substitution_insertion_deletion_and_empty_prediction():
    pairs = [
        ("hallo", "hello"),  # substitution: 1 edit, 5 chars
        ("helllo", "hello"),  # insertion (extra l): 1 edit, 5 chars
        ("wrld", "world"),  # deletion: 1 edit, 5 chars
        ("", "abc"),  # empty prediction: 3 edits, 3 chars
        ("exact", "exact"),  # 0 edits, 5 chars
    ]
    # WER: 4 of 5 samples are wrong.
    assert metrics.wer(pairs) == pytest.approx(4 / 5)
    # CER: (1 + 1 + 1 + 3 + 0) / (5 + 5 + 5 + 3 + 5) = 6 / 23.
    assert metrics.cer(pairs) == pytest.approx(6 / 23)
    # NED: mean(1/5, 1/5, 1/5, 3/3, 0/5) = (0.6 + 1) / 5 = 0.32.
    assert metrics.ned(pairs) == pytest.approx(0.32)
    all_ = metrics.evaluate_texts(pairs)
    assert all_ == {"wer": pytest.approx(0.8), "cer": pytest.approx(6 / 23), "ned": pytest.approx(0.32),
                    "num_samples": 5, "num_chars": 23, "num_edits": 6}


def test_micro_vs_macro_average():
    """CER weighs long words more (total edits / total chars), NED weighs samples equally."""
    pairs = [("a", "b"), ("abcdefghij", "abcdefghij")]  # 1 edit in 1 char; 0 edits in 10 chars
    assert metrics.cer(pairs) == pytest.approx(1 / 11)
    assert metrics.ned(pairs) == pytest.approx(0.5)
    assert metrics.wer(pairs) == pytest.approx(0.5)


def test_two_lists_equal_pairs():
    preds, truths = ["hallo", "world", ""], ["hello", "world", "x"]
    for fn in (metrics.wer, metrics.cer, metrics.ned):
        assert fn(preds, truths) == fn(list(zip(preds, truths)))
    assert metrics.cer(preds, truths) == pytest.approx(2 / 11)


def test_rates_can_exceed_one_and_empty_truth():
    assert metrics.cer([("abcd", "a")]) == pytest.approx(3.0)  # three insertions, one char
    assert metrics.ned([("ab", "")]) == pytest.approx(2.0)  # divided by max(1, 0)
    assert metrics.ned([("", "")]) == 0.0 and metrics.wer([("", "")]) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="No"):
        metrics.wer([])
    with pytest.raises(ValueError, match="2 predictions but 1"):
        metrics.cer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="pairs"):
        metrics.ned(["ab", "cd"])  # a list of strings without truths
