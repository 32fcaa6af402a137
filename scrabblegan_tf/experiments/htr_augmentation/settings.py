"""The settings of the HTR augmentation experiment (imports without TensorFlow: the CLI's flags use
them before the quiet TensorFlow start)."""

from __future__ import annotations

from dataclasses import dataclass, field


CONDITIONS = ("real", "real+synthetic", "synthetic")


class Interrupted(RuntimeError):
    """A step was stopped by a signal after saving its state (the CLI exits with 128 + SIGTERM)."""


@dataclass
class ExperimentSettings:
    dataset: str = "dhsd"
    builder_config: str = ""  # "" = the builder's height-32 variant
    workdir: str = "runs/htr_augmentation"
    results_dir: str = ""  # "" = workdir
    data_dir: str | None = None
    manual_dir: str | None = None
    # GAN
    gan_workdir: str = ""  # "" = <workdir>/gan
    gan_config: str = "small"
    gan_steps: int = 0  # > 0: train/resume the GAN to this many iterations; 0: use gan_workdir as is
    gan_overrides: tuple[str, ...] = ()
    # Synthetic data
    num_synthetic: int = 100_000
    lexicon: str = ""
    synthetic_ratio: float | None = None  # None = auto: N / (N + real train size)
    synth_seed: int = 0
    # HTR
    seeds: tuple[int, ...] = (0, 1, 2)
    htr_steps: int = 5000
    htr_overrides: dict = field(default_factory=dict)  # HTRConfig fields
    synthetic_only: bool = True  # + one HTR on the synthetic words alone (HTG_HTR), first seed
    # Quality measures of the generator
    quality: bool = True
    num_samples: int = 8
