"""ScrabbleGAN in TensorFlow / Keras 3: handwritten text generation of any length and style."""

__version__ = "0.1.0"
