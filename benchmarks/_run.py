"""One end-to-end measurement in a fresh process, so that its peak memory is its own.

``python -m benchmarks._run SPEC_JSON`` loads a batch directory (``benchmarks._data.wire_dir``)
into memory as a list of ``bytes`` (what a service holding batches has), then times one of:

* ``stages``: the stages one after another over the whole table in this process
  (``wire.decode`` on ``spec["decode_threads"]`` threads, default ``workers``,
  ``journeys.sessions``, ``detect``, ``score``), each timed;
* ``process`` / ``thread`` / ``serial``: :func:`cemreplay.pipeline.run` with a warmed
  :class:`~cemreplay.pipeline.Pool` of that mode (exact baselines, each chunk decoded once);
  ``process-onepass``: processes, ``baselines="chunk"``; ``overlap`` (one process, small
  chunks on every thread) and ``overlap-onepass``; ``inmemory`` (one process, one chunk per
  thread);
* ``outofcore``: :func:`cemreplay.outofcore.run_dir` straight from the directory (nothing
  loaded first), results written as Parquet to ``spec["out"]``.

Memory: ``rss_base`` is this process's resident memory after imports and the pool's start
(the interpreter, polars, numba: paid once whatever the size), per worker too; the peaks are
each process's ``VmHWM`` and a sampled peak of the whole process tree's resident memory (every
20 ms), so ``peak_tree_bytes`` is what the run needed at once. Prints one JSON line.
``spec["mmap_threshold"]`` (bytes) runs the process with glibc's ``MALLOC_MMAP_THRESHOLD_``
set (see ``docs/pipeline.md``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl


def rss_of(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


class TreeSampler:
    """Samples the summed resident memory of this process and its children every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _pids(self) -> list[int]:
        me = os.getpid()
        try:
            kids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
        except OSError:
            kids = []
        return [me, *map(int, kids)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(rss_of(p) for p in self._pids()))
            self._stop.wait(0.02)

    def __enter__(self) -> TreeSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, sum(rss_of(p) for p in self._pids()))


