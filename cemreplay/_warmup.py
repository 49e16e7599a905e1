"""Compile every numba kernel ahead of use, on two cores.

numba compiles a kernel on its first call and keeps it in its cache (``cache=True``), so only
the first run after an install (or a change to the kernels) pays: a minute or two. Compiled
one by one as the program reaches them, the generator's kernel (:mod:`cemreplay._synth_kernel`)
takes about as long as all the others together; here it compiles in a process of its own
while this process compiles the rest (decoder, sessions, detectors, pipeline) on three
sessions the generator made with the JIT off (a second), so neither waits for the other.

Used by ``cemreplay demo`` on its first run and by ``./scripts/test`` before the tests (so
that the test workers load the kernels from the cache instead of each compiling them).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cemreplay._jit import DISABLED
from cemreplay.errors import CemReplayError

_GENERATE = "from cemreplay import synth; synth.generate(sessions=3, seed=1)"
_TINY = (
    "import sys; from cemreplay import synth; "
    "synth.generate(sessions=3, seed=1).events.write_parquet(sys.argv[1])"
)
#: The modules whose kernels the first run compiles (their cache index files tell whether it
#: is one)
_MODULES = ("_synth_kernel", "wire/_kernels", "detectors/_kernels")
#: The longest the generator's kernel may take to compile (minutes on the slowest machine)
TIMEOUT_S = 1_200


@dataclass(frozen=True)
class Compiled:
    """How long compiling took: all of it, and all but the generator's kernel."""

    seconds: float
    rest_seconds: float


def _cache_dirs(source_dir: Path) -> list[Path]:
    """Where numba keeps the cache of the kernels in ``source_dir``: under
    ``NUMBA_CACHE_DIR`` when set, else beside the source (``__pycache__``) or, when that is
    not writable, in the user's cache directory (numba's ``caching`` locators)."""
    sub = f"{source_dir.name}_{hashlib.sha1(str(source_dir).encode()).hexdigest()}"
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    if user_dir:
        return [Path(user_dir).resolve() / sub]
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return [source_dir / "__pycache__", Path(xdg) / "numba" / sub]


def kernels_cached() -> bool:
    """Whether numba's cache already holds this install's kernels (their index files are
    where numba looks for them). Not whether they are current: numba checks that itself and
    compiles again when a kernel's source changed."""
    if DISABLED:
        return True
    root = Path(__file__).resolve().parent
    for mod in _MODULES:
        where = root / mod
        if not any(
            any(d.glob(f"{where.name}.*.nbi")) for d in _cache_dirs(where.parent) if d.is_dir()
        ):
            return False
    return True


def compile_kernels() -> Compiled:
    """Compile (or load from the cache) every kernel: the generator's in a child process,
    the rest here. Raises :class:`~cemreplay.errors.CemReplayError` when the child fails."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cemreplay-warm-") as tmp:
        tiny = Path(tmp) / "events.parquet"
        subprocess.run(
            [sys.executable, "-c", _TINY, str(tiny)],
            env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
            check=True,
            timeout=TIMEOUT_S,
        )
        generator = subprocess.Popen([sys.executable, "-c", _GENERATE])
        try:
            import polars as pl

            from cemreplay import wire
            from cemreplay.pipeline import _warm, plan_chunks

            batches = wire.encode(pl.read_parquet(tiny))
            _warm(batches)
            plan_chunks(batches, 1_000)
            rest = time.perf_counter() - t0
            rc = generator.wait(timeout=TIMEOUT_S)
        finally:
            if generator.poll() is None:
                generator.kill()
                generator.wait(timeout=10)
    if rc != 0:
        raise CemReplayError(f"compiling the generator's kernel failed (exit {rc})")
    return Compiled(time.perf_counter() - t0, rest)
