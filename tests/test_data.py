"""Tests of scrabblegan_tf.data.pipeline on tiny in-memory datasets (and the tiny handwriting_fonts build)."""

import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.data import pipeline as data
from scrabblegan_tf.core import pixels
from scrabblegan_tf.core.alphabet import Alphabet

EN = Alphabet.preset("english")


def word_image(h, w, seed=0, channels=1):
    """Light paper (230) with a dark (20) bar: a stand-in for a word image."""
    img = np.full((h, w, channels), 230, np.uint8)
    img[h // 4 : 3 * h // 4, max(1, w // 10) : w - max(1, w // 10)] = 20
    return img


def dataset(pairs):
    """(image, text) pairs of different sizes -> tf.data of dicts, like TFDS."""
    images = [p[0] for p in pairs]
    texts = [p[1] for p in pairs]
    channels = images[0].shape[2]
    return tf.data.Dataset.from_generator(
        lambda: ({"image": im, "text": t} for im, t in zip(images, texts)),
        output_signature={
            "image": tf.TensorSpec([None, None, channels], tf.uint8),
            "text": tf.TensorSpec([], tf.string),
        },
    )


GOOD = ["MOVE", "to", "stop", "Mr.", "Gaitskell", "from", "nominating", "any", "more", "x"]
BAD = ["héllo", "", "a" * 21, "naïve\u2019s"]  # outside the alphabet, empty, too long (21 > 20)


def all_batches(ds, **kw):
    args = dict(alphabet=EN, batch_size=3, max_label_len=20, shuffle_buffer=0, seed=0,
                bucket_boundaries=(4, 6), drop_remainder=False, repeat=False)
    args.update(kw)
    return list(data.labelled_pipeline(ds, **args).as_numpy_iterator())


def mixed_examples():
    rng = np.random.default_rng(0)
    texts = GOOD + BAD
    order = rng.permutation(len(texts))
    return [(word_image(int(rng.integers(20, 90)), int(rng.integers(10, 300))), texts[i]) for i in order]


def test_labelled_shapes_values_width_padding_and_labels():
    batches = all_batches(dataset(mixed_examples()))
    seen = []
    for b in batches:
        bsz, height, width, channels = b["image"].shape
        assert (height, channels) == (32, 1) and b["image"].dtype == np.float32
        assert b["image_width"].dtype == np.int32 and b["label"].dtype == np.int32
        assert b["label_length"].shape == (bsz,) and b["label"].shape[0] == bsz
        assert b["image"].min() >= -1.0 and b["image"].max() <= 1.0
        # Width is exactly 16 px per character; the batch is as wide as its widest image.
        np.testing.assert_array_equal(b["image_width"], 16 * b["label_length"])
        assert width == b["image_width"].max()
        for img, w, ids, n in zip(b["image"], b["image_width"], b["label"], b["label_length"]):
            assert (img[:, w:] == 1.0).all()  # white padding beyond the valid width
            assert img[:, :w].min() < -0.7  # the dark bar (20 -> -0.84) survives resizing
            assert (ids[n:] == 0).all() and (ids[:n] > 0).all()
            seen.append(EN.decode(ids))
    # Every encodable text exactly once (no repeat, no shuffle); the four bad ones are dropped.
    assert sorted(seen) == sorted(GOOD)


def test_bucketing_groups_label_lengths():
    batches = all_batches(dataset(mixed_examples()), batch_size=2)
    for b in batches:
        buckets = {int(np.searchsorted([4, 6], n, side="right")) for n in b["label_length"]}
        assert len(buckets) == 1, b["label_length"]  # lengths <4, 4-5, >=6 never mix


def test_unencodable_texts_are_counted():
    counts = data.count_unencodable([t for _, t in mixed_examples()], EN, max_label_len=20)
    assert counts["total"] == 14 and counts["kept"] == 10 and counts["dropped"] == 4
    assert (counts["unencodable"], counts["empty"], counts["too_long"]) == (2, 1, 1)
    assert counts["chars"] == {"é": 1, "ï": 1, "\u2019": 1}
    # The same from a tf.data.Dataset of dicts.
    assert data.count_unencodable(dataset(mixed_examples()), EN, max_label_len=20) == counts


def test_decomposed_accents_are_composed_in_graph():
    fr = Alphabet.preset("french")
    texts = ["e\u0301te\u0301", "été", "garçon", "c\u0327a"]  # NFD and NFC
    batches = all_batches(dataset([(word_image(40, 80), t) for t in texts]), alphabet=fr)
    decoded = sorted(fr.decode(ids) for b in batches for ids in b["label"])
    assert decoded == sorted(["été", "été", "garçon", "ça"])
    # KELVIN SIGN (NFC: K) is a K in the pipeline too, as in Alphabet.encode.
    batches = all_batches(dataset([(word_image(40, 60), "\u212aey")]), alphabet=fr)
    assert [fr.decode(ids) for b in batches for ids in b["label"]] == ["Key"]


def test_rgb_rgba_and_encoded_png_inputs_give_the_same_images():
    gray = word_image(40, 120)
    ref = all_batches(dataset([(gray, "word")]))[0]["image"]
    rgb = all_batches(dataset([(np.repeat(gray, 3, axis=2), "word")]))[0]["image"]
    np.testing.assert_allclose(rgb, ref, atol=1.5 / 127.5)  # rgb_to_grayscale weights sum to ~1
    rgba = np.concatenate([np.repeat(gray, 3, axis=2), np.full_like(gray, 255)], axis=2)
    np.testing.assert_allclose(all_batches(dataset([(rgba, "word")]))[0]["image"], ref, atol=1.5 / 127.5)
    png = tf.data.Dataset.from_tensor_slices(
        {"image": [tf.io.encode_png(gray).numpy()], "text": ["word"]}
    )  # like TFDS with decoders={"image": tfds.decode.SkipDecoding()}
    np.testing.assert_array_equal(all_batches(png)[0]["image"], ref)


def test_same_size_images_from_tensor_slices_and_repeat_shuffle_determinism():
    images = np.stack([word_image(48, 100) for _ in range(6)])
    texts = ["one", "two", "three", "four", "five", "six"]
    ds = tf.data.Dataset.from_tensor_slices({"image": images, "text": texts})
    kw = dict(alphabet=EN, batch_size=4, max_label_len=20, shuffle_buffer=6, seed=7,
              bucket_boundaries=(), drop_remainder=True, repeat=True)
    first = [next(iter(data.labelled_pipeline(ds, **kw)))["label"] for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])  # same seed, same batches
    batches = list(data.labelled_pipeline(ds, **kw).take(5).as_numpy_iterator())
    assert all(b["image"].shape[0] == 4 for b in batches)  # repeat + drop_remainder: full batches


