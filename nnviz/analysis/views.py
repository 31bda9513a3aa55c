"""Data preparation for the Explore and Compare pages: no streamlit, no plotly.

Everything a page shows for one run (or two) is computed here from a ``nnviz.store.runs.Run``:

* ``param_track(runs, param)`` -> ``ParamTrack``: one parameter over every snapshot of one or
  more runs, on axes fixed for all of them. Histogram edges come from ``stats.run_edges`` over
  every snapshot's finite min / max (of every run given, so Compare shares its bins), the y range
  is the largest bin count over all snapshots, the colour limit is ±max|w| over all snapshots.
  Parameters stored whole are re-counted on those edges from their stored values; parameters
  stored as a sample (over ``recording.VALUE_LIMIT`` elements) use the counts recorded on the
  run's own fixed edges, which count the whole tensor. Either way nothing is dropped:
  ``hist.total() == numel`` (values outside the edges and NaN / Inf are counted separately).
* tables (pandas DataFrames, with ``to_csv``): per-parameter weight statistics, gradient
  statistics, activation statistics, training history;
* which figures a parameter gets (``figures_for``) and the flattened feature map a linear layer
  reads (``feature_shape``);
* series over snapshots (percentiles, drift, update ratio) and run-to-run differences
  (``config_diff``, ``align_snapshots``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nnviz.analysis import stats
from nnviz.analysis.diagnostics.flags import UPDATE_RATIO_REF  # noqa: F401 (re-export)
from nnviz.config import RunConfig
from nnviz.engine.initializers import Theory
from nnviz.i18n import N_, t
from nnviz.store.format import HistOutside, ParamStats, finite_or_none
from nnviz.store.runs import Run

THEORY_POINTS = 400          # x samples of the theoretical density curve
DELTA_BINS = 60              # bins of the W_t - W_0 histogram


# ------------------------------------------------------------------------------ run structure


def param_names(run: Run) -> list[str]:
    """Parameters in model order."""
    params = run.record.params
    return sorted(params, key=lambda n: params[n].order)


def layer_params(run: Run) -> dict[str, list[str]]:
    """Module name -> its parameters (weight first), modules in model order."""
    params = run.record.params
    out: dict[str, list[str]] = {}
    for name in param_names(run):
        out.setdefault(params[name].module, []).append(name)
    for names in out.values():
        names.sort(key=lambda n: (params[n].kind != "weight", n))
    return out


def layer_names(run: Run) -> list[str]:
    """Modules that own parameters, in model order (what the layer selector lists)."""
    return list(layer_params(run))


def shape_text(shape: Sequence[int]) -> str:
    """E.g. '16×3×3×3 = 432' or '10'."""
    dims = [int(s) for s in shape]
    if len(dims) <= 1:
        return str(dims[0]) if dims else "scalar"
    return "×".join(str(d) for d in dims) + f" = {math.prod(dims)}"


def feature_shape(run: Run, param: str) -> tuple[int, int, int] | None:
    """(C, H, W) of the map a Linear weight reads, when its input is a flattened image or map.

    The first Linear after convolutions reads the last conv's channels × a square map
    (simple_cnn: 16 × 16 × 16 = 4096); a Linear reading the raw input of an image data set
    reads (C, H, W) of the image. Anything else: None.
    """
    params = run.record.params
    info = params.get(param)
    if not info or info.module_type != "Linear" or info.kind != "weight" or \
            len(info.shape) != 2:
        return None
    in_features = info.shape[1]
    earlier = [params[n] for n in param_names(run) if params[n].order < info.order]
    linears_before = [i for i in earlier if i.module_type == "Linear"]
    if linears_before:
        return None
    convs = [i for i in earlier if i.module_type == "Conv2d" and i.kind == "weight"
             and i.shape]
    if convs:
        channels = convs[-1].shape[0]
        if channels <= 0 or in_features % channels:
            return None
        side = math.isqrt(in_features // channels)
        return (channels, side, side) if side * side * channels == in_features else None
    data = run.record.data
    shape = list(data.input_shape) if data else []
    if len(shape) == 3 and math.prod(shape) == in_features:
        return (shape[0], shape[1], shape[2])
    return None


def figures_for(run: Run, param: str) -> list[str]:
    """The views a parameter gets, in display order.

    'histogram' and 'delta' for every parameter; conv weights: 'filters' (+ 'rgb' with 3 input
    channels); linear weights: 'neurons' (+ 'spatial' when ``feature_shape`` knows the map);
    1-D parameters (biases, BatchNorm): 'bars'. A parameter stored as a sample (over
    VALUE_LIMIT elements) gets the histogram and 'delta' only.
    """
    info = run.param(param)
    shape = info.shape
    views = ["histogram"]
    if not info.stored_whole:  # a sample of a large tensor: no tiles, no bars
        pass
    elif len(shape) == 4:
        views.append("filters")
        if shape[1] == 3:
            views.append("rgb")
    elif len(shape) == 2:
        views.append("neurons")
        if feature_shape(run, param) is not None:
            views.append("spatial")
    elif len(shape) == 1:
        views.append("bars")
    views.append("delta")
    return views


def snapshot_label(run: Run, index: int) -> str:
    """'init' for snapshot 0, else 'epoch 2' or 'epoch 1.5'."""
    entries = run.entries
    if not 0 <= index < len(entries):
        return f"#{index}"
    epoch = entries[index].epoch
    if index == 0 and epoch == 0.0:
        return t("init (epoch 0)")
    return t("epoch {epoch}", epoch=f"{epoch:g}")


def snapshot_epochs(run: Run) -> list[float]:
    """Epoch of every committed snapshot."""
    return [e.epoch for e in run.entries]


def theory_of(run: Run, param: str) -> Theory | None:
    """The initializer's theoretical distribution of a parameter, if recorded."""
    info = run.record.params.get(param)
    return info.theory if info else None


