"""The ``mlops-supervisor`` command line. Imports stay lazy so ``--help`` is instant."""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
