"""The generator as a TF Serving SavedModel: signatures, versions, warmup requests, models.config.

``export_version`` writes ``<export_dir>/<version>/`` (``saved_model.pb``, ``variables/``,
``assets.extra/tf_serving_warmup_requests`` and ``assets.extra/scrabblegan_export.json``) into a
temporary folder beside the version folder, then renames it: TF Serving, which polls
``<export_dir>`` for integer-named folders, never sees a half-written version, and an existing version
is never overwritten (``VersionExistsError``). ``update_models_config`` writes the
``--model_config_file`` of ``tensorflow_model_server``.

Signatures (``keras.export.ExportArchive``; text handling inside the graph, so clients send plain
UTF-8 strings):

- ``serving_default(words: string [B], seeds: int64 [B])`` -> ``png_bytes`` string [B] (grayscale
  PNG, 32 x char_width*len(word), cropped to its own word), ``widths`` int32 [B], ``images`` float32
  [B, 32, max_width, 1] in [0, 1] (white = 1 beyond each width). Seed s gives the style
  ``generation.style_vectors([s], z_dim)``, the same as ``python -m scrabblegan_tf.generate --seed=s``.
- ``generate_line(text: string [], seed: int64 [])`` -> ``png_bytes`` [], ``width`` [],
  ``image`` [32, W, 1]: one text (spaces allowed) in one style.
- ``generate_with_style(words: string [B], z: float32 [B, z_dim])`` -> as ``serving_default``, with
  explicit style vectors (interpolation, chosen styles).

The generator runs in inference mode: its norms use their moving statistics and every block zeroes
the padded columns, so a word's image does not depend on the other words of its request.

Text: invalid UTF-8 becomes U+FFFD; then ``text_encoder.TextEncoder``, the encoder of the training
pipelines (NFC for the characters that matter: ``e`` + U+0301 -> ``é``, U+212A KELVIN SIGN -> ``K``).
Bad input fails with ``InvalidArgumentError`` (TF Serving: ``INVALID_ARGUMENT``) naming the problem:
mismatched batch sizes, an empty batch, more than ``max_batch_size`` words, an empty text, a
text longer than ``max_text_length`` symbols, characters outside the alphabet (listed, with the
words that hold them).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

from google.protobuf import text_format
import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from scrabblegan_tf.core import run_folder
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.config import ExportConfig
from scrabblegan_tf.core.pixels import to_uint8
from scrabblegan_tf.core.text_encoder import TextEncoder
from scrabblegan_tf.inference.generation import load_generator, resolve_model, style_vectors

DEFAULT_MODEL_NAME = ExportConfig.model_name
DEFAULT_MAX_TEXT_LENGTH = ExportConfig.max_text_length  # see config.ExportConfig
DEFAULT_MAX_BATCH_SIZE = ExportConfig.max_batch_size
SIGNATURES = ("serving_default", "generate_line", "generate_with_style")
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "scrabblegan_export.json"
MODELS_CONFIG = "models.config"
# Words for the warmup requests (those the alphabet can write are used).
WARMUP_WORDS = ("Scrabble", "hello", "handwriting", "the", "quick", "brown", "fox", "a")
_MAX_LISTED = 10  # offending characters / words named in one error message


class VersionExistsError(FileExistsError):
    """The version folder exists already: versions are never overwritten."""


# -- signatures --------------------------------------------------------------------------------------
class ServingFunctions:
    """The three signature functions around a built generator and its alphabet."""

    def __init__(self, generator, alphabet: Alphabet, *, max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
                 max_batch_size: int = DEFAULT_MAX_BATCH_SIZE):

        if max_text_length < 1 or max_batch_size < 1:
            raise ValueError(f"max_text_length and max_batch_size must be >= 1, got "
                             f"{max_text_length} and {max_batch_size}")
        if not generator.built:
            raise ValueError("The generator must be built (called once) before export.")
        self.generator = generator
        self.alphabet = alphabet
        self.max_text_length = int(max_text_length)
        self.max_batch_size = int(max_batch_size)
        self.z_dim = int(generator.z_dim)
        self.char_width = int(generator.char_width)
        self.image_height = int(generator.image_height)
        self.encoder = TextEncoder(alphabet)

    # -- text -> ids, with the checks ------------------------------------------------------------
    def encode(self, words, other=None, other_name=""):
        """ids int32 [B, n] (0-padded), lengths int32 [B] of ``words`` string [B], after the checks.

        ``other``: a tensor whose first dimension must equal B (seeds or z), named ``other_name``.
        """
        words = self.encoder.normalize(tf.strings.unicode_transcode(
            words, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD))
        codepoints = tf.strings.unicode_decode(words, "UTF-8")
        lengths = tf.cast(codepoints.row_lengths(), tf.int32)
        ids = codepoints.with_flat_values(self.encoder.ids(codepoints.flat_values))
        batch = tf.shape(words)[0]

        checks = []

        def check(condition, message):
            """Asserts ``condition()`` with ``message()``; both are built after the earlier checks
            have passed (control dependencies), so that a message never evaluates on input an
            earlier check rejects (e.g. an argmax over an empty batch)."""
            with tf.control_dependencies(checks):
                checks.append(tf.debugging.Assert(condition(), [message()], name="check"))

        if other is not None:
            n_other = tf.shape(other)[0]
            check(lambda: tf.equal(batch, n_other), lambda: tf.strings.format(
                "words and " + other_name + " must have the same batch size, got {} words and {} "
                + other_name, (batch, n_other)))
        check(lambda: batch > 0, lambda: tf.constant("empty batch: no words to render"))
        check(lambda: batch <= self.max_batch_size, lambda: tf.strings.format(
            "batch too large: {} words, the maximum is " + str(self.max_batch_size)
            + " per request (split it)", batch))
        empty = tf.equal(lengths, 0)
        check(lambda: tf.logical_not(tf.reduce_any(empty)), lambda: tf.strings.format(
            "empty text at batch index {}: every text needs at least one character",
            tf.cast(tf.where(empty)[:_MAX_LISTED, 0], tf.int32), summarize=_MAX_LISTED))
        too_long = lengths > self.max_text_length

        def too_long_message():
            first = tf.argmax(tf.cast(too_long, tf.int32), output_type=tf.int32)
            return tf.strings.join([
                "text too long at batch index ", tf.strings.as_string(first), ": ",
                tf.strings.as_string(tf.gather(lengths, first)), " symbols, the maximum is ",
                str(self.max_text_length), " (text starts with: ",
                tf.strings.substr(tf.gather(words, first), 0, 24, unit="UTF8_CHAR"), "...)"])

        check(lambda: tf.logical_not(tf.reduce_any(too_long)), too_long_message)
        bad = ids.flat_values < 0

        def bad_chars_message():
            bad_codepoints, _ = tf.unique(tf.boolean_mask(codepoints.flat_values, bad))
            bad_chars = tf.strings.unicode_encode(bad_codepoints[:, None], "UTF-8")
            bad_words = tf.boolean_mask(words, tf.reduce_any(ids < 0, axis=1))
            return tf.strings.join([
                "characters outside the " + self.alphabet.name + " alphabet: ",
                tf.strings.reduce_join(bad_chars[:_MAX_LISTED], separator=", "),
                " (in: ",
                tf.strings.reduce_join(
                    tf.strings.substr(bad_words[:_MAX_LISTED], 0, 24, unit="UTF8_CHAR"),
                    separator=", "),
                ")"])

        check(lambda: tf.logical_not(tf.reduce_any(bad)), bad_chars_message)
        with tf.control_dependencies(checks):
            dense = tf.identity(ids.to_tensor(default_value=0))
            lengths = tf.identity(lengths)
        return tf.maximum(dense, 0), lengths

    # -- ids + z -> outputs ------------------------------------------------------------------------
    def render(self, ids, lengths, z):
        """PNG bytes, widths and [0, 1] images of the words; one style vector per word."""
        x = self.generator((ids, lengths, z), training=False)  # [B, 32, 16 n, 1] in [-1, 1], white 1
        widths = lengths * self.char_width
        pixels = to_uint8(x)  # the conversion of generate and the samples (scrabblegan_tf.core.pixels)
        png = tf.map_fn(lambda a: tf.image.encode_png(a[0][:, : a[1]]), (pixels, widths),
                        fn_output_signature=tf.TensorSpec([], tf.string))
        images = (x + 1.0) * 0.5
        return {"png_bytes": png, "widths": widths, "images": images}

    def styles(self, seeds):
        return style_vectors(seeds, self.z_dim)

    # -- the signatures ----------------------------------------------------------------------------
    def serving_default(self, words, seeds):
        ids, lengths = self.encode(words, seeds, "seeds")
        return self.render(ids, lengths, self.styles(seeds))

    def generate_line(self, text, seed):
        ids, lengths = self.encode(tf.reshape(text, [1]))
        out = self.render(ids, lengths, self.styles(tf.reshape(seed, [1])))
        return {"png_bytes": out["png_bytes"][0], "width": out["widths"][0], "image": out["images"][0]}

    def generate_with_style(self, words, z):
        ids, lengths = self.encode(words, z, "z")
        return self.render(ids, lengths, z)

    def input_signatures(self):
        return {
            "serving_default": [tf.TensorSpec([None], tf.string, name="words"),
                                tf.TensorSpec([None], tf.int64, name="seeds")],
            "generate_line": [tf.TensorSpec([], tf.string, name="text"),
                              tf.TensorSpec([], tf.int64, name="seed")],
            "generate_with_style": [tf.TensorSpec([None], tf.string, name="words"),
                                    tf.TensorSpec([None, self.z_dim], tf.float32, name="z")],
        }


def build_archive(generator, alphabet: Alphabet, *, max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
                  max_batch_size: int = DEFAULT_MAX_BATCH_SIZE):
    """(keras.export.ExportArchive with the three signatures, ServingFunctions)."""
    fns = ServingFunctions(generator, alphabet, max_text_length=max_text_length,
                           max_batch_size=max_batch_size)
    archive = keras.export.ExportArchive()
    archive.track(generator)
    for name, signature in fns.input_signatures().items():
        archive.add_endpoint(name=name, fn=getattr(fns, name), input_signature=signature)
    return archive, fns


# -- warmup requests ---------------------------------------------------------------------------------
def warmup_words(alphabet: Alphabet, max_text_length: int = DEFAULT_MAX_TEXT_LENGTH) -> list[str]:
    """Realistic words for the warmup requests that ``alphabet`` can write (made of its own
    symbols when none of ``WARMUP_WORDS`` fits)."""
    words = [w[:max_text_length] for w in WARMUP_WORDS if alphabet.can_encode(w)]
    if not words:
        letters = [s for s in alphabet.symbols if not s.isspace()] or list(alphabet.symbols)
        words = ["".join(letters[(i + k) % len(letters)] for k in range(n))[:max_text_length]
                 for i, n in enumerate((8, 5, 11, 3))]
    return words


def warmup_requests(alphabet: Alphabet, *, z_dim: int, model_name: str = DEFAULT_MODEL_NAME,
                    max_text_length: int = DEFAULT_MAX_TEXT_LENGTH):
    """PredictionLog protos: serving_default at batch 1 (one 8-letter word) and batch 8 (mixed
    lengths), generate_line (two words and a space when the alphabet has one) and
    generate_with_style (batch 2)."""
    words = warmup_words(alphabet, max_text_length)
    batch8 = [words[i % len(words)] for i in range(8)]
    line = " ".join(words[:2]) if " " in alphabet and len(words) > 1 else words[0]
    line = line[:max_text_length]
    z = np.random.default_rng(0).standard_normal((2, z_dim)).astype(np.float32)

    def log(signature, **inputs):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        return prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request))

    def strings(values):
        return np.array([v.encode("utf-8") for v in values], dtype=object)

    return [
        log("serving_default", words=strings(words[:1]), seeds=np.array([7], np.int64)),
        log("serving_default", words=strings(batch8), seeds=np.arange(8, dtype=np.int64)),
        log("generate_line", text=np.array(line.encode("utf-8"), dtype=object),
            seed=np.array(7, np.int64)),
        log("generate_with_style", words=strings(words[:1] * 2), z=z),
    ]


def write_warmup(path: str, logs) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for record in logs:
            writer.write(record.SerializeToString())
    return path


def read_warmup(path: str):
    """The PredictionLog protos of a warmup file."""
    out = []
    for raw in tf.data.TFRecordDataset(path):
        record = prediction_log_pb2.PredictionLog()
        record.ParseFromString(raw.numpy())
        out.append(record)
    return out


# -- writing a version ----------------------------------------------------------------------------
def write_saved_model(generator, alphabet: Alphabet, path: str, *,
                      max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
                      max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                      model_name: str = DEFAULT_MODEL_NAME, metadata: dict | None = None) -> str:
    """SavedModel with the three signatures, warmup requests and metadata, written into ``path``
    (not atomic: ``export_version`` writes here a temporary folder)."""
    archive, fns = build_archive(generator, alphabet, max_text_length=max_text_length,
                                 max_batch_size=max_batch_size)
    archive.write_out(path, verbose=False)
    extra = os.path.join(path, "assets.extra")
    write_warmup(os.path.join(extra, WARMUP_FILE),
                 warmup_requests(alphabet, z_dim=fns.z_dim, model_name=model_name,
                                 max_text_length=max_text_length))
    info = {
        "model_name": model_name,
        "alphabet": json.loads(alphabet.to_json()),
        "z_dim": fns.z_dim,
        "char_width": fns.char_width,
        "image_height": fns.image_height,
        "max_text_length": fns.max_text_length,
        "max_batch_size": fns.max_batch_size,
        "signatures": list(SIGNATURES),
        "style": "scrabblegan_tf.generation.style_vectors(seeds, z_dim)",
    }
    info.update(metadata or {})
    with open(os.path.join(extra, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, ensure_ascii=False, sort_keys=True)
    return path


def existing_versions(export_dir: str) -> list[int]:
    """Integer-named version folders of ``export_dir`` (what TF Serving would load), sorted."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(n) for n in os.listdir(export_dir)
                  if n.isdigit() and os.path.isdir(os.path.join(export_dir, n)))


