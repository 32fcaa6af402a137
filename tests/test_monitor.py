"""The legibility signal (scrabblegan_tf/training/monitor.py): held-out word choice, reading, grids."""

from __future__ import annotations

import numpy as np
import pytest

from scrabblegan_tf.data import lexicon
from scrabblegan_tf.training import monitor
from scrabblegan_tf.core.alphabet import Alphabet

ENGLISH = Alphabet.preset("english")


def test_heldout_words_are_seeded_filtered_and_sorted_by_length():
    candidates = ["zebra", "a", "quilt", "jam", "ab", "zebra", "naïve", "x" * 21, "trained", "jam"]
    got = lexicon.heldout_words(candidates, ["trained"], ENGLISH, num=10, max_len=20)
    # distinct, >= 2 symbols, <= 20, writable (no "ï" in English), not a training label
    assert got == ["ab", "jam", "quilt", "zebra"]
    a = lexicon.heldout_words(candidates, [], ENGLISH, num=2, seed=3)
    assert a == lexicon.heldout_words(list(reversed(candidates)), [], ENGLISH, num=2, seed=3)
    assert len(a) == 2 and [len(w) for w in a] == sorted(len(w) for w in a)


def test_ctc_greedy_texts():
    """Columns a a - b b - - b -> "abb" (a blank separates the two b runs); lengths cut columns."""
    ids = [1, 1, 0, 2, 2, 0, 0, 2]
    logits = np.eye(4)[ids][None]
    abc = Alphabet("abc")
    assert monitor.ctc_greedy_texts(logits, np.array([8]), abc) == ["abb"]
    assert monitor.ctc_greedy_texts(logits, np.array([4]), abc) == ["ab"]


def test_labelled_grid_puts_each_word_left_of_its_image():
    images = [np.zeros((32, 48), np.uint8), np.zeros((32, 80), np.uint8)]
    g = monitor.labelled_grid(images, ["abc", "hello"], label_width=50, pad=4)
    assert g.shape == (2 * (32 + 4) + 4, 50 + 80 + 2 * 4)
    # the images are where they should be (black), the label column has some grey text
    assert g[4:36, 54:102].max() == 0 and g[40:72, 54:134].max() == 0
    assert g[4:36, 4:50].min() < 255


def test_monitor_reads_every_word_with_every_reader():
    """R returns the truth, the HTR drops the last letter of every word: CER 0 and
    sum(1) / sum(len) = 3 / (2 + 3 + 5) = 0.3; WER 0 and 1."""
    words = ["ab", "cab", "hello"]
    rendered = []

    def render(ws, z):
        rendered.append((list(ws), np.asarray(z).shape))
        return [np.full((32, 16 * len(w)), 255, np.uint8) for w in ws]

    def read_r(images):
        return [words[i] for i in range(len(images))]

    def read_htr(images):
        return [w[:-1] for w in words[: len(images)]]

    m = monitor.LegibilityMonitor(words, z=np.zeros((3, 8)), render=render, read_r=read_r,
                                  readers={"htr": read_htr}, batch_size=2)
    results, images, reads = m.evaluate()
    assert rendered == [(["ab", "cab"], (2, 8)), (["hello"], (1, 8))]  # batches of 2
    assert results == pytest.approx({"cer_r": 0.0, "wer_r": 0.0, "cer_htr": 0.3, "wer_htr": 1.0})
    assert reads["htr"] == ["a", "ca", "hell"]
    assert [im.shape[1] for im in images] == [32, 48, 80]
    assert m.grid(images).shape[0] == 3 * 36 + 4
    with pytest.raises(ValueError, match="at least one"):
        monitor.LegibilityMonitor([], z=np.zeros((0, 8)), render=render)


def test_caption_font_draws_umlauts():
    """Captions of DHSD words (ä, ö, ü, ß) must not be drawn as the missing-glyph box that Pillow's
    default font gives: "ß" and an unassigned code point (U+0378, always the box) differ."""
    from scrabblegan_tf.core import imaging

    font = imaging.caption_font()
    if not hasattr(font, "path"):
        pytest.skip(f"none of {imaging.CAPTION_FONTS} is installed (fonts-dejavu-core)")
    box = np.asarray(font.getmask("\u0378"))
    for ch in "äöüß":
        assert not np.array_equal(np.asarray(font.getmask(ch)), box), ch
