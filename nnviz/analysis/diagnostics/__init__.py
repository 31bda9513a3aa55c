"""Diagnostics: what is wrong with a run, the numbers that prove it, and the step that fixes it.

Everything is computed from recorded data only (the run's ``RunRecord``, each snapshot's
``SnapshotStats``, and the stored values of weight tensors for the symmetry check), so a run
imported from a zip file is diagnosed exactly like one trained here.

The package, one job per module: ``flags`` (the Flag record, codes, titles, thresholds and
tuning-guide steps), ``context`` (reading a run), ``magnitude`` (non_finite, exploding,
vanishing), ``units`` (symmetry, frozen, dead_relu, saturation), ``learning`` (lr_too_high,
lr_too_low, overfitting, not_learning), and here the entry points.

Checks run per snapshot (``flags_at``); ``diagnose`` merges snapshots 0..upto into one flag per
code (severity = the worst seen, evidence from the latest snapshot where it held) and
``timeline`` lists the codes that hold at each snapshot. ``not_learning`` is the honest
catch-all: it holds only where no other warning or critical flag explains the failure.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict

import pandas as pd

from nnviz.analysis.diagnostics.context import Context, grad_of, order, signal_of, update_ratio
from nnviz.analysis.diagnostics.flags import (
    CODES,
    GUIDE_STEPS,
    GUIDE_URL,
    RANK,
    SEVERITIES,
    TITLES,
    UPDATE_RATIO_REF,
    Flag,
    format_value,
    guide_url,
)
from nnviz.analysis.diagnostics.learning import (
    check_lr_high,
    check_lr_low,
    check_not_learning,
    check_overfitting,
)
from nnviz.analysis.diagnostics.magnitude import (
    check_exploding,
    check_non_finite,
    check_vanishing,
)
from nnviz.analysis.diagnostics.units import (
    _rows_identical,
    check_dead_relu,
    check_frozen,
    check_saturation,
    check_symmetry,
)
from nnviz.i18n import t, tn
from nnviz.store.format import finite_or_none
from nnviz.store.runs import Run

__all__ = [
    "CODES", "GUIDE_STEPS", "GUIDE_URL", "SEVERITIES", "TITLES", "UPDATE_RATIO_REF", "Flag",
    "_rows_identical", "diagnose", "epochs_text", "flags_at", "format_flag", "format_value",
    "format_report", "guide_url", "signal_profile", "timeline", "timeline_severities",
]

CHECKS: tuple[Callable[[Context, int], Flag | None], ...] = (
    check_non_finite, check_exploding, check_vanishing, check_symmetry, check_frozen,
    check_dead_relu, check_saturation, check_lr_high, check_lr_low, check_overfitting,
)

# Per-run cache of per-snapshot results: a committed snapshot never changes, so its flags do
# not either (they read only snapshots <= it and history up to its epoch).
_CACHE: weakref.WeakKeyDictionary[Run, dict[int, list[Flag]]] = weakref.WeakKeyDictionary()


def _snapshot_flags(run: Run, i: int, ctx: Context | None = None) -> list[Flag]:
    per_run = _CACHE.setdefault(run, {})
    if i not in per_run:
        ctx = ctx or Context(run)
        flags = [f for check in CHECKS if (f := check(ctx, i)) is not None]
        if not any(f.severity != "info" for f in flags):  # nothing else explains a failure
            if (f := check_not_learning(ctx, i)) is not None:
                flags.append(f)
        step = run.entries[i].step
        for f in flags:
            f.snapshots = [i]
            f.first_seen = {"snapshot": i, "epoch": ctx.epochs[i], "step": step}
            if f.code == "non_finite":
                f.first_seen["what"] = f.evidence.get("non-finite", "")
                f.first_seen["layers"] = list(f.layers)
        per_run[i] = flags
    return per_run[i]


def _check_index(run: Run, index: int | None) -> int:
    n = run.n_snapshots
    if n == 0:
        return -1
    if index is None:
        return n - 1
    if index < 0:
        index += n
    return max(0, min(index, n - 1))


def _merge(run: Run, upto: int) -> dict[str, Flag]:
    """One flag per code over snapshots 0..upto (worst severity, latest evidence)."""
    ctx = Context(run)
    merged: dict[str, Flag] = {}
    for i in range(upto + 1):
        for f in _snapshot_flags(run, i, ctx):
            if f.code not in merged:
                merged[f.code] = Flag(**{**asdict(f), "layers": list(f.layers),
                                         "epochs": list(f.epochs)})
                continue
            m = merged[f.code]
            worst = min(m.severity, f.severity, key=RANK.__getitem__)
            m.layers = order(ctx, [*m.layers, *f.layers])
            m.epochs.append(ctx.epochs[i])
            m.snapshots.append(i)
            if f.code != "non_finite":  # non_finite keeps the evidence of its first sight
                m.evidence, m.explanation, m.fix = f.evidence, f.explanation, f.fix
                m.guide_step = f.guide_step
            m.severity = worst
    return merged


def _sorted(flags: Iterable[Flag]) -> list[Flag]:
    return sorted(flags, key=lambda f: (RANK[f.severity], CODES.index(f.code)))


def diagnose(run: Run, upto: int | None = None) -> list[Flag]:
    """Flags over snapshots 0..upto (default: all), worst first, in the reader's language."""
    last = _check_index(run, upto)
    if last < 0:
        return []
    return [f.localized() for f in _sorted(_merge(run, last).values())]


