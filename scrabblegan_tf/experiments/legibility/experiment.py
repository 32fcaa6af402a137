"""The legibility experiment: the evaluation HTR, the GAN with the legibility signal, the report
(curve, table, verdict, pictures) and the model folder. See the package docstring."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time

from scrabblegan_tf.core import config as config_lib
from scrabblegan_tf.core import imaging, metrics, run_folder
from scrabblegan_tf.core.htr_config import HTRConfig
from scrabblegan_tf.data import inputs
from scrabblegan_tf.data.htr_inputs import real_uint8
from scrabblegan_tf.evaluation import plot
from scrabblegan_tf.experiments.legibility.settings import (R_MILESTONE, REAL_FACTOR, THRESHOLD,
                                                            WEAK_READER_CER, Settings)
from scrabblegan_tf.inference import model_folder
from scrabblegan_tf.inference.generation import render
from scrabblegan_tf.models.crnn import read_uint8
from scrabblegan_tf.training import distribution
from scrabblegan_tf.training import gan_training as train_lib
from scrabblegan_tf.training.htr_training import load_htr
from scrabblegan_tf.training.htr_training import train as train_htr
from scrabblegan_tf.training.monitor import load_images


def read_points_words(gan_dir: str) -> list[str]:
    """The held-out words of the run's last saved evaluation."""
    folder = os.path.join(gan_dir, "heldout")
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return load_images(os.path.join(folder, files[-1]))[1] if files else []


def bound(cer_real: float, max_cer: float = THRESHOLD) -> float:
    """The largest HTR CER of generated words called legible."""
    return min(max_cer, REAL_FACTOR * cer_real)


def legible(cer_htr: float, cer_real: float, max_cer: float = THRESHOLD) -> bool:
    return cer_htr <= bound(cer_real, max_cer)


def first_legible(points: list[dict], cer_real: float, max_cer: float = THRESHOLD) -> dict | None:
    """The first evaluation point whose HTR CER meets the legibility criterion, or None."""
    for p in points:
        if "cer_htr" in p and legible(p["cer_htr"], cer_real, max_cer):
            return p
    return None


def first_below(points: list[dict], key: str, threshold: float) -> dict | None:
    """The first evaluation point whose ``key`` (e.g. ``cer_r``) is at or below ``threshold``."""
    for p in points:
        if key in p and p[key] <= threshold:
            return p
    return None


def verdict(points: list[dict], cer_real: float, max_cer: float = THRESHOLD) -> str:
    """One sentence: when the words became legible by the criterion, or why the criterion says
    nothing (an evaluation HTR that misreads real images at CER > ``WEAK_READER_CER``)."""
    first = first_legible(points, cer_real, max_cer)
    if cer_real > WEAK_READER_CER:
        return (f"not decided by the evaluation HTR: it misreads real images at CER {cer_real:.3f} "
                f"(> {WEAK_READER_CER:g}), so 'within {REAL_FACTOR:g}x of real' holds for almost any "
                f"image ({'met' if first else 'not met'} here); judge by the pictures and by R")
    if first:
        return f"legible from iteration {first['step']} ({first['minutes']:.1f} training minutes)"
    return "not legible by the criterion within this run"


def r_milestone(points: list[dict]) -> str:
    """When R first read the held-out words at CER <= ``R_MILESTONE`` (necessary, not sufficient)."""
    p = first_below(points, "cer_r", R_MILESTONE)
    return (f"R reads them at CER <= {R_MILESTONE:g} from iteration {p['step']} "
            f"({p['minutes']:.1f} minutes)" if p else f"R never reads them at CER <= {R_MILESTONE:g}")


