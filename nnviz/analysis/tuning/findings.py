"""What a tuning sweep showed, in sentences: read back from the step's frames, never a general
claim (a step whose runs all failed says so)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from nnviz.analysis.tuning.steps import _step
from nnviz.i18n import t


def step_findings(step: int, frames: dict[str, Any]) -> list[str]:
    """Sentences saying what this sweep's numbers show (not a general claim)."""
    _step(step)
    summary: pd.DataFrame = frames["summary"]
    if summary.empty:
        return [t("No finished runs to compare yet.")]
    out = [t("**{label}** {status}.", label=r.label, status=_status_words(r.status, r.detail))
           for r in summary.itertuples()
           if r.status not in ("completed",)]
    ok = summary[np.isfinite(summary["val_loss"])]
    if step in (1, 4, 5, 7) and len(ok):
        best = ok.loc[ok["best_val_loss"].idxmin()]
        worst = ok.loc[ok["best_val_loss"].idxmax()]
        out.append(t("Lowest validation loss: **{best}** ({best_loss}); highest: **{worst}** "
                     "({worst_loss}).", best=best.label, best_loss=f"{best.best_val_loss:.3g}",
                     worst=worst.label, worst_loss=f"{worst.best_val_loss:.3g}"))
    if step in (1, 4, 5, 7):
        out.extend(_chance_findings(ok))
    if step == 1 and not frames["layer_std"].empty:
        out.extend(_signal_findings(frames["layer_std"]))
    if step == 2 and len(ok) >= 2:
        fast = ok.loc[ok["seconds_per_epoch"].idxmin()]
        best = ok.loc[ok["val_loss"].idxmin()]
        out.append(t("Fastest epochs: **{fast}** ({fast_s} s, final validation loss "
                     "{fast_loss}). Lowest final validation loss: **{best}** ({best_loss}, "
                     "{best_s} s per epoch).", fast=fast.label,
                     fast_s=f"{fast.seconds_per_epoch:.2g}", fast_loss=f"{fast.val_loss:.3g}",
                     best=best.label, best_loss=f"{best.val_loss:.3g}",
                     best_s=f"{best.seconds_per_epoch:.2g}"))
    if step == 3:
        marks = frames["marks"]
        if marks["best_epoch"] is not None:
            out.append(t("The validation loss was lowest at epoch {epoch}.",
                         epoch=marks["best_epoch"]))
        if marks["stop_epoch"] is not None:
            out.append(t("Early stopping (patience {patience}) stopped at epoch {stop} of "
                         "{epochs}: {patience} epoch(s) without a new best.",
                         patience=marks["patience"], stop=marks["stop_epoch"],
                         epochs=marks["epochs"]))
        elif marks["patience"] is not None:
            out.append(t("Early stopping (patience {patience}) never triggered: the "
                         "validation loss kept improving often enough for all {epochs} "
                         "epochs.", patience=marks["patience"], epochs=marks["epochs"]))
    if step == 6:
        for task, frame in frames["loss_choice"].groupby("task"):
            frame = frame[np.isfinite(frame["value"])]
            if len(frame) < 2:
                continue
            pick = frame["value"].idxmax() if task == "classification" else \
                frame["value"].idxmin()
            row = frame.loc[pick]
            text = ", ".join(f"{r.label} {r.value:.3g}" for r in frame.itertuples())
            task_name = t("Classification") if task == "classification" else \
                t("Regression") if task == "regression" else str(task).capitalize()
            out.append(t("{task}: best **{label}** by {metric} ({values}).", task=task_name,
                         label=row.label, metric=metric_word(row.metric), values=text))
    if step == 7 and not frames["health"].empty:
        worst = frames["health"].groupby(["label", "measure"])["fraction"].mean()
        text = ", ".join(f"{label} {100 * v:.0f}% {measure_word(measure)}"
                         for (label, measure), v in worst.items() if np.isfinite(v))
        if text:
            out.append(t("Average over layers after training: {values}.", values=text))
    if step == 8 and len(ok):
        text = ", ".join(f"{r.label} {r.gap:+.3g}" for r in ok.itertuples())
        best = ok.loc[ok["val_loss"].idxmin()]
        out.append(t("Gap (validation − training loss): {values}. Lowest validation loss: "
                     "**{best}** ({loss}).", values=text, best=best.label,
                     loss=f"{best.val_loss:.3g}"))
    return out


