"""The tuning guide's steps and the runs each one trains.

The tutorial's tuning order ("first make it train, then make it good, then stop overfitting") is
``STEPS``, each with a correct explanation (``Step.correction`` names what the tutorial gets
wrong). ``step_configs(step, base, size)`` gives the labelled ``RunConfig`` objects a step
trains: the base problem with only the step's knob changed (plus what the lesson needs, said in
``Step.setup``). ``size="tiny"`` shrinks every run to a second or so (tests, a first look);
``"small"`` is sized for a laptop. ``lr_find_config`` is the problem the page's LR range test
uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnviz.config import RunConfig
from nnviz.errors import ConfigError
from nnviz.i18n import N_, t

SIZES = ("small", "tiny")
TINY_ENV = "NNVIZ_TINY"  # set to 1 to make the app's tuning page default to tiny runs
PAGE_URL = "/Tuning_guide"
IMAGE_DATASETS = ("shapes32", "shapes28", "mnist", "fashion_mnist", "cifar10")
# SGD settings used where a lesson must not be hidden by Adam's per-weight step sizes (Adam
# rescales small gradients, which masks vanishing signals and saturated units).
SGD_LESSON = {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05}


@dataclass(frozen=True)
class Step:
    """One step of the tuning order: what to do, why, and what its experiment shows."""

    number: int
    key: str                      # short name ("init", "lr", ...), used in widget keys
    title: str
    explanation: str              # markdown: the correct advice
    correction: str               # markdown: what the tutorial says and the fact ("" if nothing)
    setup: str                    # what the "try it" experiment trains
    look_for: str                 # how to read its plot
    fields: tuple[str, ...]       # RunConfig options this step tunes


STEPS: dict[int, Step] = {s.number: s for s in (
    Step(
        1, "init", N_("Initialization"),
        N_("Start from **pretrained weights** when a model trained on similar data exists. "
        "Otherwise match the init to the activation: **Kaiming (He)** for ReLU-like layers, "
        "**Xavier (Glorot)** for tanh or linear layers; both keep the size of the signal "
        "about constant from layer to layer. Xavier assumes an activation with slope 1 at 0 "
        "(Glorot & Bengio 2010): sigmoid's slope there is 1/4, so even with Xavier a sigmoid "
        "stack shrinks the signal about 4× per layer, which is why Glorot & Bengio found "
        "sigmoid ill-suited to deep nets. PyTorch's own default, for `nn.Linear` "
        "*and* `nn.Conv2d` alike, is `kaiming_uniform_(a=√5)` = U(−1/√fan_in, 1/√fan_in), "
        "std 1/√(3·fan_in): smaller than Kaiming's √(2/fan_in).\n\n"
        "Weights that are **too small** shrink the signal layer after layer: activations "
        "and gradients **vanish** and the first layers stop learning. Weights that are **too "
        "large** make it grow (**exploding**), and with sigmoid or tanh push units into "
        "saturation, where their gradients vanish."),
        N_("The tutorial says PyTorch uses Kaiming for conv and Xavier for linear layers, and "
        "that too-small initial weights can make gradients explode. In fact both layer types "
        "use kaiming_uniform(a=√5), and too-small weights make signals and gradients "
        "**vanish**, not explode."),
        N_("Same seed, data and deep ReLU MLP, trained with SGD (momentum 0.9), biases "
        "starting at 0; only the weight initializer changes."),
        N_("Left: validation loss per epoch (a line that stops early diverged). Right: the std "
        "of each layer's output at init — flat is healthy, falling means the signal "
        "vanishes, rising means it explodes."),
        ("init", "init_mode", "init_std", "init_a", "bias_init"),
    ),
    Step(
        2, "batch", N_("Batch size"),
        N_("Batch size is a **trade-off**, not \"as large as fits\". A larger batch uses the "
        "hardware better, so an epoch takes less time; but it makes fewer, less noisy "
        "updates per epoch, so at the same learning rate and number of epochs it usually "
        "ends at a worse loss, and very large batches often generalize worse (Keskar et al. "
        "2017). If you raise the batch size, raise the learning rate with it (for SGD about "
        "linearly, with a warm-up: Goyal et al. 2017) and check again. 32 to 256 is a common "
        "range."),
        N_("The tutorial says \"the bigger the better\". Bigger is faster per epoch, not better: "
        "it is a trade-off between time and the loss you reach."),
        N_("Same model, learning rate and number of epochs; only the batch size changes."),
        N_("Each point is one batch size: seconds per epoch (x) against final validation loss "
        "(y). Look for the knee: the fastest batch size whose loss is still close to the "
        "best."),
        ("batch_size",),
    ),
    Step(
        3, "epochs", N_("Epochs and early stopping"),
        N_("Train until the **validation** loss stops improving. The training loss keeps "
        "falling; when the validation loss turns back up, the model starts to memorize the "
        "training set (overfitting). **Early stopping** watches the validation loss and "
        "stops after `patience` epochs without improvement; keep the weights of the best "
        "epoch (nnviz keeps a snapshot of every epoch, so you can explore the best one)."),
        "",
        N_("A small training set (so overfitting can show) trained twice with the same seed: "
        "once for all epochs, once with early stopping."),
        N_("Training and validation loss of the full run; the dashed line marks the best "
        "validation epoch, the dotted line where early stopping stopped."),
        ("epochs", "early_stopping"),
    ),
    Step(
        4, "lr", N_("Learning rate and scheduler"),
        N_("The learning rate usually matters most. Too large and the loss jumps or diverges; "
        "too small and it barely moves. Find the range with the **LR range test**: train "
        "briefly while the LR grows exponentially and watch the loss; start near the "
        "steepest descent, well below where the loss explodes (Smith 2017; fastai's "
        "`lr_find`). Then let a **schedule** lower it while training: StepLR (× gamma every "
        "`step_size` epochs), CosineAnnealingLR (a smooth decay to about 0 at the last "
        "epoch), ReduceLROnPlateau (× gamma once the validation loss stalls for `patience` "
        "epochs).\n\n"
        "\"Adam to converge fast, then SGD to finish\" is **one heuristic** (e.g. SWATS, "
        "Keskar & Socher 2017), not a rule: Adam or AdamW with a schedule is often as good, "
        "and SGD after the switch needs its own learning rate (here it keeps Adam's, which "
        "is usually too small for SGD)."),
        N_("The tutorial presents Adam-then-SGD as the way to finish training; it is one "
        "option among several, worth testing rather than assuming."),
        N_("The base problem trained three times with the same seed and learning rate: Adam, "
        "SGD (momentum 0.9), and Adam switching to SGD half-way."),
        N_("Validation loss per epoch; the dotted line is the switch to SGD."),
        ("lr", "optimizer", "momentum", "switch_epoch", "scheduler", "step_size", "gamma",
         "patience"),
    ),
    Step(
        5, "structure", N_("Model structure"),
        N_("Change **one thing at a time** (an ablation): width, depth, kernel count, "
        "BatchNorm. More parameters fit the training set better, but can overfit and cost "
        "time; deeper plain networks are harder to train without a good init or "
        "normalization. Compare by validation loss *and* cost."),
        "",
        N_("A grid of widths × depths, everything else fixed (the tutorial's SimpleNet / "
        "SimpleCNN have a fixed shape, so an MLP or CNN is used)."),
        N_("Best validation loss against the number of parameters, one line per depth: the "
        "smallest model near the bottom is the one to keep."),
        ("width", "depth", "batch_norm"),
    ),
    Step(
        6, "loss", N_("Loss function"),
        N_("Use the loss that matches the task and the output: **cross-entropy** (softmax over "
        "classes) for multi-class, **BCE** (a sigmoid per output) for binary or multi-label, "
        "**MSE** or **MAE** for regression. PyTorch's `CrossEntropyLoss` and "
        "`BCEWithLogitsLoss` take raw logits and apply softmax / sigmoid inside, so the "
        "model must not apply them too. **Focal loss** (Lin et al. 2017) scales "
        "cross-entropy by (1 − p_t)^γ, where p_t is the probability the model gives the "
        "true class, lowering the weight of easy examples, which can help "
        "when a class is rare. MSE squares errors, so a few outliers pull the fit towards "
        "them; MAE grows linearly and is more robust."),
        "",
        N_("Left: an imbalanced training set (the first class 10× more common than the last) "
        "with cross-entropy and focal loss; the validation set stays balanced. Right: "
        "SimpleNet regression with 10% of the training targets made outliers, MSE vs MAE."),
        N_("Left: validation accuracy (balanced, so every class counts the same). Right: "
        "distance between the learned (w, b) and the true ones: lower is closer to the "
        "real line."),
        ("loss", "focal_gamma"),
    ),
    Step(
        7, "activation", N_("Activation function"),
        N_("For hidden layers **ReLU** is the default; **LeakyReLU** keeps a small slope for "
        "negative inputs, so a unit that is never positive still gets a gradient; GELU is "
        "common in transformers. **Sigmoid** and **tanh** saturate: for large |input| their "
        "slope is almost 0; and even unsaturated, sigmoid's slope is at most 1/4, so the "
        "activation alone multiplies the backward signal by at most 1/4 per layer (the "
        "weights can make up for some of it, or shrink it further): deep stacks of them "
        "learn slowly or not at all. Sigmoid for a binary "
        "output and softmax for a multi-class output are **output** choices, not hidden-"
        "layer ones, and `BCEWithLogitsLoss` / `CrossEntropyLoss` already include them."),
        N_("The tutorial lists \"sigmoid for binary, softmax for multi-class\" as activation "
        "choices; they belong to the output layer (and to the loss), not to hidden layers."),
        N_("The same deep MLP with four hidden activations, trained with SGD (momentum 0.9)."),
        N_("Left: validation loss per epoch. Right: per layer after training, the share of "
        "dead units (ReLU family: never positive on the probe batch) or saturated outputs "
        "(sigmoid / tanh within 3% of their limits)."),
        ("activation",),
    ),
    Step(
        8, "regularization", N_("Regularization"),
        N_("Regularize when the model **overfits**: the validation loss rises for several "
        "epochs while the training loss keeps falling (a gap between them alone is not "
        "overfitting). **Dropout** (p = 0.2 to 0.5) zeroes random units while training; **weight "
        "decay** (L2) pulls weights towards 0 (with Adam prefer AdamW's decoupled decay). "
        "Too much of either underfits: both losses go up. The training loss here is "
        "measured while training, with dropout on, so it reads a little high for dropout "
        "runs."),
        "",
        N_("A wide MLP on a small, noisy training set, without and with dropout or weight "
        "decay."),
        N_("Bars: final training and validation loss per setting; the number above is the gap "
        "(validation − training). Regularization should shrink the gap without raising the "
        "validation loss."),
        ("dropout", "weight_decay"),
    ),
)}

# Where each option is set on the Train page, and which class of the tutorial it belongs to.
PARAM_CLASSES: list[dict[str, str]] = [
    {"class": N_("Network"), "parameter": N_("Layer width / kernel count"), "option": "width",
     "step": "5"},
    {"class": N_("Network"), "parameter": N_("Depth (layers / conv blocks)"), "option": "depth",
     "step": "5"},
    {"class": N_("Network"), "parameter": N_("Activation"), "option": "activation", "step": "7"},
    {"class": N_("Network"), "parameter": N_("BatchNorm"), "option": "batch_norm", "step": "5"},
    {"class": N_("Network"), "parameter": N_("Initialization"), "option": "init", "step": "1"},
    {"class": N_("Optimization"), "parameter": N_("Learning rate"), "option": "lr", "step": "4"},
    {"class": N_("Optimization"), "parameter": N_("Batch size"), "option": "batch_size",
     "step": "2"},
    {"class": N_("Optimization"), "parameter": N_("Optimizer (and momentum)"),
     "option": "optimizer",
     "step": "4"},
    {"class": N_("Optimization"), "parameter": N_("LR scheduler"), "option": "scheduler",
     "step": "4"},
    {"class": N_("Optimization"), "parameter": N_("Epochs / early stopping"), "option": "epochs",
     "step": "3"},
    {"class": N_("Optimization"), "parameter": N_("Loss (and focal γ)"), "option": "loss",
     "step": "6"},
    {"class": N_("Regularization"), "parameter": N_("Weight decay (L2)"), "option": "weight_decay",
     "step": "8"},
    {"class": N_("Regularization"), "parameter": N_("Dropout"), "option": "dropout", "step": "8"},
]

def step_url(step: int) -> str:
    """Link to a step of the tuning-guide page (its HTML anchor ``step-N``)."""
    _step(step)
    return f"{PAGE_URL}#step-{step}"


def _step(step: int) -> Step:
    if step not in STEPS:
        raise ConfigError(t("step: {step!r} is not a tuning step; use 1 to {n}.", step=step,
                            n=len(STEPS)))
    return STEPS[step]


def tuning_base(**overrides: Any) -> RunConfig:
    """The default problem every step starts from: a ReLU MLP on the spiral, Adam, seeded."""
    values: dict[str, Any] = {
        "model": "mlp", "dataset": "spiral", "depth": 3, "width": 64, "activation": "relu",
        "init": "kaiming_normal", "optimizer": "adam", "lr": 3e-3, "batch_size": 32,
        "epochs": 10, "n_samples": 1000, "noise": 0.1, "seed": 42,
    }
    values.update(overrides)
    return RunConfig.from_dict(values)


def _fit_model(base: RunConfig) -> dict[str, Any]:
    """Model options that give the base data a width/depth-configurable model (mlp or cnn)."""
    if base.model in ("mlp", "cnn"):
        return {}
    if base.dataset in IMAGE_DATASETS:
        return {"model": "cnn", "depth": 2, "width": 8, "loss": "auto"}
    return {"model": "mlp", "loss": "auto"}


# Tiny runs train at most this many epochs; the one-layer SimpleNet costs next to nothing, so
# it gets enough epochs to converge (step 6 compares where MSE and MAE lines end up).
TINY_EPOCHS = {"simple_net": 20}
TINY_EPOCHS_DEFAULT = 2


def _shrink(cfg: RunConfig, size: str, epochs: int | None = None) -> RunConfig:
    """The tiny version of a config: few samples, epochs and units; unchanged for 'small'."""
    if size == "small":
        return cfg
    cap = TINY_EPOCHS.get(cfg.model, TINY_EPOCHS_DEFAULT)
    changes: dict[str, Any] = {
        "n_samples": min(cfg.n_samples or 200, 200), "epochs": epochs or min(cfg.epochs, cap),
        "probe_size": min(cfg.probe_size, 64),
        "width": min(cfg.width, 4 if cfg.model == "cnn" else 8),
    }
    if cfg.model == "mlp":
        changes["depth"] = min(cfg.depth, 4)
    if cfg.model == "cnn":
        changes["depth"] = 2
    return cfg.replace(**changes)


def step_configs(step: int, base: RunConfig, size: str = "small") -> list[tuple[str, RunConfig]]:
    """The labelled configs one step trains: ``base`` with the step's knob varied."""
    spec = _step(step)
    if size not in SIZES:
        raise ConfigError(t("size: {size!r} is not a size; use one of {sizes}.", size=size,
                            sizes=", ".join(SIZES)))
    tiny = size == "tiny"
    base = base.replace(**_fit_model(base), early_stopping=0, snapshots_per_epoch=1)
    pairs = _STEP_CONFIGS[step](base, tiny)
    out = []
    for label, cfg in pairs:
        cfg = _shrink(cfg, size, epochs=cfg.epochs if tiny and step == 3 else None)
        out.append((label, cfg.replace(name=t("Tuning step {n}: {label}", n=spec.number,
                                              label=label)[:80])))
    return out


