"""Mixed precision (``run.mixed_precision``): G, D and R compute in bfloat16 / float16; variables,
G's batch-norm statistics and output image, the losses, the image gradients and the
gradient-balancing coefficient stay float32; the first training step
matches float32 within rounding tolerances and a few steps stay finite; float16 uses dynamic loss
scaling, whose overflowing first steps are skipped and lower the scale.

What "close" means here. The networks start from the same weights (checked) and see the same data
and the same fake words and z, so the differences are rounding only. bfloat16 keeps 8 significant
bits (unit roundoff u = 2^-8 = 0.4%), float16 11 (u = 2^-11); activations are rounded at each layer
and accumulated in float32 (oneDNN/Eigen). A loss that is a mean or sum of many such values is then
off by about u relative, a few u at most: the hinge and CTC losses must agree within 1% (~2.5 u
for bfloat16). D's mean scores are small differences of patch scores of magnitude <= 1: they are
compared in absolute terms, within 0.01 (1% of the hinge margin). The balancing coefficient is a
ratio of the standard deviations of two image gradients, each backpropagated through ~10 rounded
layers (errors add up in quadrature): within 10%. Measured on the tiny networks: < 0.1% for the
losses, < 3e-4 for the scores, ~2% for the coefficient.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.training import gan_training as train_lib
from scrabblegan_tf.training import distribution
from scrabblegan_tf.core.alphabet import Alphabet
from tiny_models import real_batch
from train_helpers import in_memory_dataset, tiny_config

ALPHABET = Alphabet.preset("english")
LOSSES = ("d_loss", "r_ctc", "g_adv", "g_ctc")


def _gan(policy):
    cfg = tiny_config(3)
    cfg.optim.g_every = 1
    ids, lengths = ALPHABET.encode_batch(["ab", "cab", "dog", "bad", "hello"])
    return train_lib.make_gan(cfg, ALPHABET, ids, lengths, policy=policy)


def _data():
    images, widths, labels, label_lengths = real_batch(["hi", "yes", "on", "cat"], seed=0)
    return {"image": tf.constant(images), "image_width": tf.constant(widths),
            "label": tf.constant(labels), "label_length": tf.constant(label_lengths)}


def _weights(gan):
    return [v.numpy() for m in (gan.generator, gan.discriminator, gan.recognizer) for v in m.weights]


def _first_step_losses(gan):
    """The losses of the first D, R and G steps on fixed inputs (returned even when the update is
    skipped, unlike the metrics), each from the initial weights: the networks are put back after
    each step, so that a skipped update (float16's first R update overflows, see below) does not
    make the next step start from other weights than in float32."""
    data = _data()
    ids, lengths = ALPHABET.encode_batch(["cab", "ab", "dog", "bad"])
    z = tf.random.stateless_normal((4, gan.z_dim), seed=(3, 4))
    variables = [v for m in (gan.generator, gan.discriminator, gan.recognizer) for v in m.weights]
    initial = [v.numpy() for v in variables]

    def reset():
        for v, x in zip(variables, initial):
            v.assign(x)

    d_loss, d_real, d_fake, _ = gan._d_step(data["image"], data["image_width"], ids, lengths, z)
    reset()
    r_loss, _, _ = gan._r_step(data["image"], data["image_width"], data["label"],
                               data["label_length"])
    reset()
    adv, ctc, a, _, _ = gan._g_step(ids, lengths, z)
    reset()
    out = dict(d_loss=d_loss, d_real=d_real, d_fake=d_fake, r_ctc=r_loss, g_adv=adv, g_ctc=ctc,
               gb_scale=a)
    assert all(v.dtype == tf.float32 for v in out.values())  # losses, std ratio: float32
    return {k: float(v) for k, v in out.items()}


def test_networks_kept_in_float32_under_a_mixed_policy():
    cfg = tiny_config(3)
    cfg.run.float32_networks = "r"
    ids, lengths = ALPHABET.encode_batch(["ab", "cab"])
    gan = train_lib.make_gan(cfg, ALPHABET, ids, lengths, policy="mixed_bfloat16")
    assert gan.recognizer.compute_dtype == "float32"
    assert all(layer.compute_dtype == "float32" for layer in gan.recognizer._flatten_layers())
    for net in (gan.generator, gan.discriminator):  # sublayers built later included
        assert all(layer.compute_dtype == "bfloat16" for layer in net._flatten_layers())
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert distribution.float32_networks(" D, R ") == {"D", "R"}
    assert distribution.float32_networks("") == frozenset()
    with pytest.raises(ValueError, match="float32_networks"):
        distribution.float32_networks("R,X")


@pytest.fixture(scope="module")
def float32_run():
    gan = _gan("")
    return _weights(gan), _first_step_losses(gan)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_first_step_matches_float32_and_training_stays_finite(policy, float32_run):
    weights32, want = float32_run
    assert keras.mixed_precision.global_policy().name == "float32"
    gan = _gan(policy)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    compute = policy.split("_")[1]
    assert gan.discriminator.compute_dtype == compute and gan.recognizer.compute_dtype == compute
    assert gan.generator.compute_dtype == compute
    assert all(v.dtype == "float32" for m in (gan.generator, gan.discriminator)
               for v in m.weights)  # float32 variables
    for a, b in zip(weights32, _weights(gan)):  # same initial weights
        np.testing.assert_array_equal(a, b)
    got = _first_step_losses(gan)
    for k in ("d_loss", "r_ctc", "g_ctc"):
        assert got[k] == pytest.approx(want[k], rel=0.01), k
    for k in ("d_real", "d_fake", "g_adv"):
        assert got[k] == pytest.approx(want[k], abs=0.01), k
    assert got["gb_scale"] == pytest.approx(want["gb_scale"], rel=0.1)
    # A few full iterations: every metric finite.
    for _ in range(3):
        out = {k: float(v) for k, v in gan.train_step(_data()).items()}
        assert all(np.isfinite(v) for v in out.values()), out
    assert all(np.isfinite(w).all() for w in _weights(gan))


def test_float16_loss_scaling_skips_overflows_and_lowers_the_scale():
    """R's first update overflows at Keras's initial loss scale 2^15 (CTC ~40 x 32768 exceeds
    float16's 65504 in the backward pass): skipped, the scale halves, the next updates apply."""
    gan = _gan("mixed_float16")
    assert isinstance(gan.r_optimizer, keras.optimizers.LossScaleOptimizer)
    r0 = [v.numpy() for v in gan.recognizer.trainable_weights]
    out = gan.train_step(_data())
    assert float(out["skipped_updates"]) >= 1.0
    assert float(gan.r_optimizer.dynamic_scale.numpy()) < 2.0**15
    for _ in range(4):
        out = gan.train_step(_data())
    assert int(gan.r_optimizer.iterations.numpy()) >= 1
    assert any(not np.array_equal(a, v.numpy())
               for a, v in zip(r0, gan.recognizer.trainable_weights))
    assert all(np.isfinite(float(v)) for v in out.values())


def test_train_with_mixed_bfloat16(tmp_path):
    """Through train() (eager, no trace): the policy is logged, training is finite, the global policy
    is float32 afterwards, and the run resumes from its checkpoint."""
    cfg = tiny_config(2)
    cfg.optim.g_every = 1
    cfg.run.mixed_precision = "auto"  # CPU: mixed_bfloat16
    logs = []
    tf.config.run_functions_eagerly(True)
    try:
        res = train_lib.train(cfg, str(tmp_path), dataset=in_memory_dataset(), log=logs.append)
        cfg.run.steps = 3
        res = train_lib.train(cfg, str(tmp_path), dataset=in_memory_dataset(), log=logs.append)
    finally:
        tf.config.run_functions_eagerly(False)
    assert res.step == 3
    assert any(m.startswith("precision: mixed_bfloat16 (auto: the CPU has") for m in logs) or \
        any(m.startswith("precision: float32 (auto: float32, the CPU has neither") for m in logs), logs
    assert any("at step 2" in m for m in logs)
    assert all(np.isfinite(v) for v in res.metrics.values()), res.metrics
    assert keras.mixed_precision.global_policy().name == "float32"
    want = "bfloat16" if distribution.cpu_bf16_flags() else "float32"
    assert res.gan.discriminator.compute_dtype == want and res.gan.generator.compute_dtype == want


CPUINFO_AMX = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
CPUINFO_AVX2 = "processor\t: 0\nflags\t\t: fpu sse avx2 fma\n"


def test_resolve_mixed_precision():
    r = distribution.resolve_mixed_precision
    assert r("")[0] == ""
    assert r("mixed_float16")[0] == "mixed_float16"
    assert r("auto", gpu=True, cpuinfo=CPUINFO_AVX2)[0] == "mixed_float16"
    policy, why = r("auto", gpu=False, cpuinfo=CPUINFO_AMX)
    assert policy == "mixed_bfloat16" and "amx_bf16 and avx512_bf16" in why
    policy, why = r("auto", gpu=False, cpuinfo=CPUINFO_AVX2)
    assert policy == "" and "neither" in why
    assert distribution.cpu_bf16_flags(CPUINFO_AMX) == ["amx_bf16", "avx512_bf16"]
    with pytest.raises(ValueError, match="run.mixed_precision"):
        r("float16")
