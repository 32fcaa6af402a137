"""Evaluation of generators: HTR legibility, FID-style distances, diversity, charts. Imports the
layers below (training for the HTR)."""
