"""The flags' vocabulary: the ``Flag`` record, its codes, titles and severities, the thresholds
every check uses (with their sources), and the tuning-guide steps that fix them.

This module is the one home of these facts: the health figures, the panel and the CLI import
``CODES``, ``TITLES`` and ``UPDATE_RATIO_REF`` from here instead of copying them.

A ``Flag`` has a stable ``code`` (one of CODES), a ``severity`` (critical / warning / info), the
layers (module names such as ``fc3``) and snapshot epochs where it holds, ``evidence`` (plain
numbers and short strings), an ``explanation`` and a ``fix`` chosen from this run's evidence,
and the ``guide_step`` (1-8) of the tuning guide's order: 1 initialization, 2 batch size,
3 epochs / early stopping, 4 learning rate & scheduler, 5 model structure, 6 loss,
7 activation, 8 regularization.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from nnviz.i18n import N_, t

SEVERITIES = ("critical", "warning", "info")
RANK = {s: i for i, s in enumerate(SEVERITIES)}
CODES = (
    "non_finite", "exploding", "vanishing", "symmetry", "frozen", "dead_relu", "saturation",
    "lr_too_high", "lr_too_low", "overfitting", "not_learning",
)
TITLES = {
    "non_finite": N_("NaN or Inf values"),
    "exploding": N_("Exploding signal or gradients"),
    "vanishing": N_("Vanishing signal or gradients"),
    "symmetry": N_("Identical units (symmetry not broken)"),
    "frozen": N_("Frozen layer"),
    "dead_relu": N_("Dead ReLU units"),
    "saturation": N_("Saturated sigmoid / tanh units"),
    "lr_too_high": N_("Learning rate too high"),
    "lr_too_low": N_("Learning rate too low"),
    "overfitting": N_("Overfitting"),
    "not_learning": N_("Not learning"),
}

# The tuning guide's order (the seed tutorial, section 7): step -> (title, anchor on the page).
GUIDE_STEPS: dict[int, tuple[str, str]] = {
    1: (N_("Initialization"), "step-1"),
    2: (N_("Batch size"), "step-2"),
    3: (N_("Epochs and early stopping"), "step-3"),
    4: (N_("Learning rate and scheduler"), "step-4"),
    5: (N_("Model structure"), "step-5"),
    6: (N_("Loss function"), "step-6"),
    7: (N_("Activation"), "step-7"),
    8: (N_("Regularization"), "step-8"),
}
GUIDE_URL = "/Tuning_guide"  # the tuning-guide page's URL path

# ---------------------------------------------------------------------------------- thresholds
# Update ratio ‖ΔW‖/‖W‖ of one optimizer step: about 1e-3 is healthy (CS231n "Neural Networks 3",
# section "Ratio of weights:updates"; Karpathy's makemore part 3 plots it against a line at
# 1e-3). "Far from" = more than 10x away on either side.
UPDATE_RATIO_REF = 1e-3
UPDATE_RATIO_HIGH = 1e-2    # above: steps too big for the weights (lr_too_high evidence)
UPDATE_RATIO_LOW = 1e-4     # below: weights barely move (lr_too_low / vanishing evidence)
# A layer whose weight std is below 0.1 / √fan_in (a tenth of PyTorch's default scale, about a
# twentieth of Kaiming's) has a large ‖ΔW‖/‖W‖ for any step: lr_too_high ignores it.
TINY_WEIGHTS = 0.1
# Depth profiles: a variance-preserving init keeps the signal's std roughly constant through
# depth (Glorot & Bengio 2010; He et al. 2015, who call a steady shrink or growth with depth the
# failure to avoid). We flag a change of more than two orders of magnitude along the chain: at
# He et al.'s "variance halves per layer" rate (Xavier on ReLU) that takes about 14 layers, so
# a 30-layer Xavier-ReLU MLP (std ratio about 2^-15 = 3e-5) is flagged and a 5-layer one (2^-2)
# is not.
DEPTH_RATIO = 100.0
# One layer that multiplies (or divides) the signal's std by 10x or more on its own: a
# variance-preserving layer has gain about 1, PyTorch's default init about 0.4-0.6. The same
# factor on the weights alone: std 10x Kaiming's √(2/fan_in) (the largest standard init)
# multiplies the signal by about 10x per layer (He et al. 2015, section 2.2).
LAYER_GAIN = 10.0
MIN_CHAIN_VANISHING = 3     # a trend with depth (and the gradient / update profiles) needs 3+
# Gradient spike: the network's gradient norm √(Σ‖g‖²) over 10x the running median of earlier
# snapshots (Pascanu, Mikolov & Bengio 2013 describe exploding gradients as such sudden spikes
# of this norm, and clip it).
GRAD_SPIKE = 10.0
# Weights growing: ‖W‖ at least doubling per epoch while the layer is already larger than the
# largest variance-preserving scale, std > √(2/fan_in) (He et al. 2015, ReLU gain √2). Growth
# from a small init up to that scale is ordinary learning.
WEIGHT_GROWTH_PER_EPOCH = 2.0
HE_GAIN = math.sqrt(2.0)
# Dead ReLU: CS231n ("Neural Networks 1", ReLU) warns that "as much as 40% of your network can
# be dead" with a too-high learning rate; keras-contrib's DeadReLUDetector reports every
# layer with dead units. We warn from 40% and note from 10% of a layer's units.
DEAD_WARN = 0.40
DEAD_INFO = 0.10
DEAD_GREW = 0.10            # more dead now than at init by this share: they died in training
ALL_DEAD = 0.99             # a layer this dead passes (almost) no gradient back at all
# Saturation: Karpathy's makemore part 3 counts tanh outputs with |t| > 0.97 and shows a
# well-initialised tanh stack (gain 5/3) at about 3-5%; stats.py uses the same rails for
# sigmoid (< 0.03 or > 0.97). We note from 10% and warn from 20% (4x the healthy level).
SATURATION_WARN = 0.20
SATURATION_INFO = 0.10
# Symmetry: weight rows (and biases) equal within float32 rounding of the layer's scale.
SYMMETRY_RTOL = 1e-6
SYMMETRY_STABLE_RANK = 1.0 + 1e-3  # identical rows have stable rank exactly 1 (cheap pre-check)
# Loss trend per epoch: "rose" / "flat" at a 1% relative change. torch's ReduceLROnPlateau calls
# less than 1e-4 relative "no improvement"; 1% is a plateau a student can see on the curve.
LOSS_REL_CHANGE = 0.01
# Loss spike inside an epoch: the epoch's mean training loss 10x (or more) the validation loss
# measured at its end. The two differ by little in a steady run (dropout, the epoch's own
# progress); an order of magnitude means the loss blew up for a while during the epoch.
LOSS_SPIKE = 10.0
# Overfitting = validation loss rising while training loss falls, over a trend noise does not
# explain, on a run that learned something. Prechelt (1998), "Early stopping - but when?":
# generalization loss GL(t) = E_val(t) / min E_val - 1; GL > 5% is his GL_5 stopping rule. We
# also ask for OVERFIT_EPOCHS evaluations after the best one (one bad epoch is noise), a rise
# larger than OVERFIT_NOISE x the epoch-to-epoch jitter of the validation loss around its
# trend, and validation accuracy no longer improving (a BatchNorm net whose running statistics
# lag the weights jitters, but its accuracy keeps rising).
GENERALIZATION_LOSS = 0.05
OVERFIT_EPOCHS = 2
OVERFIT_NOISE = 2.0
# "Learned something": validation accuracy at least this share of the way from chance (1 /
# classes) to 100%; without accuracies (regression), the validation loss fell by this share.
LEARNED = 0.25
# Not learning: after NOT_LEARNING_EPOCHS epochs the best validation accuracy is still within
# CHANCE_MARGIN of chance (as a share of the way from chance to 100%), or within CHANCE_SE
# standard errors √(p(1-p)/n_val) of it (a binomial test at about the 0.1% level).
NOT_LEARNING_EPOCHS = 3
CHANCE_MARGIN = 0.05
CHANCE_SE = 3.0

LAYER_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d")


@dataclass
class Flag:
    """One diagnosis: what holds, where, when, the evidence, why, and what fixes it."""

    code: str
    severity: str
    layers: list[str]
    epochs: list[float]
    evidence: dict[str, float | str]
    explanation: str
    fix: str
    guide_step: int
    first_seen: dict[str, Any] | None = None
    snapshots: list[int] = field(default_factory=list)  # snapshot indices where it holds

    @property
    def title(self) -> str:
        """Short human title of the code, in the reader's language."""
        return t(TITLES[self.code]) if self.code in TITLES else self.code

    @property
    def guide_title(self) -> str:
        """Title of the tuning-guide step that fixes the flag, in the reader's language."""
        return t(GUIDE_STEPS[self.guide_step][0])

    @property
    def guide_url(self) -> str:
        """Link to the tuning guide's step, e.g. '/Tuning_guide#step-4'."""
        return guide_url(self.guide_step)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become strings)."""
        d = asdict(self)
        d["evidence"] = {k: json_number(v) for k, v in self.evidence.items()}
        d["title"] = self.title
        d["guide_title"] = self.guide_title
        d["guide_url"] = self.guide_url
        return d

    def localized(self) -> Flag:
        """A copy whose explanation, fix and evidence are in the reader's language."""
        return replace(self, evidence={say(k): say(v) for k, v in self.evidence.items()},
                       explanation=say(self.explanation), fix=say(self.fix),
                       layers=list(self.layers), epochs=list(self.epochs),
                       snapshots=list(self.snapshots),
                       first_seen=None if self.first_seen is None else
                       {k: say(v) for k, v in self.first_seen.items()})


