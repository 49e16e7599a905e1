"""Compile every numba kernel once before the tests, on two cores, so that the test workers
load them from numba's cache instead of each compiling the same kernels at once.

On a fresh clone compiling takes a minute or two, the generator's kernel
(``cemreplay._synth_kernel``) about as long as all the others together. That one compiles in
a process of its own while this process compiles the rest (decoder, sessions, detectors,
pipeline) on three sessions the generator made with the JIT off (a second), so neither
waits for the other.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENERATE = "from cemreplay import synth; synth.generate(sessions=3, seed=1)"
TINY = (
    "import sys; from cemreplay import synth; "
    "synth.generate(sessions=3, seed=1).events.write_parquet(sys.argv[1])"
)


def main() -> int:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "events.parquet"
        subprocess.run(
            [sys.executable, "-c", TINY, str(tiny)],
            env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
            check=True,
        )
        generator = subprocess.Popen([sys.executable, "-c", GENERATE])
        try:
            import polars as pl

            from cemreplay import wire
            from cemreplay.pipeline import _warm, plan_chunks

            batches = wire.encode(pl.read_parquet(tiny))
            _warm(batches)
            plan_chunks(batches, 1_000)
            rest = time.perf_counter() - t0
        finally:
            # bounded: the generator's kernel compiles in a few minutes on the slowest machine
            rc = generator.wait(timeout=1_200)
    if rc != 0:
        print(f"compiling the generator's kernel failed (exit {rc})", file=sys.stderr)
        return 1
    total = time.perf_counter() - t0
    print(f"kernels ready in {total:.1f} s (all but the generator's in {rest:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
