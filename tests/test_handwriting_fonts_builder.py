"""Tests of datasets/handwriting_fonts: TFDS contract on the `tiny` config, determinism, image looks,
the bundled word list, and the error without fonts.

The builder is loaded by file path (scrabblegan_tf.data.builders), never through `import datasets`.
Needs the handwriting font packages (`make fonts`); skipped, with the reason, when none is installed.
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from scrabblegan_tf.data import builders
from scrabblegan_tf.core.alphabet import Alphabet

hf = builders.builder_module("handwriting_fonts")

try:
    FONTS = hf.find_fonts()
except FileNotFoundError as e:  # a machine without the font packages (a missing binary dependency)
    FONTS = []
    NO_FONTS = str(e)
else:
    NO_FONTS = ""
needs_fonts = pytest.mark.skipif(not FONTS, reason=f"no handwriting font installed: {NO_FONTS}")


@needs_fonts
class HandwritingFontsTinyTest(tfds.testing.DatasetBuilderTestCase):
    """Builds the `tiny` config (12 train / 4 test words) and checks the TFDS contract."""

    DATASET_CLASS = builders.builder_class("handwriting_fonts")
    BUILDER_CONFIG_NAMES_TO_TEST = ["tiny"]
    SPLITS = {"train": 12, "test": 4}
    SKIP_CHECKSUMS = True  # nothing is downloaded

    @classmethod
    def setUpClass(cls):
        import tempfile

        cls._example_dir = tempfile.TemporaryDirectory()
        cls.EXAMPLE_DIR = cls._example_dir.name  # no dummy data: the builder downloads nothing
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._example_dir.cleanup()


@pytest.fixture(scope="module")
def renderer():
    return hf.Renderer(FONTS, hf.load_words())


@needs_fonts
def test_same_example_twice_is_identical(renderer):
    a = renderer.example("train", 7, height=32)
    b = renderer.example("train", 7, height=32)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert (a["text"], a["writer_id"], a["id"]) == (b["text"], b["writer_id"], b["id"])
    # Independent of global random state and of the examples drawn before.
    np.random.seed(123)
    renderer.example("test", 0, height=32)
    c = renderer.example("train", 7, height=32)
    np.testing.assert_array_equal(a["image"], c["image"])
    # Another index or split gives another example.
    assert not np.array_equal(a["image"], renderer.example("test", 7, height=32)["image"])


@needs_fonts
def test_h32_and_default_hold_the_same_word_and_style(renderer):
    for index in range(5):
        e64 = renderer.example("train", index, height=64)
        e32 = renderer.example("train", index, height=32)
        assert (e64["text"], e64["writer_id"]) == (e32["text"], e32["writer_id"])
        assert e64["image"].shape[0] == 64 and e32["image"].shape[0] == 32
        # Same aspect ratio up to rounding of the widths (margins are given in final pixels).
        assert abs(e64["image"].shape[1] / 2 - e32["image"].shape[1]) <= 4


@needs_fonts
def test_images_look_like_ink_on_paper_with_tight_crop(renderer):
    for index in range(30):
        ex = renderer.example("train", index, height=32)
        img = ex["image"][:, :, 0].astype(np.float32)
        assert ex["image"].dtype == np.uint8 and ex["image"].ndim == 3 and ex["image"].shape[2] == 1
        paper = np.median(img)
        assert paper >= 200, (ex["text"], paper)  # light paper (215-252, noise)
        assert img.min() <= paper - 100, (ex["text"], img.min())  # dark ink somewhere
        ink_cols = np.nonzero((img < paper - 60).any(axis=0))[0]
        # Ink starts and ends within the 1-3.5 px margin (+1 for anti-aliasing) of the borders.
        assert ink_cols[0] <= 5 and img.shape[1] - 1 - ink_cols[-1] <= 5, (ex["text"], ink_cols)
        # The whole word is inside: the border rows are (mostly) paper.
        assert (img[0] > paper - 60).mean() > 0.8 and (img[-1] > paper - 60).mean() > 0.8


@needs_fonts
def test_built_text_matches_the_word_list(tmp_path):
    builder = builders.get_builder("handwriting_fonts", data_dir=str(tmp_path), config="tiny")
    builders.ensure_prepared(builder, log=lambda *_: None)
    words = set(hf.load_words())
    renderer = hf.Renderer(FONTS, hf.load_words())
    for split in ("train", "test"):
        for ex in tfds.as_numpy(builder.as_dataset(split=split)):
            text = ex["text"].decode()
            assert text in words
            split_name, index = ex["id"].decode().split("-")
            assert split_name == split
            expected = renderer.example(split, int(index), height=32)
            assert text == expected["text"]
            assert ex["writer_id"].decode() == expected["writer_id"]
            np.testing.assert_array_equal(ex["image"], expected["image"])  # PNG is lossless


def test_word_list_is_alphabet_valid():
    words = hf.load_words()
    english = Alphabet.preset("english")
    assert len(words) > 3000 and len(set(words)) == len(words)
    assert all(1 <= len(w) <= 12 and english.can_encode(w) for w in words)
    assert sum(w[0].isupper() for w in words) > 300  # capitalised words
    assert sum(any(c.isdigit() for c in w) for w in words) >= 20
    assert {"#", "#1", "the"} <= set(words)  # '#...' words are not comments; '# ' lines are


def test_no_font_error_names_the_apt_packages(tmp_path, monkeypatch):
    monkeypatch.delenv(hf.FONTS_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as err:
        hf.find_fonts(str(tmp_path))
    message = str(err.value)
    assert "apt-get install" in message
    for package in hf.FONT_PACKAGES:
        assert package in message
    # The same through the environment variable and a build.
    monkeypatch.setenv(hf.FONTS_DIR_ENV, str(tmp_path))
    builder = builders.get_builder("handwriting_fonts", data_dir=str(tmp_path / "data"), config="tiny")
    with pytest.raises(FileNotFoundError, match="fonts-dancingscript"):
        builder.download_and_prepare()


@needs_fonts
def test_fonts_dir_override_uses_only_those_fonts(tmp_path):
    import shutil

    family = tmp_path / "myhand"
    family.mkdir()
    src = next(f for f in FONTS if f.group == "kristi" or f.stem == FONTS[0].stem)
    shutil.copy(src.path, family / "MyHand.ttf")
    fonts = hf.find_fonts(str(tmp_path))
    assert [(f.stem, f.group) for f in fonts] == [("MyHand", "myhand")]
    ex = hf.Renderer(fonts, ["hello"]).example("train", 0, height=32)
    assert ex["writer_id"] == "MyHand" and ex["text"] == "hello"
