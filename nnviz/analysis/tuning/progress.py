"""Where a step's sweep stands: its jobs' progress summed up for one progress bar.

Reads the ``JobInfo`` objects of the app's job manager by attribute (``state``, ``progress``),
so this module does not import the app.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnviz.i18n import t


@dataclass
class SweepProgress:
    """Where a step's sweep stands, read from its jobs' JobInfo objects."""

    total: int
    finished: int           # done, failed or cancelled
    fraction: float         # 0..1 over all jobs
    states: dict[str, int]  # state -> count
    all_finished: bool

    @property
    def text(self) -> str:
        """One line: '3 of 5 runs finished (2 running)'."""
        words = {"queued": t("queued"), "running": t("running"), "failed": t("failed"),
                 "cancelled": t("cancelled")}
        extra = ", ".join(f"{n} {words.get(s, s)}" for s, n in self.states.items()
                          if s not in ("done",) and n)
        return t("{finished} of {total} runs finished", finished=self.finished,
                 total=self.total) + (f" ({extra})" if extra else "")


FINISHED_STATES = ("done", "failed", "cancelled")


def job_fraction(info: Any) -> float:
    """0..1 progress of one job from its JobInfo (any of the progress forms the manager uses)."""
    state = getattr(info, "state", "")
    if state in FINISHED_STATES:
        return 1.0
    progress = getattr(info, "progress", None)
    if isinstance(progress, int | float) and math.isfinite(progress):
        return float(min(max(progress, 0.0), 1.0))
    if isinstance(progress, dict):
        if "fraction" in progress:
            return job_fraction(type("P", (), {"progress": progress["fraction"]})())
        epochs = progress.get("epochs") or 0
        spe = progress.get("steps_per_epoch") or 0
        if epochs and spe and "step" in progress:
            done = (progress.get("epoch", 1) - 1) * spe + progress["step"]
            return float(min(max(done / (epochs * spe), 0.0), 1.0))
        if epochs and "epoch" in progress:
            return float(min(max(progress["epoch"] / epochs, 0.0), 1.0))
    return 0.0


def sweep_progress(infos: list[Any]) -> SweepProgress:
    """Summarize the JobInfo objects of one sweep."""
    states: dict[str, int] = {}
    for info in infos:
        states[info.state] = states.get(info.state, 0) + 1
    finished = sum(states.get(s, 0) for s in FINISHED_STATES)
    fraction = float(np.mean([job_fraction(i) for i in infos])) if infos else 0.0
    return SweepProgress(total=len(infos), finished=finished, fraction=fraction, states=states,
                         all_finished=finished == len(infos))
