"""A class on one server: N real Streamlit sessions of the real app, over its websocket protocol.

Starts ``streamlit run app.py`` on 127.0.0.1 with a fresh runs folder, then:

1. idle: one session opens Home (the server imports torch, the training worker starts) and
   leaves; once Streamlit has dropped it, the server and worker memory is the idle figure;
2. open: N sessions open one lesson link (Explore with the lesson's settings in the URL) at
   once, and each waits until its epoch player is on the page (the link trains once: the
   first session's job, the others join it);
3. load: two more sessions open links that train two other (longer) runs, and while those
   train, every class session scrubs the player (the value a drag sends when released) and
   switches pages (Home, Train, Runs, back to its Explore link), with a short think time;
4. close: every session leaves; after Streamlit's disconnected-session TTL the memory is the
   after-close figure.

Printed: trainings started for the lesson link and for each training link (each must be 1);
sessions that failed (an exception on the page, or a request whose script had not finished
after ``--timeout`` seconds: a real failure, never a short wait of the harness); p50/p95 of
request -> script-finished for the requests sent while a training ran (and per kind); the
slowest requests; the server's CPU per request; server + worker RSS (from /proc) idle / peak /
after close (the trainings finish first), with ``uptime`` (the machine is shared), and per
process its RSS, PSS, USS and where its anonymous memory lies (glibc's brk heap, thread arenas,
other mappings). Idle and after close count the same processes: the server, its one warm
training worker (started by the first session; at idle it has imported torch and trained
nothing) and multiprocessing's resource tracker; the worker does not exit in between (its idle
exit, ``NNVIZ_IDLE_EXIT_S``, is 600 s). ``--memprobe DIR`` also asks the server what it holds
at idle, at the load's end and after close (``profile_server.py``; for diagnosis: the probe
runs garbage collections of its own). Sessions
answer fragment timers as the browser does (``stclient``). ``--profile DIR`` runs the server
under ``profile_server.py`` and prints where its CPU went. Localhost only; every loop is bounded.

    python benchmarks/bench_load.py --sessions 30 --port 8660
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
APP_DIR = HERE.parent
sys.path[:0] = [str(HERE), str(APP_DIR)]

from profile_server import anon_regions  # noqa: E402
from stclient import Session  # noqa: E402

from nnviz.config import RunConfig, config_hash  # noqa: E402
from nnviz.presets import PRESETS  # noqa: E402
from ui.services.urlstate import config_to_query  # noqa: E402

PLAYER = "epoch_player"


# --- the server and its memory -----------------------------------------------------------


def start_server(port: int, runs: Path, env_extra: dict[str, str], ttl: int,
                 profile: Path | None = None, memprobe: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "NNVIZ_RUNS_DIR": str(runs), **env_extra}
    launcher = ["-m", "streamlit", "run", "app.py"]
    if profile is not None:  # every script run timed and profiled (benchmarks/profile_server.py)
        env["NNVIZ_PROFILE"] = str(profile)
        launcher = [str(HERE / "profile_server.py")]
    elif memprobe is not None:  # SIGUSR1 writes what the server holds (profile_server.py)
        env["NNVIZ_MEMPROBE"] = str(memprobe)
        launcher = [str(HERE / "profile_server.py")]
    cmd = [sys.executable, *launcher, f"--server.port={port}",
           "--server.address=127.0.0.1", "--server.headless=true",
           f"--server.disconnectedSessionTTL={ttl}", "--browser.gatherUsageStats=false",
           "--server.fileWatcherType=none"]  # an edit meanwhile must not re-import the app
    proc = subprocess.Popen(cmd, cwd=APP_DIR, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(runs.parent / "server.log", "wb"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the server stopped; see {runs.parent / 'server.log'}") from None
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not answer its health check in 120 s")


def tree_pids(root: int) -> list[int]:
    """The process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def server_rss_mb(pid: int) -> float:
    """RSS in MB of the server process alone (its workers are the rest of the tree)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return 0.0


def rss_mb(root: int) -> tuple[float, int]:
    """(RSS in MB of the server and its descendants, number of processes)."""
    total, n = 0, 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        n += 1
                        break
        except OSError:
            continue
    return total / 1024, n


def role(pid: int, root: int) -> str:
    """What a process of the server's tree is: the server, a training worker, or a helper."""
    if pid == root:
        return "server"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "resource_tracker" in cmd:
        return "resource tracker"
    if "multiprocessing" in cmd or "spawn_main" in cmd:
        return "worker"
    return cmd[:40]