def report_markdown(summary: dict, *, max_cer: float, title: str = "") -> str:
    """legibility.md from the experiment's ``results.json`` summary."""
    real = summary["htr_reads_real"]
    points, last, ordinary = summary["points"], summary.get("final") or {}, summary.get("eval_split_words")
    split = summary.get("eval_split", "test")
    overrides = summary.get("gan_overrides") or []
    nan = float("nan")
    return "\n".join([
        f"# {title or 'Legibility while training'}", "",
        f"Dataset `{summary['dataset']}`, GAN preset `{summary['gan_config']}`"
        + (f" with `{' '.join(overrides)}`" if overrides else "")
        + f", {summary['gan_steps']} iterations. Evaluation HTR `{summary['htr']}` (step "
        f"{summary['htr_step']}) reads {real['num']} real `{split}` images at CER {real['cer']:.3f}. "
        f"Legible: HTR CER <= {max_cer:g} and <= {REAL_FACTOR:g} x {real['cer']:.3f}.", "",
        f"**Verdict: {verdict(points, real['cer'], max_cer)}.** Final: CER "
        f"{last.get('cer_htr', nan):.3f} (HTR), {last.get('cer_r', nan):.3f} (R) at iteration "
        f"{last.get('step')}, {last.get('minutes', nan):.1f} minutes; {r_milestone(points)}.", "",
        (f"Distinct letters-only words of the `{split}` split ({ordinary['num']}, not held out: "
         f"words a user might ask for), one style each, read by the same HTR: CER "
         f"{ordinary['cer']:.3f}, WER {ordinary['wer']:.3f}." if ordinary else ""), "",
        markdown_table(points, real["cer"], max_cer), ""])


def write_curve(summary: dict, path: str, *, max_cer: float, title: str = "") -> str:
    """curve.png: CER of the held-out words against training minutes (both readers), the HTR's
    CER on real images and the legibility bound (marked uninformative for a weak reader)."""
    points, real = summary["points"], summary["htr_reads_real"]["cer"]
    limit = bound(real, max_cer)
    limit_name = (f"within {REAL_FACTOR:g}x real: CER <= {limit:.3f} (uninformative)"
                  if real > WEAK_READER_CER else f"legible: CER <= {limit:.3f}")
    curve = plot.line_chart(
        {"generated, read by the HTR": ([p["minutes"] for p in points if "cer_htr" in p],
                                        [p["cer_htr"] for p in points if "cer_htr" in p]),
         "generated, read by R": ([p["minutes"] for p in points], [p["cer_r"] for p in points])},
        references={f"real images, read by the HTR ({real:.3f})": real, limit_name: limit},
        title=title or f"Legibility of held-out words while training ({summary['dataset']}, "
                       f"{summary['gan_config']})",
        xlabel="training minutes", ylabel="CER", ymax=1.0)
    return imaging.save_png_rgb(curve, path)


def read_points(path: str) -> list[dict]:
    """legibility.jsonl -> one dict per evaluation, the last one kept per step (resumed runs)."""
    if not os.path.exists(path):
        return []
    by_step: dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                p = json.loads(line)
                by_step[int(p["step"])] = p
    return [by_step[s] for s in sorted(by_step)]


def fill_htr_reads(points: list[dict], gan_dir: str, read, log=print) -> list[dict]:
    """Points without ``cer_htr`` (the GAN trained without the HTR as a live reader, e.g. before
    the HTR existed) get it from the held-out images that evaluation saved
    (``heldout/step_N.npz``), read now: the same images, so the same figure."""
    out = []
    for p in points:
        path = os.path.join(gan_dir, "heldout", f"step_{int(p['step']):07d}.npz")
        if "cer_htr" not in p and os.path.exists(path):
            images, words = load_images(path)
            m = metrics.evaluate_texts(read(images), words)
            p = {**p, "cer_htr": m["cer"], "wer_htr": m["wer"], "htr_read_after_training": True}
        out.append(p)
    missing = [p["step"] for p in out if "cer_htr" not in p]
    if missing:
        log(f"no HTR reading for iterations {missing} (no saved held-out images)")
    return out


def markdown_table(points: list[dict], cer_real: float, max_cer: float = THRESHOLD) -> str:
    rows = ["| iteration | minutes | CER read by R | CER read by the HTR | WER (HTR) | meets the criterion |",
            "|---|---|---|---|---|---|"]
    for p in points:
        ok = legible(p["cer_htr"], cer_real, max_cer) if "cer_htr" in p else False
        rows.append(f"| {p['step']} | {p['minutes']:.1f} | {p.get('cer_r', float('nan')):.3f} | "
                    f"{p.get('cer_htr', float('nan')):.3f} | {p.get('wer_htr', float('nan')):.3f} | "
                    f"{'yes' if ok else 'no'} |")
    return "\n".join(rows)


