"""Training and evaluation of the evaluation HTR (a CRNN, ``models.crnn``).

``train(cfg, workdir)`` trains (or resumes) a CRNN in ``workdir``, which then holds

- ``htr_config.json`` (the resolved ``HTRConfig``) and ``alphabet.json``;
- ``checkpoints/`` (``run_folder.Checkpoints``: the model, the Adam optimizer and the step);
- ``metrics.jsonl``: one JSON line per log and validation point (step, loss, steps/s, val_cer, ...);
- ``eval_<split>.json`` after ``evaluate``.

Running ``train`` again on the same workdir resumes from the latest checkpoint and continues to
``cfg.steps``; the step loop is the GAN's (``training.loop``: SIGTERM saves a checkpoint and
stops). The input iterator is not checkpointed (its shuffle buffers would be saved with it):
after a resume the data stream restarts with the seed ``cfg.seed + step``, so it does not replay the
first examples; the learning-rate schedule (cosine over ``cfg.steps``) continues where it was.
"""

from __future__ import annotations

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from scrabblegan_tf.core import metrics, run_folder
from scrabblegan_tf.core.alphabet import Alphabet
from scrabblegan_tf.core.htr_config import HTRConfig
from scrabblegan_tf.core.progress import Progress
from scrabblegan_tf.data import builders, htr_inputs, pipeline
from scrabblegan_tf.models import losses
from scrabblegan_tf.models.crnn import CRNN, count_params, read_batch
from scrabblegan_tf.training.loop import Hook, run_loop
from scrabblegan_tf.training.optimizers import FusedAdam

CONFIG_FILE = "htr_config.json"


def make_model(cfg: HTRConfig, num_classes: int) -> CRNN:
    """The built CRNN of ``cfg``."""
    model = CRNN(num_classes=num_classes, width_mult=cfg.width_mult, lstm_layers=cfg.lstm_layers,
                 dropout=cfg.dropout, width_reduction=cfg.width_reduction, height=cfg.height)
    model(np.ones((1, cfg.height, 8, 1), np.float32), widths=np.array([8], np.int32))
    return model


def load_workdir(workdir: str) -> tuple[HTRConfig, Alphabet]:
    text, alphabet = run_folder.read_settings(workdir, CONFIG_FILE, kind="HTR workdir")
    return HTRConfig.from_json(text), alphabet


def load_htr(workdir: str, checkpoint: str | None = None):
    """(model, config, alphabet, checkpoint path, step) of a trained HTR workdir."""
    cfg, alphabet = load_workdir(workdir)
    model = make_model(cfg, alphabet.num_classes)
    step = tf.Variable(0, dtype=tf.int64)
    path = run_folder.restore_trained(tf.train.Checkpoint(model=model, step=step), workdir, checkpoint)
    return model, cfg, alphabet, path, int(step.numpy())


def predict(model, alphabet: Alphabet, batches, *, limit: int = 0) -> list[tuple[str, str]]:
    """(prediction, truth) pairs over a batched labelled dataset (``htr_inputs.batches``)."""
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
    examples = htr_inputs.real_split(cfg, split, data_dir=data_dir, manual_dir=manual_dir, log=log)
    if limit:
        examples = examples.take(limit)
    builder = builders.get_builder(cfg.dataset, data_dir=data_dir, config=cfg.builder_config or None)
    texts = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    if limit:
        texts = texts.take(limit)
    counts = pipeline.count_unencodable(texts, alphabet, max_label_len=cfg.max_label_len)
    pairs = predict(model, alphabet, htr_inputs.batches(examples, cfg, alphabet, training=False,
                                                        batch_size=cfg.eval_batch_size))
    result = metrics.evaluate_texts(pairs) if pairs else {"wer": None, "cer": None, "ned": None,
                                                          "num_samples": 0}
    result.update({"split": split, "num_skipped": counts["dropped"],
                   "examples": [{"prediction": p, "truth": t} for p, t in pairs[:10]]})
    return result


# -- training -----------------------------------------------------------------------------------
def check_compatible(cfg: HTRConfig, workdir: str) -> None:
    """ValueError when ``workdir`` holds an HTR with other model fields (``HTRConfig.model_fields``)."""
    run_folder.check_compatible(workdir, cfg.model_fields(), config_file=CONFIG_FILE,
                                parse=lambda text: HTRConfig.from_json(text).model_fields())