# ------------------------------------------------------------------------------- param track


@dataclass
class ParamTrack:
    """One parameter over every snapshot of one or more runs, on axes fixed for all of them."""

    param: str
    edges: np.ndarray                          # histogram bin edges shared by every snapshot
    hists: dict[str, list[stats.Histogram]]    # run_id -> one histogram per snapshot
    numel: int
    count_max: int                             # largest bin count of any snapshot (y range)
    abs_max: float                             # max |w| over every snapshot: colour limit ±abs_max
    low: float                                 # smallest finite value of any snapshot
    high: float                                # largest finite value of any snapshot
    delta_edges: np.ndarray                    # bins of W_t - W_0, symmetric about 0
    delta_hists: dict[str, list[stats.Histogram]]
    delta_count_max: int                       # y range of W_t - W_0 (snapshots after init)
    source: str                                # "values" (re-counted) or "recorded"
    notes: list[str] = field(default_factory=list)
    runs: tuple[str, ...] = ()                 # "run_id@n_snapshots@created" of each run

    def hist(self, run_id: str, index: int) -> stats.Histogram:
        """The histogram of snapshot ``index`` of run ``run_id``."""
        return self.hists[run_id][index]

    def delta_hist(self, run_id: str, index: int) -> stats.Histogram:
        """Histogram of W_t - W_0 of snapshot ``index``."""
        return self.delta_hists[run_id][index]

    def counts_matrix(self, run_id: str) -> np.ndarray:
        """(n_snapshots, n_bins) counts, for the ridgeline view."""
        return np.stack([h.counts for h in self.hists[run_id]]) if self.hists[run_id] else \
            np.zeros((0, self.edges.size - 1), dtype=np.int64)


def run_key(run: Run) -> str:
    """'run_id@n_snapshots@created': changes when a snapshot is added or the id is reused."""
    return f"{run.run_id}@{run.n_snapshots}@{run.record.created}"


def _stored_whole(run: Run, param: str) -> bool:
    return run.param(param).stored_whole


def _pstats(snap: Any, param: str) -> ParamStats | None:
    return snap.record.params.get(param)


def _recorded(edges: np.ndarray, counts: np.ndarray, out: HistOutside) -> stats.Histogram:
    return stats.Histogram(edges=edges, counts=counts, underflow=out.underflow,
                           overflow=out.overflow, nan=out.nan, posinf=out.posinf,
                           neginf=out.neginf)