def smaps(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) and anonymous memory of one process, in MB
    (``/proc/PID/smaps_rollup``); empty when it is gone."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if rest.strip().endswith("kB"):
                    out[name] = int(rest.split()[0]) / 1024
    except (OSError, ValueError):
        return {}
    figures = {"rss": out.get("Rss", 0.0), "pss": out.get("Pss", 0.0),
               "uss": out.get("Private_Clean", 0.0) + out.get("Private_Dirty", 0.0),
               "anon": out.get("Anonymous", 0.0)}
    try:  # where the anonymous memory lies: malloc's heaps, or other mappings
        figures.update({k: v / 2**20 for k, v in anon_regions(pid).items()})
    except (OSError, ValueError):
        pass
    return figures


def breakdown(root: int) -> list[tuple[int, str, dict[str, float]]]:
    """(pid, role, smaps figures) for every process of the server's tree now."""
    rows = []
    for pid in tree_pids(root):
        figures = smaps(pid)
        if figures:
            rows.append((pid, role(pid, root), figures))
    return rows


def format_breakdown(rows: list[tuple[int, str, dict[str, float]]]) -> str:
    parts = [f"{name} {pid}: RSS {m['rss']:.0f} PSS {m['pss']:.0f} USS {m['uss']:.0f} "
             f"anon {m['anon']:.0f} (brk heap {m.get('brk heap', 0):.0f}, thread arenas "
             f"{m.get('thread arenas', 0):.0f}, other {m.get('other anonymous', 0):.0f})"
             for pid, name, m in rows]
    total = {k: sum(m[k] for _, _, m in rows) for k in ("rss", "pss", "uss")}
    return ("; ".join(parts) + f" | total RSS {total['rss']:.0f} PSS {total['pss']:.0f} "
            f"USS {total['uss']:.0f} MB")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (from /proc; 0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> tuple[float, float]:
    """(CPU seconds of the server process, of its descendants now alive: the workers)."""
    return cpu_seconds(root), sum(cpu_seconds(p) for p in tree_pids(root) if p != root)


class PeakSampler(threading.Thread):
    """Samples the server tree's RSS every 0.25 s; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.peak_procs, self.stop = pid, 0.0, 0, threading.Event()
        self.peak_rows: list[tuple[int, str, dict[str, float]]] = []

    def run(self) -> None:
        while not self.stop.wait(0.25):
            mb, n = rss_mb(self.pid)
            if mb > self.peak:
                self.peak, self.peak_procs = mb, n
                self.peak_rows = breakdown(self.pid)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def settle(pid: int, seconds: float, label: str, most: float = 180.0) -> float:
    """Wait ``seconds``, then until the tree's RSS holds still (five samples a second apart
    within 1%: a niced worker on a busy machine may still be importing; at most ``most``
    seconds more); their median."""
    time.sleep(max(0.0, seconds - 5))
    samples: list[float] = []
    deadline = time.monotonic() + most
    while True:
        samples = [*samples[-4:], rss_mb(pid)[0]]
        if len(samples) == 5 and max(samples) - min(samples) <= 0.01 * max(samples) \
                or time.monotonic() > deadline:
            break
        time.sleep(1)
    mb = statistics.median(samples)
    print(f"  memory {label}: {mb:.0f} MB ({rss_mb(pid)[1]} processes; the server alone "
          f"{server_rss_mb(pid):.0f} MB) | {uptime()}", flush=True)
    print(f"    per process (MB): {format_breakdown(breakdown(pid))}", flush=True)
    return mb


class TrainingWatch(threading.Thread):
    """Reads the runs' statuses every 0.5 s: when trainings ran, and how many at once."""

    def __init__(self, runs: Path) -> None:
        super().__init__(daemon=True)
        self.runs, self.stop = runs, threading.Event()
        self.samples: list[tuple[float, int]] = []  # (monotonic time, runs "running")
        self.most = 0

    def running(self) -> int:
        n = 0
        for meta in self.runs.glob("*/run.json"):
            try:
                n += json.loads(meta.read_text()).get("status") == "running"
            except (OSError, ValueError):
                n += 1  # being written: a training
        return n

    def run(self) -> None:
        while not self.stop.wait(0.5):
            n = self.running()
            self.samples.append((time.monotonic(), n))
            self.most = max(self.most, n)

    def training_at(self, when: float) -> bool:
        """True when the last sample at or before ``when`` saw a training."""
        before = [n for t, n in self.samples if t <= when]
        return bool(before and before[-1])

    def share(self, start: float, end: float) -> float:
        inside = [n for t, n in self.samples if start <= t <= end]
        return sum(1 for n in inside if n) / max(1, len(inside))

    def wait_done(self, digests: list[str], timeout: float) -> None:
        """Until a finished run exists for each of these config hashes (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = set()
            for meta in self.runs.glob("*/run.json"):
                try:
                    data = json.loads(meta.read_text())
                except (OSError, ValueError):
                    continue
                if data.get("status") not in (None, "running"):
                    done.add(data.get("config_hash"))
            if set(digests) <= done:
                return
            time.sleep(1)


# --- sessions ----------------------------------------------------------------------------


def link(cfg: RunConfig) -> str:
    return urlencode(config_to_query(cfg))


async def open_link(s: Session, query: str, timeout: float) -> float:
    """Open Explore with a link; seconds until its player is on the page."""
    start = time.perf_counter()
    await s.connect()
    await s.rerun("open", page="Explore", query=query, timeout=timeout)
    await s.wait_for_component(PLAYER, timeout)
    return time.perf_counter() - start


async def scrub(s: Session, rng: random.Random, timeout: float) -> None:
    player = s.components.get(PLAYER)
    if player is None:
        await s.wait_for_component(PLAYER, timeout)
        player = s.components[PLAYER]
    args = player["args"]
    # Like the browser's player: a payload crosses the wire once per key and is kept; later
    # reruns send only its key (payload ""), so remember each key's snapshot count.
    known = s.__dict__.setdefault("payload_sizes", {})
    if args.get("payload"):
        known[args.get("payload_key")] = len(json.loads(args["payload"]).get("snapshots", []))
    n = known.get(args.get("payload_key")) or 1
    s.scrub_seq = getattr(s, "scrub_seq", 0) + 1
    value = {"index": rng.randrange(n), "seq": s.scrub_seq, "key": args.get("payload_key")}
    # the player sits in a fragment: like the browser, rerun only that fragment
    await s.rerun("scrub", widgets={player["id"]: value}, fragment_id=player["fragment_id"],
                  timeout=timeout)


async def browse(s: Session, explore_query: str, actions: int, rng: random.Random,
                 think: tuple[float, float], timeout: float) -> None:
    """One student: scrub, scrub, another page, back to the link, ... (bounded). A request
    whose script has not finished after ``timeout`` seconds fails the session."""
    pattern = ["scrub", "scrub", "page", "scrub", "page", "scrub"]
    for i in range(actions):
        await asyncio.sleep(rng.uniform(*think))
        step = pattern[i % len(pattern)]
        if step == "scrub":
            await scrub(s, rng, timeout)
        else:
            await s.rerun("page", page=rng.choice(["Home", "Train", "Runs"]), timeout=timeout)
            await asyncio.sleep(rng.uniform(*think))
            s.widget_states.clear()  # a new page: the player's old value is gone
            await s.rerun("page", page="Explore", query=explore_query, timeout=timeout)
            await s.wait_for_component(PLAYER, timeout)


def percentiles(values: list[float]) -> str:
    if not values:
        return "n=0"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return (f"n={len(values)} p50 {statistics.median(ordered):.3f} s, p95 {p95:.3f} s, "
            f"max {ordered[-1]:.3f} s")


async def run_class(args: argparse.Namespace, base: str, runs: Path, pid: int) -> dict:
    rng = random.Random(args.seed)
    lesson = PRESETS[args.lesson].config()
    query = link(lesson)
    results: dict = {}

    # 1. idle
    first = Session(base, "warm-up")
    await first.connect()
    await first.rerun("open", page="", query="", timeout=180)
    await first.close()
    await asyncio.sleep(3)
    results["idle"] = await asyncio.to_thread(settle, pid, args.ttl + 10, "idle (warm)")
    results["idle_rows"] = breakdown(pid)
    await probe(args, pid, "idle")

    sampler = PeakSampler(pid)
    sampler.start()

    # 2. the class opens one lesson link at once
    print(f"open: {args.sessions} sessions open the {args.lesson!r} lesson link | {uptime()}",
          flush=True)
    students = [Session(base, f"student-{i}") for i in range(args.sessions)]
    outcomes = await asyncio.gather(*(open_link(s, query, args.timeout) for s in students),
                                    return_exceptions=True)
    failed = {s.name: repr(o) for s, o in zip(students, outcomes, strict=True)
              if isinstance(o, BaseException)}
    opened = [o for o in outcomes if not isinstance(o, BaseException)]
    print(f"  link -> player on the page: {percentiles(opened)}", flush=True)

    # 3. two trainings, and the class browses meanwhile
    trainers = [Session(base, f"trainer-{i}") for i in range(args.trainings)]
    for s, cfg in zip(trainers, trainer_configs(args), strict=True):
        await s.connect()
        await s.rerun("open", page="Explore", query=link(cfg), timeout=args.timeout)
    print(f"load: {args.trainings} trainings submitted; each session does {args.actions} actions | "
          f"{uptime()}", flush=True)
    watch = TrainingWatch(runs)
    watch.start()
    cpu0 = tree_cpu(pid)
    t0 = time.monotonic()
    for s in students:
        s.timings.clear()
    live = [s for s in students if s.name not in failed]
    outcomes = await asyncio.gather(
        *(browse(s, query, args.actions, random.Random(rng.random()),
                 (args.think_min, args.think_max), args.timeout)
          for s in live), return_exceptions=True)
    phase = time.monotonic() - t0
    cpu1 = tree_cpu(pid)
    results["server_cpu_s"] = cpu1[0] - cpu0[0]
    results["worker_cpu_s"] = cpu1[1] - cpu0[1]
    # the trainings finish before everyone leaves: the after-close figure is the idle server
    await asyncio.to_thread(watch.wait_done, [config_hash(c) for c in trainer_configs(args)],
                            args.timeout)
    watch.stop.set()
    for s, o in zip(live, outcomes, strict=True):
        if isinstance(o, BaseException):
            failed[s.name] = repr(o)
    for s in students:
        if s.exceptions:
            failed.setdefault(s.name, "exception on the page: " + s.exceptions[0])
    statuses = [json.loads((runs / r / "run.json").read_text()).get("status")
                for r in os.listdir(runs) if (runs / r / "run.json").is_file()]
    results["training_statuses_after_load"] = statuses
    timings = [t for s in live for t in s.timings]
    by_kind: dict[str, list[float]] = {}
    for t in timings:
        by_kind.setdefault(t.kind, []).append(t.seconds)
    results["phase_s"] = phase
    results["timings"] = {k: sorted(v) for k, v in by_kind.items()}
    results["interaction"] = by_kind.get("scrub", []) + by_kind.get("page", [])
    results["while_training"] = [t.seconds for t in timings if t.kind in ("scrub", "page")
                                 and watch.training_at(t.started)]
    results["training_share"] = watch.share(t0, t0 + phase)
    results["most_running"] = watch.most
    results["slowest"] = sorted(((t.seconds, t.started - t0, t.kind, t.page, s.name)
                                 for s in live for t in s.timings), reverse=True)[:8]
    results["fragment_runs"] = sum(s.fragment_runs for s in students + trainers)
    print(f"  load phase {phase:.0f} s; run statuses at its end: {statuses}", flush=True)

    await probe(args, pid, "load end")

    # 4. everybody leaves
    for s in students + trainers:
        await s.close()
    sampler.stop.set()
    results["peak"], results["peak_procs"] = sampler.peak, sampler.peak_procs
    results["peak_rows"] = sampler.peak_rows
    results["failed"] = failed
    results["after_close"] = await asyncio.to_thread(settle, pid, args.ttl + 15, "after close")
    results["after_rows"] = breakdown(pid)
    await probe(args, pid, "after close")
    return results


async def probe(args: argparse.Namespace, pid: int, label: str) -> None:
    """With --memprobe: ask the server what it holds now (SIGUSR1, profile_server.py)."""
    if args.memprobe is None:
        return
    n = len(args.probes)
    args.probes.append(label)
    os.kill(pid, signal.SIGUSR1)
    target = args.memprobe / f"probe-{n}.json"
    for _ in range(240):  # the probe runs a full gc pass: seconds with torch loaded
        if target.is_file():
            return
        await asyncio.sleep(0.5)
    print(f"  (no memory probe from the server for {label!r})")


def trainer_configs(args: argparse.Namespace) -> list[RunConfig]:
    """The runs the trainer sessions' links train (longer than the lesson)."""
    return [RunConfig.from_dict({**PRESETS["tutorial_cnn"].overrides,
                                 "epochs": args.train_epochs, "seed": 1000 + i})
            for i in range(args.trainings)]


