"""Alphabet: presets, ids 1..N with 0 = CTC blank / padding, encode/decode, NFC, errors."""

import json

import numpy as np
import pytest

from scrabblegan_tf.core.alphabet import BLANK_ID, ENGLISH, GERMAN, GERMAN_EXTRA, Alphabet


@pytest.fixture(scope="module")
def english():
    return Alphabet.preset("english")


@pytest.fixture(scope="module")
def german():
    return Alphabet.preset("german")


def test_english_preset_has_80_distinct_symbols_and_81_classes(english):
    assert len(english) == 80
    assert len(set(english.symbols)) == 80
    assert english.symbols == ENGLISH
    assert english.num_classes == 81  # + the CTC blank
    assert BLANK_ID == 0


def test_ids_are_positions_plus_one(english):
    # ENGLISH starts with "Only the": O n l y <space> t h e -> ids 1..8.
    assert english.encode("Only the") == [1, 2, 3, 4, 5, 6, 7, 8]
    ids = english.encode(ENGLISH)
    assert ids == list(range(1, 81))  # every symbol once, no id 0 (blank)
    assert english.encode("%") == [80]  # the last symbol


def test_round_trip_of_every_symbol_and_blanks_dropped(english):
    assert english.decode(english.encode(ENGLISH)) == ENGLISH
    text = 'He said: "It\'s 1,250 km (#9)!"'
    assert english.decode(english.encode(text)) == text
    # 0 is the blank / padding id and decodes to nothing.
    assert english.decode([0, 1, 0, 0, 2, 0]) == "On"
    assert english.decode(np.array([1, 2, 0], np.int32)) == "On"


def test_german_preset_unicode_round_trip(german):
    assert len(german) == 80 + len(GERMAN_EXTRA) == 89
    assert german.num_classes == 90
    # The extras follow the 80 English symbols: "ÄÖÜäöüßóš" -> ä = 80 + 3 + 1, ß = 80 + 6 + 1.
    assert german.encode("ä") == [84]
    assert german.encode("ß") == [87]
    for text in ["Straße", "Müller", "Äöü ÄÖÜ ß", "Košice", "Córdoba"]:
        assert german.decode(german.encode(text)) == text
    assert german.symbols == GERMAN


def test_nfc_decomposed_umlaut_is_the_precomposed_symbol(german):
    decomposed = "Mu\u0308ller"  # u + COMBINING DIAERESIS: 7 code points
    assert len(decomposed) == 7
    assert german.encode(decomposed) == german.encode("Müller")
    assert len(german.encode(decomposed)) == 6
    assert german.decode(german.encode(decomposed)) == "M\u00fcller"
    assert "u\u0308" not in german.symbols and german.can_encode("u\u0308")


def test_unknown_characters_raise_value_error_naming_them_and_the_text(english):
    with pytest.raises(ValueError) as err:
        english.encode("Grüße")
    msg = str(err.value)
    assert "'Grüße'" in msg  # the text
    assert "'ü' (U+00FC)" in msg and "'ß' (U+00DF)" in msg  # the offending characters
    assert "'english'" in msg  # the alphabet
    assert "'G'" not in msg and "'r'" not in msg  # only the unknown ones
    # distinct, in order of appearance
    assert english.unknown("Grüße über") == ["ü", "ß"]
    assert not english.can_encode("Grüße")
    assert not english.can_encode("")  # nothing to generate
    assert english.can_encode("Gruesse")


def test_encode_batch_pads_with_zeros(english):
    ids, lengths = english.encode_batch(["On", "", "Only"])
    assert ids.dtype == np.int32 and lengths.dtype == np.int32
    np.testing.assert_array_equal(lengths, [2, 0, 4])
    np.testing.assert_array_equal(ids, [[1, 2, 0, 0], [0, 0, 0, 0], [1, 2, 3, 4]])
    # all empty: still one (padding) column
    ids, lengths = english.encode_batch([""])
    assert ids.shape == (1, 1) and ids[0, 0] == 0 and lengths[0] == 0


def test_encode_batch_propagates_unknown_character_error(english):
    with pytest.raises(ValueError, match="ü"):
        english.encode_batch(["ok", "über"])


def test_from_labels_in_order_of_first_appearance_with_nfc():
    a = Alphabet.from_labels(["hello", "world", "Mu\u0308ller"])
    assert a.symbols == "helowrdMü"  # decomposed ü normalised to one symbol
    assert a.encode("hello") == [1, 2, 3, 3, 4]
    assert a.decode(a.encode("wordü")) == "wordü"
    assert a.num_classes == 10


def test_preset_and_construction_errors():
    with pytest.raises(ValueError, match="klingon"):
        Alphabet.preset("klingon")
    with pytest.raises(ValueError, match="repeats"):
        Alphabet("abca")
    with pytest.raises(ValueError, match="single characters"):
        Alphabet(["a", "bc"])
    with pytest.raises(ValueError):
        Alphabet("")


def test_json_round_trip_keeps_unicode(german):
    text = german.to_json()
    assert "ß" in text  # ensure_ascii=False
    assert json.loads(text)["name"] == "german"
    back = Alphabet.from_json(text)
    assert back == german and back.name == "german"
    assert back.encode("Straße") == german.encode("Straße")
