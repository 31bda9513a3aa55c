"""The epoch player component: Explore's "This epoch" charts scrubbed in the browser.

Streamlit redraws a changed ``st.plotly_chart`` from scratch after a server round trip, which
costs about half a second for a page of charts. The player instead receives every snapshot of
the view once (``nnviz.figures.epoch_view.player_payload``) and redraws its charts with
``Plotly.react`` in the browser as the slider moves. The snapshot shown comes back as the
component's value when a drag ends or playback stops.

A payload crosses the wire once per browser frame: the frame keeps the payloads it was sent (a
few layers and option sets, their charts built) and says which in its value ("have"), so Python
sends just the key of one it holds (``payload=""``); a frame that lacks one asks for it
("need") and the rerun that starts sends it. ``hidden`` keeps the frame mounted but out of
sight while Compare shows another view. On Explore the frame draws the view control too
(``views``): it switches between the chart views' payloads it holds without a round trip, and
shows only the control while Python draws Health or Tables below it.

The frontend is ``ui/player/`` (plain HTML, CSS and JS: no build step). Its plotly.js is the
cartesian bundle (``ui/player/plotly-cartesian.min.js``: npm's ``plotly.js-cartesian-dist-min``
3.4.0, MIT, the same 3.x line as the installed plotly's 3.3): every trace type the player draws
(bar, scatter, heatmap, image) at 1.4 MB, where the whole plotly.js is 4.8 MB and takes the
browser about three times as long to parse and run before the first chart of a page opened by
link can be drawn. ``PLOTLY_TRACES`` lists the trace types it holds (a test checks the player's
payloads use no other).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit.components.v1 as components

from nnviz.i18n import t

_HERE = Path(__file__).resolve().parent
_FRONTEND = components.declare_component("epoch_player", path=str(_HERE / "player"))
PLOTLY_SRC = "plotly-cartesian.min.js"  # served by Streamlit beside the player's index.html
PLOTLY_TRACES = frozenset({"bar", "box", "contour", "heatmap", "histogram", "histogram2d",
                           "histogram2dcontour", "image", "pie", "scatter", "scatterternary",
                           "violin"})


# Streamlit fades an element it has not sent again yet while a rerun runs. The frame's own
# asks (a payload ahead of a switch, built before the frame is sent again) would so dim the
# charts it shows, which are current, for the build's time, just as a reader starts reading:
# its element stays opaque (the frame says itself when it waits for charts).
STEADY_CSS = ("<style>.st-key-explore_player, .st-key-compare_player "
              "{ opacity: 1 !important; transition: none !important; }</style>")


def component_name() -> str:
    """The name Streamlit serves the player's files under (/component/<name>/...)."""
    return _FRONTEND.name


def labels() -> dict[str, str]:
    """The player's own words in the reader's language (its {fields} are filled in the browser)."""
    return {
        "play": t("Play"), "pause": t("Pause"), "of": t("{k} of {n}"), "epoch": t("Epoch"),
        "prev": t("Previous snapshot"), "next": t("Next snapshot"),
        "auto": t("Step through the snapshots automatically"),
        "note": t("The player carries {n} of the {total} snapshots, evenly spaced (first and "
                  "last included), so the page stays light; the Tables and All-epochs views "
                  "reach every one."),
        "error": t("The charts could not be drawn in this browser ({error}). Switch the view "
                   "to “Tables” or reload the page."),
        "loading": t("Loading the charts…"), "views_help": t("What the views show"),
    }


def encode(payload: dict[str, Any]) -> str:
    """The payload as one JSON string (sent as is on every rerun; no re-serialising)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def epoch_player(payload_json: str, payload_key: str, start: int, start_seq: int,
                 key: str, png_prefix: str = "nnviz", hidden: bool = False,
                 family: str | None = None, views: dict[str, Any] | None = None,
                 extra: dict[str, str] | None = None,
                 heard: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Draw the player; returns its last report {"index", "seq", "key", "instance", "have",
    "need"} (and "view", with ``views``) or None.

    ``payload_json`` is the payload, or "" when the frame holds ``payload_key`` already;
    ``payload_key`` names the payload (a new one shows other charts); ``start`` is the
    snapshot to show when the payload is new or when ``start_seq`` changes (Python moving the
    player: a link, another view's scrubber). Otherwise the browser keeps its own position.
    PNG downloads are named ``<png_prefix>_<chart title>.png``. A new payload of ``family``
    (the same view of a run that has grown) replaces the frame's older one of that family.

    ``views`` makes the frame draw a view control above its charts: {"label", "help", "view",
    "seq", "prefetch", "options": [{"name", "label", and for a view the frame draws, "key" and
    "family" of its payload}]}. A click on a view whose payload the frame holds shows it at once;
    the frame reports the view it shows ("view"), shows only the control for a view without a
    payload (Python draws it below), follows ``views["view"]`` only when ``views["seq"]``
    changes, and with "prefetch" asks ahead ("need") for the chart views' payloads it lacks once
    its charts are drawn, then for those of "ahead" ([{"key", "family", "label"}]: the view
    shown of other layers, one at a time). ``extra`` holds such payloads ({key: JSON}), kept
    out of sight. With "picker" (the label of the page's Layer selectbox), a pick there of an
    "ahead" option ("label") whose payload the frame holds is shown before the rerun answers.
    ``heard`` ({"instance", "seq"}) names the frame's report this rerun heard last: an ask up
    to it that this render does not answer was lost, and the frame asks again.
    """
    # imported here, not above: every page imports this module (ui.prewarm asks it for the
    # player's URL), and the figures' style builds plotly's template (~0.1 s of a cold Home)
    from nnviz.figures.style import PLOT_CONFIG

    return _FRONTEND(payload=payload_json, payload_key=payload_key, start=int(start),
                     start_seq=int(start_seq), plotly_src=PLOTLY_SRC, config=PLOT_CONFIG,
                     png_prefix=png_prefix, labels=labels(),
                     hidden=bool(hidden), family=family or payload_key,
                     views=views, extra=extra or {}, heard=heard, key=key, default=None)