def default_version() -> int:
    """The current Unix time in seconds."""
    return int(time.time())


def export_version(generator, alphabet: Alphabet, export_dir: str, *, version: int | None = None,
                   max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
                   max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                   model_name: str = DEFAULT_MODEL_NAME, metadata: dict | None = None) -> str:
    """Writes ``<export_dir>/<version>/`` atomically (temporary folder beside it, then a rename);
    returns its absolute path.

    Raises:
      VersionExistsError: the version folder exists (before or after writing).
      ValueError: a negative version.
    """
    export_dir = os.path.abspath(export_dir)
    version = default_version() if version is None else int(version)
    if version < 0:
        raise ValueError(f"version must be a non-negative integer, got {version}")
    final = os.path.join(export_dir, str(version))

    def refuse():
        raise VersionExistsError(
            f"Version {version} exists already in {export_dir} ({final}); versions are never "
            f"overwritten: pass another --version (existing: {existing_versions(export_dir)})")

    if os.path.lexists(final):
        refuse()
    os.makedirs(export_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide it from a server run as another user
        write_saved_model(generator, alphabet, tmp, max_text_length=max_text_length,
                          max_batch_size=max_batch_size,
                          model_name=model_name, metadata={"version": version, **(metadata or {})})
        if os.path.lexists(final):
            refuse()
        try:
            os.rename(tmp, final)  # atomic; fails when `final` appeared meanwhile with content
        except OSError as e:
            raise VersionExistsError(f"Version {version} appeared in {export_dir} while exporting: {e}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# -- models.config -----------------------------------------------------------------------------------
def update_models_config(export_dir: str, model_name: str = DEFAULT_MODEL_NAME,
                         path: str | None = None) -> str:
    """Writes or updates ``<export_dir>/models.config`` (``tensorflow_model_server
    --model_config_file``): the entry ``model_name`` gets ``base_path`` = absolute ``export_dir``
    and platform ``tensorflow``; other entries and the entry's other fields (version policy,
    labels) are kept. Written atomically."""
    export_dir = os.path.abspath(export_dir)
    path = path or os.path.join(export_dir, MODELS_CONFIG)
    config = model_server_config_pb2.ModelServerConfig()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), config)
        if config.HasField("custom_model_config"):
            raise ValueError(f"{path} holds a custom_model_config; cannot add {model_name!r} to it")
    entries = [c for c in config.model_config_list.config if c.name == model_name]
    entry = entries[0] if entries else config.model_config_list.config.add(name=model_name)
    entry.base_path = export_dir
    entry.model_platform = "tensorflow"
    return run_folder.write_text(path, text_format.MessageToString(config))