def test_keep_aspect_option_and_unlabeled_pipeline():
    pairs = [(word_image(64, 200), "wide"), (word_image(32, 40), "narrow"), (word_image(50, 101), "odd")]
    # Labelled, aspect kept (recognizers): width = round(W * 32 / H).
    b = all_batches(dataset(pairs), per_char_width=False, bucket_boundaries=())[0]
    assert sorted(b["image_width"].tolist()) == sorted([100, 40, 65])
    # Unlabeled: the same widths, no labels, white padding.
    u = list(data.unlabeled_pipeline(dataset(pairs), batch_size=3, shuffle_buffer=0, repeat=False,
                                     drop_remainder=False, bucket_boundaries=()).as_numpy_iterator())
    assert len(u) == 1 and set(u[0]) == {"image", "image_width"}
    assert u[0]["image"].shape == (3, 32, 100, 1)
    assert sorted(u[0]["image_width"].tolist()) == [40, 65, 100]
    for img, w in zip(u[0]["image"], u[0]["image_width"]):
        assert (img[:, w:] == 1.0).all() and img.min() >= -1.0
    # max_width squeezes wider images.
    capped = next(data.unlabeled_pipeline(dataset(pairs), batch_size=3, shuffle_buffer=0, repeat=False,
                                          drop_remainder=False, bucket_boundaries=(),
                                          max_width=64).as_numpy_iterator())
    assert sorted(capped["image_width"].tolist()) == [40, 64, 64]


