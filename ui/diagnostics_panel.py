"""The diagnostics panel, health timeline and signal-propagation chart (Explore and Compare).

Each function takes a loaded run and the snapshot index shown; results are cached by (run
folder, run id, snapshot count, index), the run itself passed as an ``_``-prefixed argument.
Errors a user can cause (a damaged snapshot file) are shown in plain words, never a traceback.
"""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from nnviz.analysis import diagnostics
from nnviz.errors import NnvizError
from nnviz.figures import health
from nnviz.figures.captions import CAPTIONS
from nnviz.figures.style import PLOT_CONFIG
from nnviz.i18n import N_, get_language, t, tn
from nnviz.store.runs import Run
from ui.text import literal

log = logging.getLogger(__name__)

ICONS = {"critical": ":material/error:", "warning": ":material/warning:",
         "info": ":material/info:"}
BOXES = {"critical": st.error, "warning": st.warning, "info": st.info}
SEVERITY_WORDS = {"critical": N_("critical"), "warning": N_("warning"), "info": N_("info")}



def _count(severity: str, n: int) -> str:
    """'2 warnings', '1 critical' in the reader's language."""
    if severity == "critical":
        return tn("{n} critical", "{n} critical", n)
    if severity == "warning":
        return tn("{n} warning", "{n} warnings", n)
    return tn("{n} info", "{n} info", n)


def _run_key(run: Run) -> str:
    """Cache key of a run at its current length (a new snapshot changes it)."""
    return f"{run.folder}|{run.run_id}|{run.n_snapshots}|{run.status}"


@st.cache_data(max_entries=256, show_spinner=False)
def _flags_at(run_key: str, index: int, _run: Run, lang: str) -> list[diagnostics.Flag]:
    return diagnostics.flags_at(_run, index)


@st.cache_data(max_entries=64, show_spinner=False)
def _timeline(run_key: str, _run: Run) -> list[tuple[int, float, dict[str, str]]]:
    return diagnostics.timeline_severities(_run)


@st.cache_data(max_entries=256, show_spinner=False)
def _profile(run_key: str, index: int, _run: Run, lang: str) -> pd.DataFrame:
    return diagnostics.signal_profile(_run, index)


def _show_error(exc: BaseException) -> None:
    if isinstance(exc, NnvizError):
        st.error(t("The diagnostics could not read this run: {error}", error=literal(exc)),
                 icon=":material/block:")
    else:
        log.exception("diagnostics failed", exc_info=exc)
        st.error(t("The diagnostics failed ({kind}: {error}). The details are in the server "
                   "log.", kind=type(exc).__name__, error=literal(exc)), icon=":material/block:")


def evidence_markdown(evidence: dict[str, float | str]) -> str:
    """Evidence as a markdown bullet list with formatted numbers."""
    return "\n".join(f"- {t(k)}: **{diagnostics.format_value(v)}**" for k, v in evidence.items())


def guide_markdown(flag: diagnostics.Flag) -> str:
    """Markdown link to the tuning-guide step that fixes the flag."""
    return t("[Tuning guide, step {step}: {title} →]({url})", step=flag.guide_step,
             title=t(flag.guide_title), url=flag.guide_url)


def _where(flag: diagnostics.Flag) -> str:
    parts = []
    if flag.layers:
        shown = ", ".join(flag.layers[:8]) + (t(" and {n} more", n=len(flag.layers) - 8)
                                              if len(flag.layers) > 8 else "")
        parts.append(t("layers: {names}", names=shown))
    if flag.epochs:
        parts.append(t("epochs {epochs}", epochs=diagnostics.epochs_text(flag)))
    return " · ".join(parts)


def render_flag(flag: diagnostics.Flag) -> None:
    """One flag: title and severity, where, evidence numbers, why, fix and the guide link."""
    box = BOXES[flag.severity]
    body = [f"**{t(flag.title)}** · {t(SEVERITY_WORDS[flag.severity])} · `{flag.code}`"]
    where = _where(flag)
    if where:
        body.append(where)
    body.append(t(flag.explanation))
    body.append(t("**Fix:** {fix}", fix=t(flag.fix)))
    body.append(guide_markdown(flag))
    box("\n\n".join(body), icon=ICONS[flag.severity])
    if flag.evidence:
        with st.expander(t("Evidence for {code}", code=flag.code.replace("_", " ")),
                         expanded=False):
            st.markdown(evidence_markdown(flag.evidence))


def render_panel(run: Run, index: int, key: str = "") -> None:
    """Flags that hold at the snapshot shown, worst first, each with evidence and a fix."""
    try:
        flags = _flags_at(_run_key(run), index, run, get_language())
    except Exception as exc:  # a damaged file or an engine bug must not take the page down
        _show_error(exc)
        return
    if not flags:
        st.success(t("No problems found at this snapshot: no NaN/Inf, the signal keeps its size "
                     "through depth, units differ, steps are in a healthy range, and the losses "
                     "show neither overfitting nor a network stuck at chance."),
                   icon=":material/check_circle:")
        return
    counts = {s: sum(f.severity == s for f in flags) for s in diagnostics.SEVERITIES}
    st.caption(" · ".join(f"{ICONS[s]} {_count(s, n)}" for s, n in counts.items() if n))
    for flag in flags:
        render_flag(flag)


def timeline_rows(run: Run) -> list[tuple[int, float, dict[str, str]]]:
    """(snapshot index, epoch, {flag code: severity}) per snapshot, cached."""
    return _timeline(_run_key(run), run)


def render_timeline(run: Run, index: int, key: str = "") -> None:
    """Heat strip of which flags hold at which snapshot; the shown snapshot outlined."""
    try:
        rows = _timeline(_run_key(run), run)
    except Exception as exc:
        _show_error(exc)
        return
    fig = health.health_timeline(rows, index)
    st.plotly_chart(fig, key=f"{key or 'diag'}_timeline_{run.run_id}", config=PLOT_CONFIG,
                    theme=None)
    st.caption(CAPTIONS["timeline"])


def render_signal(run: Run, index: int, key: str = "") -> None:
    """Std of weights, activation signal and gradients against depth at the snapshot shown."""
    try:
        profile = _profile(_run_key(run), index, run, get_language())
    except Exception as exc:
        _show_error(exc)
        return
    fig = health.signal_chart(profile, title=t("Signal through depth · {at}",
                                               at=_label(run, index)))
    st.plotly_chart(fig, key=f"{key or 'diag'}_signal_{run.run_id}", config=PLOT_CONFIG,
                    theme=None)
    change = health.signal_change_text(profile)
    st.caption(t("A healthy network keeps each line roughly flat from input to output (Glorot & "
                 "Bengio 2010; He et al. 2015). A line falling by orders of magnitude shows where "
                 "the signal or the gradient dies; a rising one, where it explodes. Activation "
                 "signal = spread of a layer's output across the probe examples.") + change)


def _label(run: Run, index: int) -> str:
    entries = run.entries
    if not entries:
        return t("no snapshots")
    i = index + len(entries) if index < 0 else index
    i = max(0, min(i, len(entries) - 1))
    epoch = entries[i].epoch
    return t("at init") if i == 0 and epoch == 0 else t("epoch {epoch}", epoch=f"{epoch:g}")
