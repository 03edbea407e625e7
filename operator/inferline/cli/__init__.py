"""The `inferline` command line (console script `inferline = inferline.cli:main`)."""

from .app import app, main

__all__ = ["app", "main"]
