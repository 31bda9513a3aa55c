"""Figures as frames for the epoch player: one chart, every snapshot, redrawn in the browser.

A chart is sent once as its first frame's full plotly JSON (``base``) and, for every other
frame, only what differs from it: the trace keys whose value changed (a histogram's bar heights,
a heatmap's z) and the layout keys that changed (a title). Frame k is
``apply_diff(base, frames[k])``: the browser draws it with ``Plotly.react`` the first time and
moves a chart from frame a to frame b with one ``Plotly.update`` of what differs between them
(ui/player/player.js); ``apply_diff`` here is the same rule in Python, so tests check that every
frame is exactly the figure the builder made for that snapshot, and the browser tests that a
chart moved by updates draws what a fresh plot of that frame draws.

Numpy arrays travel as plotly's typed-array spec (base64 ``bdata``), which plotly.js decodes
itself; builders pass float32 where full precision is not visible anyway (heatmap cells).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

Figure = dict[str, Any]


def figure_dict(fig: go.Figure) -> Figure:
    """The figure as plain JSON data ({"data": [...], "layout": {...}}), as plotly.js reads it."""
    out = json.loads(pio.to_json(fig, validate=False, engine="json"))
    out.setdefault("data", [])
    out.setdefault("layout", {})
    return out


def frame_diff(base: Figure, other: Figure) -> dict[str, Any]:
    """What turns ``base`` into ``other``: changed trace keys, changed and dropped layout keys.

    Traces are compared key by key at the top level (``y``, ``z``, ``marker`` ...); a trace that
    lost a key, or a figure with another number of traces, is sent whole.
    """
    diff: dict[str, Any] = {}
    a, b = base["data"], other["data"]
    if len(a) != len(b):
        diff["data"] = b
    else:
        traces: dict[str, Any] = {}
        for i, (ta, tb) in enumerate(zip(a, b, strict=True)):
            if any(k not in tb for k in ta):
                traces[str(i)] = {"__whole__": tb}
                continue
            changed = {k: v for k, v in tb.items() if k not in ta or ta[k] != v}
            if changed:
                traces[str(i)] = changed
        if traces:
            diff["traces"] = traces
    la, lb = base["layout"], other["layout"]
    changed = {k: v for k, v in lb.items() if k not in la or la[k] != v}
    if changed:
        diff["layout"] = changed
    dropped = [k for k in la if k not in lb]
    if dropped:
        diff["drop"] = dropped
    return diff


def apply_diff(base: Figure, diff: dict[str, Any]) -> Figure:
    """Frame = base + diff (what the browser does before ``Plotly.react``)."""
    if "data" in diff:
        data = diff["data"]
    else:
        data = []
        for i, trace in enumerate(base["data"]):
            change = diff.get("traces", {}).get(str(i))
            if change is None:
                data.append(trace)
            elif "__whole__" in change:
                data.append(change["__whole__"])
            else:
                data.append({**trace, **change})
    layout = {k: v for k, v in base["layout"].items() if k not in diff.get("drop", [])}
    layout.update(diff.get("layout", {}))
    return {"data": data, "layout": layout}


def chart_frames(build: Callable[[int], go.Figure], snapshots: Sequence[int]) -> dict[str, Any]:
    """{"base": frame 0 as JSON, "frames": [diff of each frame from it]} for snapshots[k]."""
    figures = [figure_dict(build(i)) for i in snapshots]
    base = figures[0]
    return {"base": base, "frames": [frame_diff(base, f) for f in figures]}


def frame_figure(chart: dict[str, Any], k: int) -> Figure:
    """Frame ``k`` of a chart made by ``chart_frames``."""
    return apply_diff(chart["base"], chart["frames"][k])
