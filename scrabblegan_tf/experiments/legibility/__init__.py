"""Time to legibility (``experiment`` runs it, ``settings`` holds its settings, ``__main__`` is the
command line): train a GAN with a recipe and measure how soon its words can be read.

    python -m scrabblegan_tf.experiments.legibility --workdir=runs/legibility_fonts \\
        --results_dir=results/legibility_fonts --model_out=scrabblegan_tf/pretrained/english_fonts

1. An evaluation HTR (``scrabblegan_tf.htr``) is trained on the real training split (or reused:
   ``--htr_workdir``); it reads the real eval split once (natural geometry), the reference.
2. The GAN trains with ``--gan_config`` (default ``cpu``) and the legibility signal on: every
   ``run.eval_every`` iterations, held-out words (never fake-word targets, not training labels) in
   fixed styles are read by R and by that HTR (``legibility.jsonl`` in the GAN workdir).
3. Results (``--results_dir``): ``curve.png`` (CER against training minutes, both readers, the
   real reference and the legibility threshold), ``legibility.md`` (the table and the verdict),
   ``results.json``, ``hello_world.png`` (8 styles) and ``heldout.png`` (the held-out words of the
   last evaluation). With ``--model_out``, G is written as a model folder with its model card.

Legible (issue "The generator writes legibly"): the HTR reads generated held-out words at CER
<= 0.20 and at most twice its CER on the real held-out images. Rerunning the command resumes
every step (HTR, GAN), then rewrites the results.
"""
