"""Side by side: a bare PyTorch loop against nnviz's trainer and the peers' recorders.

Every loop trains the same model from the same initial weights on the same data, in the same
batches (one permutation per epoch from one seeded generator), with the same optimizer and loss,
and runs the same validation pass after every epoch. The loops:

    floor        bare PyTorch: steps + the validation pass per epoch (= 1.00), its images in
                 the layout nnviz's trainer gives them (``training.image_layout``: colour images
                 channels_last on the CPU), so every ratio compares the same arithmetic
    floor NCHW   the floor with the images as a plain loop has them (NCHW): what that layout
                 costs (PyTorch's CPU max-pool is several times slower in it)
    recorder     the floor + nnviz's Recorder (per-step gradient and update statistics, one
                 snapshot at init and per epoch, written to a run folder like the trainer's)
    tensorboard  the floor + SummaryWriter.add_histogram of every weight and gradient per epoch
    wandb        the floor + wandb.watch(model, log="all", log_freq=steps per epoch), offline
    nnviz off    nnviz's train(cfg, record=False)
    nnviz on     nnviz's train(cfg) (weights, gradients, update ratios, activations per epoch)

nnviz's trainer also builds its data and model (``prepare``); that time is measured and taken
out, so every figure is the loop itself. Runs are interleaved (one of each loop per round, the
order rotated and reversed from round to round, so each loop runs as often just before the
floor as just after it) in one process, so that the load of a shared machine falls on all
alike; the table gives each loop's median over the rounds of its paired ratio (its time over
the floor's in the same round: steadier than a ratio of medians when the machine's speed
drifts over minutes). A
case whose run is shorter than SAMPLE_S (the 2-D MLPs: ~30 ms) is timed over several runs in
a row per figure, the same number for every loop.

The issue's cases are the default; ``--cases lesson_symmetry lesson_deep`` adds the lessons on
2-D points as the app trains them (their own epochs, optimizer and size).

All loops run on ``--threads`` torch threads. nnviz trains a ``deterministic`` config (the
default) on one CPU thread whatever the machine offers (see the README, "Reproducibility"), so
the fair comparison is at 1 thread, the default here.

The peers come from requirements-bench.txt (``pip install -r requirements-bench.txt``); a peer
that is not installed is skipped with a note. W&B runs offline (WANDB_MODE=offline, its files in
a temporary folder): nothing is sent anywhere.

    python benchmarks/bench_side_by_side.py [--rounds 5] [--epochs 3] [--threads 1]
        [--cases cnn1600 cnn10000 mlp2d lesson_symmetry lesson_deep]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from nnviz.config import RunConfig  # noqa: E402
from nnviz.engine import training  # noqa: E402
from nnviz.engine.initializers import theories  # noqa: E402
from nnviz.engine.recorder import (  # noqa: E402
    Recorder,
    SnapshotQueue,
    describe_params,
    sample_steps,
)
from nnviz.engine.seeding import run_generators  # noqa: E402
from nnviz.presets import PRESETS  # noqa: E402
from nnviz.store.runs import RunStore  # noqa: E402

CASES = {
    # name: (label, config); n_samples are 80 % train, 20 % validation. A config with its own
    # "epochs" (the lessons') keeps them; the others train --epochs.
    "cnn1600": ("SimpleCNN, 1,600 train", dict(model="simple_cnn", dataset="shapes32",
                                                n_samples=2000)),
    "cnn10000": ("SimpleCNN, 10,000 train", dict(model="simple_cnn", dataset="shapes32",
                                                  n_samples=12500)),
    "mlp2d": ("MLP 3x64, 2-D points (1,600 train)", dict(model="mlp", dataset="moons",
                                                         depth=3, width=64, n_samples=2000)),
    # the lessons on 2-D points, as the app trains them (nnviz/presets.py): the smallest one
    # (symmetry: MLP 2x16 on moons, SGD, 5 epochs) and the deepest (kaiming_deep_relu: a
    # 30-layer MLP on spirals, 5 epochs)
    "lesson_symmetry": ("lesson symmetry: MLP 2x16, moons, 5 epochs",
                        PRESETS["symmetry"].overrides),
    "lesson_deep": ("lesson kaiming_deep_relu: MLP 30x64, spiral, 5 epochs",
                    PRESETS["kaiming_deep_relu"].overrides),
}
DEFAULT_CASES = ["cnn1600", "cnn10000", "mlp2d"]
SAMPLE_S = 0.3  # a case whose run is shorter is timed over this many seconds of runs in a row
LOOPS = ("floor", "floor NCHW", "recorder", "tensorboard", "wandb", "nnviz off", "nnviz on")


class Case:
    """Data, initial weights and settings shared by every loop of one case."""

    def __init__(self, cfg: RunConfig, root: Path) -> None:
        self.cfg = cfg
        self.data, self.model0, self.loss_name, self.activation = training.prepare(cfg)
        self.root = root
        self.store = RunStore(root / "runs")
        d = self.data
        # the trainer's layout (the floor's), and NCHW as a plain loop has it ("floor NCHW")
        self.x = training.image_layout(d.x_train, self.model0)
        self.xv = training.image_layout(d.x_val, self.model0)
        self.y, self.yv = d.y_train, d.y_val
        self.plain = (d.x_train, d.x_val)
        self.steps = -(-len(self.x) // cfg.batch_size)

    def fresh(self) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Generator]:
        model = copy.deepcopy(self.model0)
        opt = training.make_optimizer(self.cfg, list(model.parameters()), 1)
        return model, opt, run_generators(self.cfg.seed).order

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return training.compute_loss(self.loss_name, out, y, self.cfg.focal_gamma)

    @torch.no_grad()
    def validate(self, model: torch.nn.Module, plain: bool = False) -> tuple[float, float]:
        """The validation pass every loop runs after each epoch (loss and accuracy)."""
        model.eval()
        total, correct = 0.0, 0
        xv = self.plain[1] if plain else self.xv
        for i in range(0, len(xv), 1024):
            out = model(xv[i:i + 1024])
            yb = self.yv[i:i + 1024]
            total += float(self.loss(out, yb)) * len(yb)
            correct += int((training.predictions(out) == yb).sum())
        model.train()
        return total / len(self.xv), correct / len(self.xv)

    def bare_loop(self, model: torch.nn.Module, opt: torch.optim.Optimizer,
                  order: torch.Generator, after_backward: Callable[[int], None] | None = None,
                  after_step: Callable[[int], None] | None = None,
                  after_epoch: Callable[[int], None] | None = None,
                  plain: bool = False) -> None:
        """The floor: the user's own loop, with optional hooks where a recorder goes."""
        b = self.cfg.batch_size
        x = self.plain[0] if plain else self.x
        model.train()
        for epoch in range(1, self.cfg.epochs + 1):
            perm = torch.randperm(len(self.x), generator=order)
            for i in range(self.steps):
                idx = perm[i * b:(i + 1) * b]
                out = model(x[idx])
                loss = self.loss(out, self.y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if after_backward is not None:
                    after_backward(i)
                opt.step()
                if after_step is not None:
                    after_step(i)
            self.validate(model, plain)
            if after_epoch is not None:
                after_epoch(epoch)


class Clock:
    """Wall and CPU (process_time: every thread of the process) seconds since it started."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_floor(case: Case, plain: bool = False) -> tuple[float, float]:
    model, opt, order = case.fresh()
    clock = Clock()
    case.bare_loop(model, opt, order, plain=plain)
    return clock.stop()


def run_recorder(case: Case) -> tuple[float, float]:
    """The floor with nnviz's Recorder and a run writer, as a user would add them."""
    model, opt, order = case.fresh()
    gens = run_generators(case.cfg.seed)
    clock = Clock()
    rec = Recorder(model, case.xv[: case.cfg.probe_size], gens.sample_seed)
    info = describe_params(model, theories(model, training.init_params(case.cfg),
                                           case.activation))
    rec.set_edges(info)
    writer = case.store.create(case.cfg, "bench", {"params": info, "layers": rec.layers})
    grads, updates = sample_steps(case.steps, [case.steps])
    queue = SnapshotQueue(writer, rec)
    queue.snapshot(0.0, 0)

    def after_backward(i: int) -> None:
        if i in grads:
            rec.after_backward()
        if i in updates:
            rec.before_step()

    def after_epoch(epoch: int) -> None:
        queue.snapshot(float(epoch), epoch * case.steps)

    case.bare_loop(model, opt, order, after_backward, lambda _i: rec.after_step(), after_epoch)
    queue.close()
    writer.finish("completed")
    return clock.stop()


def run_tensorboard(case: Case) -> tuple[float, float]:
    from torch.utils.tensorboard import SummaryWriter

    model, opt, order = case.fresh()
    with tempfile.TemporaryDirectory(dir=case.root) as logdir:
        clock = Clock()
        tb = SummaryWriter(logdir)
        named = list(model.named_parameters())

        def after_epoch(epoch: int) -> None:
            for name, p in named:
                tb.add_histogram(name, p.detach(), epoch)
                if p.grad is not None:
                    tb.add_histogram(f"{name}.grad", p.grad, epoch)

        after_epoch(0)
        case.bare_loop(model, opt, order, after_epoch=after_epoch)
        tb.close()
        return clock.stop()


class WandbRun:
    """One offline W&B run per case (its start-up is not counted); one watch per loop."""

    def __init__(self, root: Path) -> None:
        import wandb

        os.environ["WANDB_MODE"] = "offline"
        os.environ["WANDB_DIR"] = str(root)
        os.environ["WANDB_SILENT"] = "true"
        os.environ.setdefault("WANDB_CONSOLE", "off")
        self.wandb = wandb
        self.run = wandb.init(mode="offline", dir=str(root), project="nnviz-bench",
                              settings=wandb.Settings(console="off", quiet=True))
        self.step = 0

    def __call__(self, case: Case) -> tuple[float, float]:
        wandb = self.wandb
        model, opt, order = case.fresh()
        clock = Clock()
        wandb.watch(model, log="all", log_freq=case.steps)

        def after_step(_i: int) -> None:
            self.step += 1

        def after_epoch(epoch: int) -> None:
            wandb.log({"epoch": epoch}, step=self.step)

        case.bare_loop(model, opt, order, after_step=after_step, after_epoch=after_epoch)
        wandb.unwatch(model)
        return clock.stop()

    def close(self) -> None:
        self.run.finish()


@contextlib.contextmanager
def quiet() -> object:
    """W&B prints on start and finish; keep the table readable."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


@contextlib.contextmanager
def prepare_timer() -> object:
    """Measures the time train() spends in prepare() (data and model set-up)."""
    original = training.prepare
    spent = {"wall": 0.0, "cpu": 0.0}

    def timed(cfg: RunConfig, *args):  # noqa: ANN002, ANN202
        clock = Clock()
        try:
            return original(cfg, *args)
        finally:
            wall, cpu = clock.stop()
            spent["wall"] += wall
            spent["cpu"] += cpu

    training.prepare = timed
    try:
        yield spent
    finally:
        training.prepare = original


def run_nnviz(case: Case, record: bool) -> tuple[float, float]:
    with prepare_timer() as spent:
        clock = Clock()
        training.train(case.cfg, case.store, record=record)
        wall, cpu = clock.stop()
    return wall - spent["wall"], cpu - spent["cpu"]


def case_config(name: str, epochs: int, threads: int) -> RunConfig:
    fields = CASES[name][1]
    return RunConfig.from_dict({"epochs": epochs, **fields, "device": "cpu",
                                "threads": threads})


def bench_case(name: str, rounds: int, epochs: int, threads: int, loops: list[str]
               ) -> tuple[dict[str, list[tuple[float, float]]], int]:
    """Per loop, (wall, CPU) seconds of each round; and how many runs in a row each figure
    took (a case whose run takes less than SAMPLE_S is timed over several, summed: a 30 ms
    run is otherwise at the mercy of one scheduler tick)."""
    cfg = case_config(name, epochs, threads)
    with tempfile.TemporaryDirectory(prefix="nnviz-bench-") as tmp:
        case = Case(cfg, Path(tmp))
        runners: dict[str, Callable[[Case], tuple[float, float]]] = {
            "floor": run_floor, "floor NCHW": lambda c: run_floor(c, plain=True),
            "recorder": run_recorder, "tensorboard": run_tensorboard,
            "nnviz off": lambda c: run_nnviz(c, False), "nnviz on": lambda c: run_nnviz(c, True),
        }
        wb = None
        if "wandb" in loops:
            with quiet():
                wb = WandbRun(Path(tmp))
            runners["wandb"] = wb
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in loops}
        for loop in loops:  # warm-up: imports, allocator, first-call costs
            runners[loop](case)
            torch.set_num_threads(threads)  # train() restores the caller's count; be sure
        repeat = max(1, math.ceil(SAMPLE_S / max(run_floor(case)[0], 1e-3)))
        for r in range(rounds):
            k = (r // 2) % len(loops)
            order = loops[k:] + loops[:k]
            order = order[::-1] if r % 2 else order
            for loop in order:
                wall = cpu = 0.0
                for _ in range(repeat):
                    w, c = runners[loop](case)
                    wall, cpu = wall + w, cpu + c
                    torch.set_num_threads(threads)
                times[loop].append((wall, cpu))
        if wb is not None:
            with quiet():
                wb.close()
    return times, repeat


def profile_case(name: str, loop: str, epochs: int, threads: int) -> None:
    """cProfile of one run of ``loop`` (after a warm-up run), the top functions by own time."""
    import cProfile
    import pstats

    label = CASES[name][0]
    cfg = case_config(name, epochs, threads)
    runner: Callable[[Case], tuple[float, float]] = {
        "recorder": run_recorder, "nnviz off": lambda c: run_nnviz(c, False),
        "nnviz on": lambda c: run_nnviz(c, True)}[loop]
    with tempfile.TemporaryDirectory(prefix="nnviz-bench-") as tmp:
        case = Case(cfg, Path(tmp))
        run_floor(case)
        runner(case)
        floor = run_floor(case)[0]
        prof = cProfile.Profile()
        prof.enable()
        took = runner(case)[0]
        prof.disable()
    print(f"\n{label}: {loop} {took * 1e3:.0f} ms under cProfile (floor {floor * 1e3:.0f} ms "
          "without it); top 20 by own time:")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
    text = out.getvalue()
    print(text[text.find("ncalls"):])


def available_loops() -> list[str]:
    loops = list(LOOPS)
    for loop, module in (("tensorboard", "tensorboard"), ("wandb", "wandb")):
        try:
            __import__(module)
        except ImportError:
            print(f"note: {module} is not installed (pip install -r requirements-bench.txt); "
                  f"the {loop} column is skipped")
            loops.remove(loop)
    return loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, choices=list(CASES),
                        help="the issue's three by default; lesson_symmetry and lesson_deep "
                             "are the lessons on 2-D points as the app trains them")
    parser.add_argument("--loops", nargs="+", default=list(LOOPS), choices=list(LOOPS),
                        metavar="LOOP", help="a subset of: " + ", ".join(LOOPS) + " (the floor "
                        "is always run)")
    parser.add_argument("--profile", choices=["recorder", "nnviz off", "nnviz on"],
                        help="instead of the table: cProfile one run of this loop per case "
                             "and print where its time goes")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    if args.profile:
        for name in args.cases:
            profile_case(name, args.profile, args.epochs, args.threads)
        return
    loops = [loop for loop in available_loops() if loop in {"floor", *args.loops}]
    print(f"{args.epochs} epochs per run (the lessons: their own), batch 64, Adam (the "
          f"lessons: theirs), {args.threads} torch thread(s), {args.rounds} interleaved rounds; "
          f"medians of per-round paired ratios; load {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} cores")
    results: dict[str, dict[str, float]] = {}
    cpu_results: dict[str, dict[str, float]] = {}
    for name in args.cases:
        times, repeat = bench_case(name, args.rounds, args.epochs, args.threads, loops)
        floor = statistics.median(t[0] for t in times["floor"])
        base = times["floor"]  # paired: each round's figure over that round's floor
        results[name] = {k: statistics.median(t[0] / b[0] for t, b in zip(v, base, strict=True))
                         for k, v in times.items()}
        cpu_results[name] = {k: statistics.median(t[1] / b[1]
                                                  for t, b in zip(v, base, strict=True))
                             for k, v in times.items()}
        print(f"{CASES[name][0]}: floor median {floor / repeat * 1e3:.1f} ms per run; each "
              f"figure times {repeat} run(s) in a row; wall (s) of every figure: "
              + "; ".join(f"{k} " + ",".join(f"{t[0]:.3f}" for t in v)
                          for k, v in times.items()), flush=True)
    targets = {"nnviz off": 1.03, "nnviz on": 1.05}
    for title, table in (("wall time / floor's (the targets)", results),
                         ("CPU time / floor's (all threads of the process)", cpu_results)):
        print(f"\n{title}\n")
        print("| loop | " + " | ".join(CASES[n][0] for n in args.cases) + " |")
        print("| --- | " + " | ".join("---" for _ in args.cases) + " |")
        for loop in loops:
            note = f" (target <= {targets[loop]:.2f})" if loop in targets else ""
            print(f"| {loop}{note} | " + " | ".join(f"{table[n][loop]:.2f}" for n in args.cases)
                  + " |")
    print()
    for n in args.cases:
        r = results[n]
        peers = {k: r[k] for k in ("tensorboard", "wandb") if k in r}
        verdict = []
        for loop, target in targets.items():
            if loop not in r:  # not run (--loops)
                continue
            why = [f"> {target:.2f}"] if r[loop] > target else []
            if loop == "nnviz on":  # the peers record; "off" is held to the floor alone
                why += [f"not below {k} {v:.3f}" for k, v in peers.items() if r[loop] >= v]
            said = f"MISSES its target ({', '.join(why)})" if why else "meets its target"
            verdict.append(f"{loop} {r[loop]:.3f} {said}")
        print(f"{CASES[n][0]}: " + "; ".join(verdict))
    print(f"load after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
