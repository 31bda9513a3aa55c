"""nnviz Home: what the app shows, one-click lessons, and the latest runs."""

from __future__ import annotations

import streamlit as st

from nnviz.errors import NnvizError
from nnviz.i18n import t
from nnviz.presets import PRESETS
from ui import ownership as own
from ui import shell, state
from ui.links import open_explore, page_link
from ui.services.urlstate import view_to_query
from ui.text import error, show_error

shell.page("home")  # also starts the training workers, so a lesson click starts at once
manager = state.job_manager()

st.title(t("nnviz: see what initialization and training do to a network"))
st.markdown(t(
    "Pick a model, an initializer and a seed, train a few epochs, then scrub through a snapshot "
    "of every layer taken at init (epoch 0) and after every epoch. Every run is seeded, so the "
    "same settings always give the same weights, and a copied link reproduces the run anywhere."
))

with st.expander(t("How to read what you see"), expanded=False):
    st.markdown(t(
        "- **Weight histograms** keep the same bins for the whole run, so movement between "
        "epochs is real. The orange curve is the initializer's theoretical distribution, with "
        "its standard deviation beside the measured one.\n"
        "- **PyTorch's default init** for both `nn.Linear` and `nn.Conv2d` is "
        "`kaiming_uniform_(a=√5)`: U(±1/√fan_in), std = 1/√(3·fan_in). For the tutorial's "
        "conv1 (fan_in = 3·3·3 = 27) that is 0.111, for its fc layer (fan_in 4096) 0.00902.\n"
        "- **Too-small weights** shrink the signal layer after layer: activations and gradients "
        "*vanish*. **Too-large weights** make it grow (*exploding*) and push sigmoid/tanh into "
        "saturation, where gradients vanish too.\n"
        "- **Zeros or a constant** give every unit the same gradient: they stay copies of each "
        "other (symmetry is never broken).\n"
        "- The **diagnostics** flag NaN/Inf, dead ReLUs, saturation, vanishing or exploding "
        "signal across depth, and update/weight ratios far from about 1e-3."
    ))

st.header(t("Lessons"))
own.warm_progress(manager)  # a hosted app trains the lessons in the background on first start
st.caption(t("One click trains the lesson (or opens it at once if this server trained it "
             "before) and shows it in Explore."))

presets = list(PRESETS.values())
for start in range(0, len(presets), 3):
    columns = st.columns(3)
    for column, lesson in zip(columns, presets[start:start + 3], strict=False):
        with column.container(border=True):
            st.subheader(t(lesson.label))
            st.write(t(lesson.lesson))
            if lesson.look:
                with st.expander(t("What to look at")):
                    st.markdown(t(lesson.look))
            if st.button(t("Train and explore"), key=f"home_preset_{lesson.name}",
                         type="primary", width="stretch"):
                try:
                    job = manager.submit(lesson.config(), owner=own.session_id())
                except NnvizError as exc:
                    show_error(exc)
                else:
                    if job.state == "failed":
                        error(t("This lesson could not start: {detail}", detail=job.status_detail))
                    else:
                        open_explore(job=job, preset=lesson.name)

st.header(t("Recent runs"))
# Imported here, after the lessons are drawn: reading runs loads torch (~1.5 s on a cold server)
from ui.runs import STATUS_ICONS, run_label  # noqa: E402

try:
    rows, problems = state.list_runs()  # new runs at once, statuses within 5 s: no re-read per view
except OSError as exc:  # the runs folder itself cannot be read
    show_error(exc)
    rows, problems = [], []
rows = own.visible_rows(rows, manager)  # never other people's runs
if not rows:
    st.info(t("No runs yet: pick a lesson above, or set up your own run on the Train page."))
for row in rows[:8]:
    page_link("explore", label=run_label(row), icon=STATUS_ICONS.get(row["status"]),
              query_params=view_to_query(run_id=row["run_id"]))
if len(rows) > 8:
    st.caption(t("{n} more on the Runs page.", n=len(rows) - 8))
if problems:
    st.caption(t("{n} folder(s) in the runs folder could not be read: see the Runs page.",
                 n=len(problems)))