def _configs_init(base: RunConfig, tiny: bool) -> list[tuple[str, RunConfig]]:
    inits = ["default", "kaiming_normal", "too_small"] if tiny else \
        ["default", "xavier_normal", "kaiming_normal", "too_small", "too_large"]
    depth = {}
    if base.model == "mlp":
        depth = {"depth": 4 if tiny else max(base.depth, 6), "activation": "relu"}
    common = base.replace(**SGD_LESSON, **depth, bias_init="zeros")  # only the weights differ
    return [(name, common.replace(init=name)) for name in inits]


def _configs_batch(base: RunConfig, tiny: bool) -> list[tuple[str, RunConfig]]:
    sizes = [16, 64] if tiny else [8, 32, 128, 512]
    return [(t("batch {b}", b=b), base.replace(batch_size=b)) for b in sizes]


def _configs_epochs(base: RunConfig, tiny: bool) -> list[tuple[str, RunConfig]]:
    epochs, patience = (4, 1) if tiny else (40, 4)
    common = base.replace(epochs=epochs, n_samples=min(base.n_samples, 300),
                          noise=max(base.noise, 0.2) if base.dataset not in IMAGE_DATASETS
                          else base.noise,
                          width=max(base.width, 128) if base.model == "mlp" else base.width,
                          lr=max(base.lr, 1e-2) if base.optimizer in ("adam", "adamw")
                          else base.lr)
    return [(t("all epochs"), common),
            (t("early stopping (patience {patience})", patience=patience),
             common.replace(early_stopping=patience))]


