"""Fuzz the zip import: N mutated copies of a valid exported run, each imported into a fresh
runs folder; prints how many were refused, accepted, and broke a promise.

    python benchmarks/fuzz_import.py --cases 10000 [--seed 0] [--workers 2] [--figures-every 10]

After an accepted import every data-level view builder runs; the player's plotly figures (a few
seconds per run) are built for one accepted case in ``--figures-every`` (1 = all; the
Hypothesis test in the suite builds them for every case). Each worker prints a progress line
every 500 cases.

A promise is broken by an exception outside nnviz.errors (from the import or, after an accepted
import, from list / show / the Explore view builders) or a staging folder left behind. Mutations
and checks: ``tests/fixtures/hostile.py``. Exit status 1 if any promise broke.
"""

from __future__ import annotations

import argparse
import collections
import random
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnviz.config import RunConfig  # noqa: E402
from nnviz.engine.training import train  # noqa: E402
from nnviz.store.runs import RunStore  # noqa: E402
from tests.fixtures.hostile import check_case, members, mutate  # noqa: E402

TINY = dict(model="mlp", dataset="moons", n_samples=120, batch_size=32, epochs=2, depth=1,
            width=4)


def good_members() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        return members(store.export_zip(train(RunConfig.from_dict(TINY), store).run_id))


def run_cases(args: tuple[dict[str, bytes], int, int, int]) -> tuple[collections.Counter, list]:
    files, first, count, figures_every = args
    counts: collections.Counter = collections.Counter()
    failures = []
    root = Path(tempfile.mkdtemp(prefix="nnviz-fuzz-"))
    try:
        for seed in range(first, first + count):
            kind, data = mutate(random.Random(seed), files)
            store = RunStore(root / str(seed))
            figures = seed % figures_every == 0
            try:
                outcome = check_case(store, data, figures)
                counts[outcome] += 1
                counts[f"{kind}:{outcome}"] += 1
                if outcome == "accepted" and figures:
                    counts["accepted_with_figures"] += 1
            except BaseException as exc:  # noqa: BLE001 - every failure is counted
                counts["broken"] += 1
                failures.append((seed, kind, "".join(traceback.format_exception_only(exc))
                                 .strip()[:300]))
            shutil.rmtree(root / str(seed), ignore_errors=True)
            done = seed - first + 1
            if done % 500 == 0:
                print(f"[worker from {first}] {done} cases: {dict(counts)}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return counts, failures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--figures-every", type=int, default=10)
    args = p.parse_args()
    files = good_members()
    t0 = time.perf_counter()
    per = -(-args.cases // args.workers)
    jobs = [(files, args.seed + i * per, min(per, args.cases - i * per), args.figures_every)
            for i in range(args.workers) if args.cases - i * per > 0]
    total: collections.Counter = collections.Counter()
    failures = []
    with ProcessPoolExecutor(len(jobs)) as pool:
        for counts, fails in pool.map(run_cases, jobs):
            total.update(counts)
            failures.extend(fails)
    seconds = time.perf_counter() - t0
    print(f"{args.cases} cases in {seconds:.0f} s: {total['refused']} refused, "
          f"{total['accepted']} accepted ({total['accepted_with_figures']} with the player's "
          f"figures built), {total['broken']} broke a promise")
    for key in sorted(k for k in total if ":" in k):  # per kind of mutation
        print(f"  {key}: {total[key]}")
    for seed, kind, text in failures[:30]:
        print(f"BROKEN seed {seed} ({kind}): {text}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
