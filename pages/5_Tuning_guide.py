"""Tuning guide: the tutorial's eight tuning steps, each explained correctly and tried live.

Every step has an HTML anchor ``step-N`` (the diagnostics link to ``/Tuning_guide#step-N``), a
"Try it" button that submits the step's small seeded runs to the job manager (finished
identical runs are reused), progress while they train, a Cancel button, and once done the
figures, what they show and a link to Explore for every run.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from nnviz.analysis import tuning
from nnviz.config import RunConfig
from nnviz.engine.lrfind import lr_find
from nnviz.errors import NnvizError
from nnviz.figures import tuning as ft
from nnviz.i18n import N_, t
from nnviz.store.runs import RunStore
from ui import ownership as own
from ui import shell
from ui.config_form import GROUPS
from ui.explore.charts import chart as plot
from ui.i18n import apply_language, with_lang
from ui.links import PAGES, page_link
from ui.runs import status_word
from ui.services.urlstate import config_to_query, view_to_query
from ui.state import job_manager, runs_root
from ui.text import error, show_error, warning

P = "tune"  # session-state key prefix of this page
DATASETS = {"spiral": N_("Spiral (3 classes)"), "moons": N_("Two moons"),
            "circles": N_("Circles"), "xor": N_("XOR blobs"),
            "shapes28": N_("Shapes 28×28 (small CNN)")}
SIZE_HELP = N_("small: a few seconds per run, sized for a laptop. tiny: a second or less, for a "
               "first look (and the tests).")

shell.page("tuning")
state = st.session_state
# Widget values are kept under P__keep_* too: Streamlit drops a widget's key when another page
# is shown, and the choice should survive a visit to Train or Explore.
CONTROLS = {"size": "tiny" if os.environ.get(tuning.TINY_ENV) == "1" else "small",
            "dataset": "spiral", "seed": 42}
for _name, _default in CONTROLS.items():
    if f"{P}_{_name}" not in state:
        state[f"{P}_{_name}"] = state.get(f"{P}__keep_{_name}", _default)
state.setdefault(f"{P}_lrfind", None)
state.setdefault(f"{P}_lr_request", None)  # (config, start, end, steps) of a requested test
for _n in tuning.STEPS:
    state.setdefault(f"{P}_jobs_{_n}", [])  # [[label, job_id], ...] of the step's last sweep
    state.setdefault(f"{P}_error_{_n}", None)  # why its last Try it / Cancel failed

manager = job_manager()


# --------------------------------------------------------------------------- helpers


def train_url(cfg: RunConfig) -> str:
    """Relative URL of the Train page filled with ``cfg``."""
    return f"{PAGES['train'].url_name}?{urlencode(with_lang(config_to_query(cfg)))}"


def field_places() -> dict[str, tuple[str, str]]:
    """Option -> (sidebar group, widget label) on the Train page."""
    return {f.name: (t(title), t(f.label)) for title, _, group in GROUPS for f in group}


def base_problem() -> RunConfig:
    """The base problem from the page's controls."""
    dataset, seed = state[f"{P}_dataset"], int(state[f"{P}_seed"])
    if dataset == "shapes28":
        return tuning.tuning_base(model="cnn", dataset=dataset, depth=2, width=8, lr=1e-3,
                                  n_samples=1000, seed=seed)
    return tuning.tuning_base(dataset=dataset, seed=seed)


@st.cache_data(max_entries=32, show_spinner=False)
def load_frames(step: int, pairs: tuple[tuple[str, str], ...], root: str) -> dict[str, Any]:
    """The step's tables from its finished runs (finished runs never change: cached)."""
    store = RunStore(root)
    return tuning.step_frames(step, [(label, store.load(run_id)) for label, run_id in pairs])


@st.cache_data(max_entries=16, show_spinner=False)
def cached_lr_find(cfg_data: dict[str, Any], start_lr: float, end_lr: float, num_iter: int
                   ) -> dict[str, Any]:
    """The LR range test, once per config and settings (deterministic, so shared by a class)."""
    result = lr_find(RunConfig.from_dict(cfg_data), start_lr=start_lr, end_lr=end_lr,
                     num_iter=num_iter)
    return result.to_dict()


def chart(fig: Any, key: str) -> None:
    """A chart whose PNG download is named after it (``tuning_<key>.png``)."""
    plot(fig, key=key, png=f"nnviz_tuning_{key}")