def test_width_jitter_scales_each_width_within_its_range():
    """width_jitter (lo, hi): natural widths (100, 40, 65 as above) times a factor in [lo, hi);
    a degenerate range gives exact values, max_width still caps; labels untouched."""
    pairs = [(word_image(64, 200), "wide"), (word_image(32, 40), "narrow"), (word_image(50, 101), "odd")]
    kw = dict(per_char_width=False, bucket_boundaries=())
    double = all_batches(dataset(pairs), width_jitter=(2.0, 2.0), **kw)[0]
    assert sorted(double["image_width"].tolist()) == [80, 130, 200]
    capped = all_batches(dataset(pairs), width_jitter=(2.0, 2.0), max_width=150, **kw)[0]
    assert sorted(capped["image_width"].tolist()) == [80, 130, 150]
    seen = []
    for seed in range(5):
        b = all_batches(dataset(pairs), width_jitter=(0.75, 1.6), seed=seed, **kw)[0]
        natural = {4: 100, 6: 40, 3: 65}
        for w, n in zip(b["image_width"], b["label_length"]):
            assert 0.75 * natural[int(n)] - 1 <= w <= 1.6 * natural[int(n)] + 1
            seen.append(w / natural[int(n)])
    assert max(seen) - min(seen) > 0.2  # the factors do vary


def test_pixel_conversions_round_trip():
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    x = pixels.to_model(tf.constant(values))
    assert x.dtype == tf.float32 and float(x[0, 0, 0, 0]) == -1.0 and float(x[0, -1, -1, 0]) == 1.0
    np.testing.assert_array_equal(pixels.to_uint8(x).numpy(), values)
    assert pixels.to_uint8(tf.constant([-3.0, 3.0])).numpy().tolist() == [0, 255]
    # numpy in, numpy out, the same values
    np.testing.assert_array_equal(pixels.to_uint8(pixels.to_model(np.asarray(values))), values)
    assert isinstance(pixels.to_model(np.asarray(values)), np.ndarray)


def test_tiny_handwriting_fonts_build_through_the_pipeline(tmp_path):
    from scrabblegan_tf.data import builders

    hf = builders.builder_module("handwriting_fonts")
    try:
        hf.find_fonts()
    except FileNotFoundError as e:
        pytest.skip(f"no handwriting font installed: {e}")
    builder = builders.get_builder("handwriting_fonts", data_dir=str(tmp_path), config="tiny")
    builders.ensure_prepared(builder, log=lambda *_: None)
    texts = [t.decode() for t in builder.as_dataset(split="train").map(lambda e: e["text"]).as_numpy_iterator()]
    batches = list(data.labelled_pipeline(
        builder.as_dataset(split="train"), alphabet=EN, batch_size=4, max_label_len=20, shuffle_buffer=0,
        seed=0, bucket_boundaries=(), drop_remainder=False, repeat=False).as_numpy_iterator())
    decoded = [EN.decode(ids) for b in batches for ids in b["label"]]
    assert sorted(decoded) == sorted(texts)
    for b in batches:
        np.testing.assert_array_equal(b["image_width"], 16 * b["label_length"])
        # Rendered words: mostly paper (> 0.5), some ink (< -0.3).
        for img, w in zip(b["image"], b["image_width"]):
            valid = img[:, :w]
            assert np.median(valid) > 0.5 and valid.min() < -0.3