def ensure_htr(s: Settings, log=print) -> str:
    if s.htr_workdir:
        return s.htr_workdir
    path = os.path.join(s.workdir, "htr")
    cfg = HTRConfig().replace(dataset=s.dataset, steps=s.htr_steps,
                              **HTRConfig.parse_overrides(s.htr_overrides))
    if cfg.dataset == "handwriting_fonts":  # no validation split: validate on the test split
        cfg = cfg.replace(val_split="test")
    train_htr(cfg, path, data_dir=s.data_dir, manual_dir=s.manual_dir, log=log)
    return path


def run(s: Settings, log=print) -> dict:
    os.makedirs(s.results_dir, exist_ok=True)
    t_htr = time.time()
    htr_dir = ensure_htr(s, log=log)
    htr_minutes = (time.time() - t_htr) / 60.0
    model, htr_cfg, htr_alphabet, htr_ckpt, htr_step = load_htr(htr_dir)

    def read(images):
        return read_uint8(model, htr_alphabet, images, max_width=htr_cfg.max_width)

    cfg = config_lib.get_config(s.gan_config, list(s.gan_overrides))
    cfg.data.dataset = s.dataset
    if s.gan_steps:
        cfg.run.steps = s.gan_steps
    real_cfg = htr_cfg.replace(dataset=s.dataset)
    real_images, real_texts = real_uint8(real_cfg, cfg.data.eval_split, data_dir=s.data_dir,
                                         manual_dir=s.manual_dir, limit=s.real_examples, log=log)
    real = metrics.evaluate_texts(read(real_images), real_texts)
    log(f"the HTR ({htr_ckpt}) reads {len(real_texts)} real {cfg.data.eval_split} images at CER "
        f"{real['cer']:.3f}: legible means CER <= {bound(real['cer'], s.max_cer):.3f}")

    gan_dir = os.path.join(s.workdir, "gan")
    t0 = time.time()
    result = train_lib.train(cfg, gan_dir, data_dir=s.data_dir, manual_dir=s.manual_dir,
                             eval_readers={"htr": read}, log=log)
    if result.interrupted:
        raise SystemExit(train_lib.EXIT_SIGTERM)
    session_minutes = (time.time() - t0) / 60.0

    points = read_points(os.path.join(gan_dir, "legibility.jsonl"))
    points = fill_htr_reads(points, gan_dir, read, log=log)
    first = first_legible(points, real["cer"], s.max_cer)
    last = points[-1] if points else {}

    # Pictures from the final G (inference mode), as the CLIs see it.

    gen = result.gan.generator
    alphabet = inputs.resolve_alphabet(cfg)
    # Ordinary words: the distinct texts of the eval split (letters only, as a user would ask for
    # them), each in its own style, read by the HTR. Unlike the held-out words they may be among
    # the fake-word targets, like any word a user asks for.
    ordinary = sorted({t for t in real_texts if t.isalpha() and alphabet.can_encode(t)
                       and 2 <= len(t) <= cfg.data.lexicon_max_len})[: s.ordinary_words]
    ordinary_images = render(gen, alphabet, ordinary, seeds=[10_000 + i for i in range(len(ordinary))])
    ordinary_m = metrics.evaluate_texts(read(ordinary_images), ordinary) if ordinary else {}
    if ordinary_m:
        log(f"the HTR reads {len(ordinary)} generated words of the {cfg.data.eval_split} split "
            f"at CER {ordinary_m['cer']:.3f} (WER {ordinary_m['wer']:.3f})")
    hello = "hello world" if alphabet.can_encode("hello world") else "Hallo Welt"
    imaging.save_png(imaging.grid(render(gen, alphabet, [hello] * 8, seeds=list(range(8)))),
                     os.path.join(s.results_dir, "hello_world.png"))

    summary = {
        "dataset": s.dataset, "gan_config": s.gan_config, "gan_overrides": list(s.gan_overrides),
        "gan_steps": cfg.run.steps, "gan_session_minutes": round(session_minutes, 1),
        "gan_training_minutes": last.get("minutes"), "htr": htr_dir, "htr_step": htr_step,
        "htr_minutes_this_session": round(htr_minutes, 1),
        "htr_reads_real": {"cer": real["cer"], "wer": real["wer"], "num": len(real_texts)},
        "final": last, "first_legible": first,
        "eval_split_words": ({"cer": ordinary_m["cer"], "wer": ordinary_m["wer"],
                              "num": len(ordinary)} if ordinary_m else None),
        "legible_threshold": bound(real["cer"], s.max_cer), "max_cer": s.max_cer,
        "eval_split": cfg.data.eval_split, "points": points,
    }
    with open(os.path.join(s.results_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    write_curve(summary, os.path.join(s.results_dir, "curve.png"), max_cer=s.max_cer, title=s.title)
    text = verdict(points, real["cer"], s.max_cer)
    with open(os.path.join(s.results_dir, "legibility.md"), "w", encoding="utf-8") as f:
        f.write(report_markdown(summary, max_cer=s.max_cer, title=s.title))
    # The held-out words of the last evaluation, as the monitor drew them.
    if last:
        grid = os.path.join(gan_dir, "samples", f"heldout_{int(last['step']):07d}.png")
        if os.path.exists(grid):
            shutil.copyfile(grid, os.path.join(s.results_dir, "heldout.png"))
    ship = bool(s.model_out) and (not s.model_out_if_legible or
                                  (bool(last) and "cer_htr" in last and legible(last["cer_htr"], real["cer"], s.max_cer)))
    if s.model_out and not ship:
        log(f"not writing {s.model_out}: the final generator is not legible by the criterion")
    if ship:
        def r3(x):
            return None if x is None else round(float(x), 3)

        card = {
            "title": f"ScrabbleGAN generator: {s.dataset} ({s.gan_config} preset)",
            "data": f"{s.dataset} train split (real labelled images); fake words: the "
                    f"'{cfg.data.lexicon}' lexicon of the alphabet ({alphabet.name})",
            "command": s.command or "python -m scrabblegan_tf.experiments.legibility",
            "iterations": cfg.run.steps, "training minutes": r3(last.get("minutes")),
            "machine": _machine(),
            "precision": distribution.resolve_mixed_precision(cfg.run.mixed_precision)[0] or "float32",
            "legibility (held-out words)": {
                "held-out words": len(read_points_words(gan_dir)),
                "CER read by the evaluation HTR": r3(last.get("cer_htr")),
                "CER read by R": r3(last.get("cer_r")),
                "HTR CER on real images": r3(real["cer"]),
                "CER read by the HTR, words of the eval split (not held out)":
                    r3(ordinary_m.get("cer")) if ordinary_m else None,
                "R milestone": r_milestone(points),
                "verdict": text},
            "evaluation HTR": f"{htr_dir} (step {htr_step}), trained on the real train split",
            "config": f"config.json (width {cfg.model.width_mult}, {cfg.model.char_width} pixels per "
                      f"character)",
            "results": s.results_dir,
        }

        config_json, _ = run_folder.read_settings(gan_dir)
        model_folder.write_model_folder(gen, config_json, alphabet.to_json(), s.model_out, card=card)
        log(f"model folder: {s.model_out}")
    log(f"legibility: {text}; results in {s.results_dir}")
    return summary


def rewrite_report(results_dir: str, *, max_cer: float | None = None, title: str = "",
                   model_out: str = "", log=print) -> str:
    """Rewrites ``legibility.md`` (and, with ``model_out``, the model card's verdict) from the
    ``results.json`` of a finished experiment, without training: for a changed report format."""
    with open(os.path.join(results_dir, "results.json"), encoding="utf-8") as f:
        summary = json.load(f)
    max_cer = summary.get("max_cer", THRESHOLD) if max_cer is None else max_cer
    md_path = os.path.join(results_dir, "legibility.md")
    if not title and os.path.exists(md_path):
        with open(md_path, encoding="utf-8") as f:
            first_line = f.readline()
        title = first_line[2:].strip() if first_line.startswith("# ") else ""
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(report_markdown(summary, max_cer=max_cer, title=title))
    write_curve(summary, os.path.join(results_dir, "curve.png"), max_cer=max_cer, title=title)
    text = verdict(summary["points"], summary["htr_reads_real"]["cer"], max_cer)
    if model_out:
        card_path = os.path.join(model_out, model_folder.CARD_JSON)
        with open(card_path, encoding="utf-8") as f:
            card = json.load(f)
        leg = card.setdefault("legibility (held-out words)", {})
        leg.pop("verdict", None)
        leg["R milestone"] = r_milestone(summary["points"])
        leg["verdict"] = text
        model_folder.write_card(model_out, card)
        log(f"model card: {os.path.join(model_out, model_folder.CARD_MD)}")
    log(f"legibility: {text}; {md_path}")
    return text


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = f"{len(names)} x {names[0]}" if names else cpu
    except OSError:
        pass
    return cpu
