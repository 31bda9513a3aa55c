"""What each chart shows and how to read it: the captions under Explore's and Compare's charts.

Plain text with the small Markdown subset Streamlit renders (``**bold**``, ``*italic*``);
``nnviz.figures.epoch_view.md_html`` turns them into HTML for the epoch player.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from nnviz.i18n import N_, t


class Captions(Mapping[str, str]):
    """The captions by chart kind; reading one gives it in the reader's language."""

    def __init__(self, texts: dict[str, str]) -> None:
        self._texts = texts

    def __getitem__(self, kind: str) -> str:
        return t(self._texts[kind])

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)


CAPTIONS = Captions({
    "histogram": (
        N_("Bars: this snapshot's values on bins and a y axis fixed for the whole run, so any "
        "shift or spread you see while scrubbing is real, not re-binning. Orange: the "
        "initializer's density at init scaled to counts (pdf × n × bin width). Counts outside "
        "the bins and NaN / Inf are listed above the plot, never dropped.")),
    "default_init": (
        N_("PyTorch's default init, for Conv2d and Linear alike, is kaiming_uniform_(a=√5) = "
        "U(±1/√fan_in), std = 1/√(3·fan_in); biases U(±1/√fan_in). It is not \"Kaiming for "
        "conv, Xavier for linear\".")),
    "filters": (
        N_("One tile per filter (row) × input channel (column); a layer with one input channel "
        "lays its filters left to right, four per row. Red = positive, blue = negative, "
        "white = 0, on one colour scale fixed for the whole run (±max |w| over every epoch), so "
        "colours that fade or sharpen are real changes.")),
    "structure": (
        N_("Structure score **{score}**: the correlation of neighbouring taps of these filters, "
        "about 0 for random noise (every init), 0.5 for an ideal edge filter such as "
        "[−1, 0, 1] on every row, 1 for a flat patch. Orientation score **{orientation}**: "
        "how much of each filter's light-to-dark change runs one way, 1 for a straight edge, "
        "0 for a round blob, about 0.2 for random 7×7 noise (0.6 for 3×3: few taps).")),
    "rgb": (
        N_("Each first-layer filter as an RGB image (its kernels on the red, green and blue input "
        "channels). Global scale: grey = 0 and colours comparable across filters and epochs; "
        "per filter: each stretched to its own range, which shows its pattern but hides its size."
        " At init the filters are random noise; whether training gives them structure depends on "
        "the data and how long it trains (the filters lesson shows it happen on oriented edges).")),
    "neurons": (
        N_("The tutorial's view: each tile is one output neuron's incoming weights reshaped to a "
        "near-square (blank cells are padding, not zeros), on a symmetric colour scale fixed "
        "for the run.")),
    "spatial": (
        N_("This layer reads a flattened channels × height × width map: one output neuron's "
        "weights "
        "folded back into that map, one tile per input channel, show where it looks.")),
    "bars": (
        N_("One bar per element (the tutorial's bias chart) on a y axis fixed for the whole run. "
        "Dotted lines, where shown: the range of the initializer's uniform distribution (PyTorch's "
        "default bias of Linear and Conv layers is U(±1/√fan_in)).")),
    "norm_bars": (
        N_("One bar per channel on a y axis fixed for the whole run. A normalization layer starts "
        "with weight (scale) 1 and bias (shift) 0 for every channel; the bars show how training "
        "moved them.")),
    "delta": (
        N_("How far each value moved since init (W_t − W_0), on bins fixed for the run: a spike "
        "at 0 "
        "means the layer barely trained; a wide spread means large updates.")),
    "ridgeline": (
        N_("Every snapshot's histogram on the same bins, oldest at the top, the epoch shown "
        "highlighted (TensorBoard's offset view, without its re-binning).")),
    "bands": (
        N_("Bands hold the values between the 7–93, 16–84 and 31–69 percentiles (±1.5σ, ±1σ, "
        "±0.5σ for a normal distribution), the palest one min–max; the line is the median.")),
    "drift": (
        N_("‖W_t − W_0‖ / ‖W_0‖: 0 at init, then how far each parameter has moved relative to its "
        "starting size.")),
    "update_ratio": (
        N_("Size of one optimizer step relative to the weights, ‖ΔW‖ / ‖W‖ (geometric mean of "
        "sampled steps). About 1e-3 is healthy (CS231n, Karpathy); far below: learning rate too "
        "low or a frozen layer; above ~1e-2: too high.")),
    "grad": (
        N_("Gradient norm per parameter, averaged over the steps since the previous snapshot. "
        "Norms "
        "that shrink layer by layer toward the input mean vanishing gradients; sudden spikes, "
        "exploding ones.")),
    "activations": (
        N_("Activations on a fixed probe batch, in forward order. A std that stays roughly "
        "constant "
        "with depth is healthy; a steady shrink means vanishing, growth exploding (Glorot & "
        "Bengio 2010, He et al. 2015). Dead = ReLU units never positive on the batch; saturated "
        "= |tanh| > 0.97 or sigmoid < 0.03 or > 0.97.")),
    "loss": (
        N_("Training and validation loss per epoch; the dashed line marks the epoch shown. "
        "Validation loss rising for several epochs while training loss keeps falling means "
        "overfitting; a gap between the two alone does not.")),
    "acc": N_("Training and validation accuracy per epoch; the dashed line marks the epoch shown."),
    "timeline": (
        N_("Each row is a diagnostic, each column a snapshot: grey = fine, blue = note, "
        "orange = warning, red = critical. The outlined column is the snapshot shown.")),
    # the same, for tiles and bars drawn on the snapshot's own scale (automatic bins)
    "filters_own": (
        N_("One tile per filter (row) × input channel (column); a layer with one input channel "
        "lays its filters left to right, four per row. Red = positive, blue = negative, white"
        " = 0, on this snapshot's own symmetric colour scale (±its max |w|).")),
    "neurons_own": (
        N_("The tutorial's view: each tile is one output neuron's incoming weights reshaped to a"
        " near-square (blank cells are padding, not zeros), on this snapshot's own symmetric "
        "colour scale (±its max |w|).")),
    "bars_own": (
        N_("One bar per element (the tutorial's bias chart) on this snapshot's own y range. "
        "Dotted lines, where shown: the range of the initializer's uniform distribution "
        "(PyTorch's default bias of Linear and Conv layers is U(±1/√fan_in)).")),
    "norm_bars_own": (
        N_("One bar per channel on this snapshot's own y range. A normalization layer starts "
        "with weight (scale) 1 and bias (shift) 0 for every channel; the bars show how "
        "training moved them.")),
})


# The colour-scale clause of the tile captions, and what replaces it when the tiles are drawn on
# each snapshot's own scale (a run whose range grows a thousandfold: views.auto_bins).
def main_caption(kind: str, module_type: str, own_scale: bool = False) -> str:
    """The caption of a parameter's main view: a normalization layer's bars get their own;
    tiles drawn on the snapshot's own colour scale (``own_scale``) say so."""
    key = "norm_bars" if kind == "bars" and "Norm" in module_type else kind
    if own_scale and f"{key}_own" in CAPTIONS:
        key = f"{key}_own"
    return CAPTIONS[key]
