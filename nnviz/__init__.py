"""nnviz: see what weight initialization and training do to a neural network.

A plain library (no Streamlit): configs, models, initializers, data, training, recording,
statistics, diagnostics, storage and figures. The Streamlit app in ``app.py`` and ``pages/``
only draws what this library computes.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``nnviz.watch`` without importing torch at ``import nnviz`` (see nnviz.engine.watch)."""
    if name == "watch":
        from nnviz.engine.watch import watch

        return watch
    raise AttributeError(f"module 'nnviz' has no attribute {name!r}")
