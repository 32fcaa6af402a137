"""Multi-worker training: 2 worker processes on 127.0.0.1 (CPU, one replica each, cluster in
TF_CONFIG) train a few steps with ``--strategy=multi_worker``; both end with identical weights, equal
to a one-process MirroredStrategy run over 2 logical CPUs with the same global batch (run eagerly
to save a trace; the workers run the traced step); only the chief writes configs, samples,
summaries and the kept checkpoints; the other worker's temporary checkpoint folder is gone.

Why a 2-replica MirroredStrategy run as the reference and not a one-device run: each replica draws
its fake words and z from the generator's stream keyed by its global replica id
(``replica_id_in_sync_group``), so the same draws need the same number of replicas; everything else
(synchronised batch norm, the all-reduced balancing std, the 1/replicas loss scaling) already makes a
replicated step equal a one-device step on the whole batch (test_mirrored.py). With 2 replicas a sum
of two values is the same in any order, so the two engines (in-process reduction vs. ring
all-reduce between processes) should agree to float rounding; the tolerance allows for different
kernels' orders elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import pathlib
import socket
import subprocess
import sys
import textwrap

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 3

SCRIPT = textwrap.dedent(r'''
    import sys
    tests_dir, workdir, out, steps, strategy_name = sys.argv[1:6]
    from scrabblegan_tf.training import gan_training as train_lib
    from scrabblegan_tf.training import distribution
    # MultiWorkerMirroredStrategy before any other TensorFlow op (collectives are set up at start).
    strategy = distribution.make_strategy(strategy_name, 2 if strategy_name == "mirrored" else 0)
    if strategy_name == "mirrored":  # the reference runs eagerly: no trace, a shorter test
        import tensorflow as tf
        tf.config.run_functions_eagerly(True)
    import numpy as np
    sys.path.insert(0, tests_dir)
    from train_helpers import in_memory_dataset, tiny_config

    from scrabblegan_tf.models.gan import ScrabbleGAN

    initial = []
    build_all = ScrabbleGAN.build_all

    def named(weights):  # npz keys: position and variable path
        return {f"{i:04d}|{v.path.replace('/', ':')}": v.numpy() for i, v in enumerate(weights)}

    def recording_build_all(self, *args, **kwargs):  # the weights before training
        build_all(self, *args, **kwargs)
        initial.append(named(self.generator.weights + self.discriminator.weights))

    ScrabbleGAN.build_all = recording_build_all
    cfg = tiny_config(int(steps))
    cfg.optim.g_every = 1
    cfg.run.strategy = strategy_name
    cfg.run.cpu_devices = 2 if strategy_name == "mirrored" else 0
    cfg.run.sample_every = 2
    res = train_lib.train(cfg, workdir, dataset=in_memory_dataset(),
                          log=lambda m: print(m, flush=True))
    np.savez(out, **named(res.gan.generator.weights + res.gan.discriminator.weights))
    np.savez(out.replace(".npz", "_initial.npz"), **initial[0])
    print("RESULT", res.step, res.metrics["d_loss"], flush=True)
''')


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start(args, env):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(REPO / "tests"), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=REPO)


def _load(path):
    """[(variable path, array)] in the order of G's then D's weights."""
    with np.load(path) as f:
        return [(k.split("|", 1)[1].replace(":", "/"), f[k]) for k in sorted(f.files)]


# G's biases whose layer output feeds a batch norm (the filter bank's, every up-block convolution's):
# the norm subtracts the batch mean, so their gradient is zero in exact arithmetic and float
# rounding noise (~1e-9) whose sign depends on the kernels' summation order. Adam (beta_1 = 0 here,
# eps 1e-8) still moves them: step t changes a weight by lr * |g_t| / sqrt(v_hat_t) <= lr *
# sqrt((1 - b2^t) / (1 - b2)), since v_hat_t >= (1 - b2) g_t^2 / (1 - b2^t). Two runs whose noise
# has opposite signs end at most twice the sum of those bounds apart.
NOISE_ONLY_BIAS = re.compile(r"^generator/(filter_bank|up\d+/conv(1|2|_sc))/bias$")


def noise_only_bound(steps, lr=2e-4, b2=0.999):
    """2 * lr * sum_t sqrt((1 - b2^t) / (1 - b2)): 3 steps -> 2 * 2e-4 * (1 + 1.4139 + 1.7312)
    = 1.658e-3."""
    return 2 * lr * sum(np.sqrt((1 - b2 ** t) / (1 - b2)) for t in range(1, steps + 1))


def test_two_workers_train_like_one_process_with_the_same_global_batch(tmp_path):
    base_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    base_env.pop("TF_CONFIG", None)
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    work = tmp_path / "mw"
    procs = []
    outs = []
    try:
        for i in range(2):
            env = dict(base_env, TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": i}}))
            procs.append(_start([work, tmp_path / f"w{i}.npz", STEPS, "multi_worker"], env))
        # The one-process reference runs meanwhile (3 processes on the machine).
        procs.append(_start([tmp_path / "ref", tmp_path / "ref.npz", STEPS, "mirrored"], base_env))
        outs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]
        assert f"RESULT {STEPS}" in out, out[-4000:]
    chief, other, ref = outs
    assert "multi-worker: worker 0 of 2 workers, 2 replicas in all (chief" in chief
    assert "multi-worker: worker 1 of 2 workers, 2 replicas in all" in other
    assert "2 replica(s)" in ref

    w0, w1, wr = (_load(tmp_path / n) for n in ("w0.npz", "w1.npz", "ref.npz"))
    assert len(w0) == len(w1) == len(wr) > 0
    for (na, a), (nb, b) in zip(w0, w1):  # the workers hold the same (mirrored) weights
        assert na == nb
        np.testing.assert_array_equal(a, b)
    # Same as the one-process run; and training moved the weights well beyond that tolerance.
    start = _load(tmp_path / "ref_initial.npz")
    for (_, a), (_, b) in zip(_load(tmp_path / "w0_initial.npz"), start):  # same initialisation
        np.testing.assert_array_equal(a, b)
    moved = max(np.abs(a - s).max() for (_, a), (_, s) in zip(wr, start))
    noise_only = [name for name, _ in wr if NOISE_ONLY_BIAS.match(name)]
    assert len(noise_only) == 1 + 3 * 3, noise_only  # the bank's, 3 per block of the tiny G's 3
    for (name, a), (name_r, b) in zip(w0, wr):
        assert name == name_r
        if NOISE_ONLY_BIAS.match(name):
            assert np.abs(a - b).max() <= noise_only_bound(STEPS), name
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=5e-5, err_msg=name)
    assert moved > 1e-3

    # Only the chief wrote; the other worker's temporary checkpoint folder was deleted.
    assert set(os.listdir(work / "checkpoints")) == {
        "checkpoint", "ckpt-2.index", "ckpt-2.data-00000-of-00001", f"ckpt-{STEPS}.index",
        f"ckpt-{STEPS}.data-00000-of-00001"}
    assert sorted(os.listdir(work / "samples")) == ["step_0000002.png", f"step_{STEPS:07d}.png"]
    assert {"config.json", "alphabet.json", "tb", "checkpoints", "samples"} == set(os.listdir(work))
    assert "samples:" not in other and "samples:" in chief

