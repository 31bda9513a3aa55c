"""Checkpoints as nnviz runs: weights from files nnviz did not write, never by unpickling code.

Accepted (``load_weights(path)``):

* ``.safetensors``: the 8-byte little-endian header length and the JSON header are checked
  before safetensors opens the file: a header over MAX_HEADER_BYTES, longer than the file, not
  a JSON object, or a tensor whose data lies beyond the end of the file (a truncated download)
  is refused.
* ``model.safetensors.index.json`` (a sharded checkpoint): its ``weight_map`` names shard files
  in the same folder (plain file names only), each read as above.
* ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt``: ``torch.load(map_location="cpu",
  weights_only=True, mmap=True)`` only (without mmap for the legacy non-zip format), whose
  unpickler accepts tensors and plain containers and refuses every other Python object before
  anything runs. A file that needs full unpickling is refused with how to re-save it as
  safetensors. The weights are the dict itself, or its
  ``state_dict`` (Lightning), ``model_state_dict``, ``model`` or ``module`` entry.

Names lose a leading ``module.`` (DataParallel / DDP) and ``_orig_mod.`` (torch.compile);
non-floating tensors (BatchNorm's ``num_batches_tracked``, integer buffers) are left out and
counted in ``Weights.notes``.

A folder (``checkpoint_paths``) holds one checkpoint per file with an accepted suffix, or per
sub-folder ``checkpoint-*`` (Hugging Face Trainer); they are ordered by the numbers in their
names (``epoch=2-step=300.ckpt`` before ``epoch=10-step=1500.ckpt``). ``checkpoint_run`` writes
one run with a snapshot per checkpoint, in that order: the epoch is ``epoch=N`` from the name
when every checkpoint has one, else the checkpoint's position (0, 1, 2, ...). Runs made here
have no gradients or activations; their ``source`` is ``{"kind": "checkpoint", "paths"}``.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from nnviz import i18n
from nnviz.analysis import stats
from nnviz.config import RunConfig
from nnviz.engine.default_inits import unknown
from nnviz.engine.recorder import SAMPLE_SIZE, VALUE_LIMIT
from nnviz.engine.watch import rename_run, run_id_base, weight_entry
from nnviz.errors import StorageError
from nnviz.store.runs import RunStore

MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
INDEX_NAME = "model.safetensors.index.json"
STATE_KEYS = ("state_dict", "model_state_dict", "model", "module")
RESAVE_HINT = (
    "nnviz never unpickles Python objects (that can run any code). If you trust the file, "
    "re-save its weights as safetensors in your own Python session:\n"
    "    import torch; from safetensors.torch import save_file\n"
    "    sd = torch.load(PATH, weights_only=False)      # only for a file you trust\n"
    "    sd = sd.get('state_dict', sd)                   # a Lightning checkpoint\n"
    "    save_file({k: v.contiguous() for k, v in sd.items() if hasattr(v, 'contiguous')},\n"
    "              'model.safetensors')\n"
    "then run `nnviz inspect model.safetensors`."
)


@dataclass
class Weights:
    """The floating tensors of one checkpoint, by plain parameter name."""

    tensors: dict[str, torch.Tensor]
    format: str
    notes: list[str] = field(default_factory=list)


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked against the file's size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise StorageError(i18n.t("{file}: {size} bytes is too short for a safetensors "
                                      "file.", file=path.name, size=size))
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise StorageError(i18n.t("{file}: its header claims {n} bytes (over the {most} MiB "
                                      "limit): not a valid safetensors file.", file=path.name,
                                      n=n, most=MAX_HEADER_BYTES // 2**20))
        if 8 + n > size:
            raise StorageError(i18n.t("{file}: the header is longer than the file ({size} "
                                      "bytes): the file is truncated.", file=path.name,
                                      size=size))
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StorageError(i18n.t("{file}: the header is not valid JSON ({why}).",
                                      file=path.name, why=exc)) from None
    if not isinstance(header, dict):
        raise StorageError(i18n.t("{file}: the header is not a JSON object.", file=path.name))
    data_size = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) for o in offsets)):
            raise StorageError(i18n.t("{file}: tensor {name!r} has no valid data_offsets.",
                                      file=path.name, name=name))
        if offsets[1] > data_size:
            raise StorageError(i18n.t("{file}: tensor {name!r} ends at byte {end} of the data, "
                                      "but the file holds {size}: it is truncated.",
                                      file=path.name, name=name, end=offsets[1],
                                      size=data_size))
    return header


def _plain_name(name: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while name.startswith(prefix):
            name = name[len(prefix):]
    return name.replace("._orig_mod.", ".")


def _keep(raw: dict[str, Any], fmt: str, notes: list[str]) -> Weights:
    tensors: dict[str, torch.Tensor] = {}
    skipped = 0
    for key, value in raw.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            tensors[_plain_name(str(key))] = value
        else:
            skipped += 1
    if skipped:
        notes.append(i18n.t("{n} entries that are not floating-point tensors were left out "
                            "(e.g. BatchNorm's num_batches_tracked).", n=skipped))
    if not tensors:
        raise StorageError(i18n.t("The checkpoint holds no floating-point tensors (no "
                                  "weights)."))
    return Weights(tensors, fmt, notes)


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    safetensors_header(path)
    try:
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise StorageError(i18n.t("{file}: not a readable safetensors file ({why}).",
                                  file=path.name, why=exc)) from None


def _load_index(path: Path) -> dict[str, torch.Tensor]:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
            AttributeError) as exc:
        raise StorageError(i18n.t("{file}: not a valid sharded-checkpoint index ({why}).",
                                  file=path.name, why=exc)) from None
    out: dict[str, torch.Tensor] = {}
    for shard in shards:
        if not isinstance(shard, str) or Path(shard).name != shard or shard in ("", ".", ".."):
            raise StorageError(i18n.t("{file}: shard {shard!r} is not a file name in its "
                                      "folder.", file=path.name, shard=shard))
        shard_path = path.parent / shard
        if not shard_path.is_file():
            raise StorageError(i18n.t("{file}: shard {shard} is missing.", file=path.name,
                                      shard=shard))
        out.update(_load_safetensors(shard_path))
    missing = sorted(set(weight_map) - set(out))
    if missing:
        raise StorageError(i18n.t("{file}: {n} tensors of the index are in no shard (first: "
                                  "{first}).", file=path.name, n=len(missing), first=missing[0]))
    return out


def _load_torch(path: Path) -> tuple[dict[str, Any], list[str]]:
    try:
        try:  # memory-mapped: a large checkpoint is not read into memory at once
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # the legacy format
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        why = next((line for line in first if "GLOBAL" in line or "global" in line),
                   first[0] if first else "")
        raise StorageError(i18n.t("{file} needs full unpickling, which nnviz refuses ({why}).",
                                  file=path.name, why=why.strip()[:200])
                           + f"\n{RESAVE_HINT.replace('PATH', repr(str(path)))}") from None
    except (RuntimeError, EOFError, OSError, ValueError, struct.error) as exc:
        raise StorageError(i18n.t("{file}: not a readable PyTorch checkpoint ({why}).",
                                  file=path.name, why=exc)) from None
    notes: list[str] = []
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and any(isinstance(v, torch.Tensor)
                                               for v in inner.values()):
                notes.append(i18n.t("weights read from the checkpoint's {key!r} entry", key=key))
                return inner, notes
        return obj, notes
    if isinstance(obj, torch.Tensor):
        return {"tensor": obj}, notes
    raise StorageError(i18n.t("{file} holds a {kind}, not a dict of weights.", file=path.name,
                              kind=type(obj).__name__))


def load_weights(path: str | Path) -> Weights:
    """The weights of one checkpoint file, or of a Hugging Face checkpoint folder."""
    path = Path(path)
    if path.is_dir():
        for candidate in (INDEX_NAME, "model.safetensors", "pytorch_model.bin"):
            if (path / candidate).is_file():
                return load_weights(path / candidate)
        raise StorageError(i18n.t("{path}: no {index}, model.safetensors or pytorch_model.bin "
                                  "in this folder.", path=path, index=INDEX_NAME))
    if not path.is_file():
        raise StorageError(i18n.t("{path}: no such file.", path=path))
    name = path.name.lower()
    if name.endswith(".index.json"):
        return _keep(_load_index(path), "safetensors (sharded)", [])
    if name.endswith(".safetensors"):
        return _keep(_load_safetensors(path), "safetensors", [])
    if name.endswith(TORCH_SUFFIXES):
        raw, notes = _load_torch(path)
        return _keep(raw, "torch (weights_only)", notes)
    raise StorageError(i18n.t("{file}: nnviz reads .safetensors, {index} and {suffixes} "
                              "checkpoints.", file=path.name, index=INDEX_NAME,
                              suffixes=", ".join(TORCH_SUFFIXES)))


def _numbers(name: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+(?:\.\d+)?", name)]


def checkpoint_paths(folder: Path) -> list[Path]:
    """The checkpoints in a folder, in training order (by the numbers in their names)."""
    found = [p for p in folder.iterdir()
             if (p.is_file() and p.name.lower().endswith((".safetensors", *TORCH_SUFFIXES))
                 and not p.name.startswith("."))
             or (p.is_dir() and p.name.startswith("checkpoint-"))]
    if (folder / INDEX_NAME).is_file():  # one sharded checkpoint, not a series
        return [folder / INDEX_NAME]
    if not found:
        raise StorageError(i18n.t("{folder}: no checkpoints (.safetensors, {suffixes}, or "
                                  "checkpoint-*/ folders).", folder=folder,
                                  suffixes=", ".join(TORCH_SUFFIXES)))
    return sorted(found, key=lambda p: (_numbers(p.name), p.name))


def _epochs(paths: list[Path]) -> list[float]:
    found = [re.search(r"epoch[=_-]?(\d+)", p.name) for p in paths]
    if all(found):
        epochs = [float(m.group(1)) for m in found]
        if all(b > a for a, b in zip(epochs, epochs[1:], strict=False)):
            return epochs
    return [float(i) for i in range(len(paths))]


def _step(path: Path) -> int:
    m = re.search(r"(?:step[=_-]?|checkpoint-)(\d+)", path.name)
    return int(m.group(1)) if m else 0


def describe_weights(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """Static facts per tensor of a checkpoint (layer types and init unknown)."""
    info = {}
    for order, (name, t) in enumerate(tensors.items()):
        module, _, leaf = name.rpartition(".")
        values = t.detach().float().flatten().numpy()
        info[name] = {
            "shape": list(t.shape), "numel": t.numel(), "module": module,
            "module_type": "unknown", "kind": leaf, "order": order,
            "theory": unknown("unknown: a checkpoint does not say how it was initialized")
            .to_dict(),
            "theory_source": "unknown",
            "edges": [float(e) for e in stats.weight_edges(values)],
            "stored": "all" if t.numel() <= VALUE_LIMIT else f"sample of {SAMPLE_SIZE}",
        }
    return info


def checkpoint_run(path: str | Path, store: RunStore | None = None, name: str = "") -> str:
    """Write a checkpoint (or a folder of them) as one nnviz run; returns its id."""
    path = Path(path)
    store = store or RunStore()
    paths = checkpoint_paths(path) if path.is_dir() and not (
        (path / "model.safetensors").is_file() or (path / "pytorch_model.bin").is_file()) \
        else [path]
    first = load_weights(paths[0])
    names = list(first.tensors)
    info = describe_weights(first.tensors)
    edges = {n: np.asarray(i["edges"]) for n, i in info.items()}
    w0 = {n: t.detach() for n, t in first.tensors.items()}
    label = name or path.name
    cfg = RunConfig(name=label, epochs=1, device="cpu")
    writer = store.create(cfg, f"checkpoint-{uuid.uuid4().hex}", {
        "params": info, "layers": [], "data": {},
        "source": {"kind": "checkpoint", "format": first.format,
                   "paths": [str(p) for p in paths], "notes": first.notes,
                   "n_params": int(sum(t.numel() for t in first.tensors.values()))},
    })
    rename_run(writer, store, run_id_base(label, "ckpt"))
    epochs = _epochs(paths)
    try:
        for k, (p, epoch) in enumerate(zip(paths, epochs, strict=True)):
            weights = first if k == 0 else load_weights(p)
            missing = [n for n in names if n not in weights.tensors]
            if missing:
                raise StorageError(i18n.t("{file} lacks {n} tensors of {first_file} (first: "
                                          "{first}): not the same model.", file=p.name,
                                          n=len(missing), first_file=paths[0].name,
                                          first=missing[0]))
            tensors: dict[str, torch.Tensor] = {}
            per_param = {}
            for i, n in enumerate(names):
                t = weights.tensors[n].detach()
                if list(t.shape) != info[n]["shape"]:
                    raise StorageError(i18n.t("{file}: {name} has shape {shape}, {want} in "
                                              "{first_file}.", file=p.name, name=n,
                                              shape=list(t.shape), want=info[n]["shape"],
                                              first_file=paths[0].name))
                per_param[n] = weight_entry(n, t, w0[n], edges[n], i, tensors)
            if k:
                writer.meta["history"].append({"epoch": epoch, "step": _step(p),
                                               "checkpoint": p.name})
            writer.meta["config"]["epochs"] = max(1, math.ceil(epoch))
            writer.add_snapshot(tensors, {"epoch": epoch, "step": _step(p),
                                          "params": per_param, "activations": {},
                                          "checkpoint": p.name})
    except BaseException as exc:
        writer.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    writer.finish("completed", f"{len(paths)} checkpoint(s), weights only")
    return writer.run_id