def param_track(runs: Sequence[Run], param: str, n_bins: int = stats.DEFAULT_BINS) -> ParamTrack:
    """Histograms of ``param`` for every snapshot of every run, on shared fixed axes."""
    if not runs:
        raise ValueError("param_track needs at least one run")
    for run in runs:
        if param not in run.record.params:
            raise KeyError(f"Run {run.run_id} has no parameter {param!r}.")
    numel = runs[0].param(param).numel
    lows: list[float | None] = []
    highs: list[float | None] = []
    for run in runs:
        for snap in run.snapshots():
            s = _pstats(snap, param)
            lows.append(finite_or_none(s.min) if s else None)
            highs.append(finite_or_none(s.max) if s else None)
    finite_lows = [v for v in lows if v is not None]
    finite_highs = [v for v in highs if v is not None]
    low = min(finite_lows) if finite_lows else 0.0
    high = max(finite_highs) if finite_highs else 0.0
    abs_max = max(abs(low), abs(high))
    whole = all(_stored_whole(r, param) for r in runs)
    notes: list[str] = []
    hists: dict[str, list[stats.Histogram]] = {}
    delta_values: dict[str, list[np.ndarray]] = {}
    if whole:
        edges = stats.run_edges(lows, highs, n_bins)
        source = "values"
    else:
        # Sampled parameters: the recorded counts cover the whole tensor, on the run's own edges.
        edges = np.asarray(runs[0].param(param).edges, dtype=np.float64)
        source = "recorded"
        notes.append(t("Over a million elements: the counts were recorded on the run's bins "
                       "fixed at init; heatmaps and W_t − W_0 use a fixed sample."))
    for run in runs:
        per_run: list[stats.Histogram] = []
        deltas: list[np.ndarray] = []
        w0: np.ndarray | None = None
        run_edges = edges if whole else np.asarray(run.param(param).edges, np.float64)
        if not whole and not np.array_equal(run_edges, edges):
            notes.append(t("{run} recorded its counts on its own bins.", run=run.run_id))
        for snap in run.snapshots():
            values = snap.values(param).astype(np.float64).reshape(-1)
            if whole:
                per_run.append(stats.histogram(values, edges))
            else:
                per_run.append(_recorded(run_edges, snap.hist_counts(param),
                                         snap.record.params[param].hist_outside))
            if w0 is None:
                w0 = values
            deltas.append(values - w0 if values.shape == w0.shape else np.full_like(values, np.nan))
        hists[run.run_id] = per_run
        delta_values[run.run_id] = deltas
    count_max = max((int(h.counts.max()) for hs in hists.values() for h in hs if h.counts.size),
                    default=0)
    dmax = 0.0
    for deltas in delta_values.values():
        for d in deltas:
            fin = d[np.isfinite(d)]
            if fin.size:
                dmax = max(dmax, float(np.max(np.abs(fin))))
    delta_edges = stats.run_edges([-dmax], [dmax], DELTA_BINS) if dmax > 0 else \
        np.linspace(-1e-3, 1e-3, DELTA_BINS + 1)
    delta_hists = {rid: [stats.histogram(d, delta_edges) for d in ds]
                   for rid, ds in delta_values.items()}
    # Snapshot 0 is W_0 − W_0 = 0 everywhere (one full bin): left out of the fixed y range.
    delta_count_max = max((int(h.counts.max()) for hs in delta_hists.values() for h in hs[1:]
                           if h.counts.size), default=0)
    return ParamTrack(param=param, edges=edges, hists=hists, numel=numel, count_max=count_max,
                      abs_max=abs_max, low=low, high=high, delta_edges=delta_edges,
                      delta_hists=delta_hists, delta_count_max=delta_count_max, source=source,
                      notes=notes, runs=tuple(run_key(r) for r in runs))


def snapshot_histogram(run: Run, index: int, param: str, n_bins: int = stats.DEFAULT_BINS
                       ) -> stats.Histogram:
    """One snapshot re-binned on its own range (the zoomed view next to the fixed-bin one);
    parameters stored as a sample keep the counts recorded on the run's fixed bins."""
    snap = run.snapshot(index)
    if not _stored_whole(run, param):
        return _recorded(np.asarray(run.param(param).edges, np.float64),
                         snap.hist_counts(param), snap.record.params[param].hist_outside)
    s = snap.record.params[param]
    edges = stats.run_edges([finite_or_none(s.min)], [finite_or_none(s.max)], n_bins)
    return stats.histogram(snap.values(param), edges)


AUTO_REBIN_SPAN = 1e3  # widest / narrowest snapshot range from which bins go per snapshot


