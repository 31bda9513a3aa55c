"""Recording at scale: snapshot cost and size for 4 model sizes, and recording on vs off.

Part 1 (per model, from the 41 k-parameter SimpleCNN to a ~10 M-parameter MLP): milliseconds
per snapshot (``Recorder.capture`` on the training thread, then ``Recorder.compute``:
statistics, histograms, the probe pass; median of ``--repeats`` after a warm-up) and bytes per
snapshot file (safetensors, as the run store writes it) against the fp32 size of the parameters.
Target: a snapshot of 10 M parameters in <= 200 ms on CPU. The snapshot runs on one thread,
so its CPU time (process_time) is what it takes on an idle core; on a shared machine the wall
time is longer by the wait for a core.

Part 2: nnviz's trainer with recording on against the same trainer with recording off
(interleaved rounds in one process, medians) at each size, on 10,000 training examples, in
wall time (the target: <= 1.05) and in CPU time (all threads of the process; steadier than
wall time on a shared machine, and it counts the background snapshot thread's work).

Both parts run on ``--threads`` torch threads (1, like every deterministic nnviz run on CPU).
The machine's load is printed with the figures.

    python benchmarks/bench_recording.py [--repeats 5] [--rounds 3] [--epochs 2] [--threads 1]
        [--skip-training]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from nnviz.config import RunConfig  # noqa: E402
from nnviz.engine.initializers import theories  # noqa: E402
from nnviz.engine.recorder import Recorder, describe_params  # noqa: E402
from nnviz.engine.training import init_params, prepare, train  # noqa: E402
from nnviz.store.runs import RunStore  # noqa: E402
from nnviz.store.snapshots import encode_snapshot  # noqa: E402

MODELS = {
    # label: config fields (shapes32: 32x32 RGB images, 10 classes)
    "SimpleCNN": dict(model="simple_cnn"),
    "MLP 3x256": dict(model="mlp", depth=3, width=256),
    "MLP 3x768": dict(model="mlp", depth=3, width=768),
    "MLP 3x1536": dict(model="mlp", depth=3, width=1536),
}


def snapshot_cost(fields: dict, repeats: int) -> dict[str, float]:
    """ms per capture and per compute, bytes per snapshot file, fp32 bytes of the parameters."""
    cfg = RunConfig.from_dict({**fields, "dataset": "shapes32", "n_samples": 400,
                               "device": "cpu"})
    data, model, _loss, activation = prepare(cfg)
    rec = Recorder(model, data.x_val[: cfg.probe_size], 0)
    rec.set_edges(describe_params(model, theories(model, init_params(cfg), activation)))
    out = model(data.x_train[:64])
    torch.nn.functional.cross_entropy(out, data.y_train[:64]).backward()
    rec.after_backward()  # a snapshot with gradient statistics, as in training
    rec.snapshot(0.0, 0)  # warm-up
    capture, compute, cpu = [], [], []
    tensors, stats = {}, {}
    for _ in range(repeats):
        rec.after_backward()
        rec.before_step()
        rec.after_step()
        t0 = time.perf_counter()
        moment = rec.capture(1.0, 1)
        t1 = time.perf_counter()
        c1 = time.process_time()
        tensors, stats = rec.compute(moment)
        cpu.append(time.process_time() - c1)
        t2 = time.perf_counter()
        capture.append(t1 - t0)
        compute.append(t2 - t1)
    numel = sum(p.numel() for p in model.parameters())
    return {
        "numel": numel,
        "capture_ms": statistics.median(capture) * 1e3,
        "compute_ms": statistics.median(compute) * 1e3,
        "cpu_ms": statistics.median(cpu) * 1e3,
        "bytes": len(encode_snapshot(tensors, stats)),
        "fp32": 4 * numel,
    }


def recording_ratio(fields: dict, rounds: int, epochs: int, root: Path
                    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(wall, CPU) seconds of interleaved recorded and unrecorded runs on 10,000 training
    examples (CPU: process_time, every thread of the process)."""
    cfg = RunConfig.from_dict({**fields, "dataset": "shapes32", "n_samples": 12500,
                               "epochs": epochs, "device": "cpu"})
    store = RunStore(root)
    train(cfg.replace(epochs=1, n_samples=400), store)  # warm-up
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(rounds):
        for record in ((True, False) if r % 2 == 0 else (False, True)):
            t0, c0 = time.perf_counter(), time.process_time()
            train(cfg, store, record=record)
            times[record].append((time.perf_counter() - t0, time.process_time() - c0))
    return times[True], times[False]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{args.threads} torch thread(s), load {load} on {os.cpu_count()} cores")
    print()
    print("| model | parameters | capture ms | snapshot ms (compute, wall) | its CPU ms | "
          "bytes per snapshot | fp32 bytes | bytes / fp32 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, fields in MODELS.items():
        c = snapshot_cost(fields, args.repeats)
        print(f"| {label} | {c['numel']:,} | {c['capture_ms']:.1f} | {c['compute_ms']:.0f} | "
              f"{c['cpu_ms']:.0f} | {c['bytes']:,} | {c['fp32']:,} | "
              f"{c['bytes'] / c['fp32']:.2f} |", flush=True)
    if args.skip_training:
        return
    print()
    print(f"recording on / off, nnviz's trainer, 10,000 train, {args.epochs} epochs, "
          f"{args.rounds} interleaved rounds (target <= 1.05)")
    print()
    print("| model | on (s, median) | off (s, median) | ratio (wall) | ratio (CPU) | all on "
          "(wall/CPU) | all off (wall/CPU) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="nnviz-bench-") as tmp:
        for label, fields in MODELS.items():
            on, off = recording_ratio(fields, args.rounds, args.epochs, Path(tmp))
            a, b = statistics.median(t[0] for t in on), statistics.median(t[0] for t in off)
            ca = statistics.median(t[1] for t in on)
            cb = statistics.median(t[1] for t in off)
            print(f"| {label} | {a:.2f} | {b:.2f} | {a / b:.3f} | {ca / cb:.3f} | "
                  f"{', '.join(f'{w:.2f}/{c:.2f}' for w, c in on)} | "
                  f"{', '.join(f'{w:.2f}/{c:.2f}' for w, c in off)} |", flush=True)
    print(f"\nload after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