# --------------------------------------------------------------------------- page top

st.title(t("Tuning guide"))
st.markdown(t(
    "Tune in this order: **first make it train, then make it good, then stop overfitting**. "
    "Every step below says what to do and why, then lets you *try it*: a few small runs with "
    "the same seed, where only the step's setting changes, plotted together. Finished runs "
    "are reused, so a class opening the same step trains it once."
))

with st.container(border=True):
    st.markdown(t("**Base problem** (each step changes only its own setting)"))
    c1, c2, c3 = st.columns([2, 1, 2])
    c1.selectbox(t("Data set"), list(DATASETS), key=f"{P}_dataset",
                 format_func=lambda d: t(DATASETS[d]) if d in DATASETS else d)
    c2.number_input(t("Seed"), min_value=0, max_value=2**31 - 1, step=1, key=f"{P}_seed")
    c3.segmented_control(t("Run size"), list(tuning.SIZES), key=f"{P}_size", help=t(SIZE_HELP),
                         format_func=t)
    for _name in CONTROLS:
        state[f"{P}__keep_{_name}"] = state[f"{P}_{_name}"]
    size = state[f"{P}_size"] or "small"
    try:
        base = base_problem()
    except NnvizError as exc:
        show_error(exc)
        st.stop()
    st.caption(t("{model} · {dataset} · {optimizer} lr {lr} · batch {batch} · {epochs} epochs · "
                 "seed {seed}. Runs train in the background, {n} at a time.", model=base.model,
                 dataset=base.dataset, optimizer=base.optimizer, lr=f"{base.lr:g}",
                 batch=base.batch_size, epochs=base.epochs, seed=base.seed,
                 n=manager.max_concurrent))

st.header(t("The three classes of hyper-parameters"), anchor="classes")
places = field_places()
rows = []
for entry in tuning.PARAM_CLASSES:
    group, label = places.get(entry["option"], ("", entry["option"]))
    where = f"[{group} → {label}]({train_url(base)})" if group else "—"
    # Three narrow columns, so the table fits a phone without scrolling sideways.
    rows.append(f"| {t(entry['parameter'])} (*{t(entry['class']).lower()}*) | {where} | "
                f"[{entry['step']}](#step-{entry['step']}) |")
st.markdown(t("| Parameter (class) | Set it on Train | Step |") + "\n| --- | --- | --- |\n"
            + "\n".join(rows))
st.caption(t("Network parameters shape the model, optimization parameters decide how it "
             "learns, regularization parameters keep it from memorizing the training set. The "
             "links open the Train page with the base problem filled in."))


# --------------------------------------------------------------------------- sweeps


def jobs_of(step: int) -> list[tuple[str, Any]]:
    """(label, JobInfo) of the step's sweep; jobs this server no longer knows are dropped."""
    out = []
    for label, job_id in state[f"{P}_jobs_{step}"]:
        try:
            out.append((label, manager.get(job_id)))
        except NnvizError:
            continue
    return out


# Buttons act in on_click callbacks: those run before the next script run of any kind, so a
# click is never lost when a progress fragment's timer rerun preempts the full run it started.


def start_sweep(step: int, base: RunConfig, size: str) -> None:
    """Submit the step's configs (identical finished runs are reused)."""
    state[f"{P}_error_{step}"] = None
    try:
        pairs = tuning.step_configs(step, base, size)
        infos = manager.submit_many([cfg for _, cfg in pairs], reuse=True,
                                    owner=own.session_id())  # the sweep counts as its jobs
        state[f"{P}_jobs_{step}"] = [[label, info.job_id]
                                     for (label, _), info in zip(pairs, infos, strict=True)]
    except NnvizError as exc:
        state[f"{P}_error_{step}"] = str(exc)


def cancel_sweep(step: int) -> None:
    """Cancel the step's queued and running jobs."""
    for _label, info in jobs_of(step):
        if own.can_cancel(info):  # a run someone else also waits for is theirs to cancel
            try:
                manager.cancel(info.job_id, own.actor())
            except NnvizError as exc:
                state[f"{P}_error_{step}"] = str(exc)


