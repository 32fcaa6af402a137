"""The networks and their losses: G, D, R, the ScrabbleGAN keras.Model (train_step), the
evaluation CRNN; built from explicit keyword arguments (``factory``: from a ``ModelConfig``).
Imports only ``core``."""
