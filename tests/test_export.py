"""Export of G as a TF Serving SavedModel (scrabblegan_tf/serving/export_lib.py, export/export_main.py).

One untrained smoke workdir (config.json, alphabet.json, a checkpoint of G after two training-mode
calls, so the norms' moving statistics are not 0 / 1) is exported once through the CLI with
``--version=1 --max_text_length=12``; the tests read that version with ``saved_model_cli``, in a
fresh process and in this one.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export_helpers import make_workdir
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.inference.generation import load_generator, render, style_vectors
from scrabblegan_tf.serving import export_lib

REPO = pathlib.Path(__file__).resolve().parents[1]

MAX_LEN = 12  # --max_text_length of the CLI export
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def saved_model_cli_cmd(*args) -> list[str]:
    exe = pathlib.Path(sys.executable).parent / "saved_model_cli"
    cmd = ([str(exe)] if exe.exists() else
           [sys.executable, "-c", "import sys; from tensorflow.python.tools.saved_model_cli import "
            "main; sys.exit(main())"])
    return cmd + list(args)


class Background:
    """A subprocess started now and awaited by the test that reads it (the fixture ``background``
    starts the three slow ones at once: most of their time is importing TensorFlow)."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=ENV)
        self.result = None

    def wait(self):
        if self.result is None:
            out, err = self.proc.communicate(timeout=240)
            self.result = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)
        assert self.result.returncode == 0, self.result.stderr[-3000:]
        return self.result


def export_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "export" / "export_main.py"), *args],
                          capture_output=True, text=True, env=ENV, timeout=180, cwd="/")


def decode_png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.mode == "L"  # grayscale
    return np.array(image)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    workdir = make_workdir(root / "workdir")
    export_dir = root / "models"
    proc = export_cli(f"--workdir={workdir}", f"--export_dir={export_dir}", "--version=1",
                      f"--max_text_length={MAX_LEN}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"exported {export_dir / '1'}" in proc.stdout
    return {"workdir": workdir, "export_dir": export_dir, "version": export_dir / "1",
            "stdout": proc.stdout}


@pytest.fixture(scope="module")
def keras_g(exported):
    gen, cfg, alphabet, _ = load_generator(exported["workdir"])
    return gen, alphabet


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported["version"]))


