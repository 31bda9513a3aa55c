"""The model overview's widgets: the one-row-per-parameter table, and opening checkpoints."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from nnviz.analysis import overview as ov
from nnviz.errors import NnvizError
from nnviz.i18n import N_, get_language, t
from nnviz.store.checkpoints import checkpoint_run
from nnviz.store.runs import Run, RunStore
from ui.i18n import with_lang
from ui.links import EXPLORE_PAGE
from ui.services.urlstate import view_to_query
from ui.text import literal, show_error

CHECKPOINT_TYPES = ["safetensors", "json", "pt", "pth", "bin", "ckpt"]
FORMATS = {
    "std": "%.4g", "theory_std": "%.4g", "std_vs_theory": "%.3f", "grad_norm": "%.3g",
    "update_ratio": "%.2e", "drift": "%.3g",
}
HELP = {
    "std_vs_theory": N_("Measured std / the init's theoretical std (PyTorch's default for the "
                        "layer type when nnviz did not initialize it). Far from 1 at init: the "
                        "model uses its own init."),
    "gradient": N_("'no gradient': frozen or unused since the previous snapshot (never shown "
                   "as zeros); 'not recorded': at init, or a checkpoint."),
    "update_ratio": N_("‖ΔW‖/‖W‖ of single optimizer steps; about 1e-3 is healthy."),
    "drift": N_("‖W_t − W_0‖/‖W_0‖ from the first snapshot."),
    "flags": N_("Diagnostics on this layer at this snapshot (details on the Explore page)."),
}


@st.cache_data(max_entries=16, show_spinner=False)
def _table(run_key: str, index: int, _run: Run, lang: str) -> pd.DataFrame:
    return ov.overview(_run, index)


def render_table(run: Run, index: int, key: str) -> None:
    """Search box, the sortable table, and a click on a row opening that layer in Explore."""
    run_key = f"{run.run_id}@{run.n_snapshots}@{run.record.created}"
    df = _table(run_key, index, run, get_language())  # its texts are in the reader's language
    text = st.text_input(t("Search parameters and layers"), key=f"{key}_search",
                         placeholder=t("e.g. layer4 conv  ·  several words must all match"))
    shown = ov.filter_rows(df, text).reset_index(drop=True)
    flagged = int((df["flags"] != "").sum())
    no_grad = int((df["gradient"] == "no gradient").sum())
    st.caption(t("{shown} of {total} parameters · {flagged} on a flagged layer · {no_grad} "
                 "without gradient · click a column to sort, a row to open its layer.",
                 shown=len(shown), total=len(df), flagged=flagged, no_grad=no_grad))
    config = {c: st.column_config.NumberColumn(c, format=f, help=t(HELP[c]) if c in HELP else None)
              for c, f in FORMATS.items()}
    config.update({c: st.column_config.TextColumn(c, help=t(h)) for c, h in HELP.items()
                   if c not in FORMATS})
    event = st.dataframe(shown, hide_index=True, width="stretch", key=f"{key}_table",
                         on_select="rerun", selection_mode="single-row", column_config=config)
    rows = event.selection.rows if event is not None else []
    if rows:
        layer = shown.iloc[rows[0]]["layer"]
        try:
            st.switch_page(EXPLORE_PAGE, query_params=with_lang(view_to_query(
                run_id=run.run_id, epoch=index, layer=layer or None)))
        except StreamlitPageNotFoundError:  # the page run on its own (tests): no Explore
            st.info(t("Open layer {layer} on the Explore page.", layer=literal(layer)))


def render_checkpoint_upload(store: RunStore, key: str) -> str | None:
    """Upload checkpoint files (several = one run, a snapshot each, in name order)."""
    files = st.file_uploader(
        t("Checkpoint files: .safetensors (a sharded model: its index .json and every shard), "
          "or .pt / .pth / .bin / .ckpt (read with torch.load(weights_only=True))"),
        type=CHECKPOINT_TYPES, accept_multiple_files=True, key=f"{key}_files",
        help=t("Nothing is unpickled: a file that needs full unpickling is refused with how to "
               "re-save it as safetensors. Several files become one run, ordered by the numbers "
               "in their names (epoch=2 before epoch=10)."))
    if not files or not st.button(t("Open as a run"), key=f"{key}_open", type="primary"):
        return None
    with tempfile.TemporaryDirectory(prefix="nnviz-ckpt-") as tmp:
        folder = Path(tmp)
        for f in files:
            (folder / Path(f.name).name).write_bytes(f.getvalue())
        names = [Path(f.name).name for f in files]
        index = next((n for n in names if n.endswith(".index.json")), None)
        target = folder / index if index else (folder / names[0] if len(names) == 1
                                               else folder)
        try:
            return checkpoint_run(target, store, name=names[0] if len(names) == 1 else
                                  t("{n} checkpoints", n=len(names)))
        except NnvizError as exc:
            show_error(exc)
            return None
