"""Training, evaluation and inference of the evaluation HTR.

``train(cfg, workdir)`` trains (or resumes) a CRNN in ``workdir``, which then holds

- ``htr_config.json`` (the resolved ``HTRConfig``) and ``alphabet.json``;
- ``checkpoints/`` (``tf.train.CheckpointManager``: the model, the Adam optimizer and the step);
- ``metrics.jsonl``: one JSON line per log and validation point (step, loss, steps/s, val_cer, ...);
- ``eval_<split>.json`` after ``evaluate``.

Running ``train`` again on the same workdir resumes from the latest checkpoint and continues to
``cfg.steps``. The input iterator is not checkpointed (its shuffle buffers would be saved with it):
after a resume the data stream restarts with the seed ``cfg.seed + step``, so it does not replay the
first examples; the learning-rate schedule (cosine over ``cfg.steps``) continues where it was.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from scrabblegan_tf import progress, run_folder
from scrabblegan_tf.alphabet import Alphabet
from scrabblegan_tf.htr.config import HTRConfig

CONFIG_FILE = "htr_config.json"


def make_model(cfg: HTRConfig, num_classes: int):
    from scrabblegan_tf.htr.model import CRNN

    model = CRNN(num_classes=num_classes, width_mult=cfg.width_mult, lstm_layers=cfg.lstm_layers,
                 dropout=cfg.dropout, width_reduction=cfg.width_reduction, height=cfg.height)
    model(np.ones((1, cfg.height, 8, 1), np.float32), widths=np.array([8], np.int32))
    return model


def load_workdir(workdir: str) -> tuple[HTRConfig, Alphabet]:
    text, alphabet = run_folder.read_settings(workdir, CONFIG_FILE, kind="HTR workdir")
    return HTRConfig.from_json(text), alphabet


def load_htr(workdir: str, checkpoint: str | None = None):
    """(model, config, alphabet, checkpoint path, step) of a trained HTR workdir."""
    import tensorflow as tf

    cfg, alphabet = load_workdir(workdir)
    model = make_model(cfg, alphabet.num_classes)
    step = tf.Variable(0, dtype=tf.int64)
    path = run_folder.restore_trained(tf.train.Checkpoint(model=model, step=step), workdir, checkpoint)
    return model, cfg, alphabet, path, int(step.numpy())


# -- inference ----------------------------------------------------------------------------------
def _infer_fn(model):
    import tensorflow as tf

    fn = getattr(model, "_htr_infer", None)
    if fn is None:
        @tf.function(input_signature=[tf.TensorSpec([None, model.height, None, 1], tf.float32),
                                      tf.TensorSpec([None], tf.int32)], jit_compile=False)
        def fn(images, widths):
            return model(images, widths=widths, training=False), model.logit_lengths(widths)
        model._htr_infer = fn  # pylint: disable=protected-access
    return fn


def read_batch(model, alphabet: Alphabet, images, widths) -> list[str]:
    """Greedy transcriptions of model-unit images [B, H, W, 1] with valid widths [B]."""
    from scrabblegan_tf.htr.model import greedy_decode

    logits, lengths = _infer_fn(model)(np.asarray(images, np.float32), np.asarray(widths, np.int32))
    return [alphabet.decode(ids) for ids in greedy_decode(logits.numpy(), lengths.numpy())]


def read_uint8(model, alphabet: Alphabet, images: list[np.ndarray], *, batch_size: int = 64,
               max_width: int | None = None) -> list[str]:
    """Transcriptions of uint8 images [32, W(, 1)] (0 ink, 255 paper), height already 32; widths over
    ``max_width`` are squeezed like the training pipeline does."""
    from scrabblegan_tf.htr.data import pad_uint8_batch

    out = []
    for i in range(0, len(images), batch_size):
        x, w = pad_uint8_batch(images[i:i + batch_size], height=model.height, max_width=max_width)
        out.extend(read_batch(model, alphabet, x, w))
    return out


def predict(model, alphabet: Alphabet, batches, *, limit: int = 0) -> list[tuple[str, str]]:
    """(prediction, truth) pairs over a batched labelled dataset (``htr.data.batches``)."""
    pairs: list[tuple[str, str]] = []
    for batch in batches:
        preds = read_batch(model, alphabet, batch["image"], batch["image_width"])
        labels = batch["label"].numpy()
        for p, ids, n in zip(preds, labels, batch["label_length"].numpy()):
            pairs.append((p, alphabet.decode(ids[:n])))
        if limit and len(pairs) >= limit:
            return pairs[:limit]
    return pairs


def evaluate_split(model, cfg: HTRConfig, alphabet: Alphabet, split: str, *, data_dir=None,
                   manual_dir=None, limit: int = 0, log=print) -> dict:
    """WER / CER / NED of ``model`` on a real split. Examples the pipeline cannot read (characters
    outside the alphabet, labels over ``max_label_len``, empty) are counted in ``num_skipped`` and
    left out of the rates."""
    import tensorflow_datasets as tfds

    from scrabblegan_tf import data as data_lib
    from scrabblegan_tf import metrics
    from scrabblegan_tf.htr import data as htr_data

    examples = htr_data.real_split(cfg, split, data_dir=data_dir, manual_dir=manual_dir, log=log)
    if limit:
        examples = examples.take(limit)
    from scrabblegan_tf import builders

    builder = builders.get_builder(cfg.dataset, data_dir=data_dir, config=cfg.builder_config or None)
    texts = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    if limit:
        texts = texts.take(limit)
    counts = data_lib.count_unencodable(texts, alphabet, max_label_len=cfg.max_label_len)
    pairs = predict(model, alphabet, htr_data.batches(examples, cfg, alphabet, training=False,
                                                      batch_size=cfg.eval_batch_size))
    result = metrics.evaluate_texts(pairs) if pairs else {"wer": None, "cer": None, "ned": None,
                                                          "num_samples": 0}
    result.update({"split": split, "num_skipped": counts["dropped"],
                   "examples": [{"prediction": p, "truth": t} for p, t in pairs[:10]]})
    return result


# -- training -----------------------------------------------------------------------------------
def _check_compatible(cfg: HTRConfig, workdir: str) -> None:
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        old = HTRConfig.from_json(f.read())
    if old.model_fields() != cfg.model_fields():
        raise ValueError(f"{workdir} holds an HTR with another model config ({old.model_fields()} vs "
                         f"{cfg.model_fields()}); use a new --workdir.")


def train(cfg: HTRConfig, workdir: str, *, data_dir: str | None = None,
          manual_dir: str | None = None, train_examples=None, val_examples=None,
          log=print) -> dict:
    """Trains (or resumes) the HTR in ``workdir``; returns the last log/validation metrics.

    ``train_examples`` / ``val_examples``: optional ready ``tf.data.Dataset`` of ``{"image",
    "text"}`` examples used instead of the TFDS splits (tests); a training dataset is still mixed
    with ``cfg.synthetic_dir`` by ``cfg.synthetic_ratio``.
    """
    import keras
    import tensorflow as tf

    from scrabblegan_tf import losses, metrics
    from scrabblegan_tf.htr import data as htr_data
    from scrabblegan_tf.htr.model import count_params

    run_folder.check_workdir(workdir)
    _check_compatible(cfg, workdir)
    alphabet = htr_data.resolve_alphabet(cfg)
    keras.utils.set_random_seed(cfg.seed)
    model = make_model(cfg, alphabet.num_classes)
    schedule = keras.optimizers.schedules.CosineDecay(cfg.lr, max(1, cfg.steps), alpha=cfg.lr_final_frac)
    optimizer = keras.optimizers.Adam(schedule, clipnorm=cfg.clipnorm or None)
    optimizer.build(model.trainable_variables)
    step_var = tf.Variable(0, dtype=tf.int64, name="step")
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    run_folder.remove_partial_files(workdir, log)
    run_folder.reserve_checkpoint_space(workdir, model.weights + optimizer.variables,
                                        cfg.keep_checkpoints, log=log)
    manager = tf.train.CheckpointManager(ckpt, run_folder.checkpoint_dir(workdir),
                                         max_to_keep=cfg.keep_checkpoints)
    resumed = run_folder.restore(ckpt, run_folder.checkpoint_dir(workdir), log=log)
    if resumed:
        log(f"Resumed from {resumed} at step {int(step_var.numpy())}")
    else:
        log(f"Starting a new HTR run in {workdir}")
    run_folder.write_settings(workdir, cfg.to_json(), alphabet.to_json(), CONFIG_FILE)
    step = int(step_var.numpy())

    # Data (seeded by the step so that a resumed run does not replay the first batches).
    real = train_examples if train_examples is not None else htr_data.real_split(
        cfg, cfg.train_split, data_dir=data_dir, manual_dir=manual_dir, shuffle_files=True, log=log)
    synthetic = htr_data.synthetic_split(cfg.synthetic_dir) if cfg.synthetic_dir else None
    examples = htr_data.mixed_examples(real, synthetic, cfg.synthetic_ratio if synthetic else 0.0,
                                       shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed + step)
    train_ds = htr_data.batches(examples, cfg, alphabet, training=True)
    if val_examples is None:
        val_examples = htr_data.real_split(cfg, cfg.val_split, data_dir=data_dir,
                                           manual_dir=manual_dir, log=log)
    if cfg.val_examples:
        val_examples = val_examples.take(cfg.val_examples)
    val_ds = htr_data.batches(val_examples, cfg, alphabet, training=False,
                              batch_size=cfg.eval_batch_size)
    log(f"HTR: {count_params(model):,} parameters, {alphabet.num_classes} classes; data "
        + (f"real + synthetic ({cfg.synthetic_dir}, ratio {cfg.synthetic_ratio})" if synthetic
           else "real only") + f"; augmentation {'on' if cfg.augment else 'off'}")

    @tf.function(input_signature=[train_ds.element_spec], jit_compile=False)
    def train_step(batch):
        with tf.GradientTape() as tape:
            logits = model(batch["image"], widths=batch["image_width"], training=True)
            per_sample, num_infeasible = losses.ctc_loss(
                batch["label"], batch["label_length"], logits, model.logit_lengths(batch["image_width"]))
            loss = tf.reduce_mean(per_sample)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        step_var.assign_add(1)
        return loss, num_infeasible

    metrics_path = os.path.join(workdir, "metrics.jsonl")

    def record(entry: dict) -> None:
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def validate(at: int) -> dict:
        t = time.perf_counter()
        res = metrics.evaluate_texts(predict(model, alphabet, val_ds))
        out = {"step": at, "val_cer": res["cer"], "val_wer": res["wer"], "val_ned": res["ned"],
               "val_samples": res["num_samples"]}
        log(f"validation at step {at}: CER {res['cer']:.4f}  WER {res['wer']:.4f}  NED {res['ned']:.4f} "
            f"({res['num_samples']} words, {time.perf_counter() - t:.1f} s)")
        record(out)
        return out

    iterator = iter(train_ds)
    last: dict = {}
    losses_acc, infeasible_acc = [], 0
    t0 = last_t = time.perf_counter()
    last_step = step
    while step < cfg.steps:
        loss, n_inf = train_step(next(iterator))
        step += 1
        losses_acc.append(float(loss))
        infeasible_acc += int(n_inf)
        if step == last_step + 1 and not last:
            last_t = time.perf_counter()  # leave tracing out of the rate
            last_step = step
            last = {"step": step, "loss": float(loss)}
            log(f"step {step}: traced and ran the first step in {last_t - t0:.1f} s, loss {float(loss):.3f}")
        elif step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            rate = (step - last_step) / max(now - last_t, 1e-9)
            last = {"step": step, "loss": float(np.mean(losses_acc)), "steps_per_s": rate,
                    "lr": float(schedule(step)), "infeasible": infeasible_acc}
            log(f"step {step}/{cfg.steps}  {rate:.2f} steps/s  ETA {progress.eta(step, cfg.steps, rate)}  "
                f"loss {last['loss']:.4f}  "
                f"lr {last['lr']:.2e}" + (f"  ({infeasible_acc} infeasible labels)" if infeasible_acc else ""))
            record(last)
            losses_acc, infeasible_acc = [], 0
            last_t, last_step = now, step
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            last = {**last, **validate(step)}
            last_t = time.perf_counter()  # validation time is not training time
        if step % cfg.checkpoint_every == 0 and step < cfg.steps:
            manager.save(checkpoint_number=step)
    if not manager.latest_checkpoint or int(manager.latest_checkpoint.rsplit("-", 1)[1]) != step:
        log(f"checkpoint: {manager.save(checkpoint_number=step)}")
        last = {**last, **validate(step)}
    log(f"done: step {step} in {time.perf_counter() - t0:.1f} s")
    return last