def flags_at(run: Run, index: int) -> list[Flag]:
    """Flags that hold at snapshot ``index``, with their history up to it, worst first, in the
    reader's language."""
    i = _check_index(run, index)
    if i < 0:
        return []
    now = {f.code: f for f in _snapshot_flags(run, i)}
    merged = _merge(run, i)
    out = []
    for code, f in now.items():
        m = merged[code]
        out.append(Flag(**{**asdict(f), "layers": list(f.layers), "epochs": list(m.epochs),
                           "snapshots": list(m.snapshots), "first_seen": m.first_seen}))
    return [f.localized() for f in _sorted(out)]


def timeline(run: Run) -> list[tuple[int, list[str]]]:
    """(snapshot index, codes that hold there) for every snapshot."""
    return [(i, [f.code for f in _sorted(_snapshot_flags(run, i))])
            for i in range(run.n_snapshots)]


def timeline_severities(run: Run) -> list[tuple[int, float, dict[str, str]]]:
    """(snapshot index, epoch, {code: severity}) for every snapshot: the health strip's data."""
    epochs = [e.epoch for e in run.entries]
    return [(i, epochs[i], {f.code: f.severity for f in _snapshot_flags(run, i)})
            for i in range(run.n_snapshots)]


def signal_profile(run: Run, index: int) -> pd.DataFrame:
    """Per Linear / Conv layer in depth order: weight std, activation (signal) std, gradients."""
    columns = ["depth", "layer", "type", "weight_std", "activation_std", "activation_std_all",
               "grad_norm", "grad_std", "update_ratio", "norm_after"]
    i = _check_index(run, index)
    if i < 0:
        return pd.DataFrame(columns=columns)
    ctx = Context(run)
    st = ctx.stats(i)
    acts = st.activations
    rows = []
    for depth, layer in enumerate(ctx.layers, start=1):
        p = st.params[layer.weight]
        a = acts.get(layer.module)
        rows.append({
            "depth": depth, "layer": layer.module, "type": layer.module_type,
            "weight_std": p.std,
            "activation_std": signal_of(acts, layer.module),
            "activation_std_all": finite_or_none(a.std) if a is not None else None,
            "grad_norm": grad_of(p, "norm"), "grad_std": grad_of(p, "std"),
            "update_ratio": update_ratio(p), "norm_after": layer.norm_after,
        })
    df = pd.DataFrame(rows, columns=columns)
    for c in ("weight_std", "activation_std", "activation_std_all", "grad_norm", "grad_std",
              "update_ratio"):
        df[c] = df[c].astype(float)
    return df


# ------------------------------------------------------------------------------------ CLI


def epochs_text(flag: Flag) -> str:
    """Where a flag holds, runs of consecutive snapshots shortened: '0-3, 5, 7.5-10'."""
    snaps = flag.snapshots if len(flag.snapshots) == len(flag.epochs) else \
        list(range(len(flag.epochs)))
    parts: list[str] = []
    start = 0
    for k in range(1, len(snaps) + 1):
        if k == len(snaps) or snaps[k] != snaps[k - 1] + 1:
            a, b = flag.epochs[start], flag.epochs[k - 1]
            parts.append(f"{a:g}" if k - 1 == start else f"{a:g}-{b:g}")
            start = k
    return ", ".join(parts)


def format_flag(flag: Flag) -> str:
    """A flag as a few lines of plain text, in the reader's language."""
    severity = {"critical": t("CRITICAL"), "warning": t("WARNING"), "info": t("INFO")}
    lines = [f"[{severity.get(flag.severity, flag.severity.upper())}] {flag.code}: {flag.title}"]
    if flag.layers:
        lines.append(t("  layers: {layers}", layers=", ".join(flag.layers)))
    lines.append(t("  epochs: {epochs}", epochs=epochs_text(flag)))
    for k, v in flag.evidence.items():
        lines.append(f"  {k}: {format_value(v)}")
    lines.append(t("  why: {why}", why=flag.explanation))
    lines.append(t("  fix: {fix}", fix=flag.fix))
    lines.append(t("  guide: step {step} ({title}) {url}", step=flag.guide_step,
                   title=flag.guide_title, url=flag.guide_url))
    return "\n".join(lines)


def format_report(run: Run, flags: list[Flag]) -> str:
    """The CLI's text: a header line ('RUN [status]: 2 flags'), then every flag."""
    head = tn("{run} [{status}]: {n} flag", "{run} [{status}]: {n} flags", len(flags),
              run=run.run_id, status=run.status)
    return "\n".join([head, *(format_flag(f) for f in flags)])
