"""FusedAdam: the update of keras.optimizers.Adam in one kernel, on Keras' own slot variables."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.training.optimizers import FusedAdam

LR, B1, B2, EPS = 1e-2, 0.5, 0.999, 1e-8


def _run(cls, w0, grads, **kw):
    v = keras.Variable(w0)
    opt = cls(LR, beta_1=B1, beta_2=B2, epsilon=EPS, **kw)

    @tf.function(jit_compile=False)
    def step(g):
        opt.apply_gradients([(g, v)])

    for g in grads:
        step(tf.constant(g))
    return v, opt


def test_first_step_by_hand():
    # t = 1: m = (1-b1) g, v = (1-b2) g^2, alpha = lr sqrt(1-b2) / (1-b1), so
    # var -= alpha m / (sqrt(v) + eps) = lr sqrt(1-b2) g / (sqrt(1-b2) |g| + eps)
    #      = lr * sign(g) * |g| / (|g| + eps / sqrt(1-b2)).
    w0 = np.array([1.0, -2.0, 0.5, 0.0], np.float32)
    g = np.array([4.0, -0.25, 1e-6, 0.0], np.float32)
    v, opt = _run(FusedAdam, w0, [g])
    e = EPS / np.sqrt(1 - B2)
    expected = w0 - LR * np.sign(g) * np.abs(g) / (np.abs(g) + e)
    np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, atol=1e-9)
    # g = 1e-6 is only ~30 x eps / sqrt(1-b2): a step of lr * 0.969, not lr.
    assert v.numpy()[2] == pytest.approx(0.5 - LR * 1e-6 / (1e-6 + e), rel=1e-5)
    np.testing.assert_allclose(opt._momentums[0].numpy(), (1 - B1) * g, rtol=1e-6)
    np.testing.assert_allclose(opt._velocities[0].numpy(), (1 - B2) * g * g, rtol=1e-4)
    assert int(opt.iterations.numpy()) == 1


def test_same_trajectory_as_keras_adam():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(40, 30)).astype(np.float32)
    grads = [rng.normal(size=w0.shape).astype(np.float32) for _ in range(6)]
    keras_v, keras_opt = _run(keras.optimizers.Adam, w0, grads)
    fused_v, fused_opt = _run(FusedAdam, w0, grads)
    # The same formula; the only difference is where 1 - b2 is rounded: Keras in Python float64
    # (0.001 exactly, then float32), the kernel in float32 (1 - 0.999f = 0.00099998713): relative
    # 1.3e-5 in v, half of that in sqrt(v) and the step.
    np.testing.assert_allclose(fused_opt._momentums[0].numpy(), keras_opt._momentums[0].numpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fused_opt._velocities[0].numpy(), keras_opt._velocities[0].numpy(),
                               rtol=3e-5, atol=1e-9)
    np.testing.assert_allclose(fused_v.numpy(), keras_v.numpy(), rtol=0, atol=6 * LR * 2e-5)
    assert not np.allclose(fused_v.numpy(), w0)  # it moved: 6 steps of ~lr


def test_keras_path_for_amsgrad_and_other_dtypes():
    w0 = np.array([1.0, -1.0], np.float32)
    g = np.array([0.5, 0.5], np.float32)
    fused, _ = _run(FusedAdam, w0, [g, g], amsgrad=True)
    plain, _ = _run(keras.optimizers.Adam, w0, [g, g], amsgrad=True)
    np.testing.assert_array_equal(fused.numpy(), plain.numpy())


def test_checkpoints_interchangeable_with_keras_adam(tmp_path):
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(8,)).astype(np.float32)
    grads = [rng.normal(size=w0.shape).astype(np.float32) for _ in range(3)]
    v, opt = _run(keras.optimizers.Adam, w0, grads)
    path = tf.train.Checkpoint(v=v, opt=opt).write(str(tmp_path / "ckpt"))

    v2 = keras.Variable(np.zeros_like(w0))
    opt2 = FusedAdam(LR, beta_1=B1, beta_2=B2, epsilon=EPS)
    opt2.build([v2])
    tf.train.Checkpoint(v=v2, opt=opt2).read(path).assert_consumed()
    assert int(opt2.iterations.numpy()) == 3
    np.testing.assert_array_equal(opt2._momentums[0].numpy(), opt._momentums[0].numpy())
    np.testing.assert_array_equal(opt2._velocities[0].numpy(), opt._velocities[0].numpy())
    np.testing.assert_array_equal(v2.numpy(), v.numpy())


MIRRORED = textwrap.dedent(r'''
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from scrabblegan_tf.training.optimizers import FusedAdam
    rng = np.random.default_rng(2)
    w0 = rng.normal(size=(5, 3)).astype(np.float32)
    grads = [rng.normal(size=w0.shape).astype(np.float32) for _ in range(3)]

    def run(strategy):
        with strategy.scope():
            v = keras.Variable(w0)
            opt = FusedAdam(1e-2, beta_1=0.5)
            opt.build([v])
        @tf.function
        def step(g):
            strategy.run(lambda g: opt.apply_gradients([(g, v)]), args=(g,))
        for g in grads:
            step(strategy.experimental_distribute_values_from_function(
                lambda ctx, g=g: tf.constant(g)))
        return v

    single = run(tf.distribute.get_strategy()).numpy()
    mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    copies = [t.numpy() for t in mirrored.value.values]
    print(json.dumps({"copies": len(copies),
                      "max_diff": max(float(np.abs(c - single).max()) for c in copies),
                      "moved": float(np.abs(single - w0).max())}))
''')


def test_mirrored_strategy_updates_every_copy():
    # Each replica applies the (all-reduced: here 2 x the same) gradient to its own copy of the
    # variable and slots; Adam's step is invariant to the gradient's scale (up to eps), so both
    # copies end where the single-device run ends.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True,
                         env=env, timeout=300, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["copies"] == 2
    assert r["moved"] > 0.02  # 3 steps of about lr = 0.01
    assert r["max_diff"] < 1e-6