class Text(str):
    """An English message that keeps its id and fields, so it can be said in another language.

    Flags are computed once per run and cached, but each reader has a language: a check writes
    ``Text(N_("… {value} …"), value=format_value(x))`` (the English text, usable as a plain
    str) and ``Flag.localized`` says it in the current language with ``say``.
    """

    msgid: str
    fields: dict[str, Any]

    def __new__(cls, msgid: str, /, **fields: Any) -> Text:
        self = super().__new__(cls, msgid.format(**fields) if fields else msgid)
        self.msgid, self.fields = msgid, fields
        return self

    def say(self) -> str:
        return t(self.msgid, **{k: say(v) for k, v in self.fields.items()})


class Joined(str):
    """Texts joined by a separator (itself a Text), optionally capitalised: said part by part."""

    sep: str
    parts: tuple[str, ...]
    capital: bool

    def __new__(cls, sep: str, parts: Iterable[str] = (), capital: bool = False) -> Joined:
        parts = tuple(parts)
        self = super().__new__(cls, _capital(str(sep).join(parts), capital))
        self.sep, self.parts, self.capital = sep, parts, capital
        return self

    def say(self) -> str:
        return _capital(say(self.sep).join(say(p) for p in self.parts), self.capital)


def _capital(text: str, capital: bool) -> str:
    return text[:1].upper() + text[1:] if capital else text


def say(value: Any) -> Any:
    """A Text or Joined in the reader's language; anything else as it is."""
    return value.say() if isinstance(value, Text | Joined) else value


def guide_url(step: int) -> str:
    """URL of a tuning-guide step."""
    return f"{GUIDE_URL}#{GUIDE_STEPS[step][1]}"


def format_value(value: Any) -> str:
    """Evidence value as text: whole numbers as such, else 3 significant digits; None as '—'."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        if value == 0:
            return "0"
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:.3g}"
        return f"{value:.2e}"
    return str(value)


def json_number(v: Any) -> Any:
    """A finite number as it is; NaN / Inf as text (JSON has no such numbers)."""
    if isinstance(v, float) and not math.isfinite(v):
        return format_value(v)
    return v