FRESH_Z = np.random.default_rng(3).standard_normal((3, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def background(exported, tmp_path_factory):
    """saved_model_cli show / run and the fresh-process reload, running side by side."""
    tmp = tmp_path_factory.mktemp("background")
    version = str(exported["version"])
    np.save(tmp / "z.npy", FRESH_Z)
    jobs = {
        "show": Background(saved_model_cli_cmd("show", "--dir", version, "--all")),
        "run": Background(saved_model_cli_cmd(
            "run", "--dir", version, "--tag_set", "serve", "--signature_def", "serving_default",
            "--input_exprs", 'words=["hello","ab"];seeds=[7,8]', "--outdir", str(tmp / "run"))),
        "fresh": Background([sys.executable, "-c", FRESH, version, str(tmp / "z.npy"),
                             str(tmp / "fresh.npz")]),
    }
    yield {"tmp": tmp, **jobs}
    for job in jobs.values():
        if job.proc.poll() is None:
            job.proc.kill()
            job.proc.communicate()


# -- layout, versions, models.config -----------------------------------------------------------------
def test_cli_writes_a_complete_version_and_models_config(exported):
    v = exported["version"]
    assert (v / "saved_model.pb").is_file()
    assert (v / "variables" / "variables.index").is_file()
    assert (v / "assets.extra" / export_lib.WARMUP_FILE).is_file()
    info = json.loads((v / "assets.extra" / export_lib.METADATA_FILE).read_text())
    assert info["version"] == 1 and info["max_text_length"] == MAX_LEN and info["z_dim"] == 32
    assert info["checkpoint"].endswith("ckpt-1")
    # only the version folder and models.config: the temporary folder was renamed
    assert sorted(os.listdir(exported["export_dir"])) == ["1", "models.config"]
    text = (exported["export_dir"] / "models.config").read_text()
    assert text == ('model_config_list {\n  config {\n    name: "scrabblegan"\n'
                    f'    base_path: "{exported["export_dir"]}"\n'
                    '    model_platform: "tensorflow"\n  }\n}\n')


def test_cli_never_overwrites_a_version(exported):
    before = (exported["version"] / "saved_model.pb").stat()
    proc = export_cli(f"--workdir={exported['workdir']}", f"--export_dir={exported['export_dir']}",
                      "--version=1")
    assert proc.returncode == 2  # bad input: one line, no traceback (scrabblegan_tf.cli)
    assert proc.stderr.startswith("error: Version 1 exists already") and proc.stderr.count("\n") == 1
    assert "never overwritten" in proc.stderr
    after = (exported["version"] / "saved_model.pb").stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert sorted(os.listdir(exported["export_dir"])) == ["1", "models.config"]


def test_versions_default_timestamp_atomic_and_no_overwrite(tmp_path, monkeypatch):
    """The version logic with a stand-in writer (no TensorFlow export): default version = Unix time,
    an existing version raises before anything is written, a failed write leaves nothing behind."""
    calls = []

    def fake_write(generator, alphabet, path, **kwargs):
        calls.append(path)
        assert os.path.basename(path).startswith(".tmp-")  # written beside, under a temporary name
        pathlib.Path(path, "saved_model.pb").write_text("x")
        if kwargs["metadata"]["version"] == 666:
            raise RuntimeError("disk full")

    monkeypatch.setattr(export_lib, "write_saved_model", fake_write)
    abc = Alphabet.preset("english")
    t0 = int(time.time())
    path = export_lib.export_version(None, abc, str(tmp_path), max_text_length=8)
    version = int(os.path.basename(path))
    assert t0 <= version <= int(time.time())
    assert oct(os.stat(path).st_mode & 0o777) != "0o700"  # not mkdtemp's private mode
    with pytest.raises(export_lib.VersionExistsError, match="never overwritten"):
        export_lib.export_version(None, abc, str(tmp_path), version=version)
    assert len(calls) == 1  # refused before writing
    with pytest.raises(RuntimeError, match="disk full"):
        export_lib.export_version(None, abc, str(tmp_path), version=666)
    assert sorted(os.listdir(tmp_path)) == [str(version)]
    with pytest.raises(ValueError, match="non-negative"):
        export_lib.export_version(None, abc, str(tmp_path), version=-1)
    assert export_lib.existing_versions(str(tmp_path)) == [version]


def test_models_config_update_keeps_other_models_and_fields(tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "other" base_path: "/srv/other" '
                    'model_platform: "tensorflow" } config { name: "scrabblegan" base_path: "/old" '
                    'model_version_policy { all {} } } }')
    export_lib.update_models_config(str(tmp_path / "sg"), "scrabblegan", path=str(path))
    export_lib.update_models_config(str(tmp_path / "fr"), "scrabblegan_fr", path=str(path))
    config = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c for c in config.model_config_list.config}
    assert list(entries) == ["other", "scrabblegan", "scrabblegan_fr"]
    assert entries["other"].base_path == "/srv/other"
    assert entries["scrabblegan"].base_path == str(tmp_path / "sg")
    assert entries["scrabblegan"].model_version_policy.HasField("all")
    assert entries["scrabblegan_fr"].base_path == str(tmp_path / "fr")
    assert {c.model_platform for c in entries.values()} == {"tensorflow"}


# -- saved_model_cli -----------------------------------------------------------------------------------
def test_saved_model_cli_show_lists_the_three_signatures(background):
    out = background["show"].wait().stdout
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)Method name is", out, re.S))
    assert set(export_lib.SIGNATURES) <= set(blocks)

    def tensors(block):
        return {name: (dtype, shape) for name, dtype, shape in re.findall(
            r"(?:inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\S+)", block)}

    batch = {"png_bytes": ("DT_STRING", "(-1)"), "widths": ("DT_INT32", "(-1)"),
             "images": ("DT_FLOAT", "(-1,")}
    for name, inputs in [("serving_default", {"words": ("DT_STRING", "(-1)"),
                                              "seeds": ("DT_INT64", "(-1)")}),
                         ("generate_with_style", {"words": ("DT_STRING", "(-1)"),
                                                  "z": ("DT_FLOAT", "(-1,")})]:
        assert tensors(blocks[name]) == {**inputs, **batch}, blocks[name]
    assert "shape: (-1, 32, -1, 1)" in blocks["serving_default"]
    assert "shape: (-1, 32)" in blocks["generate_with_style"]  # z: [batch, z_dim]
    assert tensors(blocks["generate_line"]) == {
        "text": ("DT_STRING", "()"), "seed": ("DT_INT64", "()"), "png_bytes": ("DT_STRING", "()"),
        "width": ("DT_INT32", "()"), "image": ("DT_FLOAT", "(32,")}
    assert "shape: (32, -1, 1)" in blocks["generate_line"]
    for block in blocks.values():
        assert "tensorflow/serving/predict" in out


