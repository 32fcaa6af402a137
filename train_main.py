"""Train ScrabbleGAN (``scrabblegan-train``): flags -> config -> ``train.train(config, workdir)``.

    python train_main.py --dataset=cvl --manual_dir=~/cvl-database-1-1 --workdir=runs/cvl
    python train_main.py --config=smoke --steps=30 --workdir=/tmp/sg   # then --steps=40 resumes

The code lives in ``scrabblegan_tf.train_cli`` (installed with the package); this file keeps the
repository's entry point.
"""

from scrabblegan_tf.train_cli import run

if __name__ == "__main__":
    run()