def train(cfg: HTRConfig, workdir: str, *, data_dir: str | None = None,
          manual_dir: str | None = None, train_examples=None, val_examples=None,
          log=print) -> dict:
    """Trains (or resumes) the HTR in ``workdir``; returns the last log/validation metrics.

    ``train_examples`` / ``val_examples``: optional ready ``tf.data.Dataset`` of ``{"image",
    "text"}`` examples used instead of the TFDS splits (tests); a training dataset is still mixed
    with ``cfg.synthetic_dir`` by ``cfg.synthetic_ratio``.
    """
    run_folder.check_workdir(workdir)
    check_compatible(cfg, workdir)
    alphabet = htr_inputs.resolve_alphabet(cfg)
    keras.utils.set_random_seed(cfg.seed)
    model = make_model(cfg, alphabet.num_classes)
    schedule = keras.optimizers.schedules.CosineDecay(cfg.lr, max(1, cfg.steps), alpha=cfg.lr_final_frac)
    optimizer = FusedAdam(schedule, clipnorm=cfg.clipnorm or None)
    optimizer.build(model.trainable_variables)
    step_var = tf.Variable(0, dtype=tf.int64, name="step")
    checkpoints = run_folder.Checkpoints(
        tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var), workdir,
        keep=cfg.keep_checkpoints, variables=model.weights + optimizer.variables, log=log)
    resumed = checkpoints.restore()
    log(f"Resumed from {resumed} at step {int(step_var.numpy())}" if resumed
        else f"Starting a new HTR run in {workdir}")
    run_folder.write_settings(workdir, cfg.to_json(), alphabet.to_json(), CONFIG_FILE)
    start = int(step_var.numpy())

    # Data (seeded by the step so that a resumed run does not replay the first batches).
    real = train_examples if train_examples is not None else htr_inputs.real_split(
        cfg, cfg.train_split, data_dir=data_dir, manual_dir=manual_dir, shuffle_files=True, log=log)
    synthetic = htr_inputs.synthetic_split(cfg.synthetic_dir) if cfg.synthetic_dir else None
    examples = htr_inputs.mixed_examples(real, synthetic, cfg.synthetic_ratio if synthetic else 0.0,
                                         shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed + start)
    train_ds = htr_inputs.batches(examples, cfg, alphabet, training=True)
    if val_examples is None:
        val_examples = htr_inputs.real_split(cfg, cfg.val_split, data_dir=data_dir,
                                             manual_dir=manual_dir, log=log)
    if cfg.val_examples:
        val_examples = val_examples.take(cfg.val_examples)
    val_ds = htr_inputs.batches(val_examples, cfg, alphabet, training=False,
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

    progress = Progress(cfg.steps, start=start, unit="steps", log=log, description="HTR")
    iterator = iter(train_ds)
    state: dict = {"last": {}, "losses": [], "infeasible": 0}

    def step_fn(step: int, stop_requested: bool) -> bool:
        loss, n_inf = train_step(next(iterator))
        state["losses"].append(float(loss))
        state["infeasible"] += int(n_inf)
        if step == start + 1:
            state["last"] = {"step": step, "loss": float(loss)}
        return False

    def log_metrics(step: int) -> None:
        if not state["losses"]:
            return
        loss, infeasible = float(np.mean(state["losses"])), state["infeasible"]
        lr = float(schedule(step))
        shown = {"loss": loss, "lr": lr}
        if infeasible:
            shown["infeasible labels"] = infeasible
        rate = progress.report(step, shown)
        state["last"] = {"step": step, "loss": loss, "steps_per_s": rate, "lr": lr,
                         "infeasible": infeasible}
        record(state["last"])
        state["losses"], state["infeasible"] = [], 0

    def validate(step: int) -> None:
        t = time.perf_counter()
        with progress.paused():  # validation time is not training time
            res = metrics.evaluate_texts(predict(model, alphabet, val_ds))
        out = {"step": step, "val_cer": res["cer"], "val_wer": res["wer"], "val_ned": res["ned"],
               "val_samples": res["num_samples"]}
        progress.say(f"validation at step {step}: CER {res['cer']:.4f}  WER {res['wer']:.4f}  "
                     f"NED {res['ned']:.4f} ({res['num_samples']} words, "
                     f"{time.perf_counter() - t:.1f} s)")
        record(out)
        state["last"] = {**state["last"], **out}

    result = run_loop(step_fn, start=start, total=cfg.steps, checkpoints=checkpoints,
                      checkpoint_every=cfg.checkpoint_every,
                      hooks=[Hook(cfg.log_every, log_metrics), Hook(cfg.eval_every, validate)],
                      progress=progress)
    log(f"{'stopped' if result.interrupted else 'done'}: step {result.step} "
        f"({result.seconds:.1f} s of training steps)")
    return state["last"]
