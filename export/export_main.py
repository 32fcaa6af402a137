"""Export a trained generator as a versioned SavedModel for TF Serving (``scrabblegan-export``).

    python export/export_main.py --export_dir=/srv/models/scrabblegan   # the shipped English model
    python export/export_main.py --workdir=runs/demo --export_dir=/srv/models/scrabblegan

The code lives in ``scrabblegan_tf.serving.export_main`` (installed with the package); this file
keeps the repository's entry point. See export/README.md.
"""

from scrabblegan_tf.serving.export_main import run

if __name__ == "__main__":
    run()
