"""Typed configuration: every default of the project lives here, once.

``Config`` groups four dataclasses (model, data, optimisation, run). Presets:

- ``paper``: the sizes of the paper / official code (G 23.5M, D 36.4M, R 5.6M parameters with the
  80-symbol alphabet), batch 8.
- ``cpu``: the recipe that learns to write on a 2-core CPU (1/8-width G and D, half-width R with a
  warm-up, CTC-weighted G loss); what the shipped English model was trained with.
- ``small``: width multiplier 1/4, batch 8, 150 iterations: a quick look (about five minutes).
- ``smoke``: width multiplier 1/16, a few steps; for tests and quick checks.

Overrides are ``section.field=value`` strings (``model.width_mult=0.5``, ``optim.g_lr=1e-4``); a bare
``field=value`` is accepted when the field name is unique across sections.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

# G's compute precisions for generation, synthesis and export (the image is float32 either way).
GENERATION_PRECISIONS = ("float32", "bfloat16")

@dataclass
class ModelConfig:
    """Network sizes. Channel counts are multiplied by ``width_mult`` (at least 4 channels)."""

    width_mult: float = 1.0
    # Style noise: z_dim = num_z_chunks * z_chunk; chunk 0 drives the filter bank, chunks 1.. the
    # conditional norms of the up-blocks (one chunk per block).
    z_dim: int = 128
    num_z_chunks: int = 4
    # G: the filter bank maps z_chunk -> filter_channels x 4 x 4 per character (512*4*4 = 8192).
    g_channels: tuple[int, ...] = (512, 256, 128, 64)
    g_upsample: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (2, 1))
    char_width: int = 16  # output pixels per character (4 columns x 2 x 2 x 1)
    image_height: int = 32
    # D: output channels of the residual down-blocks; the first ``d_num_down`` blocks halve H and W.
    d_channels: tuple[int, ...] = (64, 512, 1024, 1024)
    d_num_down: int = 3
    # White columns D appends on the right before scoring; -1: the receptive field's reach (exact:
    # scores do not depend on the batch's width), 0: none.
    d_pad_columns: int = -1
    # R: 7 convs, 5 height pools (widths halved by the first two): 4 logit columns per character.
    r_channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512, 512)
    # Width multipliers of D and R alone; 0: width_mult. (R is trained on real images only and is
    # cheap next to D: a wider R reads sooner and gives G a more useful CTC gradient.)
    d_width_mult: float = 0.0
    r_width_mult: float = 0.0
    init_std: float = 0.02
    sn_eps: float = 1e-8
    # Batch norm of G and R as in the official code (PyTorch momentum 0.1 = Keras momentum 0.9,
    # eps 1e-5): G's moving statistics (used by samples, generate and the export) follow training
    # over ~10 forwards instead of ~100.
    bn_momentum: float = 0.9
    bn_eps: float = 1e-5

    def scaled(self, channels: tuple[int, ...], mult: float = 0.0) -> tuple[int, ...]:
        """``channels`` times ``mult`` (0: ``width_mult``), at least 4 each."""
        m = mult or self.width_mult
        return tuple(max(4, int(round(c * m))) for c in channels)

    @property
    def z_chunk(self) -> int:
        if self.z_dim % self.num_z_chunks:
            raise ValueError(f"z_dim={self.z_dim} is not divisible by num_z_chunks={self.num_z_chunks}")
        return self.z_dim // self.num_z_chunks


@dataclass
class DataConfig:
    dataset: str = "handwriting_fonts"
    builder_config: str = ""  # empty: the builder's default (``h32`` is preferred when it exists)
    train_split: str = "train"
    eval_split: str = "test"
    alphabet: str = ""  # empty: the dataset's preset (english / french / german)
    # Fake words G draws: "auto" (a system word list for the English and French alphabets, see
    # DEFAULT_WORD_LISTS, letters-only words as in the official code; the training labels otherwise
    # or when the list is missing), "labels" (the training labels; also ""), or a word-list file.
    lexicon: str = "auto"
    lexicon_max_len: int = 19  # the official code keeps words shorter than 20
    lexicon_capitalize: bool = True
    max_label_len: int = 20  # longer labels are dropped from labelled GAN training
    batch_size: int = 8
    shuffle_buffer: int = 2048
    bucket_boundaries: tuple[int, ...] = (4, 6, 8, 10, 13)  # label lengths, for width bucketing
    # Semi-supervised: real images without labels for D. "<name>[/<config>][:<split>]" of a
    # datasets/ builder, or "folder:/path/to/images". Empty: none.
    unlabeled_dataset: str = ""
    unlabeled_manual_dir: str = ""
    unlabeled_max_width: int = 512  # wider unlabeled images are squeezed to this width
    disjoint: bool = False  # D only on unlabeled images, R only on labelled ones


@dataclass
class OptimConfig:
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    r_lr: float = 2e-4
    beta_1: float = 0.0
    beta_2: float = 0.999
    adam_eps: float = 1e-8
    g_every: int = 4  # one G update every g_every D/R batches
    # Gradient balancing alpha: G follows grad_adv + a * grad_ctc with a = alpha * std(grad_adv) /
    # std(grad_ctc), i.e. a CTC part alpha times the spread of the adversarial part. The paper's
    # equation reads alpha = 1, but the official code's G step accumulates three backward passes,
    # (L_adv + alpha L_ctc) + 2 (L_adv + a L_ctc), whose CTC part is unbalanced: effectively about
    # 170 down to 8 times the adversarial spread over a run (see losses.balance_coefficient). Measured here
    # (cpu preset, fonts): alpha 1 leaves G's CTC flat (R reads held-out words at CER 0.90 after
    # 2,000 G updates); alpha 30 reaches CER 0.09 after 2,000.
    gb_alpha: float = 30.0
    gb_epsilon: float = 1e-8
    lr_decay: bool = False  # linear decay to 0 over the second half of training (all three nets)
    # Iterations at the start of training that update R only (on real labelled batches), so that
    # G's CTC gradient comes from a recognizer that already reads; they count in run.steps.
    r_warmup_steps: int = 0


@dataclass
class RunConfig:
    steps: int = 100_000  # training iterations: g_every D/R batches and one G update each
    seed: int = 0
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    strategy: str = "auto"  # auto | mirrored | multi_worker (cluster from TF_CONFIG) | default
    cpu_devices: int = 0  # >1: split the CPU into that many logical devices
    # Independent ops run at a time (TensorFlow's inter-op threads); 0: TensorFlow's default (one
    # per core). 1 lowers the peak memory (their temporaries never coexist) at some speed.
    inter_op_threads: int = 0
    jit_compile: bool = False
    num_samples: int = 8  # sample grid rows
    # Legibility signal (scrabblegan_tf/training/monitor.py): every eval_every iterations, eval_words
    # held-out words (never fake-word targets) with fixed styles, read by R and, with --eval_htr, by
    # an HTR trained on real images. 0: off.
    eval_every: int = 500
    eval_words: int = 64
    # Stop the run after this many consecutive iterations with a skipped (non-finite) update;
    # 0: never stop.
    max_bad_steps: int = 20
    # "" (float32) | "mixed_float16" (dynamic loss scaling) | "mixed_bfloat16" | "auto"
    # (mixed_float16 on GPU, mixed_bfloat16 on CPUs with AMX or AVX512-BF16, float32 elsewhere).
    mixed_precision: str = "auto"
    # Networks kept in float32 under a mixed policy: any of "G", "D", "R", comma-separated ("R":
    # the recognizer whose CTC gradient drives legibility computes in float32). "": none.
    float32_networks: str = ""


@dataclass
class ExportConfig:
    """Defaults of the SavedModel export (``export/``); not part of a training run's config."""

    model_name: str = "scrabblegan"
    # Longest text one signature call accepts, in symbols (after NFC): bounds the memory of a
    # request (the paper G's activations grow by about 1.2 MB per symbol and word).
    max_text_length: int = 64
    # Most words (or lines) one call accepts: bounds a request's memory too (10,000 words of 64
    # symbols would need tens of GB of activations).
    max_batch_size: int = 256


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        cfg = cls()
        for section, values in d.items():
            if section not in _field_names(cfg):
                raise ValueError(f"Unknown config section {section!r}")
            sub = getattr(cfg, section)
            for k, v in values.items():
                if k not in _field_names(sub):
                    raise ValueError(f"Unknown config key {section}.{k}")
                setattr(sub, k, coerce(getattr(sub, k), v, f"{section}.{k}"))
        return cfg

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls.from_dict(json.loads(text))

    # -- overrides ------------------------------------------------------------------------
    def override(self, assignments: list[str] | tuple[str, ...]) -> "Config":
        """Apply ``key=value`` strings in place; returns self. Unknown keys raise ValueError."""
        for item in assignments:
            if "=" not in item:
                raise ValueError(f"Override {item!r} is not of the form key=value")
            key, raw = item.split("=", 1)
            section, name = self._resolve(key.strip())
            sub = getattr(self, section)
            setattr(sub, name, _parse(getattr(sub, name), raw.strip(), key))
        return self

    def _resolve(self, key: str) -> tuple[str, str]:
        sections = [f.name for f in dataclasses.fields(self)]
        if "." in key:
            section, name = key.split(".", 1)
            if section not in sections or name not in _field_names(getattr(self, section)):
                raise ValueError(f"Unknown config key {key!r}")
            return section, name
        hits = [s for s in sections if key in _field_names(getattr(self, s))]
        if len(hits) != 1:
            raise ValueError(
                f"Unknown config key {key!r}" if not hits else f"Ambiguous key {key!r}: {hits}"
            )
        return hits[0], key