def status_word(status: str) -> str:
    """A run's status ('diverged', 'failed', ...) in the reader's language."""
    return {"completed": t("completed"), "diverged": t("diverged"), "failed": t("failed"),
            "cancelled": t("cancelled"), "running": t("running"),
            "interrupted": t("interrupted")}.get(status, status)


def measure_word(measure: str) -> str:
    """'dead' or 'saturated' (an activation-health measure) in the reader's language."""
    return {"dead": t("dead"), "saturated": t("saturated")}.get(measure, measure)


CHANCE_MARGIN = 0.97  # a best loss above 97% of the chance level counts as "did not learn"


def _chance_findings(summary: pd.DataFrame) -> list[str]:
    """Cross-entropy runs whose best loss stayed at chance level, ln(classes)."""
    stuck = [r for r in summary.itertuples() if r.loss == "cross_entropy" and r.n_classes >= 2
             and r.best_val_loss >= CHANCE_MARGIN * math.log(r.n_classes)]
    if not stuck:
        return []
    k = stuck[0].n_classes
    names = ", ".join(f"**{r.label}**" for r in stuck)
    return [t("{names} stayed at chance level (validation loss ≈ ln {k} = {ln}, the loss of "
              "guessing 1/{k} for every class): it did not learn.", names=names, k=k,
              ln=f"{math.log(k):.2f}")]


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
        trend = t("shrinks") if ratio < 0.5 else t("grows") if ratio > 2 else \
            t("stays about the same")
        parts.append(f"{label}: {trend} (×{ratio:.2g})")
    if not parts:
        return []
    return [t("From the first to the last hidden layer, the signal's std at init: {parts}.",
              parts="; ".join(parts))]


def metric_word(metric: str) -> str:
    """A loss-choice metric ('validation accuracy', ...) in the reader's language."""
    return {"validation accuracy": t("validation accuracy"),
            "distance to the true (w, b)": t("distance to the true (w, b)")}.get(metric, metric)


_DETAILS = (  # the trainer's status details (stored in English) and their messages
    (re.compile(r"diverged at epoch (\d+), step (\d+) \(non-finite (loss|gradient|weights|"
                r"validation loss)\)$"), "diverged"),
    (re.compile(r"cancelled at epoch (\d+), step (\d+)$"), "cancelled"),
    (re.compile(r"stopped early at epoch (\d+): validation loss did not improve for (\d+) "
                r"epochs$"), "stopped"),
)


def detail_words(detail: str) -> str:
    """A run's stored status detail in the reader's language (unknown details as stored)."""
    for pattern, kind in _DETAILS:
        m = pattern.match(detail or "")
        if m is None:
            continue
        if kind == "diverged":
            what = {"loss": t("loss"), "gradient": t("gradient"), "weights": t("weights"),
                    "validation loss": t("validation loss")}[m.group(3)]
            return t("diverged at epoch {epoch}, step {step} (non-finite {what})",
                     epoch=m.group(1), step=m.group(2), what=what)
        if kind == "cancelled":
            return t("cancelled at epoch {epoch}, step {step}", epoch=m.group(1),
                     step=m.group(2))
        return t("stopped early at epoch {epoch}: validation loss did not improve for {n} "
                 "epochs", epoch=m.group(1), n=m.group(2))
    return detail


def _status_words(status: str, detail: str) -> str:
    words = detail_words(detail)
    if status == "diverged":
        return words if detail.startswith("diverged") else \
            t("diverged ({detail})", detail=words) if detail else t("diverged")
    return t("ended {status}", status=status_word(status)) + (f" ({words})" if detail else "")
