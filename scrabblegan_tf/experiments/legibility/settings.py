"""The settings and thresholds of the legibility experiment (imports without TensorFlow: the CLI's
flags use them before the quiet TensorFlow start)."""

from __future__ import annotations

import dataclasses

THRESHOLD = 0.20  # absolute CER bound of "legible" (the fonts criterion; --max_cer)
REAL_FACTOR = 2.0  # and at most this times the HTR's CER on real images
# An evaluation HTR that misreads more than this share of the characters of real images cannot
# tell legible words from scribbles: with it, "within 2x of real" holds for almost anything, and
# the report says so instead of calling the words legible.
WEAK_READER_CER = 0.5
R_MILESTONE = 0.20  # the report also gives the first iteration R reads at or below this CER


@dataclasses.dataclass
class Settings:
    workdir: str
    results_dir: str
    dataset: str = "handwriting_fonts"
    manual_dir: str | None = None
    data_dir: str | None = None
    gan_config: str = "cpu"
    gan_overrides: tuple[str, ...] = ()
    gan_steps: int = 0  # 0: the preset's run.steps
    htr_workdir: str = ""  # "": <workdir>/htr, trained here
    htr_steps: int = 4000
    htr_overrides: tuple[str, ...] = ()
    real_examples: int = 500
    # Absolute CER cap of "legible" besides REAL_FACTOR x the real images' CER. The fonts criterion
    # is 0.20; for real handwriting, read by an HTR that misreads unseen writers, only the relative
    # bound applies (max_cer 1.0).
    max_cer: float = THRESHOLD
    ordinary_words: int = 500
    model_out: str = ""
    model_out_if_legible: bool = False  # write model_out only when the final point is legible
    title: str = ""
    command: str = ""  # the command line, for the model card
