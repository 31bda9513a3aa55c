"""The tuning guide as experiments, one module per job.

* ``steps``: the eight steps of the tuning order and the labelled runs each one trains.
* ``frames``: finished runs as the tables each step's figure draws; scheduler and LR-test tables.
* ``findings``: what a sweep showed, in sentences read from those tables.
* ``progress``: where a sweep's jobs stand, for one progress bar.

The names below are the public API (``from nnviz.analysis import tuning; tuning.STEPS``).
"""

from nnviz.analysis.tuning.findings import CHANCE_MARGIN, step_findings
from nnviz.analysis.tuning.frames import (
    LabelledRuns,
    activation_health_frame,
    early_stopping_marks,
    history_frame,
    layer_std_frame,
    loss_choice_frame,
    lr_find_frame,
    plateau_curve,
    scheduler_preview,
    step_frames,
    summary_frame,
)
from nnviz.analysis.tuning.progress import (
    FINISHED_STATES,
    SweepProgress,
    job_fraction,
    sweep_progress,
)
from nnviz.analysis.tuning.steps import (
    IMAGE_DATASETS,
    PARAM_CLASSES,
    SGD_LESSON,
    SIZES,
    STEPS,
    TINY_ENV,
    Step,
    lr_find_config,
    step_configs,
    step_url,
    tuning_base,
)

__all__ = [
    "CHANCE_MARGIN", "FINISHED_STATES", "IMAGE_DATASETS", "PARAM_CLASSES", "SGD_LESSON", "SIZES",
    "STEPS", "TINY_ENV", "LabelledRuns", "Step", "SweepProgress", "activation_health_frame",
    "early_stopping_marks", "history_frame", "job_fraction", "layer_std_frame",
    "loss_choice_frame", "lr_find_config", "lr_find_frame", "plateau_curve",
    "scheduler_preview", "step_configs", "step_findings", "step_frames", "step_url",
    "summary_frame", "sweep_progress", "tuning_base",
]
