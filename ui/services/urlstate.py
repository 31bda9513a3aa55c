"""The page URL carries the state: a copied link opens the same run and view anywhere.

Like TensorFlow Playground, every setting lives in the query string, so a teacher can share one
link and every student sees the same seeded run (trained first if their app does not have it).

Query format (all values are strings, as in ``st.query_params``)::

    model=mlp&init=kaiming_normal&seed=42&dataset=spiral&depth=30&lr=0.01   the run's config
    run=<run id>&epoch=<snapshot index>&layer=<module name>&preset=<lesson>   the view

* Config keys are ``RunConfig`` field names. ``config_to_query`` writes only the fields that
  differ from the defaults, plus always ``model``, ``init``, ``seed`` and ``dataset`` (so a link
  states what it shows); never ``data_dir`` (a path on the sender's disk) or ``threads`` (the
  sender's hardware). Floats are written with ``repr`` so they read back exactly.
* ``preset=<name>`` starts the config from that lesson; explicit keys then override it.
* ``epoch`` is the snapshot index the scrubber shows (0 = at init; equal to the epoch when the
  run records one snapshot per epoch).

Reading never fails: every value is checked, and a bad one is dropped with a plain-English
warning that names the key and says what was used instead. Bad values are: unknown keys,
non-numbers, numbers out of range, unknown choices, values longer than ``MAX_VALUE_LEN``
characters, a model that cannot read the data set, and repeated keys (the last value is used,
as Streamlit does). At most ``MAX_WARNINGS`` warnings are listed, then a count of the rest.
A bad ``preset`` is reported by both readers with the same text, so a page that shows the
warnings of both can drop duplicates with ``dict.fromkeys``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from nnviz.config import RunConfig
from nnviz.engine.fitting import fit_problem, fitting_datasets
from nnviz.engine.fitting import unchecked as _with
from nnviz.errors import ConfigError
from nnviz.i18n import t
from nnviz.presets import PRESETS

VIEW_KEYS = ("run", "epoch", "layer", "preset")
LANG_KEY = "lang"  # the reader's language (ui.i18n): in every link, never part of a config
NEVER_IN_URL = ("data_dir", "threads")
ALWAYS_IN_URL = ("model", "init", "seed", "dataset")
CONFIG_KEYS = tuple(f.name for f in fields(RunConfig) if f.name not in NEVER_IN_URL)
MAX_VALUE_LEN = 100
MAX_WARNINGS = 10

QueryParams = Mapping[str, "str | Sequence[str]"]


def config_to_query(cfg: RunConfig) -> dict[str, str]:
    """The query parameters that reproduce ``cfg`` (changed fields plus model/init/seed/dataset)."""
    default = RunConfig()
    out: dict[str, str] = {}
    for name in CONFIG_KEYS:
        value = getattr(cfg, name)
        if name in ALWAYS_IN_URL or value != getattr(default, name):
            out[name] = _encode(value)
    return out


def query_to_config(params: QueryParams, ignore: Iterable[str] = VIEW_KEYS
                    ) -> tuple[RunConfig, list[str]]:
    """A valid config from query parameters, and a warning for every value that was dropped.

    Keys in ``ignore`` (the view keys by default; pages add their own) are skipped silently,
    except ``preset``, which picks the starting config.
    """
    notes = _Notes()
    ignored = {*ignore, LANG_KEY}
    values = _single_values(params, notes)
    base = RunConfig()
    if "preset" in values:
        name = values["preset"]
        if name in PRESETS:
            base = PRESETS[name].config()
        else:
            notes.add(_bad_preset(name))
    cfg = base
    for key in NEVER_IN_URL:
        if key in values:
            notes.add(t("{key} cannot be set from a link (it belongs to the computer that "
                        "trains); it was ignored.", key=key))
    unknown = [k for k in values if k not in CONFIG_KEYS and k not in NEVER_IN_URL
               and k not in ignored]
    if unknown:
        names = ", ".join(_show(k) for k in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        notes.add(t("Unknown setting(s) {names} in the link were ignored. Settings are: "
                    "{settings}.", names=names, settings=", ".join(CONFIG_KEYS)))
    for key in CONFIG_KEYS:  # field order: model before depth, init before its settings
        if key not in values:
            continue
        raw = values[key]
        try:
            cfg = cfg.replace(**{key: raw})
        except ConfigError as exc:
            notes.add(t("Ignored {key}={value} from the link: {error} Used {used} instead.",
                        key=key, value=_show(raw), error=exc, used=repr(getattr(cfg, key))))
    cfg = _fit_data(cfg, notes)
    cfg = _fit_device(cfg, notes)
    return cfg, notes.list()


def view_to_query(run_id: str | None = None, epoch: int | None = None, layer: str | None = None,
                  preset: str | None = None) -> dict[str, str]:
    """Query parameters for a view; None values are left out."""
    out: dict[str, str] = {}
    for key, value in (("run", run_id), ("epoch", epoch), ("layer", layer),
                       ("preset", preset)):
        if value is not None and value != "":
            out[key] = str(value)
    return out


def query_to_view(params: QueryParams, n_snapshots: int | None = None,
                  layer_names: Sequence[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The view keys, checked: ``{"run", "epoch", "layer", "preset"}`` (None where absent or bad).

    ``epoch`` must be a whole-number snapshot index below ``n_snapshots`` (out of range: the
    nearest one is used); ``layer`` must be one of ``layer_names``. Pass None for either when not
    known yet (then only the form of the value is checked). Other keys are not looked at.
    """
    from nnviz.store.runs import RUN_ID_RE

    notes = _Notes()
    values = _single_values({k: v for k, v in params.items() if k in VIEW_KEYS}, notes)
    view: dict[str, Any] = {"run": None, "epoch": None, "layer": None, "preset": None}
    if "run" in values:
        run = values["run"]
        if RUN_ID_RE.match(run):
            view["run"] = run
        else:
            notes.add(t("run={value} in the link is not a valid run name; no run was opened.",
                        value=_show(run)))
    if "epoch" in values:
        view["epoch"] = _read_index(values["epoch"], n_snapshots, notes)
    if "layer" in values:
        layer = values["layer"]
        if layer_names is None or layer in layer_names:
            view["layer"] = layer
        else:
            first = f" ({layer_names[0]})" if layer_names else ""
            notes.add(t("layer={value} is not a layer of this run; showing the first layer{first} "
                        "instead. Layers: {layers}.", value=_show(layer), first=first,
                        layers=", ".join(layer_names)))
    if "preset" in values:
        name = values["preset"]
        if name in PRESETS:
            view["preset"] = name
        else:
            notes.add(_bad_preset(name))
    return view, notes.list()