def auto_bins(run: Run, param: str) -> str | None:
    """Why the histograms of ``param`` should be binned per snapshot by default, or None.

    Bins fixed for the run keep bar heights comparable across epochs, and are the default.
    They cannot show every snapshot when the run's range spans orders of magnitude: when the
    widest snapshot's size (the larger of max − min and max |value| of its finite values, so a
    one-value bias counts too) is ``AUTO_REBIN_SPAN`` times the narrowest non-zero one's (the
    run exploded, or collapsed), or when a snapshot holds NaN / Inf
    (a diverged run), the early snapshots fall into one or two of the run's bins. Then each
    snapshot is binned on its own range, and the reason says so. Parameters stored as a sample
    keep the counts recorded on the run's bins (None).
    """
    if not _stored_whole(run, param):
        return None
    spans: list[float] = []
    bad_at: float | None = None
    for snap in run.snapshots():
        s = _pstats(snap, param)
        if s is None:
            continue
        if (s.nan_count or s.inf_count) and bad_at is None:
            bad_at = snap.epoch
        lo, hi = finite_or_none(s.min), finite_or_none(s.max)
        if lo is not None and hi is not None and max(hi - lo, abs(lo), abs(hi)) > 0:
            spans.append(max(hi - lo, abs(lo), abs(hi)))
    if not spans:
        return None
    narrow, wide = min(spans), max(spans)
    if bad_at is not None:
        return (f"{param} holds NaN / Inf from epoch {bad_at:g} (the run diverged), and its "
                f"finite values spread from {_short(narrow)} to {_short(wide)} wide")
    if wide >= AUTO_REBIN_SPAN * narrow:
        return (f"the size of {param}'s values grows from {_short(narrow)} to {_short(wide)} "
                f"over the run ({_short(wide / narrow)} times larger): on bins fixed for the whole "
                f"run the narrow snapshots would fall into one bar")
    return None


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _short(x: float) -> str:
    """A width or ratio in 3 significant digits, powers of ten as a student writes them:
    0.0123, 41.5, 4.5×10⁷."""
    text = f"{x:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = f"10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    return power if mantissa == "1" else f"{mantissa}×{power}"


def squeezed(edges: np.ndarray, low: float | None, high: float | None) -> bool:
    """True when a snapshot with some spread (low < high) spans at most two of the run's bins:
    the run-wide range dwarfs it (a later explosion), so its shape cannot be read there."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return False
    width = float(edges[1] - edges[0])
    return low < high and (high - low) <= 2 * width and edges.size > 11


def theory_curve(theory: Theory | None, edges: np.ndarray, n: int,
                 points: int = THEORY_POINTS) -> tuple[np.ndarray, np.ndarray] | None:
    """The theoretical density scaled to expected counts per bin: pdf(x) · n · bin width.

    Equal-width edges only (``run_edges`` and ``weight_edges`` are); x spans the edges, with the
    support's ends added so a uniform's jumps are drawn sharp. None when there is no density
    (point masses, orthogonal, unknown).
    """
    if theory is None:
        return None
    edges = np.asarray(edges, dtype=np.float64)
    width = float(edges[1] - edges[0])
    x = np.linspace(edges[0], edges[-1], points)
    if theory.kind in ("uniform", "trunc_normal") and theory.low is not None \
            and theory.high is not None:
        eps = 1e-9 * max(abs(theory.low), abs(theory.high), width)
        ends = [theory.low - eps, theory.low, theory.high, theory.high + eps]
        ends = [e for e in ends if edges[0] <= e <= edges[-1]]
        x = np.unique(np.concatenate([x, ends]))
    pdf = theory.pdf(x)
    if pdf is None:
        return None
    # A bin holds at most n values: bins far wider than the density (a run that exploded)
    # would otherwise scale it to far more.
    return x, np.minimum(np.asarray(pdf, dtype=np.float64) * n * width, float(n))


def theory_point(theory: Theory | None) -> float | None:
    """The value of a point-mass theory (BatchNorm weight 1, zeros, constant), else None."""
    if theory is not None and theory.kind == "point" and theory.mean is not None \
            and math.isfinite(theory.mean):
        return float(theory.mean)
    return None


# ------------------------------------------------------------------------------------ tables


def stats_row(run: Run, index: int, param: str) -> dict[str, Any]:
    """The stats row of one parameter: mean, std, theoretical std, min, max, zeros, NaN, Inf."""
    s = run.snapshot(index).record.params[param]
    theory = theory_of(run, param)
    numel = s.numel
    return {
        "param": param,
        "shape": shape_text(run.param(param).shape),
        "numel": numel,
        "mean": s.mean,
        "std": s.std,
        "theory_std": theory.std if theory else None,
        "min": s.min,
        "max": s.max,
        "zeros": int(round(s.zero_frac * numel)) if s.zero_frac is not None else None,
        "nan": s.nan_count,
        "inf": s.inf_count,
        "drift": s.drift,
        "spectral_norm": s.spectral_norm,
        "stable_rank": s.stable_rank,
        "recorded_below": s.hist_outside.underflow,
        "recorded_above": s.hist_outside.overflow,
    }


STATS_COLUMNS = {
    "param": N_("parameter"), "shape": N_("shape"), "mean": N_("mean"), "std": N_("std"),
    "theory_std": N_("theoretical std"), "min": N_("min"), "max": N_("max"),
    "zeros": N_("exact zeros"), "nan": "NaN", "inf": "Inf",
    "drift": N_("drift ‖W−W₀‖/‖W₀‖"), "spectral_norm": N_("spectral norm"),
    "stable_rank": N_("stable rank"),
}
# The headers of grad_table and activation_table (their columns stay English: code reads them).
TABLE_HEADERS = (
    N_("grad norm ‖g‖"), N_("mean |g|"), N_("grad std"), N_("last ‖g‖"),
    N_("update ratio ‖ΔW‖/‖W‖"), N_("last update ratio"), N_("steps"), N_("layer"),
    N_("kind"), N_("zero fraction"), N_("dead fraction"), N_("saturated fraction"),
)


def translated_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A table with the headers of stats_table, grad_table and activation_table in the
    reader's language, for showing it (the data keeps its English column names)."""
    known = {*STATS_COLUMNS.values(), *TABLE_HEADERS}
    return df.rename(columns={c: t(c) for c in df.columns if c in known})


