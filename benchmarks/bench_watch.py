"""Cost of recording a user's own loop: nnviz.watch vs TensorBoard histograms vs wandb.watch.

The same loop (SGD with momentum, cross-entropy) runs in four variants, interleaved epoch by
epoch in one process so machine load hits all of them alike:

    bare         the loop alone
    nnviz        nnviz.watch(model, opt, probe=x[:probe]): weights, gradients and update ratios
                 on the steps its overhead budget samples, probe activations, one snapshot per
                 epoch (computed and written on its background thread while the next epoch's
                 steps run: see ``epoch``)
    tensorboard  SummaryWriter.add_histogram of every weight and its gradient, once per epoch
    wandb        wandb.watch(model, log="all", log_freq=steps per epoch), offline, system
                 metrics off; log_freq counts backward passes, so it logs every weight and
                 gradient histogram exactly once per epoch (the count is printed)

Each variant has its own copy of the same initial model, the same batches and optimizer.
Every round runs one epoch of each variant, in an order rotated and reversed from round to round
(ABCD, DCBA, BCDA, ADCB, ...), so every tool runs as often just before the bare loop as just
after it. The figure per tool is the median over rounds of its *paired* ratio: its epoch over
the bare loop's epoch of the same round (the bare loop's own epochs drift by 10-20 % over
minutes on a shared machine; two epochs a few seconds apart much less), with its quartiles and
range, in CPU time (the process's, every thread: steadier than wall time on a shared machine)
and in wall time. W&B's CPU is given again with its service process (wandb-core, a child process
that writes its files: not in this process's CPU time). Also printed: the CPU inside each tool's
own calls as a share of the bare epoch (per-step hooks are not in it: the ratio has them);
nnviz's CPU split into its sampled steps and its snapshot on the training thread (that
thread's own CPU, ``time.thread_time``) and the snapshot's work on the background thread, and
what the last interval's figures rest on (``sampling``). ``--controls`` adds two loops that
record nothing: a second bare loop (how far two identical loops' paired ratio strays) and the
loop with nnviz's per-step hooks attached but doing nothing (what the hooks alone cost), and
nnviz with every snapshot on the training thread (``nnviz_inline``: what the thread saves).
The snapshot cost is fixed per epoch, so the ratio shrinks as epochs grow: ``--steps`` sets
the epoch length for ResNet-18 (default 200 steps of batch 8: 1,600 images of 3x32x32, a small
CPU epoch; a CIFAR-10 epoch is 50,000 images), and the first line of each table states it.
Finally a ResNet-18 snapshot's size on disk (against the fp32 size of its parameters) and its
write time.

    python benchmarks/bench_watch.py [--models simple_cnn resnet18] [--rounds 8] [--threads 1]
                                     [--steps 200] [--controls]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import nnviz  # noqa: E402
from nnviz.engine.models import SimpleCNN  # noqa: E402
from nnviz.engine.watch import Watcher  # noqa: E402
from tests.fixtures.resnet import resnet18  # noqa: E402


class CodeTimer:
    """Adds up the time spent inside Watcher's step hooks and snapshots on the training thread
    (wall, and that thread's own CPU: ``time.thread_time``), and the CPU of the snapshots'
    background thread (``Watcher._write`` there: statistics, histograms, encoding, the file).
    The per-parameter gradient hooks, a flag each, are not counted here: the ratio has them
    (``--controls`` times them alone)."""

    NAMES = ("before_step", "after_step", "snapshot")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu = 0.0         # the training thread's, inside nnviz's calls
        self.background = 0.0  # the background thread's CPU (its snapshot work)
        self.cpu_by = dict.fromkeys(self.NAMES, 0.0)
        self._saved = [(n, getattr(Watcher, n)) for n in (*self.NAMES, "_write")]
        for name, fn in self._saved:
            setattr(Watcher, name, self._wrap(name, fn))

    def restore(self) -> None:
        for name, fn in self._saved:
            setattr(Watcher, name, fn)

    def _wrap(self, name, fn):  # noqa: ANN001, ANN202
        timer = self

        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                cpu = time.thread_time() - c0
                if name != "_write":
                    timer.seconds += time.perf_counter() - t0
                    timer.cpu += cpu
                    timer.cpu_by[name] += cpu
                elif threading.current_thread() is not threading.main_thread():
                    timer.background += cpu  # inline, it is inside snapshot's own time
        return timed


def service_cpu() -> float:
    """CPU seconds so far of this process's child processes (wandb's service, wandb-core),
    which do W&B's writing outside the process's own CPU time."""
    try:
        import psutil
    except ImportError:
        return 0.0
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


class Variant:
    """One copy of the model and optimizer, and how it records an epoch."""

    def __init__(self, kind: str, model: nn.Module, x: torch.Tensor, probe: int,
                 steps: int, root: str) -> None:
        self.kind, self.model = kind, copy.deepcopy(model)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.faults: list[int] = []  # minor page faults per epoch (the process's)
        self.code = 0.0  # CPU seconds inside the tool's own calls this epoch (not its hooks)
        self.codes: list[float] = []  # per epoch
        self.epoch = 0
        self.last_loss: float | None = None  # nnviz: the epoch still to snapshot
        if kind == "nnviz":
            self.rec = nnviz.watch(self.model, self.opt, probe=x[:probe], name="bench",
                                   runs_dir=os.path.join(root, "runs"))
        elif kind == "nnviz_inline":  # the same, every snapshot on the training thread
            self.rec = Watcher(self.model, self.opt, probe=x[:probe], name="bench",
                               runs_dir=os.path.join(root, "runs"), background=False)
        elif kind == "hooks":  # nnviz's per-step hooks, doing nothing: what hooks alone cost
            flags = [False] * len(list(self.model.parameters()))

            def mark(i):  # noqa: ANN001, ANN202
                def hook(_p):  # noqa: ANN001, ANN202
                    flags[i] = True
                return hook
            for i, p in enumerate(self.model.parameters()):
                p.register_post_accumulate_grad_hook(mark(i))
            self.opt.register_step_pre_hook(lambda *_: None)
            self.opt.register_step_post_hook(lambda *_: None)
        elif kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(os.path.join(root, "tb"))
        elif kind == "wandb":
            import wandb
            os.environ.setdefault("WANDB_SILENT", "true")
            # system metrics off: only what watch() costs is counted (generous to W&B)
            self.run = wandb.init(mode="offline", dir=root, project="bench", reinit=True,
                                  settings=wandb.Settings(x_disable_stats=True))
            # log_freq counts backward passes: exactly one histogram log per epoch
            self.run.watch(self.model, log="all", log_freq=steps)
            self.logs = 0
            history = self.run._torch_history
            original = history.log_tensor_stats

            def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                self.logs += 1
                c0 = time.process_time()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.code += time.process_time() - c0
            history.log_tensor_stats = counted

    def end_epoch(self, loss: float) -> None:
        c0 = time.process_time()
        try:
            self._end_epoch(loss)
        finally:
            if self.kind not in ("nnviz", "nnviz_inline"):  # nnviz's: CodeTimer, or none
                self.code += time.process_time() - c0

    def begin_epoch(self) -> None:
        """nnviz: the snapshot of the epoch before (see ``epoch``)."""
        if self.kind.startswith("nnviz") and self.last_loss is not None:
            self.rec.snapshot(epoch=self.epoch, metrics={"train_loss": self.last_loss})
            self.last_loss = None

    def _end_epoch(self, loss: float) -> None:
        self.epoch += 1
        if self.kind.startswith("nnviz"):
            self.last_loss = loss  # snapshot at the next epoch's start
        elif self.kind == "tensorboard":
            for name, p in self.model.named_parameters():
                self.writer.add_histogram(name, p.detach(), self.epoch)
                if p.grad is not None:
                    self.writer.add_histogram(f"{name}/grad", p.grad, self.epoch)
            self.writer.flush()
        elif self.kind == "wandb":
            self.run.log({"train_loss": loss})

    def close(self) -> None:
        if self.kind.startswith("nnviz"):
            self.rec.close()
        elif self.kind == "tensorboard":
            self.writer.close()
        elif self.kind == "wandb":
            self.run.finish()


def epoch(v: Variant, x: torch.Tensor, y: torch.Tensor, batch: int, steps: int
          ) -> tuple[float, float]:
    """(wall, CPU) seconds of one epoch of `steps` batches, recording included (CPU: the
    process's, every thread: on a shared machine steadier than wall time).

    nnviz's snapshot returns once the moment is captured; its statistics and file are made on
    a background thread while the loop goes on. So that this work overlaps nnviz's own steps
    (as in a real loop: epoch k's snapshot runs beside epoch k + 1) and no other loop's, nnviz
    takes its snapshot of the epoch before at the start of each timed epoch (the warm-up
    epoch's in the first round), and the epoch's time runs until that work is done too."""
    t0, c0 = time.perf_counter(), time.process_time()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    v.begin_epoch()
    loss = torch.zeros(())
    for i in range(steps):
        lo = (i * batch) % len(x)
        xb, yb = x[lo:lo + batch], y[lo:lo + batch]
        v.opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(v.model(xb), yb)
        loss.backward()
        v.opt.step()
    v.end_epoch(float(loss.detach()))
    if v.kind.startswith("nnviz"):  # what is left of its snapshot's background work, if any
        v.rec._queue.wait()
    v.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return time.perf_counter() - t0, time.process_time() - c0


def available(kinds: list[str]) -> list[str]:
    out = []
    for kind in kinds:
        try:
            if kind == "tensorboard":
                import tensorboard  # noqa: F401
            elif kind == "wandb":
                import wandb  # noqa: F401
        except ImportError:
            print(f"  ({kind} is not installed: pip install -r requirements-extras.txt)")
            continue
        out.append(kind)
    return out


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(lower quartile, median, upper quartile) by numpy's default (linear) interpolation."""
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 \
        else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def spread(values: list[float]) -> str:
    """'1.023x (quartiles 1.010-1.031, range 0.995-1.046)' of per-round ratios."""
    lo, mid, hi = quartiles(values)
    return f"{mid:.3f}x (quartiles {lo:.3f}-{hi:.3f}, range {min(values):.3f}-{max(values):.3f})"


def round_order(variants: list[Variant], r: int) -> list[Variant]:
    """Round r's order: rotated by r // 2 and reversed on odd rounds (ABCD, DCBA, BCDA, ADCB,
    ...), so that every tool runs as often before the bare loop as after it, and a drift of
    the machine's speed during a round falls on both sides of each pair alike."""
    k = (r // 2) % len(variants)
    order = variants[k:] + variants[:k]
    return order[::-1] if r % 2 else order


def bench(label: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
          steps: int, rounds: int, probe: int, controls: bool = False) -> None:
    kinds = available(["bare", "nnviz", "tensorboard", "wandb"])
    if controls:  # a second bare loop (the pairing's own noise), nnviz's hooks alone, and
        kinds[1:1] = ["bare2", "hooks", "nnviz_inline"]  # nnviz without its background thread
    with tempfile.TemporaryDirectory() as root:
        variants = [Variant(k, model, x, probe, steps, root) for k in kinds]
        for v in variants:  # warm-up epoch (allocator, lazy imports), not timed
            epoch(v, x, y, batch, min(steps, 5))
        nnviz_cpu_share, nnviz_by = [], []
        service_marks: list[float] = []  # W&B's service CPU at each of its epochs' start
        for r in range(rounds):
            for v in round_order(variants, r):
                timer = CodeTimer() if v.kind == "nnviz" else None
                if v.kind == "wandb":
                    service_marks.append(service_cpu())
                    logs = v.logs
                v.code = 0.0
                try:
                    t, c = epoch(v, x, y, batch, steps)
                finally:
                    if timer:
                        timer.restore()
                v.times.append(t)
                v.cpu.append(c)
                if v.kind == "wandb":
                    v.logs_per_epoch = v.logs - logs
                v.codes.append(timer.cpu + timer.background if timer else v.code)
                if timer:
                    train = c - timer.background  # the training thread's CPU (about)
                    nnviz_cpu_share.append(timer.cpu / (train - timer.cpu))
                    nnviz_by.append({**timer.cpu_by, "background": timer.background})
                    rec = v.rec
        if service_marks:
            time.sleep(2.0)  # let the service write the last epoch's histograms
            service_marks.append(service_cpu())
        sampling = getattr(rec, "last_sampling", None)  # what the last epoch rests on
        background = rec._queue.background
        n_tensors = 2 * sum(1 for _ in model.parameters())  # every weight and its gradient
        for v in variants:
            v.close()
    bare = variants[0]
    print(f"{label}: one epoch = {steps} steps of batch {batch} = {steps * batch:,} examples "
          f"of shape {tuple(x.shape[1:])}; {rounds} rounds, one epoch of each tool per round "
          f"(order rotated and reversed every round); bare epoch "
          f"{statistics.median(bare.times):.2f} s wall, {statistics.median(bare.cpu):.2f} s CPU "
          "(median)")
    wb = next((v for v in variants if v.kind == "wandb"), None)
    service = [b - a for a, b in zip(service_marks, service_marks[1:], strict=False)]
    print("  per-round paired ratio to the bare loop's epoch of the same round, median "
          "(target for nnviz: <= 1.05 and below both peers):")
    for v in variants[1:]:
        wall = [t / b for t, b in zip(v.times, bare.times, strict=True)]
        cpu = [c / b for c, b in zip(v.cpu, bare.cpu, strict=True)]
        print(f"    {v.kind:<12} CPU  {spread(cpu)}")
        if v is wb and service:
            total = [(c + s) / b for c, s, b in zip(v.cpu, service, bare.cpu, strict=True)]
            print(f"    {'':<12} CPU with its service process  {spread(total)}")
        print(f"    {'':<12} wall {spread(wall)}")
    if wb is not None:
        ok = "one per tensor: OK" if wb.logs_per_epoch == n_tensors else \
            f"NOT one per tensor ({n_tensors} expected)"
        print(f"  W&B: {wb.logs_per_epoch} tensor histograms logged in its last epoch ({ok}); "
              f"service {statistics.median(service):.3f} s CPU per epoch (median)")
    cells = []
    for v in variants[1:]:
        share = statistics.median(c / b for c, b in zip(v.codes, bare.cpu, strict=True)) * 100
        base_cpu = statistics.median(bare.cpu)
        extra = f" + service {statistics.median(service) / base_cpu * 100:.1f}%" \
            if v is wb and service else ""
        cells.append(f"{v.kind} {share:.2f}%{extra}")
    print("  CPU inside each tool's own calls (not its per-step hooks; nnviz's: both threads),"
          " % of the same round's bare epoch, median: " + "   ".join(cells))
    lo, mid, hi = quartiles(nnviz_cpu_share)
    by = {k: statistics.median(d[k] for d in nnviz_by) for k in (*CodeTimer.NAMES,
                                                                  "background")}
    print(f"  nnviz's in-call CPU on the training thread, share of the rest of that thread's "
          f"epoch: {mid * 100:.2f}% (quartiles {lo * 100:.2f}-{hi * 100:.2f}%); its background "
          f"thread: {by['background'] / statistics.median(bare.cpu) * 100:.2f}% of the bare "
          f"epoch ({'on' if background else 'off: snapshots inline'})")
    steps_s = by["before_step"] + by["after_step"]
    print(f"  nnviz CPU per epoch (median): sampled steps {steps_s:.3f} s "
          f"(before_step {by['before_step']:.3f}, after_step {by['after_step']:.3f}), snapshot "
          f"{by['snapshot']:.3f} s on the training thread + {by['background']:.3f} s on the "
          f"background thread; last interval {sampling}")
    print("  minor page faults per epoch (median; memory the epoch touched afresh): "
          + "   ".join(f"{v.kind} {statistics.median(v.faults[1:] or v.faults):,.0f}"
                     for v in variants))
    for v in variants:
        print(f"    {v.kind:<12} wall " + ", ".join(f"{t:.2f}" for t in v.times)
              + "; CPU " + ", ".join(f"{t:.2f}" for t in v.cpu))


def snapshot_size_and_time() -> None:
    torch.manual_seed(0)
    model = resnet18()
    n = sum(p.numel() for p in model.parameters())
    x = torch.randn(8, 3, 32, 32)
    with tempfile.TemporaryDirectory() as root:
        rec = nnviz.watch(model, probe=x, runs_dir=root)
        t0 = time.perf_counter()
        tensors, snap = rec.collect(1.0)
        t_stats = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = rec.writer.add_snapshot(tensors, snap)
        t_write = time.perf_counter() - t0
        size = (rec.writer.folder / rec.writer.meta["snapshots"][index]["file"]).stat().st_size
        rec.close()
    print(f"ResNet-18 snapshot: {size / 2**20:.1f} MiB on disk vs {n * 4 / 2**20:.1f} MiB fp32 "
          f"parameters ({size / (n * 4):.2f}x); write {t_write:.3f} s (target <= 1 s); "
          f"statistics + probe before it {t_stats:.2f} s")


def overview_timing() -> None:
    """How long the Overview page's table takes for ResNet-18 and a 12-block transformer."""
    from nnviz.analysis.overview import overview
    from nnviz.store.runs import RunStore

    layer = nn.TransformerEncoderLayer(64, 4, 256, batch_first=True)
    models = {"ResNet-18": (resnet18(), torch.randn(2, 3, 32, 32)),
              "12-block transformer": (nn.TransformerEncoder(layer, 12,
                                                             enable_nested_tensor=False),
                                       torch.randn(2, 16, 64))}
    for label, (model, probe) in models.items():
        with tempfile.TemporaryDirectory() as root:
            with nnviz.watch(model, probe=probe, runs_dir=root) as rec:
                rec.snapshot(epoch=1)
            run = RunStore(root).load(rec.run_id)
            t0 = time.perf_counter()
            df = overview(run, 1)
            print(f"Overview table, {label}: {len(df)} rows in {time.perf_counter() - t0:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["simple_cnn", "resnet18", "overview"])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--examples", type=int, default=10_000, help="SimpleCNN examples")
    parser.add_argument("--steps", type=int, default=200, help="ResNet-18 steps per epoch")
    parser.add_argument("--controls", action="store_true",
                        help="add control loops: a second bare loop, nnviz's per-step hooks "
                             "attached but doing nothing, nnviz without its background thread")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, CPU")
    if "simple_cnn" in args.models:
        x, y = torch.randn(args.examples, 3, 32, 32), torch.randint(0, 10, (args.examples,))
        bench(f"SimpleCNN, {args.examples} examples", SimpleCNN(), x, y, 64,
              -(-args.examples // 64), args.rounds, 64, args.controls)
    if "resnet18" in args.models:
        x, y = torch.randn(256, 3, 32, 32), torch.randint(0, 1000, (256,))
        bench("ResNet-18", resnet18(), x, y, 8, args.steps, args.rounds, 8, args.controls)
        snapshot_size_and_time()
    if "overview" in args.models:
        overview_timing()


if __name__ == "__main__":
    main()