def export_from_workdir(workdir: str | None, export_dir: str, *, checkpoint: str | None = None,
                        version: int | None = None, model_name: str = DEFAULT_MODEL_NAME,
                        max_text_length: int = DEFAULT_MAX_TEXT_LENGTH,
                        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                        precision: str = "float32") -> tuple[str, str]:
    """Restores G from a training workdir (latest checkpoint or ``checkpoint``) or a model folder
    (None: the shipped default model), writes a new version and updates models.config. Returns
    (version folder, models.config path). ``precision="bfloat16"``: G's convolutions run in
    bfloat16 in the SavedModel (the output images stay float32 / PNG)."""
    if version is not None and os.path.lexists(os.path.join(export_dir, str(int(version)))):
        export_version(None, None, export_dir, version=version)  # refuses before G is loaded
    workdir = resolve_model(workdir)
    generator, cfg, alphabet, ckpt = load_generator(workdir, checkpoint, precision=precision)
    path = export_version(generator, alphabet, export_dir, version=version,
                          max_text_length=max_text_length, max_batch_size=max_batch_size,
                          model_name=model_name, metadata={"workdir": os.path.abspath(workdir),
                                    "checkpoint": os.path.abspath(ckpt),
                                    "precision": precision, "config": cfg.to_dict()})
    return path, update_models_config(export_dir, model_name)
