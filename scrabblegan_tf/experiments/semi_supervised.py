"""Does the unlabeled stream pull the generator towards the unlabeled domain? (issue 6)

Compares two GAN runs trained on the same labelled data, one with ``--unlabeled_dataset`` (images of
other writers, the "test-time domain") and one without, by how close their generated words are to
real images of that domain:

- ``htr_frechet``: Fréchet distance between HTR features (an HTR trained on real data only) of real
  domain images and of generated images of the same texts (lower = closer to the domain);
- legibility (CER / WER of that HTR reading the generated words) and style diversity.

    python -m scrabblegan_tf.experiments.semi_supervised \\
      --baseline=runs/semi_demo/base --semi=runs/semi_demo/semi --htr_workdir=runs/htr \\
      --dataset=dhsd --manual_dir=../shared/data/dhsd --split=test --out_dir=results/semi_supervised

The two GAN runs are made with ``train_main.py`` (same flags, the second one with
``--unlabeled_dataset=<dataset>/h32:<split>``); the README gives the commands.
"""

from __future__ import annotations

import json
import os

from absl import flags

from scrabblegan_tf.cli import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("baseline", None, "GAN workdir trained without the unlabeled stream.")
flags.DEFINE_string("semi", None, "GAN workdir trained with the unlabeled stream.")
flags.DEFINE_string("htr_workdir", None, "HTR workdir (trained on real data only): feature space.")
flags.DEFINE_string("dataset", "dhsd", "Dataset of the unlabeled domain.")
flags.DEFINE_string("manual_dir", None, "Its manual dir.")
flags.DEFINE_string("data_dir", None, "TFDS data dir.")
flags.DEFINE_string("split", "test", "Split holding the unlabeled domain's images.")
flags.DEFINE_integer("num_images", 400, "Real images of the domain to compare with (0: all).")
flags.DEFINE_string("out_dir", "results/semi_supervised", "Where table.md and results.json go.")


def compare(baseline: str, semi: str, htr_workdir: str, *, dataset: str, split: str,
            manual_dir=None, data_dir=None, num_images: int = 400, log=print) -> dict:
    import dataclasses

    from scrabblegan_tf.inference import synthesis
    from scrabblegan_tf.inference.generation import load_generator
    from scrabblegan_tf.data.htr_inputs import real_uint8
    from scrabblegan_tf.training.htr_training import load_htr
    from scrabblegan_tf.evaluation.quality import evaluate_generator

    htr, htr_cfg, _, _, _ = load_htr(htr_workdir)
    domain_cfg = dataclasses.replace(htr_cfg, dataset=dataset, builder_config="")
    images, texts = real_uint8(domain_cfg, split, data_dir=data_dir, manual_dir=manual_dir,
                               limit=num_images, log=log)
    geometry = synthesis.match_geometry([im.shape[1] for im in images], [len(t) for t in texts])
    results = {"domain": f"{dataset}:{split}", "num_real": len(images), "geometry": geometry}
    for name, workdir in (("baseline", baseline), ("semi_supervised", semi)):
        gen, cfg, alphabet, ckpt = load_generator(workdir)
        log(f"{name}: {workdir} ({ckpt}), unlabeled_dataset={cfg.data.unlabeled_dataset!r}")
        r = evaluate_generator(gen, alphabet, htr, real_images=images, real_texts=texts,
                               training_labels=[], max_len=cfg.data.max_label_len,
                               fixed_width=geometry["fixed_width"], char_width=geometry["char_width"],
                               max_width=htr_cfg.max_width, diversity_words=8, num_styles=4, log=log)
        r["workdir"], r["checkpoint"] = workdir, ckpt
        r["unlabeled_dataset"] = cfg.data.unlabeled_dataset
        results[name] = r
    return results


def table(results: dict) -> str:
    rows = ["| run | unlabeled stream | HTR Fréchet distance to the domain (lower = closer) | "
            "CER of generated words | WER | diversity (HTR features) |",
            "|---|---|---|---|---|---|"]
    for name in ("baseline", "semi_supervised"):
        r = results[name]
        leg = r["legibility_all"]
        div = r["diversity"].get("htr_features", float("nan"))
        rows.append(f"| {name} | {r['unlabeled_dataset'] or '-'} | {r['htr_frechet']:.2f} | "
                    f"{leg['cer']:.3f} | {leg['wer']:.3f} | {div:.3f} |")
    return "\n".join(rows) + "\n"


def main(argv):
    if len(argv) > 1:
        raise UserError(f"Unexpected arguments: {argv[1:]}")
    for name in ("baseline", "semi", "htr_workdir"):
        if not getattr(FLAGS, name):
            raise UserError(f"--{name} is required")
    results = compare(FLAGS.baseline, FLAGS.semi, FLAGS.htr_workdir, dataset=FLAGS.dataset,
                      split=FLAGS.split, manual_dir=FLAGS.manual_dir, data_dir=FLAGS.data_dir,
                      num_images=FLAGS.num_images)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    md = table(results)
    with open(os.path.join(FLAGS.out_dir, "table.md"), "w", encoding="utf-8") as f:
        f.write(md)
    with open(os.path.join(FLAGS.out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False, default=str)
    print(md)


def run(argv=None):
    """``python -m scrabblegan_tf.experiments.semi_supervised``."""
    from scrabblegan_tf import cli

    cli.run(main, None, argv, trains=True)


if __name__ == "__main__":
    run()