def _configs_lr(base: RunConfig, tiny: bool) -> list[tuple[str, RunConfig]]:
    switch = 2 if tiny else max(2, base.epochs // 2 + 1)
    return [("Adam", base.replace(optimizer="adam")),
            (t("SGD (momentum 0.9)"), base.replace(optimizer="sgd", momentum=0.9)),
            (t("Adam, then SGD from epoch {switch}", switch=switch),
             base.replace(optimizer="adam_then_sgd", switch_epoch=switch, momentum=0.9))]


def _configs_structure(base: RunConfig, tiny: bool) -> list[tuple[str, RunConfig]]:
    if base.model == "cnn":
        grid = [(4, 2), (8, 2)] if tiny else [(w, d) for d in (2, 3) for w in (8, 16, 32)]
    else:
        grid = [(4, 1), (8, 2)] if tiny else [(w, d) for d in (1, 4) for w in (8, 32, 128)]
    return [(t("width {w} · depth {d}", w=w, d=d), base.replace(width=w, depth=d))
            for w, d in grid]


def _configs_loss(base: RunConfig, tiny: bool) -> list[tuple[str, RunConfig]]:
    cls = base if base.dataset not in ("regression",) else base.replace(dataset="moons")
    cls = cls.replace(imbalance=10.0)
    reg = base.replace(model="simple_net", dataset="regression", outlier_fraction=0.1,
                       init="default", epochs=max(base.epochs, 20), **SGD_LESSON)
    return [(t("cross-entropy"), cls.replace(loss="cross_entropy")),
            (t("focal (γ 2)"), cls.replace(loss="focal", focal_gamma=2.0)),
            ("MSE", reg.replace(loss="mse")),
            ("MAE", reg.replace(loss="mae"))]


def _configs_activation(base: RunConfig, tiny: bool) -> list[tuple[str, RunConfig]]:
    deep = base.replace(model="mlp", depth=4 if tiny else 10, **SGD_LESSON)
    return [(name, deep.replace(activation=name))
            for name in ("relu", "leaky_relu", "sigmoid", "tanh")]


def _configs_regularization(base: RunConfig, tiny: bool) -> list[tuple[str, RunConfig]]:
    common = base.replace(n_samples=min(base.n_samples, 300), epochs=max(base.epochs, 30),
                          noise=max(base.noise, 0.2) if base.dataset not in IMAGE_DATASETS
                          else base.noise,
                          width=max(base.width, 128) if base.model == "mlp" else base.width,
                          optimizer="adamw" if base.optimizer == "adam" else base.optimizer)
    if tiny:
        return [(t("none"), common), (t("dropout {p}", p=0.5), common.replace(dropout=0.5))]
    return [(t("none"), common),
            (t("dropout {p}", p=0.2), common.replace(dropout=0.2)),
            (t("dropout {p}", p=0.5), common.replace(dropout=0.5)),
            (t("weight decay {wd}", wd=0.01), common.replace(weight_decay=0.01)),
            (t("weight decay {wd}", wd=0.1), common.replace(weight_decay=0.1))]


_STEP_CONFIGS = {1: _configs_init, 2: _configs_batch, 3: _configs_epochs, 4: _configs_lr,
                 5: _configs_structure, 6: _configs_loss, 7: _configs_activation,
                 8: _configs_regularization}


def lr_find_config(base: RunConfig, size: str = "small") -> RunConfig:
    """The config the page's LR range test uses: the base problem (tiny: shrunk)."""
    return _shrink(base.replace(**_fit_model(base)), size)