def show_progress(jobs: list[tuple[str, Any]]) -> None:
    """One progress bar for the sweep and a line per run."""
    progress = tuning.sweep_progress([info for _, info in jobs])
    st.progress(progress.fraction, text=t(progress.text))
    for label, info in jobs:
        where = t(" (queue position {n})", n=info.queue_position) if info.queue_position else ""
        st.caption(f"{t(label)}: {status_word(info.state)}{where} · "
                   f"{100 * tuning.job_fraction(info):.0f}%")


def show_results(step: int, jobs: list[tuple[str, Any]]) -> None:
    """Figures, findings and Explore links of a finished sweep."""
    reused = sum(info.reused for _, info in jobs)
    problems = [(label, info) for label, info in jobs if info.state != "done"]
    for label, info in problems:
        warning(f"{t(label)}: {status_word(info.state)}. {info.status_detail}")
    pairs = tuple((label, info.run_id) for label, info in jobs
                  if info.run_id and info.state in ("done", "cancelled"))
    if not pairs:
        st.info(t("No run finished: press Try it again."))
        return
    try:
        frames = load_frames(step, pairs, str(runs_root()))
    except NnvizError as exc:
        show_error(exc)
        return
    figures = ft.step_figures(step, frames)
    columns = st.columns(len(figures)) if len(figures) > 1 else [st.container()]
    for i, (column, fig) in enumerate(zip(columns, figures, strict=True)):
        with column:
            chart(fig, key=f"{P}_fig_{step}_{i}")
    st.markdown(t("**What this sweep shows.**") + " "
                + " ".join(t(f) for f in tuning.step_findings(step, frames)))
    cfg = jobs[0][1].config
    st.caption(t("Sweep on {dataset} with seed {seed} ({n} runs, {examples} examples, {epochs} "
                 "epochs each).", dataset=cfg.dataset, seed=cfg.seed, n=len(jobs),
                 examples=cfg.n_samples, epochs=cfg.epochs))
    if reused:
        st.caption(":material/recycling: " + t("{reused} of {n} run(s) were trained before and "
                                               "reused.", reused=reused, n=len(jobs)))
    with st.expander(t("The {n} run(s): open in Explore", n=len(pairs)), expanded=False):
        for label, run_id in pairs:
            page_link("explore", f"{t(label)}: {run_id}", query_params=view_to_query(run_id=run_id))


def sweep_section(step: int) -> None:
    """Try it / Cancel buttons, then progress (polled) or results."""
    jobs = jobs_of(step)
    active = any(info.active for _, info in jobs)
    left, right, _ = st.columns([1, 1, 3])
    left.button(t("Try it"), key=f"{P}_try_{step}", type="primary", disabled=active,
                width="stretch", on_click=start_sweep, args=(step, base, size))
    right.button(t("Cancel"), key=f"{P}_cancel_{step}", disabled=not active, width="stretch",
                 on_click=cancel_sweep, args=(step,))
    if state.get(f"{P}_error_{step}"):
        error(state[f"{P}_error_{step}"])
    if not jobs:
        return
    if not active:
        show_results(step, jobs)
        return

    def poll() -> None:
        apply_language()  # a timer rerun of the fragment may run in a fresh thread
        now = jobs_of(step)
        if all(not info.active for _, info in now):
            st.rerun()  # draw the results and stop polling
        show_progress(now)

    st.fragment(poll, run_every=1.0)()


# --------------------------------------------------------------------------- step 4 extras


