"""Which model fits which data set: the check the CLI, the Train form and links share.

``fit_problem(cfg)`` says in words why the configured model cannot train on the configured data
set with its loss (None when it can); ``fitting_datasets(cfg)`` lists the data sets it can train
on, in registry order. Both read only the registries' specs (no data is loaded), so they are
cheap enough for every rerun of a form.
"""

from __future__ import annotations

from nnviz.config import RunConfig, unchecked
from nnviz.errors import ConfigError


def fit_problem(cfg: RunConfig) -> str | None:
    """Why the model cannot train on the data set with this loss (None when it can)."""
    from nnviz.engine.data import DATASETS
    from nnviz.engine.models import MODELS, output_size
    from nnviz.engine.training import resolve_loss

    data = DATASETS.get(cfg.dataset)
    spec = MODELS.get(cfg.model)
    if data is None or spec is None:
        return None  # validate() reports unknown names
    try:
        loss = resolve_loss(cfg, data.task, data.n_classes)
    except ConfigError as exc:
        return str(exc)
    return spec.check(tuple(data.input_shape), data.n_classes,
                      output_size(data.task, data.n_classes, loss))


def fitting_datasets(cfg: RunConfig) -> list[str]:
    """The data sets the config's model can train on (with its loss), in registry order."""
    from nnviz.engine.data import DATASETS

    return [name for name in DATASETS if fit_problem(unchecked(cfg, dataset=name)) is None]
