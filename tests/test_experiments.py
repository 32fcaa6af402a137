"""The HTR augmentation experiment end to end on a tiny config (fake DHSD tree, a GAN trained one
smoke-config iteration by the experiment, 2-step HTRs), and its table/summary helpers."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from scrabblegan_tf.experiments.htr_augmentation.experiment import markdown_table, summarize

REPO = pathlib.Path(__file__).resolve().parents[1]
DHSD_DUMMY = REPO / "datasets" / "dhsd" / "dummy_data"


def test_summary_and_table():
    runs = [
        {"condition": "real", "seed": 0, "test": {"wer": 0.5, "cer": 0.2, "ned": 0.25}},
        {"condition": "real+synthetic", "seed": 0, "test": {"wer": 0.4, "cer": 0.1, "ned": 0.2}},
        {"condition": "real", "seed": 1, "test": {"wer": 0.7, "cer": 0.3, "ned": 0.35}},
    ]
    summary = summarize(runs)
    assert summary["real"] == {"wer": [0.5, 0.7], "cer": [0.2, 0.3], "ned": [0.25, 0.35], "seeds": [0, 1]}
    assert summary["real+synthetic"]["seeds"] == [0]
    table = markdown_table(summary, {"dataset": "dhsd", "test_split": "test", "num_test": 492,
                                     "htr_steps": 10, "num_synthetic": 1000, "synthetic_ratio": 0.2},
                           "python -m x")
    # WER of real: mean 60.00, sample standard deviation of (50, 70) = 14.14.
    assert "| real only | 2 (0, 1) | 60.00 ± 14.14 | 25.00 ± 7.07 | 30.00 ± 7.07 |" in table
    assert "| real + 1,000 synthetic (ratio 0.20) | 1 (0) | 40.00 | 10.00 | 20.00 |" in table
    assert "python -m x" in table


def test_experiment_end_to_end_tiny(tmp_path):
    """The experiment trains its GAN (one smoke-config iteration on the fake DHSD train split, in
    <workdir>/gan), synthesizes 6 words, trains two 2-step HTRs and evaluates them."""
    work, results = tmp_path / "exp", tmp_path / "results"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    args = [sys.executable, "-m", "scrabblegan_tf.experiments.htr_augmentation", "--dataset=dhsd",
            f"--manual_dir={DHSD_DUMMY}", f"--data_dir={tmp_path / 'tfds'}", f"--workdir={work}",
            f"--results_dir={results}", "--gan_config=smoke", "--gan_steps=1",
            "--gan_override=optim.g_every=1", "--gan_override=data.batch_size=2",
            "--gan_override=data.shuffle_buffer=8", "--num_synthetic=6",
            "--seeds=0", "--htr_steps=2", "--htr_override=width_mult=0.25", "--htr_override=lstm_layers=1",
            "--htr_override=batch_size=2", "--htr_override=eval_every=0", "--htr_override=shuffle_buffer=8"]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
    res = json.loads((results / "results.json").read_text())
    assert res["complete"]
    assert [(r["condition"], r["seed"], r["steps"]) for r in res["runs"]] == [
        ("real", 0, 2), ("real+synthetic", 0, 2), ("synthetic", 0, 2)]
    for r in res["runs"]:
        # The fake DHSD test split: 2 readable images.
        assert r["test"]["num_samples"] == 2 and 0.0 <= r["test"]["wer"] <= 1.0
    s = res["settings"]
    # Fake DHSD train split: 10 words, all 128 px wide -> synthetic words resized to 128 px;
    # ratio auto = 6 / (6 + 10).
    assert s["num_real_train"] == 10 and s["synthetic_geometry"] == {"fixed_width": 128, "char_width": None}
    assert s["synthetic_ratio"] == pytest.approx(6 / 16)
    assert s["gan_steps_trained"] == 1 and s["gan_workdir"] == str(work / "gan")
    assert tf.train.latest_checkpoint(str(work / "gan" / "checkpoints")).endswith("ckpt-1")
    synth = json.loads((work / "synthetic_6" / "synthesis.json").read_text())
    assert synth["complete"] and synth["settings"]["num_words"] == 6
    htr_cfg = json.loads((work / "htr" / "real_synthetic" / "seed0" / "htr_config.json").read_text())
    assert htr_cfg["synthetic_dir"].endswith("synthetic_6") and htr_cfg["synthetic_ratio"] == pytest.approx(0.375)
    real_cfg = json.loads((work / "htr" / "real" / "seed0" / "htr_config.json").read_text())
    assert real_cfg["synthetic_dir"] == "" and real_cfg["width_mult"] == 0.25
    # HTG_HTR: the synthetic words alone.
    only = json.loads((work / "htr" / "synthetic" / "seed0" / "htr_config.json").read_text())
    assert only["synthetic_dir"].endswith("synthetic_6") and only["synthetic_ratio"] == 1.0
    q = res["quality"]
    assert q["inception_fid"]["status"] in ("ok", "unavailable") and np.isfinite(q["htr_frechet"])
    table = (results / "table.md").read_text()
    assert "| real only | 1 (0) |" in table and "htr_augmentation" in table
    assert "| 6 synthetic only (HTG_HTR) | 1 (0) |" in table
    # samples.png: 2 test words (left real, right generated), 32-pixel rows.
    png = np.asarray(Image.open(results / "samples.png"))
    assert png.shape == (2 * (32 + 4) + 4, 2 * (128 + 4) + 4)


def test_sigterm_during_gan_training_stops_the_experiment(tmp_path, monkeypatch):
    """A GAN run stopped by SIGTERM (checkpoint saved, TrainResult.interrupted) must not be followed
    by synthesis and HTR training from the half-trained generator; the CLI exits with 143."""
    from scrabblegan_tf.training import gan_training as train_lib
    from scrabblegan_tf.experiments.htr_augmentation.experiment import Experiment, ExperimentSettings, Interrupted
    from scrabblegan_tf.experiments.htr_augmentation import __main__ as cli
    from scrabblegan_tf.experiments.htr_augmentation import experiment

    calls = []
    monkeypatch.setattr(train_lib, "train", lambda cfg, workdir, **kw: calls.append(workdir) or
                        train_lib.TrainResult(step=7, metrics={}, images_per_s=0.0, interrupted="SIGTERM"))

    def must_not_run(*args, **kwargs):
        raise AssertionError("the experiment went on after the GAN was stopped")

    monkeypatch.setattr(Experiment, "synthesize", must_not_run)
    monkeypatch.setattr(Experiment, "htr_run", must_not_run)
    settings = ExperimentSettings(workdir=str(tmp_path / "exp"), gan_config="smoke", gan_steps=10)
    logs = []
    with pytest.raises(Interrupted, match="SIGTERM at iteration 7"):
        Experiment(settings, log=logs.append).run()
    assert calls == [str(tmp_path / "exp" / "gan")]
    assert not (tmp_path / "exp" / "results.json").exists()

    def interrupted_run(settings, command="", log=print):
        raise Interrupted("stopped")

    monkeypatch.setattr(experiment, "run", interrupted_run)
    monkeypatch.setattr(cli, "build_settings", lambda: settings)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["prog"])
    assert exit_info.value.code == train_lib.EXIT_SIGTERM == 143


def test_legibility_criterion_and_curve_helpers(tmp_path):
    """Legible: HTR CER <= 0.20 and <= 2 x the HTR's CER on real images; the first such point of
    legibility.jsonl (the last record per step wins, as after a resume); the table and the chart."""
    from scrabblegan_tf.evaluation import plot
    from scrabblegan_tf.experiments.legibility import experiment as leg

    assert leg.legible(0.19, 0.1) and not leg.legible(0.21, 0.2) and not leg.legible(0.15, 0.07)
    # Real handwriting (max_cer 1): only "within 2 x the real images' CER" (0.9 <= 2 x 0.5; 1.1 > 1.0).
    assert leg.legible(0.9, 0.5, max_cer=1.0) and not leg.legible(1.1, 0.5, max_cer=1.0)
    assert leg.bound(0.5) == 0.2 and leg.bound(0.5, max_cer=1.0) == 1.0 and leg.bound(0.04) == 0.08
    path = tmp_path / "legibility.jsonl"
    rows = [{"step": 500, "minutes": 5.0, "cer_r": 0.9, "cer_htr": 0.95, "wer_htr": 1.0},
            {"step": 1000, "minutes": 10.0, "cer_r": 0.3, "cer_htr": 0.5, "wer_htr": 0.9},
            {"step": 1000, "minutes": 11.0, "cer_r": 0.1, "cer_htr": 0.12, "wer_htr": 0.5},
            {"step": 1500, "minutes": 15.0, "cer_r": 0.05, "cer_htr": 0.08, "wer_htr": 0.3}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    points = leg.read_points(str(path))
    assert [p["step"] for p in points] == [500, 1000, 1500] and points[1]["minutes"] == 11.0
    assert leg.first_legible(points, 0.05)["step"] == 1500  # 0.12 > 2 x 0.05
    assert leg.first_legible(points, 0.1)["step"] == 1000
    assert leg.first_legible(points[:1], 0.1) is None
    table = leg.markdown_table(points, 0.1)
    assert "| 1000 | 11.0 | 0.100 | 0.120 | 0.500 | yes |" in table
    chart = plot.line_chart({"a": ([0, 5, 10], [1.0, 0.5, 0.2])}, references={"r": 0.1},
                            title="t", xlabel="x", ylabel="y", ymax=1.0, size=(300, 200))
    assert chart.shape == (200, 300, 3) and chart.dtype == np.uint8
    assert (chart != 255).any(axis=2).sum() > 500  # something was drawn


def test_legibility_verdict_with_a_weak_reader_and_report_rewrite(tmp_path):
    """An evaluation HTR that misreads real images at CER > 0.5 cannot decide legibility (2 x 0.64
    bounds nothing): the verdict says so instead of "legible from iteration 500"; R's milestone is
    the first point with R CER <= 0.20; --report_only rewrites legibility.md and the model card."""
    from scrabblegan_tf.inference import model_folder
    from scrabblegan_tf.experiments.legibility import experiment as leg

    points = [{"step": 500, "minutes": 1.1, "cer_r": 0.91, "cer_htr": 0.78, "wer_htr": 1.0},
              {"step": 1000, "minutes": 2.2, "cer_r": 0.21, "cer_htr": 0.70, "wer_htr": 1.0},
              {"step": 1500, "minutes": 3.3, "cer_r": 0.20, "cer_htr": 0.60, "wer_htr": 1.0}]
    assert leg.first_legible(points, 0.64, max_cer=1.0)["step"] == 500  # 0.78 <= 1.28: vacuous
    weak = leg.verdict(points, 0.64, max_cer=1.0)
    assert weak.startswith("not decided by the evaluation HTR") and "0.640" in weak
    assert "(met here)" in weak
    assert leg.verdict(points, 0.05) == "not legible by the criterion within this run"
    assert leg.verdict(points, 0.31, max_cer=1.0) == "legible from iteration 1500 (3.3 training minutes)"
    assert leg.r_milestone(points) == "R reads them at CER <= 0.2 from iteration 1500 (3.3 minutes)"
    assert leg.r_milestone(points[:2]).startswith("R never")

    results = tmp_path / "results"
    results.mkdir()
    summary = {"dataset": "dhsd", "gan_config": "cpu", "gan_overrides": [], "gan_steps": 1500,
               "htr": "htr/real", "htr_step": 3000, "htr_reads_real": {"cer": 0.64, "wer": 1.0, "num": 492},
               "final": points[-1], "eval_split_words": None, "max_cer": 1.0, "points": points}
    (results / "results.json").write_text(json.dumps(summary))
    (results / "legibility.md").write_text("# Old title\n\nVerdict: legible from iteration 500\n")
    model = tmp_path / "model"
    model.mkdir()
    model_folder.write_card(model, {"title": "G", "legibility (held-out words)": {
        "CER read by R": 0.2, "verdict": "legible from iteration 500 (1.1 training minutes)"}})
    assert leg.rewrite_report(str(results), model_out=str(model), log=lambda *_: None) == weak
    md = (results / "legibility.md").read_text()
    assert md.startswith("# Old title\n") and "not decided by the evaluation HTR" in md
    assert (results / "curve.png").stat().st_size > 1000
    assert "| 1500 | 3.3 | 0.200 | 0.600 | 1.000 | yes |" in md and "iteration 500 (" not in md
    card = json.loads((model / model_folder.CARD_JSON).read_text())["legibility (held-out words)"]
    assert card["verdict"] == weak and card["CER read by R"] == 0.2 and "R milestone" in card
    assert "not decided" in (model / model_folder.CARD_MD).read_text()