def digest(found: pl.DataFrame, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Findings per kind and a content hash per kind (to compare runs across processes)."""
    out: dict[str, Any] = {}
    strings = found.with_columns(pl.col(pl.Categorical).cast(pl.String))
    for (kind,), part in strings.sort("kind").group_by("kind", maintain_order=True):
        if kind in skip:
            continue
        cols = [c for c in part.columns if part[c].dtype != pl.List]
        out[str(kind)] = [part.height, int(part.select(cols).hash_rows(seed=1).sum())]
    return out


def load(d: Path) -> list[bytes]:
    from cemreplay.outofcore import batch_files, read_file

    out: list[bytes] = []
    for f in batch_files(d):
        out.extend(bytes(b) for b in read_file(f))
    return out


def _clear_peak() -> None:
    """Reset this process's ``VmHWM`` (Linux: ``clear_refs`` 5), so each repetition's is its own."""
    with contextlib.suppress(OSError):  # not Linux, or not allowed: the peak of all runs
        Path("/proc/self/clear_refs").write_text("5")


def _once(
    spec: dict[str, Any], pool: Any, res: dict[str, Any], batches: list[bytes]
) -> tuple[float, Any, dict[str, float] | None]:
    """One timed run of ``spec["mode"]`` on ``batches`` (see the module docstring):
    (seconds, findings, the stages' seconds when the mode is ``stages``); what it learns
    (events, sessions, ...) goes into ``res``."""
    from cemreplay import detect, score, wire
    from cemreplay.journeys import sessions
    from cemreplay.outofcore import run_dir
    from cemreplay.pipeline import run

    mode = spec["mode"]
    d = Path(spec["dir"])
    baselines = "chunk" if mode.endswith("-onepass") else "exact"
    if mode == "outofcore":
        t0 = time.perf_counter()
        assert pool is not None
        r = run_dir(d, out=spec["out"], pool=pool, files_per_chunk=int(spec.get("files", 1)))
        secs = time.perf_counter() - t0
        res.update(events=r.events, chunks=r.chunks, exact=r.exact)
        res["rss_workers_peak"] = {str(k): v for k, v in r.peak_rss.items()}
        return secs, None, None
    times: dict[str, float] | None = None
    if mode == "stages":
        times = {}
        t0 = time.perf_counter()
        threads = int(spec.get("decode_threads", res["workers"]))
        res["decode_threads"] = threads
        ev = wire.decode(batches, threads=threads)
        times["decode"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        ses = sessions(ev)
        times["sessions"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        found = detect(ev)
        times["detect"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        sc = score(found)
        times["score"] = time.perf_counter() - t1
        secs = time.perf_counter() - t0
        res.update(events=ev.height, sessions=ses.height, scores=sc.height, exact=True)
        del ev, ses, sc
    else:
        assert pool is not None
        t0 = time.perf_counter()
        r = run(
            batches,
            pool=pool,
            chunk_bytes=int(spec.get("chunk_bytes", 0)) or None,
            baselines=baselines,
        )
        secs = time.perf_counter() - t0
        found = r.findings
        res.update(
            events=r.events,
            sessions=r.sessions.height,
            scores=r.scores.height,
            chunks=r.chunks,
            exact=r.exact,
        )
        res["rss_workers_peak"] = {str(k): v for k, v in r.peak_rss.items()}
        del r
    return secs, found, times


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` ``spec["repeat"]`` times (default 1) in this process and return what it
    measured. The first run is *cold*: every page it touches is new to the process (the
    kernel zeroes it, and on a machine whose memory is fragmented compacts memory for huge
    pages first), as in a one-shot job; the later ones are *warm*, as in a service that keeps
    running (a collector, a notebook). ``seconds`` and ``events_per_s`` are the best run
    (the least disturbed by the rest of the machine), ``seconds_cold`` the first; every run's
    seconds are in ``seconds_runs``. The memory peaks are the first run's (each run's, reset
    before it, in ``peak_tree_bytes_per_event_runs``)."""
    from cemreplay.pipeline import Pool

    mode = spec["mode"]
    workers = int(spec.get("workers", 2))
    repeat = max(1, int(spec.get("repeat", 1)))
    res: dict[str, Any] = {"mode": mode, "workers": workers, "repeat": repeat}
    pool = None
    kind = "process" if mode in ("outofcore", "process-onepass") else mode.split("-")[0]
    if mode not in ("stages",):
        pool = Pool(workers, mode=kind)
    else:  # load the numba caches outside the timing, as the pool's warm-up does
        from cemreplay.pipeline import _warm

        _warm()
    res["rss_base"] = rss_of(os.getpid())
    if pool is not None and pool.executor is not None and kind == "process":
        pids = list(getattr(pool.executor, "_processes", {}) or {})
        res["rss_base_workers"] = [rss_of(p) for p in pids]
    cpu0 = time.process_time()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    batches: list[bytes] = []
    if mode != "outofcore":
        batches = load(Path(spec["dir"]))
        res["input_bytes"] = sum(map(len, batches))
        res["rss_loaded"] = rss_of(os.getpid())
    runs: list[float] = []
    stage_runs: list[dict[str, float]] = []
    peaks: list[int] = []
    found = None
    for k in range(repeat):
        if k:
            del found
            _clear_peak()
            if pool is not None and kind == "process":
                pool.close()  # fresh workers: their peaks are each run's own
                pool = Pool(workers, mode=kind)
        with TreeSampler() as tree:
            secs, found, times = _once(spec, pool, res, batches)
        runs.append(secs)
        if times is not None:
            stage_runs.append(times)
        peaks.append(tree.peak)
        if k == 0:
            # This process's CPU time (every thread; not the workers') from loading to the
            # end of the first run: beside the wall time, what the run cost whatever else
            # the machine was doing; and how much of it was in the kernel, with the page
            # faults behind most of that (a cold process pays for every page it touches)
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            res["cpu_seconds_self"] = round(time.process_time() - cpu0, 3)
            res["sys_seconds_self"] = round(ru1.ru_stime - ru0.ru_stime, 3)
            res["minor_faults_self"] = ru1.ru_minflt - ru0.ru_minflt
            if found is not None:
                skip = () if res["exact"] else ("excessive_scroll", "quick_back")
                res["findings"] = found.height
                res["digest"] = digest(found, skip)
    del batches
    if pool is not None:
        pool.close()
    if stage_runs:
        best = stage_runs[min(range(len(runs)), key=runs.__getitem__)]
        res["stage_seconds"] = {k: round(v, 3) for k, v in best.items()}
        res["stage_seconds_cold"] = {k: round(v, 3) for k, v in stage_runs[0].items()}
    secs = min(runs)
    res["seconds"] = round(secs, 3)
    res["seconds_cold"] = round(runs[0], 3)
    res["seconds_runs"] = [round(x, 3) for x in runs]
    res["events_per_s"] = round(res["events"] / secs)
    res["events_per_s_cold"] = round(res["events"] / runs[0])
    res["peak_self"] = rss_of(os.getpid(), "VmHWM")
    # The first run's peak: what the run needed. A later run's also holds what the
    # allocators kept from the runs before (polars' jemalloc returns freed memory after
    # seconds), so it says more about them than about the run; all are listed.
    peak = peaks[0]
    res["peak_tree_bytes"] = peak
    res["peak_tree_bytes_per_event"] = round(peak / max(res["events"], 1), 1)
    res["peak_tree_bytes_per_event_runs"] = [round(p / max(res["events"], 1), 1) for p in peaks]
    if "rss_workers_peak" in res:
        total = sum(res["rss_workers_peak"].values())
        res["peak_sum_bytes_per_event"] = round(total / max(res["events"], 1), 1)
    base = res["rss_base"] + sum(res.get("rss_base_workers", []))
    res["rss_base_total"] = base
    res["peak_tree_net_bytes_per_event"] = round((peak - base) / max(res["events"], 1), 1)
    res["load_avg_1m"] = os.getloadavg()[0]
    return res


#: glibc's mmap threshold for the measured processes: 128 KiB, its own starting value, kept
#: fixed (``MALLOC_MMAP_THRESHOLD_``).
MMAP_THRESHOLD = 128 << 10


def add_mmap_argument(p: Any) -> None:
    """The ``--mmap-threshold`` option of the stages that spawn measured processes."""
    p.add_argument(
        "--mmap-threshold",
        type=int,
        default=MMAP_THRESHOLD,
        help="MALLOC_MMAP_THRESHOLD_ of the measured processes, bytes (0: glibc's default, "
        "a threshold that grows)",
    )


def add_repeat_argument(p: Any, default: int = 3) -> None:
    """The ``--repeat`` option of the stages that spawn measured processes."""
    p.add_argument(
        "--repeat",
        type=int,
        default=default,
        help="runs in each measured process: the first cold, the best reported (default "
        f"{default}; 1 with --quick)",
    )


def spawn(
    spec: dict[str, Any], timeout: float = 3_600, cap_bytes: int | None = None
) -> dict[str, Any]:
    """Run :func:`measure` in a fresh interpreter and return its JSON. ``cap_bytes`` limits
    the address space of that process and of each worker it starts (``RLIMIT_AS``)."""
    import subprocess

    def cap() -> None:
        if cap_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    env = dict(os.environ)
    if spec.get("mmap_threshold"):
        # glibc raises its mmap threshold after each large free, so freed chunk buffers stay
        # in the heap and the resident peak ratchets up; a fixed threshold returns them.
        env["MALLOC_MMAP_THRESHOLD_"] = str(int(spec["mmap_threshold"]))
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run(
        [sys.executable, "-m", "benchmarks._run", json.dumps(spec)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=root,
        preexec_fn=cap if cap_bytes else None,
    )
    if p.returncode != 0:
        raise RuntimeError(f"benchmark child {spec} failed:\n{p.stderr[-4000:]}")
    out: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
