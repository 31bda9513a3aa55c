"""nnviz: see what weight initialization and training do to a neural network.

A plain library (no Streamlit): configs, models, initializers, data, training, recording,
statistics, diagnostics, storage and figures. The Streamlit app in ``app.py`` and ``pages/``
only draws what this library computes.
"""

__version__ = "0.1.0"
