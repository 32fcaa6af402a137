"""Inputs: the TFDS builders, tf.data pipelines of the GAN and the HTR, lexicons, image folders,
and the assembly of a training run's inputs. Imports ``core`` and ``models``."""
