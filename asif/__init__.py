"""ASIF: a training-free image-text model from two frozen encoders and anchor pairs."""

__version__ = "0.1.0"
