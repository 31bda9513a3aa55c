"""Run ``streamlit run app.py ...`` with every script run profiled: where the server's CPU goes.

Each script run (a whole page, or one fragment's rerun) is timed with ``time.thread_time`` (the
CPU of its script thread alone) under a key "page [fragment]", and profiled with cProfile. When the
server exits (``bench_load.py --profile`` stops it with SIGTERM) it writes to ``$NNVIZ_PROFILE``:

- ``runs.json``: per key, the number of runs and their CPU seconds; and the server process's
  total CPU seconds, so what is left over is Streamlit's own event loop, the job listener and
  the garbage collector;
- ``scripts.pstats``: the merged cProfile of every script run (read it with ``pstats``);
- ``main.pstats``: the main thread's, where Streamlit's event loop sends every message.

Only the server process is profiled; the training workers are other processes.

With ``$NNVIZ_MEMPROBE`` set to a folder (``bench_load.py --memprobe DIR``) the server is not
profiled; instead each SIGUSR1 writes ``probe-N.json`` there: what the process holds at that
moment, so a class's leftovers can be found by diffing two probes (``memprobe_diff``):

- glibc's ``mallinfo2`` (bytes malloc has in use, bytes free inside its heaps but not handed
  back to the OS, mmapped bytes) and the number of threads (each may get its own arena);
- the live Python objects per type (``gc``; frozen start-up objects counted apart);
- Streamlit's sessions, its st.cache_* sizes (``stats_mgr``), its media files, and nnviz's run
  cache;
- with ``$NNVIZ_MEMPROBE_TRACE=1``, a ``tracemalloc`` snapshot (``probe-N.tracemalloc``: where
  the live Python memory was allocated; tracing slows the server and adds its own memory).

    NNVIZ_PROFILE=/tmp/prof python benchmarks/profile_server.py --server.port=8530
    NNVIZ_MEMPROBE=/tmp/mem python benchmarks/profile_server.py --server.port=8530
"""

from __future__ import annotations

import atexit
import cProfile
import ctypes
import json
import os
import pstats
import signal
import sys
import threading
import time
from pathlib import Path

OUT = Path(os.environ.get("NNVIZ_MEMPROBE") or os.environ.get("NNVIZ_PROFILE") or "nnviz-profile")
APP_DIR = Path(__file__).resolve().parent.parent

_lock = threading.Lock()
_cpu: dict[str, list[float]] = {}   # key -> [runs, CPU seconds]
_stats: list[pstats.Stats | None] = [None]


def _key(rerun_data: object) -> str:
    page = getattr(rerun_data, "page_script_hash", "") or ""
    name = _PAGES.get(page, page[:8] or "entry")
    if getattr(rerun_data, "fragment_id_queue", None):
        auto = " auto" if getattr(rerun_data, "is_auto_rerun", False) else ""
        return f"{name} [fragment{auto}]"
    return name


_PAGES: dict[str, str] = {}
_MAIN = cProfile.Profile(time.thread_time)  # the main thread: Streamlit's event loop


def _patch() -> None:
    from streamlit.runtime.scriptrunner import script_runner as sr

    original = sr.ScriptRunner._run_script

    def run_one(self, rerun_data):  # type: ignore[no-untyped-def]
        try:
            from streamlit.runtime.pages_manager import PagesManager  # noqa: F401

            pages = self._pages_manager.get_pages()
            _PAGES.update({h: Path(p.get("script_path", "")).stem or h[:8]
                           for h, p in pages.items()})
        except Exception:  # noqa: BLE001 - names are a nicety
            pass
        key = _key(rerun_data)
        profile = cProfile.Profile(time.thread_time)  # CPU, not waits for the GIL
        start = time.thread_time()
        profile.enable()
        try:
            return original(self, rerun_data)
        finally:
            profile.disable()
            spent = time.thread_time() - start
            with _lock:
                entry = _cpu.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += spent
                if _stats[0] is None:
                    _stats[0] = pstats.Stats(profile)
                else:
                    _stats[0].add(profile)

    sr.ScriptRunner._run_script = run_one


