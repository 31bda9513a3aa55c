"""A model-wide overview: one row per parameter with its health numbers, for many-layer models.

``overview(run, index)`` returns a DataFrame in model order with exactly these columns::

    param          str     parameter name (as in named_parameters)
    layer          str     the module that owns it (what Explore's layer selector lists)
    type           str     the module's class ("unknown" for checkpoints)
    shape          str     e.g. "64×3×7×7 = 9408"
    numel          int
    std            float   measured std (NaN when no finite value)
    theory_std     float   the init's theoretical std (NaN when unknown or not applicable)
    std_vs_theory  float   std / theory_std at this snapshot (NaN when either is missing or 0)
    grad_norm      float   mean ‖g‖ over the steps since the previous snapshot (NaN: none)
    gradient       str     "yes", "no gradient" (frozen or unused), or "not recorded"
                           (snapshot 0, a checkpoint)
    update_ratio   float   geometric mean ‖ΔW‖/‖W‖ of the sampled steps (NaN: none)
    drift          float   ‖W_t − W_0‖/‖W_0‖ (NaN at a zero W_0)
    nan, inf       int     NaN / ±Inf elements
    flags          str     codes of the diagnostics flags on its layer at this snapshot, comma
                           separated ("" when none)

``filter_rows(df, text)`` keeps rows whose parameter or layer name contains ``text`` (case
insensitive; several words must all match). Numbers that are missing are NaN, so columns stay
numeric and sort as numbers.
"""

from __future__ import annotations

import math

import pandas as pd

from nnviz.analysis import diagnostics, views
from nnviz.i18n import t, tn
from nnviz.store.format import none_to_nan
from nnviz.store.runs import Run

COLUMNS = ["param", "layer", "type", "shape", "numel", "std", "theory_std", "std_vs_theory",
           "grad_norm", "gradient", "update_ratio", "drift", "nan", "inf", "flags"]


def _flags_by_layer(run: Run, index: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for flag in diagnostics.flags_at(run, index):
        for layer in flag.layers:
            codes = out.setdefault(layer, [])
            if flag.code not in codes:
                codes.append(flag.code)
    return out


def overview(run: Run, index: int) -> pd.DataFrame:
    """One row per parameter of snapshot ``index`` (see the module docstring)."""
    snap = run.snapshot(index)
    stats = snap.record.params
    flags = _flags_by_layer(run, snap.index)
    rows = []
    for name in views.param_names(run):
        info = run.param(name)
        s = stats[name]  # the format holds stats for every parameter of the run
        theory = info.theory
        theory_std = (none_to_nan(theory.std) if theory is not None and theory.kind != "unknown"
                      else math.nan)
        std = none_to_nan(s.std)
        ratio = std / theory_std if theory_std and math.isfinite(theory_std) else math.nan
        if s.grad is not None:
            gradient = "yes"
        elif s.extra.get("grad_status"):  # nnviz.watch: a parameter that got no gradient
            gradient = s.extra["grad_status"]
        else:
            gradient = "not recorded"
        module = info.module
        rows.append({
            "param": name, "layer": module, "type": info.module_type,
            "shape": views.shape_text(info.shape), "numel": info.numel,
            "std": std, "theory_std": theory_std, "std_vs_theory": ratio,
            "grad_norm": none_to_nan(s.grad.norm if s.grad is not None else None),
            "gradient": gradient, "update_ratio": none_to_nan(s.update_ratio),
            "drift": none_to_nan(s.drift),
            "nan": s.nan_count, "inf": s.inf_count,
            "flags": ", ".join(flags.get(module, []) + [c for c in flags.get(name, [])
                                                        if c not in flags.get(module, [])]),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def source_line(run: Run) -> str | None:
    """What a run nnviz did not train is ('recorded with nnviz.watch: ...'); None for its own."""
    kind = run.record.source.kind
    source = run.record.source.extra  # what nnviz.watch / the checkpoint reader recorded
    if kind == "watch":
        via = t(" via {integration}", integration=source["integration"]) \
            if source.get("integration") else ""
        wrapper = t(", {wrapper}-wrapped", wrapper=source["wrapper"]) \
            if source.get("wrapper") else ""
        return t("recorded with nnviz.watch{via}: `{model}`{wrapper}, {n} parameters ({watched} "
                 "watched), optimizer `{optimizer}`", via=via, model=source.get("model_class"),
                 wrapper=wrapper, n=f"{int(source.get('n_params', 0)):,}",
                 watched=f"{int(source.get('n_watched', 0)):,}",
                 optimizer=source.get("optimizer") or t("not given"))
    if kind == "checkpoint":
        n = len(source.get("paths", []))
        return tn("{n} checkpoint ({format}), {values} values, weights only: no gradients or "
                  "activations", "{n} checkpoints ({format}), {values} values, weights only: no "
                  "gradients or activations", n, format=source.get("format"),
                  values=f"{int(source.get('n_params', 0)):,}")
    return None


def missing_text(run: Run, what: str) -> str:
    """Why a run shows no ``what`` ("gradients" or "activations"), said plainly."""
    kind = run.record.source.kind
    if kind == "checkpoint":
        return (t("No gradients: checkpoints hold weights only. Record training with "
                  "nnviz.watch(model, optimizer, probe=...) to see them.") if what == "gradients"
                else t("No activations: checkpoints hold weights only. Record training with "
                       "nnviz.watch(model, optimizer, probe=...) to see them."))
    if what == "activations":
        return (t("No activations: this run was recorded without a probe batch (nnviz.watch("
                  "..., probe=x[:64])).") if kind == "watch" else t("No activations recorded."))
    return t("No gradients at init: they appear from the first recorded epoch on.")


def filter_rows(df: pd.DataFrame, text: str) -> pd.DataFrame:
    """Rows whose param or layer contains every word of ``text`` (case-insensitive)."""
    words = [w.lower() for w in (text or "").split()]
    if not words:
        return df
    hay = (df["param"] + " " + df["layer"]).str.lower()
    keep = pd.Series(True, index=df.index)
    for w in words:
        keep &= hay.str.contains(w, regex=False)
    return df[keep]
