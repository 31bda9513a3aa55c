"""What a tuning sweep showed, in sentences: read back from the step's frames, never a general
claim (a step whose runs all failed says so)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from nnviz.analysis.tuning.steps import _step


def step_findings(step: int, frames: dict[str, Any]) -> list[str]:
    """Sentences saying what this sweep's numbers show (not a general claim)."""
    _step(step)
    summary: pd.DataFrame = frames["summary"]
    if summary.empty:
        return ["No finished runs to compare yet."]
    out = [f"**{r.label}** {_status_words(r.status, r.detail)}." for r in summary.itertuples()
           if r.status not in ("completed",)]
    ok = summary[np.isfinite(summary["val_loss"])]
    if step in (1, 4, 5, 7) and len(ok):
        best = ok.loc[ok["best_val_loss"].idxmin()]
        worst = ok.loc[ok["best_val_loss"].idxmax()]
        out.append(f"Lowest validation loss: **{best.label}** ({best.best_val_loss:.3g}); "
                   f"highest: **{worst.label}** ({worst.best_val_loss:.3g}).")
    if step in (1, 4, 5, 7):
        out.extend(_chance_findings(ok))
    if step == 1 and not frames["layer_std"].empty:
        out.extend(_signal_findings(frames["layer_std"]))
    if step == 2 and len(ok) >= 2:
        fast = ok.loc[ok["seconds_per_epoch"].idxmin()]
        best = ok.loc[ok["val_loss"].idxmin()]
        out.append(f"Fastest epochs: **{fast.label}** ({fast.seconds_per_epoch:.2g} s, final "
                   f"validation loss {fast.val_loss:.3g}). Lowest final validation loss: "
                   f"**{best.label}** ({best.val_loss:.3g}, {best.seconds_per_epoch:.2g} s per "
                   "epoch).")
    if step == 3:
        marks = frames["marks"]
        if marks["best_epoch"] is not None:
            out.append(f"The validation loss was lowest at epoch {marks['best_epoch']}.")
        if marks["stop_epoch"] is not None:
            out.append(f"Early stopping (patience {marks['patience']}) stopped at epoch "
                       f"{marks['stop_epoch']} of {marks['epochs']}: {marks['patience']} "
                       "epoch(s) without a new best.")
        elif marks["patience"] is not None:
            out.append(f"Early stopping (patience {marks['patience']}) never triggered: the "
                       f"validation loss kept improving often enough for all "
                       f"{marks['epochs']} epochs.")
    if step == 6:
        for task, frame in frames["loss_choice"].groupby("task"):
            frame = frame[np.isfinite(frame["value"])]
            if len(frame) < 2:
                continue
            pick = frame["value"].idxmax() if task == "classification" else \
                frame["value"].idxmin()
            row = frame.loc[pick]
            text = ", ".join(f"{r.label} {r.value:.3g}" for r in frame.itertuples())
            out.append(f"{str(task).capitalize()}: best **{row.label}** by {row.metric} "
                       f"({text}).")
    if step == 7 and not frames["health"].empty:
        worst = frames["health"].groupby(["label", "measure"])["fraction"].mean()
        text = ", ".join(f"{label} {100 * v:.0f}% {measure}"
                         for (label, measure), v in worst.items() if np.isfinite(v))
        if text:
            out.append(f"Average over layers after training: {text}.")
    if step == 8 and len(ok):
        text = ", ".join(f"{r.label} {r.gap:+.3g}" for r in ok.itertuples())
        best = ok.loc[ok["val_loss"].idxmin()]
        out.append(f"Gap (validation − training loss): {text}. Lowest validation loss: "
                   f"**{best.label}** ({best.val_loss:.3g}).")
    return out


CHANCE_MARGIN = 0.97  # a best loss above 97% of the chance level counts as "did not learn"


def _chance_findings(summary: pd.DataFrame) -> list[str]:
    """Cross-entropy runs whose best loss stayed at chance level, ln(classes)."""
    stuck = [r for r in summary.itertuples() if r.loss == "cross_entropy" and r.n_classes >= 2
             and r.best_val_loss >= CHANCE_MARGIN * math.log(r.n_classes)]
    if not stuck:
        return []
    k = stuck[0].n_classes
    names = ", ".join(f"**{r.label}**" for r in stuck)
    return [f"{names} stayed at chance level (validation loss ≈ ln {k} = {math.log(k):.2f}, "
            f"the loss of guessing 1/{k} for every class): it did not learn."]


def _signal_findings(layer_std: pd.DataFrame) -> list[str]:
    """How much the output std changes from the first to the last hidden layer, per init."""
    parts = []
    hidden = layer_std[~layer_std["output"].astype(bool)]
    for label, frame in hidden.groupby("label", sort=False):
        stds = frame.sort_values("depth")["std"].to_numpy()
        if len(stds) < 2 or not (np.isfinite(stds[0]) and np.isfinite(stds[-1])) or \
                stds[0] <= 0:
            continue
        ratio = stds[-1] / stds[0]
        trend = "shrinks" if ratio < 0.5 else "grows" if ratio > 2 else "stays about the same"
        parts.append(f"{label}: {trend} (×{ratio:.2g})")
    if not parts:
        return []
    return ["From the first to the last hidden layer, the signal's std at init "
            + "; ".join(parts) + "."]


def _status_words(status: str, detail: str) -> str:
    if status == "diverged":
        return detail if detail.startswith("diverged") else \
            f"diverged ({detail})" if detail else "diverged"
    return f"ended {status}" + (f" ({detail})" if detail else "")
