"""Figures of the diagnostics (``nnviz.figures.health``): the health timeline's cells follow the
flags' severities, the signal chart's log axis marks exact zeros and gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from nnviz.analysis import diagnostics as d
from nnviz.figures import health


def test_health_timeline_cells_follow_severity():
    rows = [(0, 0.0, {}), (1, 1.0, {"vanishing": "warning"}),
            (2, 2.0, {"vanishing": "warning", "non_finite": "critical"}),
            (3, 2.5, {"overfitting": "info"})]
    fig = health.health_timeline(rows, current_index=2)
    heat = next(t for t in fig.data if isinstance(t, go.Heatmap))
    assert list(heat.y) == ["non finite", "vanishing", "overfitting"]  # engine's code order
    assert list(heat.x) == ["init", "1", "2", "2.5"]
    assert [list(r) for r in heat.z] == [[0, 0, 3, 0], [0, 2, 2, 0], [0, 0, 0, 1]]
    rect = fig.layout.shapes[0]
    assert (rect.x0, rect.x1) == (1.5, 2.5)
    legend = {t.name: t.showlegend for t in fig.data if isinstance(t, go.Scatter)}
    assert legend == {"info": True, "warning": True, "critical": True}
    empty = health.health_timeline([(0, 0.0, {})], 0)
    assert not [t for t in empty.data if isinstance(t, go.Heatmap)]
    assert "Nothing flagged" in empty.layout.annotations[0].text
    assert empty.layout.yaxis.visible is False and empty.layout.xaxis.visible is False
    assert health.CODE_ORDER == d.CODES


def test_signal_chart_log_axis_zero_markers_and_gaps():
    df = pd.DataFrame({"depth": [1, 2, 3], "layer": ["fc1", "fc2", "out"],
                       "weight_std": [0.5, 0.2, 0.1], "activation_std": [1.0, 1e-4, 0.0],
                       "grad_std": [np.nan, 1e-3, 1e-2], "norm_after": [True, False, False]})
    fig = health.signal_chart(df)
    assert fig.layout.yaxis.type == "log"
    lines = {t.name: t for t in fig.data if t.mode == "lines+markers"}
    assert list(lines["weights (std)"].y) == [0.5, 0.2, 0.1]
    assert list(lines["activation signal (std)"].y) == [1.0, 1e-4, None]
    assert list(lines["gradients (std)"].y) == [None, 1e-3, 1e-2]
    zeros = [t for t in fig.data if t.mode == "markers"]
    assert len(zeros) == 1 and list(zeros[0].x) == [3]
    assert zeros[0].y[0] == pytest.approx(1e-5)  # a decade below the smallest positive value
    assert "exactly 0" in fig.layout.xaxis.title.text
    assert [s.x0 for s in fig.layout.shapes] == [1.5]  # normalization after fc1
    assert health.profile_ratio(df, "weight_std") == pytest.approx(0.2)
    assert "No layers" in health.signal_chart(df.iloc[:0]).layout.annotations[0].text
