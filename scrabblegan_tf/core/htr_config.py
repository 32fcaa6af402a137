"""Every default of the evaluation HTR, once (the CLI's flags and the experiment read them here).

The GAN's defaults live in ``scrabblegan_tf/core/config.py``; the HTR is a separate model with its own
training run, so its settings are a separate dataclass, saved as ``htr_config.json`` in its workdir.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from scrabblegan_tf.core.config import coerce

# Fields that fix the network's variables: a workdir refuses a resume with other values.
MODEL_FIELDS = ("width_mult", "lstm_layers", "width_reduction", "height", "alphabet")


@dataclass
class HTRConfig:
    # Data: a datasets/<name> TFDS builder (config "" = the builder's height-32 variant when it has one).
    dataset: str = "handwriting_fonts"
    builder_config: str = ""
    train_split: str = "train"
    val_split: str = "validation"
    test_split: str = "test"
    alphabet: str = ""  # alphabet preset; "" = the dataset's (scrabblegan_tf.core.config.DATASET_ALPHABETS)
    # Synthetic words (a folder written by scrabblegan_tf.synthesize), mixed in by ratio.
    synthetic_dir: str = ""
    synthetic_ratio: float = 0.5  # share of training examples drawn from synthetic_dir
    # Preprocessing (data.labelled_pipeline(per_char_width=False)): height 32, aspect kept, capped.
    height: int = 32
    max_width: int = 512  # wider images are squeezed to this width
    max_label_len: int = 64  # longer labels are dropped from training (counted in evaluation)
    # Light affine augmentation of training batches (off: augment=False).
    augment: bool = True
    aug_shear: float = 0.3  # horizontal shear, |tan| <= aug_shear (0.3: +-4.8 px at the top/bottom)
    aug_scale_min: float = 0.85
    aug_scale_max: float = 1.05
    aug_stretch: float = 0.1  # extra horizontal scale factor in [1 - s, 1 + s] (capped at aug_scale_max)
    aug_translate: float = 2.0  # pixels, both axes
    # Random width factor per training image, [aug_width_min, aug_width_max): the HTR must read
    # words at any character width (real fonts average 11 px per character at height 32, the
    # generator draws 16; without it the HTR read real font words stretched to 16 px per character
    # at CER 0.29 instead of 0.027).
    aug_width_min: float = 0.75
    aug_width_max: float = 1.6
    # Model (scrabblegan_tf.models.crnn.CRNN).
    width_mult: float = 1.0
    lstm_layers: int = 2
    width_reduction: int = 2
    dropout: float = 0.25
    # Optimisation.
    batch_size: int = 32
    steps: int = 5000
    # Adam, cosine decay to lr * lr_final_frac over `steps`. 3e-3 rather than the usual 1e-3: on DHSD
    # (width_mult 0.5, batch 16) validation CER after 1,000 steps was 0.65 with 3e-3 vs 0.73 with 1e-3.
    lr: float = 3e-3
    lr_final_frac: float = 0.05
    clipnorm: float = 5.0
    shuffle_buffer: int = 2048
    seed: int = 0
    # Progress, validation, checkpoints.
    log_every: int = 50
    eval_every: int = 500  # validation CER/WER/NED every N steps (0: only at the end)
    val_examples: int = 512  # validation examples per evaluation (0: the whole split)
    eval_batch_size: int = 64
    checkpoint_every: int = 500
    keep_checkpoints: int = 2

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HTRConfig":
        cfg = cls()
        names = {f.name: f for f in dataclasses.fields(cls)}
        for k, v in d.items():
            if k not in names:
                raise ValueError(f"Unknown HTR config key {k!r}")
            setattr(cfg, k, coerce(getattr(cfg, k), v, k))
        return cfg

    @classmethod
    def from_json(cls, text: str) -> "HTRConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> "HTRConfig":
        """A copy with ``changes`` (values coerced to the field types; unknown keys raise)."""
        return self.from_dict({**dataclasses.asdict(self), **changes})

    @classmethod
    def parse_overrides(cls, items) -> dict[str, Any]:
        """``["field=value", ...]`` -> {field: value of the field's type}; unknown fields and
        unparsable values raise ValueError."""
        out: dict[str, Any] = {}
        for item in items:
            key, sep, raw = item.partition("=")
            key, raw = key.strip(), raw.strip()
            if not sep:
                raise ValueError(f"HTR override {item!r} is not field=value")
            current = getattr(cls(), key, None)
            if current is None:
                raise ValueError(f"HTRConfig has no field {key!r}")
            if isinstance(current, bool):
                out[key] = raw.lower() in ("1", "true", "yes", "on")
            else:
                out[key] = type(current)(raw)
        cls().replace(**out)  # fail early on bad values
        return out

    def model_fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in MODEL_FIELDS}
