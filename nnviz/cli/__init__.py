"""The ``nnviz`` command line."""

from nnviz.cli.main import main

__all__ = ["main"]