# The columns a screen shows first (the rest behind a column picker; the CSV has them all).
STATS_MAIN = ("parameter", "shape", "mean", "std", "theoretical std", "min", "max",
              "drift ‖W−W₀‖/‖W₀‖")


def stats_shown_columns(df: pd.DataFrame, extra: Sequence[str] = ()) -> list[str]:
    """The columns of ``stats_table``'s frame to show: ``STATS_MAIN``, any of NaN / Inf that
    holds a non-zero count (a diverged run), and the ``extra`` ones asked for, in table order."""
    wanted = set(STATS_MAIN) | set(extra)
    wanted |= {c for c in ("NaN", "Inf") if c in df and (df[c].fillna(0) > 0).any()}
    return [c for c in df.columns if c in wanted]


def stats_table(run: Run, index: int, params: Sequence[str] | None = None) -> pd.DataFrame:
    """Weight statistics of every (or the given) parameter at one snapshot."""
    rows = [stats_row(run, index, p) for p in (params or param_names(run))]
    df = pd.DataFrame(rows, columns=list(STATS_COLUMNS))
    return df.rename(columns=STATS_COLUMNS)


def grad_table(run: Run, index: int, params: Sequence[str] | None = None) -> pd.DataFrame:
    """Gradient and update statistics per parameter (averaged over the steps since the last
    snapshot; 'last' = the last step). Snapshot 0 has none: the cells are empty."""
    rows = []
    snap = run.snapshot(index)
    for p in params or param_names(run):
        s = _pstats(snap, p)
        g = s.grad if s else None
        rows.append({
            "parameter": p,
            "grad norm ‖g‖": g.norm if g else None,
            "mean |g|": g.mean_abs if g else None,
            "grad std": g.std if g else None,
            "last ‖g‖": g.last_norm if g else None,
            "update ratio ‖ΔW‖/‖W‖": s.update_ratio if s else None,
            "last update ratio": s.update_ratio_last if s else None,
            "steps": g.steps if g else None,
        })
    return pd.DataFrame(rows, columns=["parameter", "grad norm ‖g‖", "mean |g|", "grad std",
                                       "last ‖g‖", "update ratio ‖ΔW‖/‖W‖", "last update ratio",
                                       "steps"])


def activation_table(run: Run, index: int) -> pd.DataFrame:
    """Activation statistics of every probed layer (probe batch, eval mode), forward order."""
    acts = run.snapshot(index).record.activations
    order = [layer.name for layer in run.record.layers] or list(acts)
    rows = []
    for name in order:
        a = acts.get(name)
        if a is None:
            continue
        rows.append({
            "layer": name, "kind": a.kind, "mean": a.mean, "std": a.std,
            "zero fraction": a.zero_frac, "dead fraction": a.dead_frac,
            "saturated fraction": a.saturated_frac, "NaN": a.nan_count, "Inf": a.inf_count,
        })
    return pd.DataFrame(rows, columns=["layer", "kind", "mean", "std", "zero fraction",
                                       "dead fraction", "saturated fraction", "NaN", "Inf"])


