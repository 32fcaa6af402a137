"""Non-finite guard: an update whose loss or gradients are not finite is skipped -- weights, Adam's
slots and iteration counter, batch-norm statistics untouched -- and counted (``skipped_updates``,
``bad_steps``); under MirroredStrategy a NaN on one replica makes every replica skip; the training
loop stops after ``run.max_bad_steps`` bad iterations in a row, its checkpoints intact.

A NaN in a real image is the forced fault: it reaches D's hinge loss and R's CTC loss (and R's
batch-norm statistics) but not G, whose update goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from scrabblegan_tf.training import gan_training as train_lib
from tiny_models import real_batch, snapshot, tiny_gan

ADAM = lambda: keras.optimizers.Adam(1e-3, beta_1=0.5)  # noqa: E731  (beta_1 > 0: m matters)


def _data(seed, nan_rows=()):
    images, widths, labels, label_lengths = real_batch(["hi", "yes", "on", "cat"], seed=seed)
    for i in nan_rows:
        images[i, 5, 3, 0] = np.nan  # one pixel
    return {"image": tf.constant(images), "image_width": tf.constant(widths),
            "label": tf.constant(labels), "label_length": tf.constant(label_lengths)}


def _optimizer_state(opt):
    return [np.array(v.numpy()) for v in opt.variables]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_d_and_r_steps_skip_a_nan_image_and_keep_every_state():
    gan = tiny_gan(g_every=1, optimizer=ADAM, seed=0)
    images, widths, labels, lengths = real_batch(["hi", "yes"], seed=1)
    ids, fake_lengths = labels, lengths
    z = tf.random.stateless_normal((2, gan.z_dim), seed=(1, 2))
    gan.d_step(images, widths, ids, fake_lengths, z)  # a normal update first: Adam's m, v != 0
    gan.r_step(images, widths, labels, lengths)
    d0, r0, g0 = snapshot(gan.discriminator), snapshot(gan.recognizer), snapshot(gan.generator)
    od, orr = _optimizer_state(gan.d_optimizer), _optimizer_state(gan.r_optimizer)
    bad = images.copy()
    bad[1, 7, 2, 0] = np.nan
    loss, _, _, skipped = gan._d_step(bad, widths, ids, fake_lengths, z)
    assert np.isnan(float(loss)) and float(skipped) == 1.0
    r_loss, _, r_skipped = gan._r_step(bad, widths, labels, lengths)
    # The NaN pixel spreads to every logit through R's batch norm; ctc_loss zeroes (and counts)
    # non-finite per-sample losses, so the loss reads 0, but the gradients are NaN: skipped.
    assert float(r_loss) == 0.0 and float(r_skipped) == 1.0
    for before, model in ((d0, gan.discriminator), (r0, gan.recognizer), (g0, gan.generator)):
        _assert_same([before[v.path] for v in model.weights], [v.numpy() for v in model.weights])
    # R's batch-norm moving statistics saw the NaN in the forward pass and were put back.
    assert all(np.isfinite(v.numpy()).all() for v in gan.recognizer.non_trainable_weights)
    _assert_same(od, _optimizer_state(gan.d_optimizer))  # m, v, iterations: untouched
    _assert_same(orr, _optimizer_state(gan.r_optimizer))
    # A finite batch updates again.
    assert float(gan._d_step(images, widths, ids, fake_lengths, z)[3]) == 0.0
    assert any(not np.array_equal(d0[v.path], v.numpy()) for v in gan.discriminator.weights)


def test_traced_train_step_skips_nan_updates_and_counts_them():
    """Graph mode (the tf.cond is a real conditional here): NaN images in both mini-batches skip
    the 2 D and 2 R updates; G trains; ``skipped_updates`` counts 4, ``bad_steps`` 1, then a finite
    batch resets ``bad_steps`` and the means hold only finite values."""
    gan = tiny_gan(g_every=2, optimizer=ADAM, seed=3)
    step = tf.function(gan.train_step, jit_compile=False)
    out = step(_data(0))
    assert float(out["skipped_updates"]) == 0.0 and int(gan.bad_steps.numpy()) == 0
    for m in gan.metrics:
        m.reset_state()
    d0, r0, g0 = snapshot(gan.discriminator), snapshot(gan.recognizer), snapshot(gan.generator)
    od = _optimizer_state(gan.d_optimizer)
    out = step(_data(1, nan_rows=(0, 3)))  # one NaN image in each of the 2 mini-batches
    assert float(out["skipped_updates"]) == 4.0
    assert int(gan.bad_steps.numpy()) == 1
    assert int(gan.d_optimizer.iterations.numpy()) == 2  # only the first step's 2 updates
    assert int(gan.r_optimizer.iterations.numpy()) == 2
    assert int(gan.g_optimizer.iterations.numpy()) == 2
    # (D's spectral-norm u vectors move: the G step, not skipped, runs D in training mode.)
    _assert_same([d0[v.path] for v in gan.discriminator.trainable_weights],
                 [v.numpy() for v in gan.discriminator.trainable_weights])
    _assert_same([r0[v.path] for v in gan.recognizer.weights],
                 [v.numpy() for v in gan.recognizer.weights])
    _assert_same(od, _optimizer_state(gan.d_optimizer))
    assert any(not np.array_equal(g0[v.path], v.numpy()) for v in gan.generator.trainable_weights)
    # Skipped updates stay out of the loss means: they are the G step's finite values only.
    assert np.isfinite(float(out["g_adv"])) and float(out["d_loss"]) == 0.0
    out = step(_data(2))
    assert int(gan.bad_steps.numpy()) == 0 and float(out["skipped_updates"]) == 4.0
    assert np.isfinite(float(out["d_loss"])) and float(out["d_loss"]) > 0


MIRRORED = textwrap.dedent(r'''
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from tiny_models import ALPHABET, Z_DIM, real_batch, tiny_gan

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        gan = tiny_gan(g_every=1, optimizer=lambda: keras.optimizers.Adam(1e-3, beta_1=0.5))
    images, widths, labels, lengths = real_batch(["ab", "cab", "dog", "bad"], seed=0, width=48)
    z = np.random.default_rng(0).normal(size=(4, Z_DIM)).astype(np.float32)

    def split(x):
        x = tf.convert_to_tensor(x)
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: x[2 * ctx.replica_id_in_sync_group: 2 * ctx.replica_id_in_sync_group + 2])

    def per_device(model):
        return [[c.numpy() for c in v.value.values] for v in model.weights]

    def d_step(real):
        out = strategy.run(gan._d_step, args=tuple(map(split, (real, widths, labels, lengths, z))))
        return [float(t) for t in strategy.experimental_local_results(out[3])]

    def r_step(real):
        out = strategy.run(gan._r_step, args=tuple(map(split, (real, widths, labels, lengths))))
        return [float(t) for t in strategy.experimental_local_results(out[2])]

    res = {"first": d_step(images) + r_step(images)}
    d0, r0 = per_device(gan.discriminator), per_device(gan.recognizer)
    bad = images.copy()
    bad[3, 4, 4, 0] = np.nan  # a row of replica 1 only
    res["nan_on_replica_1"] = d_step(bad) + r_step(bad)
    same = lambda a, b: all(np.array_equal(x, y) for u, w in zip(a, b) for x, y in zip(u, w))
    res["d_unchanged"] = same(d0, per_device(gan.discriminator))
    res["r_unchanged"] = same(r0, per_device(gan.recognizer))
    res["d_iterations"] = int(gan.d_optimizer.iterations.numpy())
    res["after"] = d_step(images)
    res["d_changed_after"] = not same(d0, per_device(gan.discriminator))
    print(json.dumps(res))
''')


def test_mirrored_nan_on_one_replica_skips_on_every_replica():
    """Replica 1 alone gets a NaN image: the all-reduced flag makes both replicas skip (an update
    applied on one replica only would also deadlock the gradient all-reduce); all devices' copies of
    D and R stay as they were."""
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", MIRRORED, tests_dir], capture_output=True,
                          text=True, timeout=300, env=env, cwd=os.path.dirname(tests_dir))
    assert proc.returncode == 0, proc.stderr[-5000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["first"] == [0.0, 0.0, 0.0, 0.0]
    assert res["nan_on_replica_1"] == [1.0, 1.0, 1.0, 1.0]  # D on both replicas, R on both
    assert res["d_unchanged"] and res["r_unchanged"]
    assert res["d_iterations"] == 1
    assert res["after"] == [0.0, 0.0] and res["d_changed_after"]


def _words_dataset(n_good, n_bad):
    """3-letter words (one bucket, no shuffling: a fixed order) as float32 images; the last
    ``n_bad`` are NaN."""
    images = np.full((n_good + n_bad, 32, 48, 1), 255.0, np.float32)
    images[:, 8:24] = np.random.default_rng(0).uniform(0, 255, (n_good + n_bad, 16, 48, 1))
    images[n_good:] = np.nan
    return tf.data.Dataset.from_tensor_slices({"image": images, "text": ["abc"] * len(images)})


def test_training_stops_after_max_bad_steps_with_good_checkpoints(tmp_path):
    """Iterations 1-2 see good images, then only NaN images: D and R updates are skipped from
    step 3 on, and the run stops at step 5 with max_bad_steps=3. Every checkpoint holds finite
    weights; D's weights in the last one are those after step 2 (all later D updates skipped).
    Eager (no trace) to keep the test short; the traced step is tested above."""
    from train_helpers import tiny_config

    cfg = tiny_config(20)
    cfg.optim.g_every = 1
    cfg.data.shuffle_buffer = 0
    cfg.run.checkpoint_every = 1
    cfg.run.keep_checkpoints = 10
    cfg.run.max_bad_steps = 3
    logs = []
    tf.config.run_functions_eagerly(True)
    try:
        with pytest.raises(train_lib.NonFiniteTrainingError,
                           match="Stopped at step 5: 3 consecutive iterations"):
            train_lib.train(cfg, str(tmp_path), dataset=_words_dataset(4, 60), log=logs.append)
    finally:
        tf.config.run_functions_eagerly(False)
    assert any("step 3: non-finite loss or gradient, update(s) skipped (1 iteration(s) in a row)"
               in m for m in logs), logs
    step3 = next(m for m in logs if m.startswith("step 3/20"))
    assert "skipped_updates 2.0000" in step3  # D and R
    ckpt_dir = tmp_path / "checkpoints"
    latest = tf.train.latest_checkpoint(str(ckpt_dir))
    assert latest.endswith("ckpt-4")  # saved during the streak: the weights were still good
    # D's trainable weights (its spectral-norm u vectors move in G's steps, which go on); the
    # checkpoint reaches them first through the optimizer, so they are saved under its name.
    names = [n for n, _ in tf.train.list_variables(latest)]
    d_names = [n for n in names if n.startswith("d_optimizer/_trainable_variables/")]
    assert d_names
    for name in d_names:
        after_2 = tf.train.load_variable(str(ckpt_dir / "ckpt-2"), name)
        last = tf.train.load_variable(latest, name)
        assert np.isfinite(last).all()
        np.testing.assert_array_equal(after_2, last)
    g_names = [n for n in names if n.startswith("g_optimizer/_trainable_variables/")]
    assert any(not np.array_equal(tf.train.load_variable(str(ckpt_dir / "ckpt-2"), n),
                                  tf.train.load_variable(latest, n)) for n in g_names)