def test_saved_model_cli_run_gives_pngs_of_the_right_sizes(background):
    proc = background["run"].wait()
    assert "Result for output key png_bytes" in proc.stdout
    tmp_path = background["tmp"] / "run"
    pngs = np.load(tmp_path / "png_bytes.npy", allow_pickle=True)
    widths = np.load(tmp_path / "widths.npy")
    images = np.load(tmp_path / "images.npy")
    np.testing.assert_array_equal(widths, [80, 32])  # 16 px per character
    assert images.shape == (2, 32, 80, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.all(images[1, :, 32:] == 1.0)  # white beyond "ab"
    for png, image, width in zip(pngs, images, widths):
        pixels = decode_png(png)
        assert pixels.shape == (32, width)  # cropped to its own word
        # the PNG is the image in 8 bits: round(255 * image)
        assert np.abs(pixels.astype(int) - np.rint(image[:, :width, 0] * 255)).max() <= 1


# -- equality with Keras, styles, batch independence -----------------------------------------------
FRESH = r"""
import json, sys
import numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
words = tf.constant(["hello", "ab", "Scrabble"])
sd = m.signatures["serving_default"](words=words, seeds=tf.constant([7, 8, 9], tf.int64))
z = np.load(sys.argv[2])
ws = m.signatures["generate_with_style"](words=words, z=tf.constant(z))
line = m.signatures["generate_line"](text=tf.constant("hello world"), seed=tf.constant(5, tf.int64))
np.savez(sys.argv[3], sd_images=sd["images"], sd_widths=sd["widths"],
         sd_png=sd["png_bytes"].numpy().astype(object), ws_images=ws["images"],
         line_image=line["image"], line_width=line["width"],
         line_png=np.array([line["png_bytes"].numpy()], dtype=object))
"""


def test_fresh_process_outputs_equal_the_keras_generator(background, keras_g):
    gen, alphabet = keras_g
    z = FRESH_Z
    background["fresh"].wait()
    out = np.load(background["tmp"] / "fresh.npz", allow_pickle=True)
    words = ["hello", "ab", "Scrabble"]
    ids, lengths = alphabet.encode_batch(words)
    # serving_default: the style of seed s is style_vectors([s]) (the CLI's --seed=s)
    want = gen((ids, lengths, style_vectors(np.array([7, 8, 9]), 32)), training=False).numpy()
    np.testing.assert_allclose(out["sd_images"], (want + 1) / 2, atol=1e-5)
    np.testing.assert_array_equal(out["sd_widths"], [80, 32, 128])
    cli_images = render(gen, alphabet, words, seeds=[7, 8, 9])  # what generate.py writes
    for png, cli in zip(out["sd_png"], cli_images):
        assert np.abs(decode_png(png).astype(int) - cli).max() <= 1
    # generate_with_style: explicit z
    want = gen((ids, lengths, z), training=False).numpy()
    np.testing.assert_allclose(out["ws_images"], (want + 1) / 2, atol=1e-5)
    # generate_line: one text, spaces included, one style
    (cli_line,) = render(gen, alphabet, ["hello world"], seeds=[5])
    assert int(out["line_width"]) == 16 * 11 and out["line_image"].shape == (32, 176, 1)
    np.testing.assert_allclose(out["line_image"][..., 0], (cli_line / 255.0), atol=1 / 255 + 1e-6)
    assert np.abs(decode_png(out["line_png"][0]).astype(int) - cli_line).max() <= 1


def test_same_seed_same_style_and_batch_independence(loaded):
    sd = loaded.signatures["serving_default"]
    batch = sd(words=tf.constant(["ab", "handwriting", "ab"]), seeds=tf.constant([4, 5, 4], tf.int64))
    alone = sd(words=tf.constant(["ab"]), seeds=tf.constant([4], tf.int64))
    images = batch["images"].numpy()
    assert images.shape == (3, 32, 176, 1)
    np.testing.assert_array_equal(images[0], images[2])  # same word + seed -> same image
    # inference-mode norms and masked padding: "ab" does not depend on the longer word beside it
    np.testing.assert_allclose(images[0, :, :32], alone["images"].numpy()[0], atol=1e-6)
    assert np.all(images[0, :, 32:] == 1.0)
    assert batch["png_bytes"].numpy()[0] == batch["png_bytes"].numpy()[2]
    other = sd(words=tf.constant(["ab"]), seeds=tf.constant([6], tf.int64))["images"].numpy()
    assert np.abs(other[0] - alone["images"].numpy()[0]).max() > 1e-3  # another seed, another style


def test_kelvin_sign_reads_as_k(loaded):
    """NFC in the graph: U+212A KELVIN SIGN normalises to K (Alphabet.encode does the same)."""
    sd = loaded.signatures["serving_default"]
    a = sd(words=tf.constant(["OK"]), seeds=tf.constant([1], tf.int64))["images"].numpy()
    b = sd(words=tf.constant(["O\u212a"]), seeds=tf.constant([1], tf.int64))["images"].numpy()
    np.testing.assert_array_equal(a, b)


def test_decomposed_accents_are_composed_in_the_graph():
    """French alphabet: "e" + U+0301 gives the id of "é" (no tf.strings.unicode_normalize in core TF:
    the decomposed forms of the alphabet's symbols are composed by regex_replace)."""
    from scrabblegan_tf.models.generator import Generator

    abc = Alphabet.preset("french")
    gen = Generator(num_classes=abc.num_classes, z_dim=32, channels=(8, 4, 4, 4))
    gen((np.ones((1, 1), np.int32), np.ones((1,), np.int32), np.zeros((1, 32), np.float32)))
    fns = export_lib.ServingFunctions(gen, abc, max_text_length=10)
    ids, lengths = fns.encode(tf.constant(["e\u0301te\u0301", "été", "A\u0308\u212a"]))
    want, want_len = abc.encode_batch(["été", "été", "ÄK"])
    np.testing.assert_array_equal(ids.numpy(), want)
    np.testing.assert_array_equal(lengths.numpy(), want_len)


# -- bad input ---------------------------------------------------------------------------------------
BAD = [
    ("serving_default", dict(words=["ab"], seeds=[1, 2]),
     r"words and seeds must have the same batch size, got 1 words and 2 seeds"),
    ("generate_with_style", dict(words=["ab", "cd"], z=np.zeros((3, 32), np.float32)),
     r"words and z must have the same batch size, got 2 words and 3 z"),
    ("serving_default", dict(words=[], seeds=[]), r"empty batch"),
    ("serving_default", dict(words=["ab", ""], seeds=[1, 2]), r"empty text at batch index \[1\]"),
    ("generate_line", dict(text="", seed=1), r"empty text at batch index \[0\]"),
    ("serving_default", dict(words=["ab", "x" * (MAX_LEN + 1)], seeds=[1, 2]),
     rf"text too long at batch index 1: {MAX_LEN + 1} symbols, the maximum is {MAX_LEN}"),
    ("generate_line", dict(text="hello world again", seed=1),
     rf"text too long at batch index 0: 17 symbols, the maximum is {MAX_LEN} "
     r"\(text starts with: hello world again"),
    ("serving_default", dict(words=["café", "ok", "naïve"], seeds=[1, 2, 3]),
     r"characters outside the english alphabet: é, ï \(in: café, naïve\)"),
    ("generate_line", dict(text="a~b", seed=1), r"characters outside the english alphabet: ~ \(in: a~b\)"),
    ("serving_default", dict(words=[b"a\xffb"], seeds=[1]),
     "characters outside the english alphabet: \ufffd"),  # invalid UTF-8 -> U+FFFD
    ("serving_default", dict(words=["ab"] * (export_lib.DEFAULT_MAX_BATCH_SIZE + 1),
                             seeds=[1] * (export_lib.DEFAULT_MAX_BATCH_SIZE + 1)),
     rf"batch too large: {export_lib.DEFAULT_MAX_BATCH_SIZE + 1} words, the maximum is "
     rf"{export_lib.DEFAULT_MAX_BATCH_SIZE}"),
]


@pytest.mark.parametrize("signature,inputs,message", BAD, ids=[
    "seeds_batch", "z_batch", "empty_batch", "empty_text", "empty_line", "too_long", "line_too_long",
    "unknown_chars", "line_unknown_char", "invalid_utf8", "batch_too_large"])
def test_bad_input_is_invalid_argument_naming_the_problem(loaded, signature, inputs, message):
    """Repeated 30 times: the graph's ops run in parallel, and a message op that is not ordered
    after the earlier checks (an argmax over the empty batch) failed first in about 1 call in 3
    before the messages were put under control dependencies; (2/3)^30 < 1e-5."""
    fn = loaded.signatures[signature]
    dtypes = {"words": tf.string, "text": tf.string, "seeds": tf.int64, "seed": tf.int64,
              "z": tf.float32}
    kwargs = {k: tf.constant(v, dtypes[k]) for k, v in inputs.items()}
    for _ in range(30):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            fn(**kwargs)


def _random_text(rng) -> bytes:
    """UTF-8 bytes mixing alphabet letters, spaces, combining marks, other scripts, emoji,
    lone-surrogate encodings (invalid UTF-8), NUL and stray continuation bytes."""
    valid = [b"a", b"Z", b"7", b" ", "\u212a".encode()]  # KELVIN SIGN reads as K
    other = ["e\u0301".encode(), "\u0308".encode(), "\u4e00".encode(), "\U0001F600".encode(),
             b"\xed\xa0\x80", b"\x00", b"\x80", b"~"]
    pieces = valid + other
    weights = np.array([0.17] * len(valid) + [0.15 / len(other)] * len(other))
    n = int(rng.integers(0, 7))
    return b"".join(pieces[i] for i in rng.choice(len(pieces), n, p=weights / weights.sum()))


def _check_answer(out, texts, char_width=16):
    """Valid PNGs: grayscale, 32 px high, char_width px per symbol of each text."""
    for png, width in zip(out["png_bytes"].numpy(), out["widths"].numpy()):
        image = decode_png(png)
        assert image.shape == (32, int(width)) and width % char_width == 0 and width > 0


def test_random_unicode_gives_pngs_or_invalid_argument_with_bounded_memory(loaded):
    """Every signature under random Unicode (combining marks, invalid UTF-8 / surrogates, empty
    strings, NUL), a 10^5-character text and a batch of 10^4 words: either valid PNGs or
    InvalidArgumentError, never another error, and the process's peak memory grows by less than
    256 MB (the big requests are refused before G runs)."""
    import resource

    rng = np.random.default_rng(0)
    sd, line = loaded.signatures["serving_default"], loaded.signatures["generate_line"]
    ws = loaded.signatures["generate_with_style"]
    answered = refused = 0
    for _ in range(60):
        texts = [_random_text(rng) for _ in range(int(rng.integers(1, 4)))]
        for call in (lambda: sd(words=tf.constant(texts), seeds=tf.constant(range(len(texts)), tf.int64)),
                     lambda: ws(words=tf.constant(texts), z=tf.zeros((len(texts), 32))),
                     lambda: line(text=tf.constant(texts[0]), seed=tf.constant(3, tf.int64))):
            try:
                out = call()
            except tf.errors.InvalidArgumentError:
                refused += 1
                continue
            answered += 1
            if "png_bytes" in out and out["png_bytes"].shape.rank == 1:
                _check_answer(out, texts)
            else:
                assert decode_png(out["png_bytes"].numpy()).shape == (32, int(out["width"]))
    assert answered > 10 and refused > 10  # both kinds of input were drawn
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(tf.errors.InvalidArgumentError, match="text too long"):
        line(text=tf.constant("a" * 100_000), seed=tf.constant(1, tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch too large: 10000 words"):
        sd(words=tf.constant(["hello"] * 10_000), seeds=tf.constant(range(10_000), tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="text too long|batch too large"):
        sd(words=tf.constant(["a" * 100_000] * 10), seeds=tf.constant(range(10), tf.int64))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 256 * 1024, f"peak RSS grew by {grown / 1024:.0f} MB"


# -- warmup ------------------------------------------------------------------------------------------
def test_warmup_requests_parse_and_run(exported, loaded):
    records = export_lib.read_warmup(str(exported["version"] / "assets.extra" / export_lib.WARMUP_FILE))
    assert [r.predict_log.request.model_spec.signature_name for r in records] == [
        "serving_default", "serving_default", "generate_line", "generate_with_style"]
    for record in records:
        request = record.predict_log.request
        assert request.model_spec.name == "scrabblegan"
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        out = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert "png_bytes" in out
    first = {k: tf.make_ndarray(v) for k, v in records[0].predict_log.request.inputs.items()}
    assert list(first["words"]) == [b"Scrabble"] and list(first["seeds"]) == [7]  # batch 1, 8 letters
    assert len(tf.make_ndarray(records[1].predict_log.request.inputs["words"])) == 8


def test_warmup_words_fit_any_alphabet():
    assert export_lib.warmup_words(Alphabet("0123456789"))[0] == "01234567"
    assert export_lib.warmup_words(Alphabet.preset("english"), max_text_length=4)[0] == "Scra"
