"""Figures: pure functions from recorded data to ``plotly.graph_objects.Figure``.

One module per view family (weights, curves, health, tuning); ``style`` holds the shared look.
Tests read the figures' data back, so every figure is built from numbers passed in, never from
global state.
"""