def _dump() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with _lock:
        total = time.process_time()
        (OUT / "runs.json").write_text(json.dumps(
            {"process_cpu_s": total, "scripts": {k: {"runs": v[0], "cpu_s": v[1]}
                                                 for k, v in sorted(_cpu.items())}}, indent=1))
        if _stats[0] is not None:
            _stats[0].dump_stats(str(OUT / "scripts.pstats"))
        _MAIN.disable()
        _MAIN.dump_stats(str(OUT / "main.pstats"))


# --- memory probe ---------------------------------------------------------------------------

_PROBES = [0]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def mallinfo() -> dict[str, int]:
    """glibc's heap figures for the whole process (all arenas), in bytes; {} without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return {}
    info = libc.mallinfo2()
    return {"heap": info.arena, "in_use": info.uordblks, "free_in_heap": info.fordblks,
            "mmapped": info.hblkhd, "top_releasable": info.keepcost,
            "arenas": _arenas(libc)}


def _arenas(libc: ctypes.CDLL) -> list[dict[str, int]]:
    """Per malloc arena: bytes it has from the OS and bytes free in it (``malloc_info``)."""
    import re
    import tempfile

    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        fp = libc.fopen(f.name.encode(), b"w")
        if not fp:
            return []
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        xml = Path(f.name).read_text()
    out = []
    for block in re.findall(r'<heap nr="\d+">(.*?)</heap>', xml, re.S):
        free = re.search(r'<total type="rest" count="\d+" size="(\d+)"/>', block)
        current = re.search(r'<system type="current" size="(\d+)"/>', block)
        out.append({"system": int(current.group(1)) if current else 0,
                    "free": int(free.group(1)) if free else 0})
    return out


def pymalloc() -> dict[str, int]:
    """Python's small-object allocator (``sys._debugmallocstats``): its arenas now, and the
    bytes in blocks in use / free inside them (a half-empty arena cannot be returned)."""
    import re
    import tempfile

    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as f:
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()

    def number(label: str) -> int:
        found = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
        return int(found.group(1).replace(",", "")) if found else 0

    return {"arenas": number("# arenas allocated current"),
            "in_use": number("# bytes in allocated blocks"),
            "free": number("# bytes in available blocks"),
            "arena_bytes": number("# arenas allocated current") * 2**20}


def anon_regions(pid: int | str = "self") -> dict[str, int]:
    """Resident anonymous memory of a process by kind of mapping, in bytes: the brk heap
    (glibc's main arena), thread arenas (glibc's 64 MiB-aligned heaps: a mapping inside a
    64 MiB window whose first mapping starts on its boundary), and the other anonymous
    mappings (Python's 1 MiB arenas, buffers over malloc's mmap threshold, thread stacks)."""
    maps: list[tuple[int, str, int]] = []  # (start, name, anonymous bytes)
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                fields = line.split()
                maps.append((int(first.split("-")[0], 16),
                             fields[5] if len(fields) > 5 else "", 0))
            elif first == "Anonymous:" and maps:
                start, name, _ = maps[-1]
                maps[-1] = (start, name, int(line.split()[1]) * 1024)
    window = 64 << 20
    heaps = {start for start, name, _ in maps if not name and start % window == 0}
    out = {"brk heap": 0, "thread arenas": 0, "other anonymous": 0}
    for start, name, anonymous in maps:
        if name == "[heap]":
            out["brk heap"] += anonymous
        elif not name:
            kind = "thread arenas" if start - start % window in heaps else "other anonymous"
            out[kind] += anonymous
    return out


def _streamlit_figures() -> dict[str, object]:
    from streamlit.runtime import Runtime

    out: dict[str, object] = {}
    if not Runtime.exists():
        return out
    runtime = Runtime.instance()
    sessions = runtime._session_mgr.list_sessions()  # noqa: SLF001 - no public API
    out["sessions"] = len(sessions)
    out["sessions_active"] = len(runtime._session_mgr.list_active_sessions())  # noqa: SLF001
    caches: dict[str, int] = {}
    for family, stats in runtime.stats_mgr.get_stats().items():
        for stat in stats:
            name = getattr(stat, "category_name", family)
            key = f"{name}:{getattr(stat, 'cache_name', '')}"
            caches[key] = caches.get(key, 0) + int(getattr(stat, "byte_length", 0) or 0)
    out["caches_bytes"] = dict(sorted(caches.items(), key=lambda kv: -kv[1]))
    storage = getattr(runtime.media_file_mgr, "_storage", None)
    files = getattr(storage, "_files_by_id", {}) or {}
    out["media_files"] = len(files)
    out["media_bytes"] = sum(len(getattr(f, "content", b"") or b"") for f in files.values())
    ui_state = sys.modules.get("ui.state")
    if ui_state is not None:
        out["run_cache"] = {"runs": len(ui_state.RUNS), "bytes": ui_state.RUNS.bytes}
    return out


def _probe(*_: object) -> None:
    import gc
    import tracemalloc
    from collections import Counter

    n = _PROBES[0]
    _PROBES[0] += 1
    OUT.mkdir(parents=True, exist_ok=True)
    gc.collect()
    types_ = Counter(type(o).__name__ for o in gc.get_objects())
    with open("/proc/self/status") as f:
        status = {k: v.strip() for k, _, v in (line.partition(":") for line in f)}
    data = {"probe": n, "time": time.time(), "rss_kb": status.get("VmRSS"),
            "threads": int(status.get("Threads", 0)), "malloc": mallinfo(),
            "pymalloc": pymalloc(), "anon": anon_regions(),
            "gc_objects": sum(types_.values()), "gc_frozen": gc.get_freeze_count(),
            "types": dict(types_.most_common())}
    try:
        data["streamlit"] = _streamlit_figures()
    except Exception as exc:  # noqa: BLE001 - a probe must never stop the server
        data["streamlit"] = {"error": repr(exc)}
    if os.environ.get("NNVIZ_MEMPROBE_WHO"):
        gc.unfreeze()  # referrers among frozen objects are invisible to gc; a diagnosis only
    for name in filter(None, os.environ.get("NNVIZ_MEMPROBE_WHO", "").split(",")):
        data.setdefault("holders", {})[name] = _holders(name)
        data.setdefault("referrers", {})[name] = _referrer_tree(name)
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(OUT / f"probe-{n}.tracemalloc"))
        data["traced_bytes"] = tracemalloc.get_traced_memory()[0]
    (OUT / f"probe-{n}.json").write_text(json.dumps(data, indent=1, default=str))


def _holders(type_name: str, depth: int = 14) -> list[str]:
    """What keeps a live object of this type alive: one chain of referrers, innermost first
    (for leaks: which object of the server still points at a closed session's objects)."""
    import gc

    start = next((o for o in gc.get_objects() if type(o).__name__ == type_name), None)
    if start is None:
        return []
    chain, seen, current = [], {id(start)}, start
    frame = type(sys._getframe())
    for _ in range(depth):
        refs = gc.get_referrers(current)
        seen.add(id(refs))  # this list itself refers to current
        refs = [r for r in refs if id(r) not in seen and not isinstance(r, frame)]
        if not refs:
            break
        current = next((r for r in refs if not isinstance(r, (list, tuple))), refs[0])
        seen.add(id(current))
        text = type(current).__name__
        if isinstance(current, dict):
            text += "{" + ", ".join(map(str, list(current)[:6])) + "}"
        elif hasattr(current, "__qualname__"):
            text += " " + str(current.__qualname__)
        chain.append(text)
    return chain


def _referrer_tree(type_name: str, levels: int = 3) -> dict[str, int]:
    """For every live object of this type: its referrers' types, their referrers' types, ...
    (paths joined with ' <- '), counted."""
    import gc
    from collections import Counter

    frame = type(sys._getframe())
    starts = [o for o in gc.get_objects() if type(o).__name__ == type_name]
    ignore = {id(starts)}
    paths: Counter[str] = Counter()

    def describe(o: object) -> str:
        name = type(o).__name__
        if isinstance(o, types_mod.MethodType):
            return f"method {o.__func__.__qualname__}"
        if isinstance(o, types_mod.FunctionType):
            return f"function {o.__qualname__}"
        if isinstance(o, types_mod.CoroutineType):
            return f"coroutine {o.__qualname__}"
        if isinstance(o, dict):
            return "dict{" + ",".join(str(k)[:20] for k in list(o)[:3]) + "}"
        return name

    import types as types_mod

    def walk(o: object, path: str, depth: int) -> None:
        refs = gc.get_referrers(o)
        ignore.add(id(refs))
        refs = [r for r in refs if id(r) not in ignore and not isinstance(r, frame)]
        if depth == 0 or not refs:
            paths[path] += 1
            return
        for r in refs[:6]:
            walk(r, f"{path} <- {describe(r)}", depth - 1)

    for o in starts[:40]:
        walk(o, type_name, levels)
    return dict(paths.most_common(25))


def memprobe_diff(before: dict, after: dict, top: int = 12) -> str:
    """What grew from one probe to the next: malloc figures, object counts, caches."""
    lines = []
    mb = 2**20
    for key in ("heap", "in_use", "free_in_heap", "mmapped"):
        a, b = before["malloc"].get(key, 0), after["malloc"].get(key, 0)
        lines.append(f"    malloc {key:13s} {a / mb:7.1f} -> {b / mb:7.1f} MB")
    arenas = [(a["system"] / mb, a["free"] / mb) for a in after["malloc"].get("arenas", [])]
    lines.append(f"    malloc arenas {len(before['malloc'].get('arenas', []))} -> {len(arenas)}: "
                 + ", ".join(f"{system:.0f} MB ({free:.0f} free)" for system, free in arenas))
    for key in ("arenas", "in_use", "free"):
        a, b = before["pymalloc"].get(key, 0), after["pymalloc"].get(key, 0)
        unit, scale = ("", 1) if key == "arenas" else (" MB", mb)
        lines.append(f"    pymalloc {key:11s} {a / scale:7.1f} -> {b / scale:7.1f}{unit}")
    for key, b in after["anon"].items():
        a = before["anon"].get(key, 0)
        lines.append(f"    resident {key:16s} {a / mb:7.1f} -> {b / mb:7.1f} MB")
    lines.append(f"    threads {before['threads']} -> {after['threads']}; gc objects "
                 f"{before['gc_objects']} -> {after['gc_objects']}")
    grown = sorted(((after["types"].get(t, 0) - before["types"].get(t, 0), t)
                    for t in after["types"]), reverse=True)[:top]
    lines.append("    objects grown: " + ", ".join(f"{t} +{d}" for d, t in grown if d > 0))
    for key in ("sessions", "sessions_active", "media_files", "media_bytes", "run_cache"):
        lines.append(f"    {key}: {before['streamlit'].get(key)} -> "
                     f"{after['streamlit'].get(key)}")
    caches = after["streamlit"].get("caches_bytes", {})
    lines.append("    st caches (bytes): " + ", ".join(
        f"{k} {before['streamlit'].get('caches_bytes', {}).get(k, 0)} -> {v}"
        for k, v in list(caches.items())[:top]))
    return "\n".join(lines)


def main() -> None:
    os.chdir(APP_DIR)
    sys.path.insert(0, str(APP_DIR))
    if os.environ.get("NNVIZ_MEMPROBE"):
        if os.environ.get("NNVIZ_MEMPROBE_TRACE") == "1":
            import tracemalloc

            tracemalloc.start(12)
        signal.signal(signal.SIGUSR1, _probe)
    else:
        _patch()
        atexit.register(_dump)  # Streamlit stops cleanly on SIGTERM, so exit hooks run
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    if not os.environ.get("NNVIZ_MEMPROBE"):
        _MAIN.enable()
    cli.main()


if __name__ == "__main__":
    main()
