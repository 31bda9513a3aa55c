"""The run format: typed records of ``run.json`` and of each snapshot's statistics, and the one
validating reader every caller goes through (import, ``list``, ``show``, every page).

``parse_run(obj)`` and ``parse_snapshot_stats(obj, run)`` turn decoded JSON into the records
below or raise ``StorageError`` naming the field (``run.json: history[3].val_acc: 1.7 is not in
[0, 1]``); ``to_json()`` on a record gives back the JSON object it was read from (unknown keys
included), so write -> read -> ``to_json()`` is the identity.

Versions
--------
``schema_version`` 2 (``FORMAT_VERSION``) is written now; version 1 (nnviz before the typed format;
the same fields, no ``source``, no snapshot checksums) is read as is. Any other version, or none,
is refused with a message saying whether an older or a newer nnviz made the run.

``run.json`` (``RunRecord``)
----------------------------
=====================  ===================================================================
schema_version         int, 1 or 2
run_id                 str, ``RUN_ID_RE``: a letter or digit, then letters, digits, ``_.-``;
                       at most 80 characters
source                 ``RunSource``: ``kind`` ("trained": nnviz's own trainer; other kinds
                       for runs recorded from a user's own loop), ``tool``, ``version``
                       (version 1 runs read as kind "trained", tool "nnviz")
config                 the ``RunConfig`` as a JSON object (validated by ``RunConfig``)
config_hash            str, at most 128 characters
created, updated       float, seconds since the Unix epoch, finite, in [0, 1e11]
finished               same, or null while running
status                 one of ``STATUSES``
status_detail          str (shown as text), at most 4,000 characters
host, pid              the machine and process that trained it, or null (used to tell a
                       killed run from a running one)
history                list of ``HistoryRow``, one per finished epoch, epochs increasing
snapshots              list of ``SnapshotEntry``: ``index`` = position, ``epoch`` (float,
                       finite, >= 0, non-decreasing), ``step`` (int >= 0), ``file``
                       (``snapshots/sNNNN.safetensors``), ``sha256`` (64 hex digits of the
                       whole file; null in version 1: not checked)
params                 name -> ``ParamInfo``, any layer type: ``shape`` (list of ints >= 0),
                       ``numel`` (= product of shape), ``module``, ``module_type`` (the class
                       name, any string), ``kind`` (the attribute: "weight", "bias", ...),
                       ``order`` (int), ``theory`` (``Theory`` or null), ``edges`` (2 to
                       10,001 finite, strictly increasing floats: the fixed recording bins),
                       ``stored`` ("all", or "sample of N" with 1 <= N <= numel)
layers                 list of ``LayerInfo`` (``name``, ``kind``, ``type``): the probed modules
environment            str -> str / number / bool / null (versions, device, threads)
init_digest            str; ``loss``, ``activation``: str or null
data                   ``DataInfo`` or null: task, n_classes, input_shape, class_names,
                       n_train, n_val, ``extra`` (any JSON object, kept as is)
steps_per_epoch        int >= 0 or null
diverged_at            ``Diverged`` (epoch, step, what) or null
stopped_early          ``StoppedEarly`` (epoch, best_val_loss) or null
(any other key)        kept in ``RunRecord.extra`` and written back unchanged
=====================  ===================================================================

Snapshot statistics (``SnapshotStats``, JSON in the safetensors metadata key ``nnviz``)
----------------------------------------------------------------------------------------
``index`` (= its entry's index), ``epoch``, ``step`` (= its entry's), ``params`` (one
``ParamStats`` for every parameter of the run, no other), ``activations`` (layer name ->
``ActivationStats``). The file holds ``values/<param>`` (1-D float32: ``numel`` values when
``stored`` is "all", else N) and ``hist/<param>`` (1-D int64, ``len(edges) - 1`` counts, each
>= 0); the counts plus ``hist_outside`` (under/overflow, NaN, +Inf, -Inf) sum to ``numel``:
nothing is dropped.

Numbers and their edge cases
----------------------------
* **Counts** (numel, nan_count, finite_count, bins, steps, ...): ints >= 0 (JSON floats that
  are whole numbers are accepted); ``finite_count + nan_count + inf_count == numel``.
* **Fractions** (zero_frac, dead_frac, saturated_frac, accuracies): finite, in [0, 1], or null.
* **Statistics of the finite values** (mean, std, min, max, percentiles, l2, spectral_norm,
  stable_rank): finite or null. Null when nothing is finite (a diverged tensor of only NaN/Inf)
  or the tensor is empty (numel 0). A single value or all values equal: std 0, min = max, every
  percentile equal, stable_rank 1 (or null when the spectral norm is 0). std, l2, spectral_norm
  are >= 0; stable_rank >= 1; min <= max; percentiles (9 of them) non-decreasing.
* **Measurements** (losses, gradient norms, drift, update ratios, signal_std, best_val_loss,
  activation mean/std): a float that may be NaN or +-Inf (a diverged run records what it saw;
  JSON writes ``NaN`` / ``Infinity``), or null when not measured (snapshot 0 has no gradients).
* **Times and rates** (created, lr, seconds, samples_per_s): finite, >= 0.
* **Incomplete runs**: ``status`` "running" (or "interrupted" once its process is gone) with
  fewer history rows than ``config.epochs``; a snapshot file on disk but not in ``snapshots`` is
  an incomplete write (listed by ``Run.incomplete_snapshots``, never read as data); empty
  ``history`` / ``snapshots`` are valid (a run killed before its first snapshot).

Limits: strings at most ``MAX_TEXT`` characters (names 200), at most ``MAX_ITEMS`` list items,
params, layers; JSON nested at most ``MAX_DEPTH`` deep inside ``extra`` fields.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from nnviz.config import RunConfig
from nnviz.errors import ConfigError, StorageError

if TYPE_CHECKING:  # imported where a theory is read or written (initializers imports torch)
    from nnviz.engine.initializers import Theory

FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
STATUSES = ("running", "completed", "failed", "cancelled", "diverged", "interrupted")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
RUN_ID_MAX = 80
SNAP_RE = re.compile(r"^snapshots/s(\d{4})\.safetensors$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
STORED_RE = re.compile(r"^sample of (\d{1,12})$")
N_PERCENTILES = 9
MAX_TEXT = 4000
MAX_NAME = 200
MAX_ITEMS = 100_000
MAX_EDGES = 10_001
MAX_DEPTH = 20
TIME_MAX = 1e11  # seconds since 1970: year 5138
INT_MAX = 2**53  # integers beyond it are not exact in JSON readers


# ----------------------------------------------------------------------------- field checks


class _Bad(Exception):
    """A field failed its check (the reader adds the field's path)."""


def _dict(v: Any, what: str = "an object") -> dict:
    if not isinstance(v, dict):
        raise _Bad(f"{_show(v)} is not {what}")
    return v


def _list(v: Any, limit: int = MAX_ITEMS) -> list:
    if not isinstance(v, list):
        raise _Bad(f"{_show(v)} is not a list")
    if len(v) > limit:
        raise _Bad(f"{len(v)} items, over the limit of {limit}")
    return v


def _text(v: Any, limit: int = MAX_TEXT, none: bool = False) -> str | None:
    if v is None and none:
        return None
    if not isinstance(v, str):
        raise _Bad(f"{_show(v)} is not text")
    if len(v) > limit:
        raise _Bad(f"text of {len(v)} characters, over the limit of {limit}")
    return v


def _int(v: Any, lo: int = 0, hi: int = INT_MAX, none: bool = False) -> int | None:
    if v is None and none:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Bad(f"{_show(v)} is not a whole number")
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            raise _Bad(f"{_show(v)} is not a whole number")
    if not lo <= v <= hi:
        raise _Bad(f"{_show(v)} is not in [{lo}, {hi}]")
    return int(v)


def _num(v: Any, lo: float = -math.inf, hi: float = math.inf, none: bool = False,
         finite: bool = True) -> float | None:
    """A float; ``finite=False`` also lets NaN and +-Inf through (a measurement)."""
    if v is None and none:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Bad(f"{_show(v)} is not a number")
    try:
        x = float(v)
    except OverflowError:
        raise _Bad(f"{_show(v)} is too large") from None
    if not math.isfinite(x):
        if finite:
            raise _Bad(f"{x} is not finite")
        return x
    if not lo <= x <= hi:
        raise _Bad(f"{_show(v)} is not in [{lo:g}, {hi:g}]")
    return x


def _finite_floats(v: list) -> list[float]:
    """Every item a finite number (as ``_num``): a list of floats whose sum is finite at once
    (what nnviz writes: 61 edges per parameter), anything else item by item."""
    if all(type(e) is float for e in v) and math.isfinite(sum(v)):
        return v
    return [_num(e) for e in v]


def _measure(v: Any) -> float | None:
    return _num(v, none=True, finite=False)


def _stat(v: Any, lo: float = -math.inf) -> float | None:
    return _num(v, lo=lo, none=True)


def _frac(v: Any) -> float | None:
    return _num(v, 0.0, 1.0, none=True)


def _json(v: Any, depth: int = 0) -> Any:
    """Any JSON value, bounded in depth and size (kept as is)."""
    if depth > MAX_DEPTH:
        raise _Bad(f"nested deeper than {MAX_DEPTH} levels")
    if v is None or isinstance(v, bool | str):
        return _text(v, 1_000_000) if isinstance(v, str) else v
    if isinstance(v, int):
        return _int(v, -INT_MAX, INT_MAX)
    if isinstance(v, float):
        return _num(v, finite=False)
    if isinstance(v, list):
        return [_json(x, depth + 1) for x in _list(v)]
    if isinstance(v, dict):
        if len(v) > MAX_ITEMS:
            raise _Bad(f"{len(v)} keys, over the limit of {MAX_ITEMS}")
        return {_text(k, MAX_NAME): _json(x, depth + 1) for k, x in v.items()}
    raise _Bad(f"{_show(v)} is not JSON")


def _show(v: Any) -> str:
    text = repr(v) if not isinstance(v, dict | list) else type(v).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _field(where: str, key: str, check: Callable[[Any], Any], obj: Mapping, default: Any = ...
           ) -> Any:
    """``check(obj[key])``, with the path in the error message; ``default`` if absent."""
    if key not in obj:
        if default is ...:
            raise StorageError(f"{where}: {key!r} is missing")
        return default
    try:
        return check(obj[key])
    except _Bad as exc:
        raise StorageError(f"{where}.{key}: {exc}") from None


def _extra(obj: Mapping, known: set[str], where: str) -> dict[str, Any]:
    try:
        return {k: _json(v) for k, v in obj.items() if k not in known}
    except _Bad as exc:
        raise StorageError(f"{where}: {exc}") from None


def _obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise StorageError(f"{where}: {_show(v)} is not an object")
    return v


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)} - {"extra"}


