"""Experiments that use the library end to end (see README.md in this folder).

- ``htr_augmentation``: does adding ScrabbleGAN words to a real training set help a handwriting
  recognizer? ``python -m scrabblegan_tf.experiments.htr_augmentation --dataset=dhsd ...``
"""
