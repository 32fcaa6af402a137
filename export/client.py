"""Client of the exported generator served by ``tensorflow_model_server`` (``scrabblegan-client``).

    python export/client.py --texts=hello,world --seeds=7,8 --out_dir=/tmp/out

The code lives in ``scrabblegan_tf.serving.client`` (installed with the package); this file keeps
the repository's entry point. See export/README.md.
"""

from scrabblegan_tf.serving.client import run

if __name__ == "__main__":
    run()