def _field_names(obj) -> set[str]:
    return {f.name for f in dataclasses.fields(obj)}


def _parse(current: Any, raw: str, key: str) -> Any:
    """Parse ``raw`` to the type of ``current`` (bool/int/float/str/tuple via JSON)."""
    if isinstance(current, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}: expected a boolean, got {raw!r}")
    if isinstance(current, (int, float)) or isinstance(current, tuple):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"{key}: cannot parse {raw!r}") from None
        return coerce(current, value, key)
    return raw


def coerce(current: Any, value: Any, key: str) -> Any:
    """``value`` converted to the type of ``current``; a ValueError naming ``key`` otherwise."""
    if isinstance(current, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected a boolean, got {value!r}")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            raise ValueError(f"{key}: expected an integer, got {value!r}")
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if isinstance(current, str) and not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {value!r}")
    return value


def paper() -> Config:
    return Config()


def small() -> Config:
    """Quarter-width networks, batch 8, 150 iterations: the ~5-minute CPU demo (blurry but
    word-shaped samples); raise --steps for better ones."""
    cfg = Config()
    cfg.model.width_mult = 0.25
    cfg.data.batch_size = 8
    cfg.run.steps = 150
    cfg.run.log_every = 10
    cfg.run.sample_every = 50
    cfg.run.checkpoint_every = 50
    return cfg


def cpu() -> Config:
    """The CPU recipe (issue "The generator writes legibly"): 1/8-width G and D at Adam 5e-4, a
    half-width R trained at 1e-3 and warmed up alone for 1,000 iterations, one G update per D/R
    mini-batch, 12 pixels per character,
    bfloat16 where the CPU has it. See docs/results.md for the measurements behind each choice."""
    cfg = Config()
    cfg.model.width_mult = 0.125
    cfg.model.r_width_mult = 0.5
    # 12 pixels per character (filters 4 x 3): the embedded fonts average 11 per character at
    # height 32; words stretched to 16 read worse for recognizers of natural writing.
    cfg.model.char_width = 12
    cfg.data.batch_size = 8
    cfg.optim.g_every = 1
    cfg.optim.g_lr = 5e-4
    cfg.optim.d_lr = 5e-4
    cfg.optim.r_lr = 1e-3
    cfg.optim.r_warmup_steps = 1000
    cfg.run.steps = 18_000
    cfg.run.log_every = 100
    cfg.run.sample_every = 1000
    cfg.run.checkpoint_every = 1000
    cfg.run.eval_every = 500
    return cfg


def smoke() -> Config:
    cfg = Config()
    cfg.model.width_mult = 1 / 16
    cfg.model.z_dim = 32
    cfg.data.batch_size = 4
    cfg.data.shuffle_buffer = 64
    cfg.run.steps = 20
    cfg.run.log_every = 5
    cfg.run.sample_every = 10
    cfg.run.checkpoint_every = 10
    cfg.run.num_samples = 4
    return cfg


PRESETS = {"paper": paper, "cpu": cpu, "small": small, "smoke": smoke}


def get_config(name: str = "paper", overrides: list[str] | tuple[str, ...] = ()) -> Config:
    if name not in PRESETS:
        raise ValueError(f"Unknown config preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]().override(list(overrides))


# Fake-word lists of DataConfig.lexicon="auto", by alphabet preset (Debian packages wamerican and
# wfrench, installed by `make install`). Alphabets without one (german: DHSD's street names are not
# dictionary words) use the training labels.
DEFAULT_WORD_LISTS = {
    "english": "/usr/share/dict/american-english",
    "french": "/usr/share/dict/french",
}

# The alphabet preset each dataset needs (DataConfig.alphabet empty -> this).
DATASET_ALPHABETS = {
    "handwriting_fonts": "english",
    "iam": "english",
    "cvl": "english",
    "rimes": "french",
    "dhsd": "german",
}