def _out(record: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record's own fields as JSON (nested records too), then its unknown keys."""
    d: dict[str, Any] = {}
    for f in fields(record):
        if f.name == "extra" or f.name in skip:
            continue
        d[f.name] = _jsonify(getattr(record, f.name))
    d.update(getattr(record, "extra", {}))
    return d


def _jsonify(v: Any) -> Any:
    # A Theory exists only once its module is imported (not needed, with torch, to read runs)
    init = sys.modules.get("nnviz.engine.initializers")
    if hasattr(v, "to_json"):
        return v.to_json()
    if init is not None and isinstance(v, init.Theory):
        return v.to_dict()
    if isinstance(v, tuple | list):
        return [_jsonify(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonify(x) for k, x in v.items()}
    return v


# ------------------------------------------------------------------------------ run.json


@dataclass
class RunSource:
    """Who made the run: nnviz's trainer ("trained"), or a recorder of a user's own loop."""

    kind: str = "trained"
    tool: str = "nnviz"
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class HistoryRow:
    """One finished epoch."""

    epoch: int
    step: int | None = None
    train_loss: float | None = None     # measurement (NaN/Inf possible)
    train_acc: float | None = None      # fraction in [0, 1]
    val_loss: float | None = None       # measurement
    val_acc: float | None = None        # fraction
    lr: float | None = None             # learning rate at the end of the epoch
    seconds: float | None = None        # wall time of the epoch
    samples_per_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class SnapshotEntry:
    """A committed snapshot as run.json lists it."""

    index: int
    epoch: float
    step: int
    file: str
    sha256: str | None = None  # of the whole file; None in version 1 runs (not checked)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = _out(self)
        if self.sha256 is None:
            d.pop("sha256")
        return d


@dataclass
class ParamInfo:
    """Static facts about one parameter of any layer type."""

    shape: tuple[int, ...]
    numel: int
    module: str
    module_type: str
    kind: str
    order: int
    edges: tuple[float, ...]
    theory: Theory | None = None
    stored: str = "all"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stored_whole(self) -> bool:
        """True when every value is stored (else a fixed-size sample)."""
        return self.stored == "all"

    @property
    def stored_count(self) -> int:
        """How many values each snapshot stores."""
        m = STORED_RE.match(self.stored)
        return int(m.group(1)) if m else self.numel

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class LayerInfo:
    """A module whose output is measured on the probe batch."""

    name: str
    kind: str
    type: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class DataInfo:
    """The data set a run trained on."""

    task: str = ""  # "classification" / "regression"; "" when not known
    n_classes: int = 0
    input_shape: tuple[int, ...] = ()
    class_names: tuple[str, ...] = ()
    n_train: int = 0
    n_val: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # JSON "extra": the set's own facts
    unknown: dict[str, Any] = field(default_factory=dict)  # keys this nnviz does not know

    def to_json(self) -> dict[str, Any]:
        # here "extra" is a field of the format (the data set's facts), not unknown keys
        d = {f.name: _jsonify(getattr(self, f.name)) for f in fields(self)
             if f.name != "unknown"}
        d.update(self.unknown)
        return d


@dataclass
class Diverged:
    """Where training met a non-finite loss or weight."""

    epoch: int
    step: int
    what: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class StoppedEarly:
    """Early stopping: the epoch it stopped at and the best validation loss."""

    epoch: int
    best_val_loss: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class RunRecord:
    """Everything run.json holds (see the module docstring for every field)."""

    schema_version: int
    run_id: str
    config: RunConfig
    status: str
    created: float
    source: RunSource = field(default_factory=RunSource)
    config_hash: str = ""
    status_detail: str = ""
    updated: float | None = None
    finished: float | None = None
    host: str | None = None
    pid: int | None = None
    history: list[HistoryRow] = field(default_factory=list)
    snapshots: list[SnapshotEntry] = field(default_factory=list)
    params: dict[str, ParamInfo] = field(default_factory=dict)
    layers: list[LayerInfo] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    init_digest: str = ""
    loss: str | None = None
    activation: str | None = None
    data: DataInfo | None = None
    steps_per_epoch: int | None = None
    diverged_at: Diverged | None = None
    stopped_early: StoppedEarly | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = _out(self, skip=("config",))
        d["config"] = self.config.to_dict()
        for key in ("host", "diverged_at", "stopped_early", "data", "finished"):
            if d[key] is None:
                del d[key]  # absent until known
        return d


# ---------------------------------------------------------------------- snapshot statistics


@dataclass
class HistOutside:
    """Values the fixed bins did not hold (counted, never dropped)."""

    underflow: int = 0
    overflow: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0

    def total(self) -> int:
        return self.underflow + self.overflow + self.nan + self.posinf + self.neginf

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class GradStats:
    """Gradient statistics averaged over the steps since the last snapshot, and at the last."""

    norm: float | None = None
    mean_abs: float | None = None
    std: float | None = None
    last_norm: float | None = None
    last_mean_abs: float | None = None
    last_std: float | None = None
    steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class ParamStats:
    """One parameter at one snapshot (``stats.tensor_stats`` plus recording extras)."""

    numel: int
    nan_count: int = 0
    inf_count: int = 0
    finite_count: int = 0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    percentiles: tuple[float, ...] | None = None
    l2: float | None = None
    spectral_norm: float | None = None
    stable_rank: float | None = None
    zero_frac: float | None = None
    hist_outside: HistOutside = field(default_factory=HistOutside)
    drift: float | None = None
    grad: GradStats | None = None
    update_ratio: float | None = None
    update_ratio_last: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = _out(self)
        for key in ("grad", "update_ratio", "update_ratio_last"):
            if d[key] is None:
                del d[key]  # the recorder leaves them out at snapshot 0
        return d


@dataclass
class ActivationStats:
    """One probed layer's output at one snapshot."""

    kind: str
    mean: float | None = None
    std: float | None = None
    zero_frac: float | None = None
    dead_frac: float | None = None
    saturated_frac: float | None = None
    nan_count: int = 0
    inf_count: int = 0
    signal_std: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _out(self)


@dataclass
class SnapshotStats:
    """The statistics of one snapshot."""

    index: int
    epoch: float
    step: int
    params: dict[str, ParamStats] = field(default_factory=dict)
    activations: dict[str, ActivationStats] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _out(self)


# ---------------------------------------------------------------------------------- readers


def parse_run(obj: Any, where: str = "run.json") -> RunRecord:
    """Validate decoded run.json; raise StorageError naming the first bad field."""
    m = _obj(obj, where)
    version = m.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in READ_VERSIONS:
        if isinstance(version, int) and not isinstance(version, bool) and \
                version > FORMAT_VERSION:
            raise StorageError(f"{where}: made by a newer nnviz (schema version {version}); "
                               f"this nnviz reads versions {READ_VERSIONS[0]} to "
                               f"{FORMAT_VERSION}. Update nnviz to open it.")
        raise StorageError(f"{where}: made by an older nnviz or another program (schema "
                           f"version {_show(version)}); this nnviz reads versions "
                           f"{READ_VERSIONS[0]} to {FORMAT_VERSION}.")
    run_id = _field(where, "run_id", _text, m)
    if not RUN_ID_RE.match(run_id):
        raise StorageError(f"{where}.run_id: {_show(run_id)} is not a valid run id")
    cfg_obj = _obj(_field(where, "config", lambda v: v, m), f"{where}.config")
    try:
        config = RunConfig.from_dict(cfg_obj)
    except ConfigError as exc:
        raise StorageError(f"{where}.config: {exc}") from None
    status = _field(where, "status", _text, m)
    if status not in STATUSES:
        raise StorageError(f"{where}.status: {_show(status)} is not one of {', '.join(STATUSES)}")
    t = lambda v: _num(v, 0.0, TIME_MAX)  # noqa: E731
    tn = lambda v: _num(v, 0.0, TIME_MAX, none=True)  # noqa: E731
    rec = RunRecord(
        schema_version=version, run_id=run_id, config=config, status=status,
        created=_field(where, "created", t, m),
        source=_parse_source(m.get("source"), f"{where}.source", m),
        config_hash=_field(where, "config_hash", lambda v: _text(v, 128), m, ""),
        status_detail=_field(where, "status_detail", _text, m, ""),
        updated=_field(where, "updated", tn, m, None),
        finished=_field(where, "finished", tn, m, None),
        host=_field(where, "host", lambda v: _text(v, MAX_NAME, none=True), m, None),
        pid=_field(where, "pid", lambda v: _int(v, 0, 2**31, none=True), m, None),
        init_digest=_field(where, "init_digest", lambda v: _text(v, 128), m, ""),
        loss=_field(where, "loss", lambda v: _text(v, MAX_NAME, none=True), m, None),
        activation=_field(where, "activation", lambda v: _text(v, MAX_NAME, none=True), m,
                          None),
        steps_per_epoch=_field(where, "steps_per_epoch", lambda v: _int(v, none=True), m, None),
        environment=_field(where, "environment", _environment, m, {}),
    )
    rec.history = [_parse_history(h, f"{where}.history[{i}]")
                   for i, h in enumerate(_field(where, "history", _list, m, []))]
    for a, b in zip(rec.history, rec.history[1:], strict=False):
        if b.epoch <= a.epoch:
            raise StorageError(f"{where}.history: epoch {b.epoch} follows epoch {a.epoch}")
    rec.snapshots = [_parse_entry(e, i, f"{where}.snapshots[{i}]")
                     for i, e in enumerate(_field(where, "snapshots", _list, m))]
    for a, b in zip(rec.snapshots, rec.snapshots[1:], strict=False):
        if b.epoch < a.epoch:
            raise StorageError(f"{where}.snapshots[{b.index}]: epoch {b.epoch:g} comes before "
                               f"the previous snapshot's {a.epoch:g}")
    params = _field(where, "params", lambda v: _dict(v), m, {})
    if len(params) > MAX_ITEMS:
        raise StorageError(f"{where}.params: {len(params)} parameters, over {MAX_ITEMS}")
    rec.params = {_key(k, f"{where}.params"): _parse_param(v, f"{where}.params[{k!r}]")
                  for k, v in params.items()}
    rec.layers = [_parse_layer(v, f"{where}.layers[{i}]")
                  for i, v in enumerate(_field(where, "layers", _list, m, []))]
    if m.get("data") is not None:
        rec.data = _parse_data(m["data"], f"{where}.data")
    if m.get("diverged_at") is not None:
        d = _obj(m["diverged_at"], f"{where}.diverged_at")
        w = f"{where}.diverged_at"
        rec.diverged_at = Diverged(
            epoch=_field(w, "epoch", _int, d), step=_field(w, "step", _int, d),
            what=_field(w, "what", lambda v: _text(v, MAX_NAME), d, ""),
            extra=_extra(d, _names(Diverged), w))
    if m.get("stopped_early") is not None:
        d = _obj(m["stopped_early"], f"{where}.stopped_early")
        w = f"{where}.stopped_early"
        rec.stopped_early = StoppedEarly(
            epoch=_field(w, "epoch", _int, d),
            best_val_loss=_field(w, "best_val_loss", _measure, d, None),
            extra=_extra(d, _names(StoppedEarly), w))
    rec.extra = _extra(m, _names(RunRecord) | {"config"}, where)
    return rec


def _key(k: Any, where: str) -> str:
    if not isinstance(k, str) or not 0 < len(k) <= MAX_NAME:
        raise StorageError(f"{where}: {_show(k)} is not a valid name")
    return k


def _parse_source(v: Any, where: str, run: Mapping) -> RunSource:
    if v is None:  # version 1: trained by nnviz
        env = run.get("environment")
        ver = env.get("nnviz") if isinstance(env, dict) else ""
        return RunSource(version=ver if isinstance(ver, str) and len(ver) < 64 else "")
    d = _obj(v, where)
    return RunSource(kind=_field(where, "kind", lambda x: _text(x, MAX_NAME), d, "trained"),
                     tool=_field(where, "tool", lambda x: _text(x, MAX_NAME), d, "nnviz"),
                     version=_field(where, "version", lambda x: _text(x, MAX_NAME), d, ""),
                     extra=_extra(d, _names(RunSource), where))


def _environment(v: Any) -> dict[str, Any]:
    d = _dict(v)
    if len(d) > 1000:
        raise _Bad(f"{len(d)} keys, over the limit of 1000")
    out = {}
    for k, x in d.items():
        _text(k, MAX_NAME)
        if x is not None and not isinstance(x, str | bool):
            _num(x)
        out[k] = _text(x) if isinstance(x, str) else x
    return out


def _parse_history(v: Any, where: str) -> HistoryRow:
    d = _obj(v, where)
    rate = lambda x: _num(x, 0.0, none=True)  # noqa: E731
    return HistoryRow(
        epoch=_field(where, "epoch", lambda x: _int(x, 1), d),
        step=_field(where, "step", lambda x: _int(x, none=True), d, None),
        train_loss=_field(where, "train_loss", _measure, d, None),
        train_acc=_field(where, "train_acc", _frac, d, None),
        val_loss=_field(where, "val_loss", _measure, d, None),
        val_acc=_field(where, "val_acc", _frac, d, None),
        lr=_field(where, "lr", rate, d, None),
        seconds=_field(where, "seconds", rate, d, None),
        samples_per_s=_field(where, "samples_per_s", rate, d, None),
        extra=_extra(d, _names(HistoryRow), where))


def _parse_entry(v: Any, i: int, where: str) -> SnapshotEntry:
    d = _obj(v, where)
    index = _field(where, "index", _int, d, i)
    if index != i:
        raise StorageError(f"{where}.index: {index} at position {i}")
    file = _field(where, "file", lambda x: _text(x, 64), d)
    if not SNAP_RE.match(file):
        raise StorageError(f"{where}.file: {_show(file)} is not snapshots/sNNNN.safetensors")
    sha = _field(where, "sha256", lambda x: _text(x, 64, none=True), d, None)
    if sha is not None and not SHA_RE.match(sha):
        raise StorageError(f"{where}.sha256: {_show(sha)} is not 64 hex digits")
    return SnapshotEntry(index=i, epoch=_field(where, "epoch", lambda x: _num(x, 0.0, 1e6), d),
                         step=_field(where, "step", _int, d), file=file, sha256=sha,
                         extra=_extra(d, _names(SnapshotEntry), where))


def _parse_param(v: Any, where: str) -> ParamInfo:
    d = _obj(v, where)
    shape = tuple(_field(where, "shape", lambda x: [_int(s, 0, 2**40) for s in _list(x, 16)],
                         d))
    numel = _field(where, "numel", _int, d)
    if numel != math.prod(shape):
        raise StorageError(f"{where}.numel: {numel} but the shape {list(shape)} holds "
                           f"{math.prod(shape)}")
    edges = tuple(_field(where, "edges", lambda x: _finite_floats(_list(x, MAX_EDGES)), d))
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise StorageError(f"{where}.edges: not 2 or more strictly increasing numbers")
    if not math.isfinite(edges[-1] - edges[0]):
        raise StorageError(f"{where}.edges: the range overflows")
    stored = _field(where, "stored", lambda x: _text(x, 64), d, "all")
    sm = STORED_RE.match(stored)
    if stored != "all" and not (sm and 1 <= int(sm.group(1)) <= numel):
        raise StorageError(f"{where}.stored: {_show(stored)} is not 'all' or 'sample of N' "
                           f"with N <= numel")
    theory = None
    if d.get("theory") is not None:
        theory = _parse_theory(d["theory"], f"{where}.theory")
    name = lambda x: _text(x, MAX_NAME)  # noqa: E731
    return ParamInfo(shape=shape, numel=numel, module=_field(where, "module", name, d),
                     module_type=_field(where, "module_type", name, d),
                     kind=_field(where, "kind", name, d),
                     order=_field(where, "order", lambda x: _int(x, 0, MAX_ITEMS), d),
                     edges=edges, theory=theory, stored=stored,
                     extra=_extra(d, _names(ParamInfo), where))


def _parse_theory(v: Any, where: str) -> Theory:
    from nnviz.engine.initializers import Theory

    d = _obj(v, where)
    opt = lambda x: _num(x, none=True)  # noqa: E731
    mean = _field(where, "mean", opt, d, None)
    theory = Theory(kind=_field(where, "kind", lambda x: _text(x, MAX_NAME), d),
                    mean=math.nan if mean is None else mean,
                    std=_field(where, "std", lambda x: _num(x, 0.0, none=True), d, None),
                    low=_field(where, "low", opt, d, None),
                    high=_field(where, "high", opt, d, None),
                    scale=_field(where, "scale", lambda x: _num(x, 1e-300, none=True), d, None),
                    formula=_field(where, "formula", _text, d, ""))
    if (theory.low is None) != (theory.high is None):
        raise StorageError(f"{where}: low and high are given together or not at all")
    if theory.low is not None and theory.high is not None and theory.high < theory.low:
        raise StorageError(f"{where}: high {theory.high:g} is below low {theory.low:g}")
    return theory


def _parse_layer(v: Any, where: str) -> LayerInfo:
    d = _obj(v, where)
    name = lambda x: _text(x, MAX_NAME)  # noqa: E731
    return LayerInfo(name=_field(where, "name", name, d), kind=_field(where, "kind", name, d),
                     type=_field(where, "type", name, d, ""),
                     extra=_extra(d, _names(LayerInfo), where))


def _parse_data(v: Any, where: str) -> DataInfo:
    d = _obj(v, where)
    extra = _field(where, "extra", lambda x: _json(_dict(x)), d, {})
    return DataInfo(
        task=_field(where, "task", lambda x: _text(x, MAX_NAME), d, ""),
        n_classes=_field(where, "n_classes", lambda x: _int(x, 0, 1_000_000), d, 0),
        input_shape=tuple(_field(where, "input_shape",
                                 lambda x: [_int(s, 0, 2**31) for s in _list(x, 8)], d, [])),
        class_names=tuple(_field(where, "class_names",
                                 lambda x: [_text(s, MAX_NAME) for s in _list(x, 100_000)], d,
                                 [])),
        n_train=_field(where, "n_train", _int, d, 0), n_val=_field(where, "n_val", _int, d, 0),
        extra=extra, unknown=_extra(d, _names(DataInfo) | {"extra", "unknown"}, where))


def parse_snapshot_stats(obj: Any, run: RunRecord, entry: SnapshotEntry,
                         where: str = "snapshot") -> SnapshotStats:
    """Validate one snapshot's statistics against its run and its run.json entry."""
    m = _obj(obj, where)
    index = _field(where, "index", _int, m, entry.index)
    if index != entry.index:
        raise StorageError(f"{where}.index: {index}, but run.json lists it as {entry.index}")
    epoch = _field(where, "epoch", lambda x: _num(x, 0.0, 1e6), m)
    step = _field(where, "step", _int, m)
    if abs(epoch - entry.epoch) > 1e-9 or step != entry.step:
        raise StorageError(f"{where}: epoch {epoch:g} step {step}, but run.json lists epoch "
                           f"{entry.epoch:g} step {entry.step}")
    params = _obj(_field(where, "params", lambda x: x, m), f"{where}.params")
    if set(params) != set(run.params):
        missing = sorted(set(run.params) - set(params))[:3]
        extra = sorted(map(str, set(params) - set(run.params)))[:3]
        raise StorageError(f"{where}.params: do not match the run's parameters "
                           f"(missing {missing}, unknown {extra})")
    out = SnapshotStats(index=index, epoch=epoch, step=step)
    out.params = {k: _parse_param_stats(v, run.params[k], f"{where}.params[{k!r}]")
                  for k, v in params.items()}
    acts = _obj(_field(where, "activations", lambda x: x, m, {}), f"{where}.activations")
    if len(acts) > MAX_ITEMS:
        raise StorageError(f"{where}.activations: too many layers")
    out.activations = {_key(k, f"{where}.activations"):
                       _parse_activation(v, f"{where}.activations[{k!r}]")
                       for k, v in acts.items()}
    out.extra = _extra(m, _names(SnapshotStats), where)
    return out


def _parse_param_stats(v: Any, info: ParamInfo, where: str) -> ParamStats:
    d = _obj(v, where)
    numel = _field(where, "numel", _int, d, info.numel)
    if numel != info.numel:
        raise StorageError(f"{where}.numel: {numel}, but the parameter has {info.numel}")
    counts = {k: _field(where, k, lambda x: _int(x, 0, numel), d, 0)
              for k in ("nan_count", "inf_count")}
    finite = _field(where, "finite_count", lambda x: _int(x, 0, numel), d,
                    numel - counts["nan_count"] - counts["inf_count"])
    if finite + counts["nan_count"] + counts["inf_count"] != numel:
        raise StorageError(f"{where}: finite + NaN + Inf counts do not add up to {numel}")
    s = ParamStats(numel=numel, finite_count=finite, **counts)
    s.mean = _field(where, "mean", _stat, d, None)
    s.std = _field(where, "std", lambda x: _stat(x, 0.0), d, None)
    s.min = _field(where, "min", _stat, d, None)
    s.max = _field(where, "max", _stat, d, None)
    if s.min is not None and s.max is not None and s.min > s.max:
        raise StorageError(f"{where}: min {s.min:g} is above max {s.max:g}")
    pct = _field(where, "percentiles",
                 lambda x: None if x is None else [_num(p) for p in _list(x, N_PERCENTILES)],
                 d, None)
    if pct is not None:
        if len(pct) != N_PERCENTILES or any(  # non-decreasing, up to rounding
                b < a - 1e-12 * max(abs(a), abs(b)) for a, b in zip(pct, pct[1:], strict=False)):
            raise StorageError(f"{where}.percentiles: not {N_PERCENTILES} non-decreasing "
                               "numbers")
        s.percentiles = tuple(pct)
    s.l2 = _field(where, "l2", lambda x: _stat(x, 0.0), d, None)
    s.spectral_norm = _field(where, "spectral_norm", lambda x: _stat(x, 0.0), d, None)
    s.stable_rank = _field(where, "stable_rank", lambda x: _stat(x, 1.0), d, None)
    s.zero_frac = _field(where, "zero_frac", _frac, d, None)
    if d.get("hist_outside") is not None:
        h = _obj(d["hist_outside"], f"{where}.hist_outside")
        w = f"{where}.hist_outside"
        s.hist_outside = HistOutside(**{k: _field(w, k, lambda x: _int(x, 0, numel), h, 0)
                                        for k in _names(HistOutside)})
        if s.hist_outside.total() > numel:
            raise StorageError(f"{w}: counts add up to more than {numel}")
    s.drift = _field(where, "drift", _measure, d, None)
    s.update_ratio = _field(where, "update_ratio", _measure, d, None)
    s.update_ratio_last = _field(where, "update_ratio_last", _measure, d, None)
    if d.get("grad") is not None:
        g = _obj(d["grad"], f"{where}.grad")
        w = f"{where}.grad"
        s.grad = GradStats(**{k: _field(w, k, _measure, g, None)
                              for k in _names(GradStats) - {"steps"}},
                           steps=_field(w, "steps", _int, g, 0),
                           extra=_extra(g, _names(GradStats), w))
    s.extra = _extra(d, _names(ParamStats), where)
    return s


def _parse_activation(v: Any, where: str) -> ActivationStats:
    d = _obj(v, where)
    return ActivationStats(
        kind=_field(where, "kind", lambda x: _text(x, MAX_NAME), d),
        mean=_field(where, "mean", _measure, d, None),
        std=_field(where, "std", _measure, d, None),
        zero_frac=_field(where, "zero_frac", _frac, d, None),
        dead_frac=_field(where, "dead_frac", _frac, d, None),
        saturated_frac=_field(where, "saturated_frac", _frac, d, None),
        nan_count=_field(where, "nan_count", _int, d, 0),
        inf_count=_field(where, "inf_count", _int, d, 0),
        signal_std=_field(where, "signal_std", _measure, d, None),
        extra=_extra(d, _names(ActivationStats), where))


def finite_or_none(x: float | None) -> float | None:
    """``x`` if it is a finite number, else None (for axes and ranges)."""
    return x if x is not None and math.isfinite(x) else None


def none_to_nan(x: float | None) -> float:
    """``x``, or NaN where it was not measured (None): for numeric table columns and plots."""
    return math.nan if x is None else x
