"""The lessons: named run configs, what each shows, and where on screen to see it.

A ``Preset`` is data: ``overrides`` of ``RunConfig``'s defaults, a one-line ``lesson`` (what it
teaches), ``look`` (one paragraph: the chart and the epoch where the lesson is visible) and
``flags`` (the diagnostics the lesson is about: exactly these hold at the end of its run;
``tests/test_lessons.py`` trains every lesson and checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnviz.config import RunConfig
from nnviz.errors import ConfigError
from nnviz.i18n import N_, t


@dataclass(frozen=True)
class Preset:
    """A named lesson: a config, what it shows, where to look, and the flags it is about."""

    name: str
    label: str
    lesson: str
    overrides: dict[str, Any] = field(default_factory=dict)
    look: str = ""
    flags: tuple[str, ...] = ()

    def config(self) -> RunConfig:
        """The preset's validated config."""
        return RunConfig.from_dict(self.overrides)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "tutorial_cnn", N_("Tutorial SimpleCNN, PyTorch default init"),
            N_("The tutorial's model with PyTorch's own init: kaiming_uniform(a=√5), std "
            "1/√(3·fan_in) = 0.111 for conv1 and 0.00902 for fc."),
            {"model": "simple_cnn", "dataset": "shapes32", "init": "default", "epochs": 3},
            look=(
                N_("Open Explore at init (epoch 0) and pick conv1.weight: the bars fill the flat "
                "orange U(±1/√27) density, and the measured std sits beside the theoretical 0.111; "
                "for fc.weight beside 0.00902. Scrub to epoch 3: the loss curve falls, the "
                "histograms keep their shape, and the diagnostics panel stays green.")),
        ),
        Preset(
            "symmetry", N_("Symmetry: constant init"),
            N_("Every weight starts at 0.3 and every bias at 0: each unit of a layer gets the same "
            "gradient, so the units change together and stay copies of each other."),
            {"model": "mlp", "dataset": "moons", "depth": 2, "width": 16,
             "activation": "tanh", "init": "constant", "init_value": 0.3,
             "bias_init": "zeros", "optimizer": "sgd", "lr": 0.1, "epochs": 5},
            look=(
                N_("Open Explore, pick fc2.weight and view its neuron heatmap: at init every tile "
                "is the same colour, and the histogram is one bar at 0.3. Scrub from epoch 0 to "
                "epoch 5: that one bar moves and the colour changes, but all 16 rows stay "
                "identical (with More views on, W_t − W_0 is one spike too). The diagnostics "
                "panel shows one critical flag, symmetry, from init to the last epoch.")),
            flags=("symmetry",),
        ),
        Preset(
            "vanishing", N_("Vanishing: deep sigmoid MLP, too-small init"),
            N_("20 sigmoid layers with N(0, 0.001²) weights: each layer shrinks the signal on "
            "the way forward and the gradient on the way back, so the first layers barely "
            "move."),
            {"model": "mlp", "dataset": "spiral", "depth": 20, "width": 64,
             "activation": "sigmoid", "init": "too_small", "optimizer": "sgd", "lr": 0.1,
             "epochs": 5},
            look=(
                N_("Open Explore's Health view at epoch 1: in \"Signal through depth\" the "
                "gradient line falls by about 40 orders of magnitude from the output layer back "
                "to fc5 and is exactly 0 (the × marks) at fc1-fc4, and the activation signal "
                "is exactly 0 from fc5 on. Pick fc1.weight and scrub epochs 0 to 5: its "
                "histogram and W_t − W_0 do not move. The panel shows vanishing, with frozen "
                "layers near the input.")),
            flags=("vanishing", "frozen"),
        ),
        Preset(
            "exploding", N_("Exploding: learning rate too high"),
            N_("The tutorial's SimpleNet, Linear(2, 1), fitting a line with SGD at lr 2.5: each "
            "step overshoots the minimum by more than the last, so the weights grow about "
            "3× per step until they overflow to Inf."),
            {"model": "simple_net", "dataset": "regression", "init": "default",
             "optimizer": "sgd", "momentum": 0.0, "lr": 2.5, "epochs": 2,
             "snapshots_per_epoch": 20},
            look=(
                N_("Snapshots are taken 20 times per epoch. Open Explore's All epochs view: the "
                "drift chart (log scale) climbs about ×3 per snapshot from epoch 0.04 to "
                "epoch 1.28, and the health timeline is orange (exploding) at epoch 0.04 and at "
                "every snapshot from 0.16 on. "
                "In This epoch, step from epoch 0 to 0.4: the histograms are binned on each "
                "snapshot's own range (chosen automatically, the note under them says why: the "
                "run's range grows by about 10^19), and the two weights grow from about 0.5 "
                "to about 10^5, flipping sign as each step overshoots. The last snapshot, "
                "epoch 1.28 (step 32), is where the loss overflowed: the panel shows "
                "non-finite (critical), exploding, and the learning rate as the cause (lr too "
                "high).")),
            flags=("non_finite", "exploding", "lr_too_high"),
        ),
        Preset(
            "xavier_deep_relu", N_("Xavier on a 30-layer ReLU MLP"),
            N_("Xavier ignores that ReLU zeroes half the signal: the variance halves per layer "
            "(He et al. 2015), so deep layers see almost nothing."),
            {"model": "mlp", "dataset": "spiral", "depth": 30, "width": 64,
             "activation": "relu", "init": "xavier_normal", "optimizer": "sgd", "lr": 0.01,
             "epochs": 5},
            look=(
                N_("Open Explore's Health view at init (epoch 0): in \"Signal through depth\" the "
                "activation line falls steadily, by about 2^-15 from fc1 to fc30. Compare it "
                "with the Kaiming lesson on the Compare page: there the line stays flat. The "
                "panel shows vanishing, and dead ReLUs: units that get no signal never switch "
                "on.")),
            flags=("vanishing", "dead_relu"),
        ),
        Preset(
            "kaiming_deep_relu", N_("Kaiming on a 30-layer ReLU MLP"),
            N_("Kaiming doubles the variance to make up for ReLU: the signal keeps its size "
            "through all 30 layers."),
            {"model": "mlp", "dataset": "spiral", "depth": 30, "width": 64,
             "activation": "relu", "init": "kaiming_normal", "optimizer": "sgd", "lr": 0.005,
             "epochs": 5},
            look=(
                N_("Open Explore's Health view at init (epoch 0): the activation line of \"Signal "
                "through depth\" stays roughly flat from fc1 to the output layer, and the "
                "panel finds no vanishing or exploding signal. It does note dead ReLUs: in a "
                "30-layer ReLU stack on 2-D input some units are off for every example even "
                "with Kaiming init (Lu et al. 2019), a cost of depth, not of the init.")),
            flags=("dead_relu",),
        ),
        Preset(
            "filters", N_("Filters that learn edge detectors"),
            N_("A one-block CNN with eight 7×7 filters on noisy images whose class is the "
            "orientation of their light/dark edges: within two epochs each filter becomes an "
            "oriented edge detector (seconds on a CPU)."),
            {"model": "cnn", "dataset": "edges16", "noise": 0.5, "depth": 1, "width": 8,
             "kernel_size": 7, "init": "normal", "init_std": 0.01, "optimizer": "adam",
             "lr": 1e-3, "n_samples": 3000, "epochs": 4},
            look=(
                N_("Open Explore, pick conv1 and look at conv1.weight's filters: at init (epoch 0) "
                "the eight 7×7 tiles are almost white (the lesson starts from small N(0, 0.01²) "
                "weights, so that the init's noise does not hide what training draws); under "
                "them the "
                "structure score (correlation of neighbouring taps) is about 0.0 and the "
                "orientation score (how much of each filter's light-to-dark change runs one "
                "way) about 0.25. Step to epoch 1: faint bands appear (scores about 0.6); by "
                "epoch 2 each tile is a red band beside a blue one, a straight edge detector "
                "at one of the four orientations (vertical, horizontal and both diagonals), "
                "and the scores reach about 0.8 and 0.9, then hold to epoch 4 while the "
                "validation accuracy climbs to about 98%. The panel stays green.")),
        ),
        Preset(
            "healthy", N_("Healthy baseline"),
            N_("A small CNN with Kaiming init, BatchNorm and Adam at lr 1e-3: the loss falls, "
            "the weights move gently, nothing is flagged."),
            {"model": "cnn", "dataset": "shapes32", "depth": 2, "width": 16,
             "init": "kaiming_normal", "batch_norm": True, "optimizer": "adam", "lr": 1e-3,
             "epochs": 4},
            look=(
                N_("Open Explore's All epochs view: training and validation loss fall together, "
                "the update ratios sit within 10× of the 1e-3 line, and the drift of "
                "conv1.weight grows slowly up to epoch 4. The panel stays green at every epoch.")),
        ),
    )
}


def preset(name: str) -> Preset:
    """Look up a preset, or raise ConfigError listing them."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            t("Unknown preset {name!r}. Choose one of: {names}.", name=name,
              names=", ".join(PRESETS))
        ) from None