def lr_range_test() -> None:
    """The LR range test on the base problem, run on demand and cached per config."""
    st.subheader(t("LR range test"), anchor="lr-range-test")
    cfg = tuning.lr_find_config(base, size)
    c1, c2, c3, c4 = st.columns(4)
    optimizer = c1.selectbox(t("Optimizer"), ["adam", "sgd"], key=f"{P}_lr_optimizer")
    start_lr = c2.number_input(t("Start LR"), 1e-8, 1.0, 1e-6, format="%g", key=f"{P}_lr_start")
    end_lr = c3.number_input(t("End LR"), 1e-6, 1e3, 10.0, format="%g", key=f"{P}_lr_end")
    num_iter = int(c4.number_input(t("Steps"), 10, 1000, 100, step=10, key=f"{P}_lr_iter"))
    cfg = cfg.replace(optimizer=optimizer, momentum=0.9)
    st.button(t("Run the LR range test"), key=f"{P}_lr_run", type="primary",
              on_click=state.__setitem__,
              args=(f"{P}_lr_request", (cfg.to_dict(), start_lr, end_lr, num_iter)))
    request = state.get(f"{P}_lr_request")
    if request is not None:
        cfg_data, start_lr, end_lr, num_iter = request
        if not start_lr < end_lr:
            st.error(t("The end LR must be larger than the start LR."))
        else:
            with st.spinner(t("{n} training steps with a growing LR…", n=num_iter)):
                try:
                    state[f"{P}_lrfind"] = cached_lr_find(cfg_data, start_lr, end_lr,
                                                          num_iter)
                except NnvizError as exc:
                    show_error(exc)
        state[f"{P}_lr_request"] = None
    result = state[f"{P}_lrfind"]
    if result is None:
        st.caption(t("Sweeps the LR of {model} on {dataset} ({optimizer}) exponentially from the "
                     "start to the end value, one batch per step, and stops once the loss "
                     "explodes. Nothing is saved.", model=cfg.model, dataset=cfg.dataset,
                     optimizer=optimizer))
        return
    frame = pd.DataFrame({k: result[k] for k in ("lrs", "losses", "smoothed")}).rename(
        columns={"lrs": "lr", "losses": "loss"})
    chart(ft.lr_find_figure(frame, result["suggested_lr"], result["stop_lr"]),
          key=f"{P}_fig_lrfind")
    settings = result["settings"]
    if result["suggested_lr"] is None:
        st.markdown(t("**No suggestion**: the loss did not fall over this range ({reason}). "
                      "Widen the range or use more steps.", reason=t(result["reason"])))
    else:
        st.markdown(t(
            "**Suggested LR ≈ {lr}** for {optimizer} (the steepest fall of the smoothed loss). "
            "The test stopped because {reason}. Start near the suggestion, or up to ~10× below "
            "where the loss bottoms out; never near the explosion.",
            lr=f"{result['suggested_lr']:.2g}", optimizer=settings["optimizer"],
            reason=t(result["reason"])))


def scheduler_preview() -> None:
    """LR against epoch for the three schedulers, before any training."""
    st.subheader(t("Scheduler preview"), anchor="scheduler-preview")
    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = int(c1.number_input(t("Epochs"), 2, 200, 30, key=f"{P}_sch_epochs"))
    lr = c2.number_input(t("Start LR"), 1e-6, 10.0, 0.1, format="%g", key=f"{P}_sch_lr")
    step_size = int(c3.number_input(t("StepLR step size"), 1, 100, 10, key=f"{P}_sch_step"))
    gamma = c4.number_input(t("gamma (× per drop)"), 0.01, 1.0, 0.5, format="%g",
                            key=f"{P}_sch_gamma")
    patience = int(c5.number_input(t("Plateau patience"), 0, 50, 3, key=f"{P}_sch_patience"))
    try:
        cfg = RunConfig.from_dict({"epochs": epochs, "lr": lr, "step_size": step_size,
                                   "gamma": gamma, "patience": patience})
        preview = tuning.scheduler_preview(cfg)
    except NnvizError as exc:
        show_error(exc)
        return
    chart(ft.scheduler_figure(preview), key=f"{P}_fig_schedulers")
    st.caption(t("StepLR multiplies the LR by gamma every step size; cosine glides to 0 at the "
                 "last epoch; ReduceLROnPlateau cuts it when the *validation loss* stalls for "
                 "`patience` epochs. That loss does not exist before training, so this preview "
                 "feeds it a synthetic curve (dotted, right axis) that stops improving after a "
                 "third of the epochs."))


# --------------------------------------------------------------------------- the steps

for number, step in tuning.STEPS.items():
    st.divider()
    st.header(f"{number}. {t(step.title)}", anchor=f"step-{number}")
    st.markdown(t(step.explanation))
    if step.correction:
        st.info(t("**The tutorial vs. the fact.**") + " " + t(step.correction),
                icon=":material/edit:")
    names = [places.get(f, ("", f))[1] for f in step.fields if f in places]
    if names:
        st.caption(t("Set on [Train]({url}): {names}.", url=train_url(base),
                     names=", ".join(names)))
    if number == 4:
        lr_range_test()
        scheduler_preview()
        st.subheader(t("Adam, SGD, or Adam then SGD"), anchor="optimizers")
    st.markdown(t("**Try it.** {setup} *How to read it:* {look}", setup=t(step.setup),
                  look=t(step.look_for)))
    sweep_section(number)