def print_tracebacks(log: Path, most: int = 2) -> None:
    """The server's first tracebacks (what a failed session's exception was)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")][:most]
    for i in starts:
        end = next((j for j in range(i + 1, len(lines)) if lines[j] and not
                    lines[j].startswith((" ", "Traceback"))), len(lines) - 1)
        print("\n".join(lines[i:end + 1][-25:]))


def count_trainings(runs: Path, cfg: RunConfig) -> int:
    digest = config_hash(cfg)
    n = 0
    for name in os.listdir(runs):
        meta = runs / name / "run.json"
        if meta.is_file() and json.loads(meta.read_text()).get("config_hash") == digest:
            n += 1
    return n


def print_memprobes(folder: Path, labels: list[str]) -> None:
    """What the server held at each probe, and what grew between them."""
    from profile_server import memprobe_diff

    probes = []
    for n in range(len(labels)):
        try:
            probes.append(json.loads((folder / f"probe-{n}.json").read_text()))
        except (OSError, ValueError):
            probes.append(None)
    for n in range(1, len(labels)):
        if probes[0] is not None and probes[n] is not None:
            print(f"\n=== server, {labels[0]} -> {labels[n]} ===")
            print(memprobe_diff(probes[0], probes[n]))


def print_profile(folder: Path, top: int = 25) -> None:
    """Where the server's CPU went (written by profile_server.py when the server stopped)."""
    import pstats

    try:
        data = json.loads((folder / "runs.json").read_text())
    except (OSError, ValueError):
        print(f"no profile in {folder} (see the server log)")
        return
    total = data["process_cpu_s"]
    in_scripts = sum(v["cpu_s"] for v in data["scripts"].values())
    print(f"\n=== server CPU: {total:.1f} s; script runs {in_scripts:.1f} s "
          f"({in_scripts / max(total, 1e-9):.0%}), the rest (event loop, job listener, GC) "
          f"{total - in_scripts:.1f} s ===")
    for key, v in sorted(data["scripts"].items(), key=lambda kv: -kv[1]["cpu_s"]):
        print(f"  {key:32s} {v['runs']:5d} runs {v['cpu_s']:7.1f} s CPU "
              f"({1000 * v['cpu_s'] / max(1, v['runs']):.0f} ms each)")
    if (folder / "scripts.pstats").is_file():
        stats = pstats.Stats(str(folder / "scripts.pstats"))
        stats.sort_stats("cumulative").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--port", type=int, default=8660)
    parser.add_argument("--lesson", default="symmetry", choices=list(PRESETS))
    parser.add_argument("--actions", type=int, default=6, help="actions per session (bounded)")
    parser.add_argument("--think-min", type=float, default=2.0,
                        help="seconds a student looks before the next action (at least)")
    parser.add_argument("--think-max", type=float, default=6.0)
    parser.add_argument("--train-epochs", type=int, default=12,
                        help="epochs of each of the two background trainings")
    parser.add_argument("--trainings", type=int, default=2,
                        help="trainings started before the class browses")
    parser.add_argument("--max-jobs", type=int, default=None, help="NNVIZ_MAX_JOBS for the app")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the server (e.g. MALLOC_ARENA_MAX=2)")
    parser.add_argument("--ttl", type=int, default=15,
                        help="server.disconnectedSessionTTL: seconds a closed session is kept")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary runs folder")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="profile the server's script runs into DIR (profile_server.py)")
    parser.add_argument("--memprobe", type=Path, default=None, metavar="DIR",
                        help="probe what the server holds at idle, load end and after close "
                        "into DIR (profile_server.py; not with --profile)")
    args = parser.parse_args()
    args.probes = []

    work = Path(tempfile.mkdtemp(prefix="nnviz-bench-load-"))
    runs = work / "runs"
    runs.mkdir()
    env = {"NNVIZ_MAX_JOBS": str(args.max_jobs)} if args.max_jobs else {}
    env.update(item.split("=", 1) for item in args.env if "=" in item)
    print(f"server: 127.0.0.1:{args.port}, runs in {runs}, {env or 'default worker count'}, "
          f"session TTL {args.ttl} s | {uptime()}", flush=True)
    proc = start_server(args.port, runs, env, args.ttl, args.profile, args.memprobe)
    try:
        time.sleep(2)
        cold, _ = rss_mb(proc.pid)
        print(f"  memory cold (no session yet): {cold:.0f} MB", flush=True)
        results = asyncio.run(run_class(args, f"http://127.0.0.1:{args.port}", runs, proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    lesson_runs = count_trainings(runs, PRESETS[args.lesson].config())
    trainer_runs = [count_trainings(runs, cfg) for cfg in trainer_configs(args)]
    print("\n=== results ===")
    print(f"sessions: {args.sessions} on one lesson link ({args.lesson}); "
          f"{args.actions} actions each")
    print(f"trainings started for the link: {lesson_runs} (for the {args.trainings} training "
          f"links: {trainer_runs})")
    print(f"sessions failed: {len(results['failed'])} (an exception on the page, or a request "
          f"unfinished after {args.timeout:.0f} s)")
    for name, why in list(results["failed"].items())[:5]:
        print(f"  {name}: {why[:300]}")
    if results["failed"]:
        print_tracebacks(work / "server.log")
    print(f"request -> script finished while a training ran (scrub + page switch): "
          f"{percentiles(results['while_training'])}")
    print(f"  all requests of the load phase: {percentiles(results['interaction'])}; a "
          f"training ran {results['training_share']:.0%} of the phase, at most "
          f"{results['most_running']} at once ({args.trainings} submitted)")
    for kind, values in results["timings"].items():
        print(f"  {kind:6s}: {percentiles(values)}")
    print("  slowest: " + "; ".join(f"{kind} {page or '?'} {sec:.1f} s at +{at:.0f} s ({who})"
                                    for sec, at, kind, page, who in results["slowest"]))
    print(f"fragment timer reruns sent (browser polling): {results['fragment_runs']}")
    n_requests = max(1, len(results["interaction"]))
    server, phase = results["server_cpu_s"], results["phase_s"]
    print(f"CPU in the load phase ({phase:.0f} s): server {server:.1f} s "
          f"({server / max(phase, 1e-9):.0%} of one core; {1000 * server / n_requests:.0f} ms "
          f"per request, timers included), training workers {results['worker_cpu_s']:.1f} s")
    print(f"memory (server + workers RSS): idle {results['idle']:.0f} MB, peak "
          f"{results['peak']:.0f} MB ({results['peak_procs']} processes), after close "
          f"{results['after_close']:.0f} MB = {results['after_close'] / results['idle']:.2f}x "
          "idle")
    for label, key in (("idle", "idle_rows"), ("peak", "peak_rows"),
                       ("after close", "after_rows")):
        print(f"  {label}: {format_breakdown(results[key])}")
    print(f"uptime at the end: {uptime()}")
    if args.profile is not None:
        print_profile(args.profile)
    if args.memprobe is not None:
        print_memprobes(args.memprobe, args.probes)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not results["failed"] and lesson_runs == 1 and set(trainer_runs) == {1} else 1


if __name__ == "__main__":
    raise SystemExit(main())