def has_config(params: QueryParams) -> bool:
    """True when the query sets any config key or a preset (a link that names a run config)."""
    return any(k in CONFIG_KEYS or k == "preset" for k in params)


# --- helpers -------------------------------------------------------------------------------


class _Notes:
    """Warnings, capped at MAX_WARNINGS plus a count of the rest."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.extra = 0

    def add(self, text: str) -> None:
        if text in self.items:
            return
        if len(self.items) < MAX_WARNINGS:
            self.items.append(text)
        else:
            self.extra += 1

    def list(self) -> list[str]:
        if self.extra:
            return [*self.items, t("... and {n} more problem(s) in the link.", n=self.extra)]
        return list(self.items)


def _single_values(params: QueryParams, notes: _Notes) -> dict[str, str]:
    """One string per key: the last of repeated values; over-long keys or values dropped."""
    out: dict[str, str] = {}
    for key, raw in params.items():
        if not isinstance(key, str) or len(key) > MAX_VALUE_LEN:
            notes.add(t("A setting name of {n} characters in the link was ignored.",
                        n=len(str(key))))
            continue
        if isinstance(raw, str):
            value = raw
        elif not isinstance(raw, list | tuple):
            value = "" if raw is None else str(raw)
        else:
            items = [str(v) for v in raw]
            if not items:
                continue
            if len(items) > 1:
                notes.add(t("{key} appears {n} times in the link; used the last value {value}.",
                            key=_show(key), n=len(items), value=_show(items[-1])))
            value = items[-1]
        if len(value) > MAX_VALUE_LEN:
            notes.add(t("The value of {key} in the link is {n} characters long (at most {most}); "
                        "it was ignored.", key=_show(key), n=len(value), most=MAX_VALUE_LEN))
            continue
        out[key] = value
    return out


def _read_index(raw: str, n_snapshots: int | None, notes: _Notes) -> int | None:
    text = raw.strip()
    if not re.fullmatch(r"[+-]?\d+", text):  # exact: no float round trip ("1e3", "1.5", "abc")
        notes.add(t("epoch={value} in the link is not a whole number; showing the first "
                    "snapshot.", value=_show(raw)))
        return 0
    index = int(text)
    text = text if len(text) <= 30 else text[:30] + "…"  # echoed as written, never rounded
    if n_snapshots is None:
        if index < 0:
            notes.add(t("epoch={value} in the link is negative; showing snapshot 0 (at init).",
                        value=text))
            return 0
        return index
    if n_snapshots <= 0:
        notes.add(t("epoch={value} in the link cannot be shown yet: the run has no snapshots.",
                    value=index))
        return None
    if not 0 <= index < n_snapshots:
        used = 0 if index < 0 else n_snapshots - 1
        notes.add(t("epoch={value} in the link does not exist: this run has snapshots 0 to "
                    "{last}; showing snapshot {used}.", value=text, last=n_snapshots - 1,
                    used=used))
        return used
    return index


def _fit_data(cfg: RunConfig, notes: _Notes) -> RunConfig:
    """If the model cannot read the data set, switch to the first data set it can."""
    why = fit_problem(cfg)
    if why is None:
        return cfg
    if cfg.loss != "auto" and fit_problem(_with(cfg, loss="auto")) is None:
        notes.add(t("{why} Used loss 'auto' instead of {loss}.", why=why, loss=repr(cfg.loss)))
        return cfg.replace(loss="auto")
    choices = fitting_datasets(cfg) or fitting_datasets(_with(cfg, loss="auto"))
    if not choices:  # cannot happen with the registries, but never return an unusable config
        notes.add(t("{why} Used the default settings instead.", why=why))
        return RunConfig()
    fixed = cfg.replace(dataset=choices[0])
    also = ""
    if fit_problem(fixed) is not None:
        fixed = fixed.replace(loss="auto")
        also = t(" and loss 'auto' instead of {loss}", loss=repr(cfg.loss))
    notes.add(t("{why} Used the data set {used} instead of {dataset}{also}.", why=why,
                used=repr(choices[0]), dataset=repr(cfg.dataset), also=also))
    return fixed


def _fit_device(cfg: RunConfig, notes: _Notes) -> RunConfig:
    """A device this computer lacks (a link from a GPU machine) becomes 'auto'."""
    if cfg.device == "auto":
        return cfg
    from nnviz.engine.training import available_devices

    devices = available_devices()
    if cfg.device in devices:
        return cfg
    notes.add(t("device={device} from the link is not available on this computer (available: "
                "{devices}); used 'auto' instead.", device=repr(cfg.device),
                devices=", ".join(devices)))
    return cfg.replace(device="auto")


def _bad_preset(name: str) -> str:
    return t("preset={value} in the link is not a lesson; choose one of: {lessons}. Used the "
             "other settings of the link as they are.", value=_show(name),
             lessons=", ".join(PRESETS))


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _show(text: str, limit: int = 30) -> str:
    """A value quoted for a message, shortened if long."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")