def history_frame(run: Run) -> pd.DataFrame:
    """Per-epoch training history: losses, accuracies, learning rate, speed."""
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
            "samples_per_s"]
    return pd.DataFrame([{c: getattr(h, c) for c in cols} for h in run.record.history],
                        columns=cols)


def to_csv(df: pd.DataFrame) -> bytes:
    """CSV bytes (UTF-8, full float precision) for a download button."""
    return df.to_csv(index=False, float_format="%.10g").encode("utf-8")


def health_numbers(run: Run, index: int) -> dict[str, Any]:
    """Raw health numbers of a snapshot: NaN/Inf totals and the extremes of the per-layer
    signals (used while the diagnostics engine is not available)."""
    snap = run.snapshot(index).record
    params, acts = snap.params, snap.activations
    ratios = [p.update_ratio for p in params.values()
              if p.update_ratio is not None and math.isfinite(p.update_ratio)]
    norms = [p.grad.norm for p in params.values() if p.grad and p.grad.norm is not None]
    return {
        "nan_weights": sum(p.nan_count for p in params.values()),
        "inf_weights": sum(p.inf_count for p in params.values()),
        "nan_activations": sum(a.nan_count for a in acts.values()),
        "inf_activations": sum(a.inf_count for a in acts.values()),
        "min_update_ratio": min(ratios) if ratios else None,
        "max_update_ratio": max(ratios) if ratios else None,
        "min_grad_norm": min(norms) if norms else None,
        "max_grad_norm": max(norms) if norms else None,
    }


# ------------------------------------------------------------------------------------ series


def percentile_series(run: Run, param: str) -> tuple[list[float], np.ndarray]:
    """(epochs, (n_snapshots, 9) array of stats.PERCENTILES; NaN where nothing was finite)."""
    epochs, rows = [], []
    k = len(stats.PERCENTILES)
    for snap in run.snapshots():
        epochs.append(snap.epoch)
        s = _pstats(snap, param)
        pct = s.percentiles if s else None
        rows.append([np.nan if v is None else v for v in pct] if pct else [np.nan] * k)
    return epochs, np.asarray(rows, dtype=np.float64).reshape(len(rows), k)


def param_series(run: Run, key: str, params: Sequence[str] | None = None
                 ) -> tuple[list[float], dict[str, list[float | None]]]:
    """(epochs, param -> value of stats[key] per snapshot), e.g. key 'drift' or 'update_ratio'."""
    names = list(params or param_names(run))
    epochs: list[float] = []
    series: dict[str, list[float | None]] = {n: [] for n in names}
    for snap in run.snapshots():
        epochs.append(snap.epoch)
        for n in names:
            s = _pstats(snap, n)
            series[n].append(None if s is None else
                             getattr(s, key) if hasattr(s, key) else s.extra.get(key))
    return epochs, series


def current_epoch(run: Run, index: int) -> float:
    """Epoch of snapshot ``index``."""
    return snapshot_epochs(run)[index]


# ---------------------------------------------------------------------------- two-run views


def comparable_layers(a: Run, b: Run) -> list[str]:
    """Layers present in both runs with the same parameter names and shapes (a's order)."""
    la, lb = layer_params(a), layer_params(b)
    out = []
    for layer, names in la.items():
        if layer in lb and lb[layer] == names and all(
                a.param(n).shape == b.param(n).shape for n in names):
            out.append(layer)
    return out


def align_snapshots(a: Run, b: Run) -> list[tuple[float, int, int]]:
    """(epoch, index in a, index in b) for every epoch either run recorded: each run shows its
    last snapshot at or before that epoch (a run that stopped early keeps its last one)."""
    ea, eb = snapshot_epochs(a), snapshot_epochs(b)
    if not ea or not eb:
        return []
    out = []
    for epoch in sorted(set(ea) | set(eb)):
        ia = max([i for i, e in enumerate(ea) if e <= epoch + 1e-9], default=0)
        ib = max([i for i, e in enumerate(eb) if e <= epoch + 1e-9], default=0)
        out.append((epoch, ia, ib))
    return out


def config_diff(a: RunConfig, b: RunConfig) -> pd.DataFrame:
    """Options whose values differ between two configs (name, a, b)."""
    da, db = a.to_dict(), b.to_dict()
    rows = [{"option": k, "A": str(da[k]), "B": str(db[k])} for k in da if da[k] != db[k]]
    return pd.DataFrame(rows, columns=["option", "A", "B"])


def twin_config(cfg: RunConfig, init: str) -> RunConfig:
    """The same run (same seed, data, everything) with another initializer."""
    return cfg.replace(init=init, name="")
