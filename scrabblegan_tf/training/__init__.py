"""Training: devices, strategy and precision, the shared step loop with its hooks, the GAN and HTR
training jobs, the legibility monitor. Imports ``core``, ``models`` and ``data``."""
