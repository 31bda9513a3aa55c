"""Streamlit helpers shared by every page: the job manager, the run store, the config form,
job progress, run picker, share link and error display.

Session-state keys written here start with the ``prefix`` a page passes (``train_...``), plus
``nnviz_job_id``: the job the user started last, which the Explore page follows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from nnviz.config import (
    ACTIVATIONS,
    INIT_MODES,
    OPTIMIZERS,
    SCHEDULERS,
    RunConfig,
    field_help,
)
from nnviz.errors import ConfigError, NnvizError
from nnviz.store.runs import RunStore, default_root
from ui.services.jobs import JobInfo, JobManager
from ui.services.urlstate import config_to_query, fit_problem, view_to_query

log = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent.parent
EXPLORE_PAGE = "pages/2_Explore.py"
JOB_KEY = "nnviz_job_id"  # the job the user started last (read by the Explore page)
RUN_STATUS_ICONS = {"completed": "✅", "running": "⏳", "diverged": "💥", "cancelled": "⏹️",
                    "failed": "❌", "interrupted": "⚠️"}


# --- shared resources ----------------------------------------------------------------------


def use_router() -> None:
    """Make a page opened by a deep link run under app.py's router.

    Until app.py's ``st.navigation`` has run once in a server, Streamlit treats ``pages/`` as
    its old folder of pages: a first visit to ``/Explore?...`` runs the page file alone, with a
    sidebar listing "app" and no icons, and skips app.py's start-up. Clearing that mode and
    re-running sends the request through the router, which opens the same page. (AppTest
    turns that mode back on before every run; a session's later runs are not repeated.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    first_run = "_nnviz_routed" not in st.session_state
    st.session_state["_nnviz_routed"] = True
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if first_run:  # a page load, never a click: nothing is lost by running it again
            st.rerun()


def runs_root() -> Path:
    """The runs folder: $NNVIZ_RUNS_DIR or ./runs, as an absolute path."""
    return default_root().resolve()


def _release_manager(manager: JobManager) -> None:
    manager.shutdown()


@st.cache_resource(show_spinner=False, max_entries=4, on_release=_release_manager,
                   validate=lambda m: not m.closed)
def _manager(root: str) -> JobManager:
    return JobManager(root)


def job_manager() -> JobManager:
    """The app-wide job manager for the runs folder (one per server; workers start on demand)."""
    manager = _manager(str(runs_root()))
    manager.warm()  # returns at once; the first Train click then finds warm workers
    return manager


def run_store() -> RunStore:
    """The run store of the runs folder (its crash leftovers removed once per server start)."""
    store = RunStore(runs_root())
    _cleaned_once(str(store.root))
    return store


@st.cache_resource(max_entries=16, show_spinner=False)
def _cleaned_once(root: str) -> bool:
    RunStore(root).clean_orphans()
    return True


def show_error(exc: BaseException) -> None:
    """Show an error in plain words: the message of an nnviz error, never a traceback."""
    if isinstance(exc, NnvizError):
        st.error(str(exc), icon="🚫")
        return
    log.exception("unexpected error in the app", exc_info=exc)
    st.error(f"Something went wrong ({type(exc).__name__}: {exc}). The details are in the "
             "server log; please report it.", icon="🚫")


def query_params() -> dict[str, list[str]]:
    """The page's query parameters with every value of repeated keys (for ui.services.urlstate)."""
    return {key: st.query_params.get_all(key) for key in st.query_params}


def explore_available() -> bool:
    """True when the Explore page exists (another module of the app)."""
    return (APP_DIR / EXPLORE_PAGE).is_file()


def open_explore(run_id: str | None = None, job: JobInfo | None = None,
                 preset: str | None = None) -> None:
    """Switch to the Explore page for a run or job (remembered in session state and the URL)."""
    if job is not None:
        st.session_state[JOB_KEY] = job.job_id
        run_id = run_id or job.run_id
    if not explore_available():
        st.warning("The Explore page is not installed in this app.")
        return
    st.switch_page(EXPLORE_PAGE, query_params=view_to_query(run_id=run_id, preset=preset))


def explore_link(run_id: str, label: str = "Open in Explore", key: str | None = None) -> None:
    """A link to the Explore page showing one run."""
    if explore_available():
        st.page_link(EXPLORE_PAGE, label=label, icon="🔍",
                     query_params=view_to_query(run_id=run_id))
    else:
        st.caption(f"Run {run_id} (the Explore page is not installed).")


# --- the config form -----------------------------------------------------------------------

_HELP = field_help()


def _registry_help(registry: dict[str, Any]) -> str:
    return "\n\n".join(f"**{s.name}**: {s.description}" for s in registry.values())


def _model_specs() -> dict[str, Any]:
    from nnviz.engine.models import MODELS

    return MODELS


def _init_specs() -> tuple[dict[str, Any], dict[str, Any]]:
    from nnviz.engine.initializers import BIAS_INITS, INITIALIZERS

    return INITIALIZERS, BIAS_INITS


def _dataset_specs() -> dict[str, Any]:
    from nnviz.engine.data import DATASETS

    return DATASETS


def _devices() -> list[str]:
    from nnviz.engine.training import available_devices

    return available_devices()


@dataclasses.dataclass
class _Field:
    """One widget of the form: which option, what kind of input, when it is shown."""

    name: str
    kind: str                      # "select" | "int" | "float" | "check" | "text" | "slider"
    label: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    fmt: str | None = None
    options: Callable[[dict[str, Any]], list[str]] | None = None
    labels: Callable[[str], str] | None = None
    shown: Callable[[dict[str, Any]], bool] = lambda v: True
    extra_help: Callable[[], str] = lambda: ""


def _uses(setting: str) -> Callable[[dict[str, Any]], bool]:
    def shown(v: dict[str, Any]) -> bool:
        inits, _ = _init_specs()
        spec = inits.get(v["init"])
        return spec is not None and setting in spec.uses
    return shown


def _dataset_options(v: dict[str, Any]) -> list[str]:
    from ui.services.urlstate import fitting_datasets

    cfg = _loose(v, loss="auto")
    return fitting_datasets(cfg) or list(_dataset_specs())


def _loss_options(v: dict[str, Any]) -> list[str]:
    from nnviz.config import LOSSES

    return [loss for loss in ("auto", *LOSSES) if fit_problem(_loose(v, loss=loss)) is None] \
        or ["auto"]


def _task(v: dict[str, Any]) -> str:
    spec = _dataset_specs().get(v["dataset"])
    return spec.task if spec else "classification"


def _builtin(v: dict[str, Any]) -> bool:
    spec = _dataset_specs().get(v["dataset"])
    return bool(spec and spec.builtin)


def _depth_range(v: dict[str, Any]) -> tuple[int, int]:
    return (2, 4) if v["model"] == "cnn" else (1, 40)


_DEEP = ("mlp", "cnn")

GROUPS: list[tuple[str, bool, list[_Field]]] = [
    ("Model", True, [
        _Field("model", "select", "Model", options=lambda v: list(_model_specs()),
               labels=lambda n: _model_specs()[n].label,
               extra_help=lambda: _registry_help(_model_specs())),
        _Field("depth", "int", "Depth", 1, 40, 1, shown=lambda v: v["model"] in _DEEP),
        _Field("width", "int", "Width", 1, 2048, 8, shown=lambda v: v["model"] in _DEEP),
        _Field("activation", "select", "Activation", options=lambda v: list(ACTIVATIONS),
               shown=lambda v: v["model"] in _DEEP),
        _Field("batch_norm", "check", "BatchNorm after each conv",
               shown=lambda v: v["model"] == "cnn"),
        _Field("dropout", "slider", "Dropout", 0.0, 0.95, 0.05,
               shown=lambda v: v["model"] in _DEEP),
    ]),
    ("Initialization", True, [
        _Field("init", "select", "Weight initializer", options=lambda v: list(_init_specs()[0]),
               labels=lambda n: _init_specs()[0][n].label,
               extra_help=lambda: _registry_help(_init_specs()[0])),
        _Field("init_mode", "select", "Kaiming fan", options=lambda v: list(INIT_MODES),
               shown=_uses("mode")),
        _Field("init_std", "float", "Standard deviation", 1e-8, 100.0, 0.001, "%g",
               shown=_uses("std")),
        _Field("init_a", "float", "Bound a of U(-a, a)", 1e-8, 100.0, 0.01, "%g",
               shown=_uses("a")),
        _Field("init_value", "float", "Constant value", -100.0, 100.0, 0.01, "%g",
               shown=_uses("value")),
        _Field("bias_init", "select", "Bias initializer", options=lambda v: list(_init_specs()[1]),
               labels=lambda n: _init_specs()[1][n].label,
               extra_help=lambda: _registry_help(_init_specs()[1])),
        _Field("bias_value", "float", "Bias value", -100.0, 100.0, 0.01, "%g",
               shown=lambda v: v["bias_init"] == "constant"),
    ]),
    ("Data", True, [
        _Field("dataset", "select", "Data set", options=_dataset_options,
               labels=lambda n: _dataset_specs()[n].label,
               extra_help=lambda: _registry_help(_dataset_specs())),
        _Field("n_samples", "int", "Examples", 0, 200_000, 100),
        _Field("noise", "float", "Noise", 0.0, 10.0, 0.05, "%g", shown=_builtin),
        _Field("val_fraction", "slider", "Validation share", 0.01, 0.9, 0.01),
        _Field("data_dir", "text", "Data folder (on the server)",
               shown=lambda v: not _builtin(v)),
        _Field("imbalance", "float", "Class imbalance (majority / minority)", 1.0, 1000.0, 1.0,
               "%g", shown=lambda v: _task(v) == "classification"),
        _Field("outlier_fraction", "slider", "Outlier share", 0.0, 0.49, 0.01,
               shown=lambda v: _task(v) == "regression"),
    ]),
    ("Optimization", True, [
        _Field("optimizer", "select", "Optimizer", options=lambda v: list(OPTIMIZERS)),
        _Field("lr", "float", "Learning rate", 1e-8, 100.0, 0.0001, "%g"),
        _Field("momentum", "float", "Momentum", 0.0, 0.999, 0.05, "%g",
               shown=lambda v: v["optimizer"] in ("sgd", "adam_then_sgd")),
        _Field("weight_decay", "float", "Weight decay (L2)", 0.0, 10.0, 0.0001, "%g"),
        _Field("switch_epoch", "int", "Switch to SGD at epoch", 1, 500, 1,
               shown=lambda v: v["optimizer"] == "adam_then_sgd"),
        _Field("scheduler", "select", "LR scheduler", options=lambda v: list(SCHEDULERS)),
        _Field("step_size", "int", "Epochs between LR drops", 1, 500, 1,
               shown=lambda v: v["scheduler"] == "step"),
        _Field("gamma", "float", "LR multiplier", 1e-4, 1.0, 0.05, "%g",
               shown=lambda v: v["scheduler"] in ("step", "plateau")),
        _Field("patience", "int", "Plateau patience (epochs)", 0, 500, 1,
               shown=lambda v: v["scheduler"] == "plateau"),
        _Field("loss", "select", "Loss", options=_loss_options),
        _Field("focal_gamma", "float", "Focal γ", 0.0, 10.0, 0.5, "%g",
               shown=lambda v: v["loss"] == "focal"),
        _Field("batch_size", "int", "Batch size", 1, 65_536, 16),
        _Field("epochs", "int", "Epochs", 1, 500, 1),
        _Field("early_stopping", "int", "Early stopping patience (0: off)", 0, 500, 1),
    ]),
    ("Recording & device", False, [
        _Field("snapshots_per_epoch", "int", "Snapshots per epoch", 1, 20, 1),
        _Field("probe_size", "int", "Probe examples (activations)", 1, 4096, 32),
        _Field("seed", "int", "Seed", 0, 2**31 - 1, 1),
        _Field("deterministic", "check", "Deterministic algorithms"),
        _Field("device", "select", "Device", options=lambda v: ["auto", *_devices()]),
        _Field("threads", "int", "CPU threads (0: automatic)", 0, 256, 1),
        _Field("name", "text", "Name (optional)"),
    ]),
]


def _loose(values: dict[str, Any], **changes: Any) -> RunConfig:
    """An unvalidated config from form values (for fit checks)."""
    data = {**RunConfig().to_dict(), **values, **changes}
    return RunConfig(**{k: data[k] for k in RunConfig().to_dict()})


def _signature(cfg: RunConfig) -> dict[str, str]:
    return config_to_query(cfg)


def last_config(prefix: str) -> RunConfig | None:
    """The last valid config the form with this prefix returned in this session."""
    data = st.session_state.get(f"{prefix}__valid")
    try:
        return RunConfig.from_dict(data) if data else None
    except ConfigError:
        return None


def config_form(prefix: str, initial: RunConfig) -> RunConfig | None:
    """Every RunConfig option in the sidebar, grouped; the valid config, or None (error shown).

    The form starts from ``initial`` and keeps the user's edits across reruns and page
    switches; it is reset to ``initial`` only when ``initial`` changes to something the form did
    not produce itself (a new link). Only the options that matter for the chosen model,
    initializer, data set, optimizer and scheduler are shown; the others keep their values.
    """
    state = st.session_state
    values_key, seen_key = f"{prefix}__values", f"{prefix}__seen"
    values: dict[str, Any] | None = state.get(values_key)
    if values is None or _signature(initial) != state.get(seen_key):
        kept = {k: values[k] for k in ("data_dir", "threads") if values and k in values}
        values = {**initial.to_dict(), **kept}
        state[values_key] = values
        state[seen_key] = _signature(initial)
    with st.sidebar:
        st.header("Settings")
        for title, expanded, group in GROUPS:
            with st.expander(title, expanded=expanded):
                for spec in group:
                    if spec.shown(values):
                        values[spec.name] = _widget(prefix, spec, values)
    state[values_key] = values
    try:
        cfg = RunConfig.from_dict(values)
    except ConfigError as exc:
        st.sidebar.error(str(exc))
        return None
    why = fit_problem(cfg)
    if why:
        st.sidebar.error(why)
        return None
    state[f"{prefix}__valid"] = cfg.to_dict()
    state[seen_key] = _signature(cfg)
    return cfg


def _keep(prefix: str, name: str) -> None:
    """on_change: copy a widget's new value into the form's kept values."""
    values = st.session_state.get(f"{prefix}__values")
    if values is not None:
        values[name] = st.session_state[f"{prefix}_{name}"]


def _widget(prefix: str, spec: _Field, values: dict[str, Any]) -> Any:
    """Draw one option's widget; its value comes from the kept values, never stale state.

    Streamlit may hold on to an old value for a widget that was not drawn for a while (after a
    page switch), so every widget is set from ``values`` before it is drawn, and ``_keep``
    copies the user's changes into ``values`` before the rerun.
    """
    key = f"{prefix}_{spec.name}"
    state = st.session_state
    value = values[spec.name]
    help_text = _HELP.get(spec.name, "")
    extra = spec.extra_help()
    if extra:
        help_text = f"{help_text}\n\n{extra}"
    common: dict[str, Any] = {"key": key, "help": help_text, "on_change": _keep,
                              "args": (prefix, spec.name)}
    if spec.kind == "select":
        options = spec.options(values) if spec.options else []
        if value not in options:
            st.caption(f"{spec.label}: {value!r} does not fit the settings above; using "
                       f"{options[0]!r}.")
            value = options[0]
        state[key] = value
        labels = spec.labels
        return st.selectbox(spec.label, options, **common,
                            format_func=(lambda n: f"{labels(n)} ({n})") if labels else str)
    if spec.kind == "check":
        state[key] = bool(value)
        return st.checkbox(spec.label, **common)
    if spec.kind == "text":
        limit = 80 if spec.name == "name" else 500
        state[key] = str(value)[:limit]
        return st.text_input(spec.label, max_chars=limit, **common)
    low, high = spec.low, spec.high
    if spec.name == "depth":
        low, high = _depth_range(values)
    if spec.name == "n_samples" and _builtin(values):
        low = 10
    if spec.kind == "int":
        low, high, step = int(low), int(high), int(spec.step or 1)  # type: ignore[arg-type]
        state[key] = min(max(int(value), low), high)
        return int(st.number_input(spec.label, min_value=low, max_value=high, step=step,
                                   **common))
    low, high = float(low), float(high)  # type: ignore[arg-type]
    number = float(value)
    state[key] = min(max(number if math.isfinite(number) else low, low), high)
    if spec.kind == "slider":
        return float(st.slider(spec.label, min_value=low, max_value=high,
                               step=float(spec.step or 0.01), **common))
    return float(st.number_input(spec.label, min_value=low, max_value=high,
                                 step=float(spec.step or 0.01), format=spec.fmt, **common))


# --- jobs, runs and links ------------------------------------------------------------------


def job_status(job: JobInfo | None) -> None:
    """A progress bar and status line for a job (only a short result line once it finished)."""
    if job is None:
        return
    if job.state == "queued":
        st.info(f"Waiting in the queue: position {job.queue_position}. Training starts when a "
                "worker is free; you can leave this page meanwhile.", icon="⏳")
    elif job.state == "running":
        p = job.progress
        if not p.get("steps_per_epoch"):
            st.progress(0.0, text="Starting: making the data and the model…")
            return
        epochs, steps = int(p.get("epochs") or 1), int(p["steps_per_epoch"])
        epoch, step = int(p.get("epoch") or 0), int(p.get("step") or 0)
        done = max(0, epoch - 1) * steps + step if epoch else 0
        fraction = min(1.0, done / max(1, epochs * steps))
        parts = [f"Epoch {max(epoch, 1)}/{epochs}", f"step {step}/{steps}"]
        if p.get("loss") is not None:
            parts.append(f"loss {p['loss']:.4g}")
        if p.get("samples_per_s"):
            parts.append(f"{p['samples_per_s']:,.0f} samples/s")
        st.progress(fraction, text=" · ".join(parts))
    elif job.state == "done":
        if job.reused:
            st.success(f"This exact run was trained before: opened run {job.run_id} instead "
                       "of training it again.", icon="♻️")
        elif job.status_detail.startswith("diverged"):
            st.warning(f"The run {job.status_detail}: the loss or weights became NaN/Inf. "
                       "Explore shows where it happened.", icon="💥")
        else:
            detail = f" ({job.status_detail})" if job.status_detail else ""
            st.success(f"Finished run {job.run_id}{detail}.", icon="✅")
    elif job.state == "cancelled":
        st.warning(f"Cancelled: {job.status_detail or 'stopped by the user'}. What was "
                   "recorded so far is kept.", icon="⏹️")
    else:
        st.error(f"Training failed: {job.status_detail}", icon="🚫")


def run_label(row: dict[str, Any]) -> str:
    """A one-line label of a run summary: model, init, seed, status and when it was made."""
    created = row.get("created")
    when = dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if created else "?"
    name = f"{row['name']} · " if row.get("name") else ""
    icon = RUN_STATUS_ICONS.get(row["status"], "")
    return (f"{icon} {name}{row['model']} · {row['init']} · {row['dataset']} · seed "
            f"{row['seed']} · {row['status']} · {when}")


def run_picker(key: str, label: str, rows: list[dict[str, Any]] | None = None) -> str | None:
    """A selectbox of the stored runs, newest first; the chosen run id (None if there are none)."""
    if rows is None:
        rows, _ = run_store().list_runs()
    if not rows:
        st.info("No runs yet: train one on the Train page or pick a lesson on the Home page.")
        return None
    by_id = {r["run_id"]: r for r in rows}
    ids = list(by_id)
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = ids[0]
    return st.selectbox(label, ids, key=key, format_func=lambda rid: run_label(by_id[rid]))


def page_url_name(page: str) -> str:
    """The URL path Streamlit gives a page file: ``pages/2_Explore.py`` -> ``Explore``."""
    stem = Path(page).stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


def app_url(page: str | None = None) -> str:
    """The app's address in the user's browser, for a page file (None: the Home page)."""
    try:
        url = st.context.url or ""
    except Exception:  # no browser session (tests, bare mode)
        url = ""
    if not url:
        return ""
    url = url.rstrip("/")
    names = [page_url_name(p.name) for p in (APP_DIR / "pages").glob("*.py")]
    for name in names:  # drop the current page's part of the path
        if url.endswith("/" + name):
            url = url[: -len(name) - 1]
            break
    return f"{url}/{page_url_name(page)}" if page else f"{url}/"


def share_link(params: dict[str, str], label: str = "Share these settings",
               page: str | None = None) -> str:
    """Show a link to a page (None: this one) with these query parameters; returns it."""
    if page is None:
        try:
            base = st.context.url or ""
        except Exception:  # no browser session (tests, bare mode)
            base = ""
    else:
        base = app_url(page)
    query = urlencode(params)
    link = f"{base}?{query}" if query else (base or "?")
    st.markdown(f"**{label}**")
    st.code(link, language=None, wrap_lines=True)
    return link
