"""Where a training iteration's time goes: TF profiler op times summed by kind, one JSON line.

    python bench/profile_step.py --config=cpu --precision=bfloat16
    python bench/profile_step.py --config=paper --precision=float32 --batch=8

The step is ``train.make_gan``'s networks and ``ScrabbleGAN.train_step`` in one ``tf.function``,
as training runs it (8-letter words). After tracing and two warm iterations, ``--iterations`` are
profiled (``tf.profiler.experimental``); the XSpace is parsed and the op events of the host's
TensorFlow threads are summed by op type, convolutions split by network (G/D/R from the op name).
``shares`` lists every kind above ``--min_share`` of the total op time; ``--split_scope`` splits
the other op types by scope (e.g. ``Mul @ generator/up2/cbn2``).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import tempfile

import numpy as np



def op_times(logdir: str, split_scope: bool = False) -> dict[str, float]:
    """{kind: microseconds} from the profiler's .xplane.pb files under ``logdir``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals: dict[str, float] = collections.Counter()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            names = {k: v.name for k, v in plane.event_metadata.items()}
            for line in plane.lines:
                if "tf_" not in line.name.lower() and "Tf" not in line.name:
                    continue
                for ev in line.events:
                    k = kind(names.get(ev.metadata_id, "?"), split_scope)
                    if k is not None:
                        totals[k] += ev.duration_ps / 1e6
    return dict(totals)


def _scope(scope: str) -> str:
    """'gradient_tape/generator_1/up2_1/cbn2_1/mul' -> 'generator/up2/cbn2' (3 levels, copies merged)."""
    parts = [p for p in scope.split("/")
             if not re.match(r"^(gradient_tape|StatefulPartitionedCall.*|cond.*|while.*)$", p)]
    return "/".join(re.sub(r"_\d+$", "", p) for p in parts[:3])


def kind(name: str, split_scope: bool = False) -> str | None:
    """'gradient_tape/discriminator_3/down3_1/conv1_1/Conv2DBackpropFilter:_MklNativeConv2D
    BackpropFilterWithBias' -> 'Conv2DBackpropFilterWithBias (D)'; other ops -> their type (oneDNN
    prefixes removed); executor bookkeeping ('ExecutorState::Process', no 'scope:Type') -> None."""
    if "::" in name or ":" not in name:
        return None
    op = name.rsplit(":", 1)[1]
    for prefix in ("_MklNative", "_MklFused", "_Mkl", "_"):
        if op.startswith(prefix):
            op = op[len(prefix):]
            break
    scope = name.rsplit(":", 1)[0]
    net = ("G" if "generator" in scope else "D" if "discriminator" in scope
           else "R" if "recognizer" in scope else "")
    if "Conv2D" in op or "MatMul" in op or "BatchMatMul" in op or "Einsum" in op:
        return f"{op} ({net or '?'})"
    return f"{op} @ {_scope(scope)}" if split_scope else op


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="cpu")
    p.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16"])
    p.add_argument("--batch", type=int, default=0, help="0: the preset's")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--word_len", type=int, default=8)
    p.add_argument("--min_share", type=float, default=0.01)
    p.add_argument("--split_scope", action="store_true",
                   help="split the other op types by where they run (3 scope levels)")
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from scrabblegan_tf.core.alphabet import Alphabet
    from scrabblegan_tf.core.config import get_config
    from scrabblegan_tf.training.gan_training import make_gan

    cfg = get_config(a.config)
    if a.batch:
        cfg.data.batch_size = a.batch
    alphabet = Alphabet.preset("english")
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), a.word_len)) for _ in range(64)]
    ids, lengths = alphabet.encode_batch(words)
    gan = make_gan(cfg, alphabet, ids, lengths,
                   policy="mixed_bfloat16" if a.precision == "bfloat16" else "")
    n = cfg.data.batch_size * cfg.optim.g_every
    width = cfg.model.char_width * a.word_len
    data = {"image": tf.random.uniform((n, 32, width, 1), -1, 1), "image_width": tf.fill((n,), width),
            "label": tf.constant(ids[:n]), "label_length": tf.fill((n,), a.word_len)}
    step = tf.function(gan.train_step, jit_compile=False)
    for _ in range(3):
        float(step(data)["d_loss"])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(a.iterations):
            out = step(data)
        float(out["d_loss"])
        tf.profiler.experimental.stop()
        totals = op_times(logdir, a.split_scope)
    total = sum(totals.values()) or 1.0
    shares = {k: round(v / total, 4) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])
              if v / total >= a.min_share}
    conv = sum(v for k, v in totals.items() if "Conv2D" in k) / total
    print(json.dumps({"config": a.config, "precision": a.precision, "batch": cfg.data.batch_size,
                      "iterations": a.iterations, "op_ms_per_iteration": round(total / 1e3 / a.iterations, 1),
                      "convolution_share": round(conv, 4), "shares": shares}), flush=True)


if __name__ == "__main__":
    main()
