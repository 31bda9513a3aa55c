"""Tuning guide, the findings (``nnviz.analysis.tuning.findings``): what the page says about a
step's tables, from hand-made tables (the findings on real runs: test_tuning_frames.py)."""

from __future__ import annotations

import pandas as pd

from nnviz.analysis import tuning
from nnviz.figures import tuning as ft


def test_chance_level_runs_are_named():
    summary = pd.DataFrame({
        "label": ["stuck", "learns", "mse"], "status": ["completed"] * 3,
        "detail": [""] * 3, "loss": ["cross_entropy", "cross_entropy", "mse"],
        "n_classes": [3, 3, 0], "best_val_loss": [1.0986, 0.4, 5.0],
        "val_loss": [1.1, 0.5, 5.0], "train_loss": [1.1, 0.4, 4.0]})
    frames = {"summary": summary, "layer_std": pd.DataFrame(columns=["label", "depth", "std",
                                                                     "output"])}
    text = " ".join(tuning.step_findings(7, {**frames, "health": pd.DataFrame()}))
    assert "**stuck** stayed at chance level (validation loss ≈ ln 3 = 1.10" in text
    assert "**learns** stayed" not in text and "**mse** stayed" not in text


def test_figures_of_empty_tables_say_so():
    empty = tuning.step_frames(2, [])
    assert tuning.step_findings(2, empty) == ["No finished runs to compare yet."]
    fig = ft.loss_curves(tuning.history_frame([]))
    assert fig.layout.annotations[0].text == "no finished epoch to draw"
    fig = ft.lr_find_figure(pd.DataFrame({"lr": [], "loss": [], "smoothed": []}))
    assert fig.layout.annotations[0].text == "the test recorded no point"
