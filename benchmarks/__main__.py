"""`python -m benchmarks STAGE [options]`: run a benchmark stage, print a table and JSON.

Stages: wire, detect, e2e, scale, outofcore (``all``: every stage, in that order).
``--quick`` runs a small version that fails only when a benchmark is broken (an exception or a
wrong result), never on timing. ``--json FILE`` also writes the JSON there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from benchmarks import detect, e2e, outofcore, scale, wire

STAGES = {"wire": wire, "detect": detect, "e2e": e2e, "scale": scale, "outofcore": outofcore}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True)
    for name, mod in STAGES.items():
        p = sub.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0])
        p.add_argument("--quick", action="store_true", help="small and fast, for CI")
        p.add_argument("--json", metavar="FILE", help="also write the JSON here")
        mod.add_arguments(p)
    p = sub.add_parser("all", help="every stage with its defaults (use with --quick)")
    p.add_argument("--quick", action="store_true", help="small and fast, for CI")
    p.add_argument("--json", metavar="FILE", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.stage == "all":
        result: dict[str, Any] = {}
        cores = os.sched_getaffinity(0)
        for name, mod in STAGES.items():
            os.sched_setaffinity(0, cores)  # a stage may pin itself (wire: one core)
            one = argparse.Namespace(quick=args.quick, json=None)
            defaults = argparse.ArgumentParser()
            mod.add_arguments(defaults)
            vars(one).update(vars(defaults.parse_args([])))
            t0 = time.perf_counter()
            result[name] = mod.main(one)
            result[name]["harness_seconds"] = round(time.perf_counter() - t0, 1)
            print(mod.table(result[name]), flush=True)
    else:
        mod = STAGES[args.stage]
        result = mod.main(args)
        print(mod.table(result))
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
