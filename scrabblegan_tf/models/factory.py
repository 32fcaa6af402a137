"""Config -> models. The only place that maps ``ModelConfig`` fields to model keyword arguments
(models themselves never see a config object)."""

from __future__ import annotations

from scrabblegan_tf.core.config import ModelConfig
from scrabblegan_tf.models.discriminator import Discriminator
from scrabblegan_tf.models.generator import Generator
from scrabblegan_tf.models.recognizer import Recognizer


def make_generator(cfg: ModelConfig, num_classes: int, *, gap_ids=()) -> Generator:
    return Generator(
        num_classes=num_classes,
        gap_ids=tuple(gap_ids),
        z_dim=cfg.z_dim,
        num_z_chunks=cfg.num_z_chunks,
        channels=cfg.scaled(cfg.g_channels),
        upsample=cfg.g_upsample,
        base_height=cfg.image_height // _prod(f[0] for f in cfg.g_upsample),
        base_width=cfg.char_width // _prod(f[1] for f in cfg.g_upsample),
        init_std=cfg.init_std,
        sn_eps=cfg.sn_eps,
        bn_momentum=cfg.bn_momentum,
        bn_eps=cfg.bn_eps,
    )


def generator_for(cfg: ModelConfig, alphabet) -> Generator:
    """G for ``alphabet``: its space (when it has one) is drawn as a gap (``Generator.gap_ids``)."""
    gaps = [alphabet.encode(" ")[0]] if " " in alphabet else []
    return make_generator(cfg, alphabet.num_classes, gap_ids=gaps)


def make_discriminator(cfg: ModelConfig) -> Discriminator:
    return Discriminator(channels=cfg.scaled(cfg.d_channels, cfg.d_width_mult), num_down=cfg.d_num_down,
                         init_std=cfg.init_std, sn_eps=cfg.sn_eps, pad_columns=cfg.d_pad_columns)


def make_recognizer(cfg: ModelConfig, num_classes: int) -> Recognizer:
    return Recognizer(num_classes=num_classes, channels=cfg.scaled(cfg.r_channels, cfg.r_width_mult),
                      bn_momentum=cfg.bn_momentum, bn_eps=cfg.bn_eps)


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out
