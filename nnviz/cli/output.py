"""How the command line prints: tables and the training progress bar, drawn by rich.

rich does the column widths, alignment and terminal handling; printed to a pipe or a file, a
table is never cut to the terminal's width (every column is kept whole, one row per line).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table


def stdout() -> Console:
    """A console on stdout; unlimited width when it is not a terminal (``| head``, files)."""
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if tty else 100_000, highlight=False,
                   soft_wrap=not tty)


def stderr() -> Console:
    return Console(file=sys.stderr, highlight=False)


def fmt(x: Any, digits: int = 4) -> str:
    """A table cell: None as '-', floats to ``digits`` significant digits, NaN/Inf as words."""
    if x is None:
        return "-"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{digits}g}"
    return str(x)


def print_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    """Rows of dicts (same keys) as a table; '(nothing)' when empty."""
    if not rows:
        print("(nothing)")
        return
    console = stdout()
    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for col in rows[0]:
        numeric = all(isinstance(r[col], int | float) or r[col] is None for r in rows)
        table.add_column(col, justify="right" if numeric else "left", no_wrap=True)
    for r in rows:
        table.add_row(*(fmt(v) for v in r.values()))
    with console.capture() as captured:
        console.print(table)
    # rich pads the last column to its width; trailing blanks only get in the way of grep/diff
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


class ProgressBar:
    """Training progress on stderr: a bar over every step, a line per finished epoch."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task: Any = None

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        kind = event["event"]
        if kind == "started":
            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} samples/s"), TimeElapsedColumn(),
                console=stderr(), transient=False)
            self._progress.start()
            self._progress.console.print(
                f"run {event['run_id']}: {event['epochs']} epochs × "
                f"{event['steps_per_epoch']} steps")
            self._task = self._progress.add_task(
                "train", total=event["epochs"] * event["steps_per_epoch"], epoch=0,
                epochs=event["epochs"], loss="-", rate="-")
        elif kind == "step" and self._progress is not None:
            done = (event["epoch"] - 1) * event["steps_per_epoch"] + event["step"]
            self._progress.update(self._task, completed=done, epoch=event["epoch"],
                                  loss=f"{event['loss']:.4g}",
                                  rate=f"{event['samples_per_s']:.0f}")
        elif kind == "epoch" and self._progress is not None:
            acc = event.get("val_acc")
            acc_text = f", val acc {acc:.3f}" if acc is not None else ""
            self._progress.console.print(
                f"  epoch {event['epoch']}: val loss {event['val_loss']:.4g}{acc_text}")
        elif kind == "finished":
            self.close()

    def close(self) -> None:
        """Stop drawing (also after an error, so the terminal is left clean)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
