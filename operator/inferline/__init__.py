"""Inferline: serve ML inference pipelines on GPUs, on Kubernetes or locally."""

__version__ = "0.1.0"
