"""Compile every numba kernel once before the tests, on two cores, so that the test workers
load them from numba's cache instead of each compiling the same kernels at once (see
:mod:`cemreplay._warmup`)."""

from __future__ import annotations

import sys

from cemreplay._warmup import compile_kernels


def main() -> int:
    done = compile_kernels()
    print(
        f"kernels ready in {done.seconds:.1f} s (all but the generator's in "
        f"{done.rest_seconds:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
