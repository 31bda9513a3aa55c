"""The same sweep on the local process pool and on a local Ray cluster; Ray's cost per job.

Printed:

- wall time of one grid (``--seeds`` × ``--lrs`` tiny MLP runs on 2-D moons, ``--epochs``)
  through ``nnviz.backends.sweep.run_sweep`` on ``LocalPool(jobs)`` and on ``RayBackend`` over
  ``ray.init(num_cpus=jobs)``: cold (workers start and import torch) and warm (second grid,
  fresh runs folder), rounds interleaved pool / Ray so machine load hits both alike;
- Ray's per-job overhead: an empty task's round trip (ms, median of 50), and one tiny job
  submitted alone on each warm backend (median of ``--tiny`` jobs) against the same job
  trained in this process: the extra ms per job of the pool and of Ray;
- Ray's idle cost: its processes and their RSS right after ``ray.init`` (before any task), and
  the size of the installed ``ray`` package.

    python benchmarks/bench_ray.py [--jobs 2] [--seeds 4] [--lrs 2] [--epochs 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import ray  # noqa: E402

from nnviz.backends.local import LocalPool  # noqa: E402
from nnviz.backends.ray import RayBackend  # noqa: E402
from nnviz.backends.sweep import grid, run_sweep  # noqa: E402
from nnviz.config import RunConfig  # noqa: E402
from nnviz.store.runs import RunStore  # noqa: E402

TINY = dict(model="mlp", dataset="moons", n_samples=400, batch_size=50, depth=2, width=16)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def du_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def sweep_seconds(backend, points, base: Path) -> float:
    root = Path(tempfile.mkdtemp(dir=base))
    start = time.perf_counter()
    rows = run_sweep(points, RunStore(root), backend, reuse=False)
    seconds = time.perf_counter() - start
    bad = [r for r in rows if r.action != "trained"]
    assert not bad, [(r.action, r.detail) for r in bad]
    return seconds


def one_job_ms(backend, cfg: RunConfig, root: Path) -> float:
    start = time.perf_counter()
    future = backend.submit("bench", cfg.to_dict(), str(root))
    result = backend.result(future)
    while backend.next_event(0.0) is not None:  # drain its progress events
        pass
    assert result["ok"], result
    return (time.perf_counter() - start) * 1000


def in_process_ms(cfg: RunConfig, root: Path) -> float:
    from nnviz.engine.training import train

    start = time.perf_counter()
    train(cfg, RunStore(root))
    return (time.perf_counter() - start) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="pool workers = Ray CPUs")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--lrs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="warm grids per backend")
    ap.add_argument("--tiny", type=int, default=5, help="single tiny jobs per backend")
    args = ap.parse_args()
    base = RunConfig.from_dict({**TINY, "epochs": args.epochs})
    lrs = [10 ** (-1 - i) for i in range(args.lrs)]
    points = grid(base, {"lr": lrs, "seed": list(range(args.seeds))})
    work = Path(tempfile.mkdtemp(prefix="nnviz-bench-ray-"))
    print(f"grid: {len(points)} runs ({args.seeds} seeds x {args.lrs} lrs, {args.epochs} "
          f"epoch(s), mlp on moons); {args.jobs} at once; load {os.getloadavg()[0]:.1f}")

    before = set(descendants(os.getpid()))
    start = time.perf_counter()
    ray.init(num_cpus=args.jobs, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=tempfile.mkdtemp(prefix="ray-", dir="/tmp"), log_to_driver=False)
    init_s = time.perf_counter() - start
    time.sleep(2.0)  # let its services settle
    services = [p for p in descendants(os.getpid()) if p not in before]
    idle = sum(rss_mb(p) for p in services)
    print(f"ray.init: {init_s:.1f} s; idle services: {len(services)} processes, "
          f"{idle:.0f} MB RSS; installed ray: {du_mb(Path(ray.__file__).parent):.0f} MB")
    by_name: dict[str, list[float]] = {}
    for pid in services:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        by_name.setdefault(name, []).append(rss_mb(pid))
    print("  " + ", ".join(f"{name} x{len(v)} {sum(v):.0f} MB" for name, v in
                           sorted(by_name.items(), key=lambda kv: -sum(kv[1]))))

    pool, remote = LocalPool(args.jobs, 1), RayBackend()
    try:
        cold = {"pool": sweep_seconds(pool, points, work),
                "ray": sweep_seconds(remote, points, work)}
        warm: dict[str, list[float]] = {"pool": [], "ray": []}
        for _ in range(args.rounds):
            warm["pool"].append(sweep_seconds(pool, points, work))
            warm["ray"].append(sweep_seconds(remote, points, work))
        for name in ("pool", "ray"):
            print(f"  {name:4s} sweep: cold {cold[name]:6.1f} s, warm median "
                  f"{statistics.median(warm[name]):6.1f} s")
        print(f"  ray / pool (warm): "
              f"{statistics.median(warm['ray']) / statistics.median(warm['pool']):.2f}x")

        noop = ray.remote(lambda: None)
        ray.get(noop.remote())
        trips = []
        for _ in range(50):
            t = time.perf_counter()
            ray.get(noop.remote())
            trips.append((time.perf_counter() - t) * 1000)
        print(f"  empty Ray task round trip: median {statistics.median(trips):.2f} ms")

        tiny = base.replace(epochs=1, n_samples=64, seed=99)
        local_ms, pool_ms, ray_ms = [], [], []
        for _ in range(args.tiny):  # interleaved
            local_ms.append(in_process_ms(tiny, Path(tempfile.mkdtemp(dir=work))))
            pool_ms.append(one_job_ms(pool, tiny, Path(tempfile.mkdtemp(dir=work))))
            ray_ms.append(one_job_ms(remote, tiny, Path(tempfile.mkdtemp(dir=work))))
        here, p, r = (statistics.median(x) for x in (local_ms, pool_ms, ray_ms))
        print(f"  one tiny job: in process {here:.0f} ms, pool {p:.0f} ms (+{p - here:.0f}), "
              f"ray {r:.0f} ms (+{r - here:.0f}); Ray's overhead over the pool: "
              f"{r - p:+.0f} ms per job")
    finally:
        pool.shutdown(10.0)
        remote.shutdown(10.0)
        ray.shutdown()


if __name__ == "__main__":
    main()
