"""`python -m benchmarks STAGE [options]`: run a benchmark stage, print a table and JSON.

Stages: wire. ``--quick`` runs a small version that fails only when a benchmark is broken (an
exception or a wrong result), never on timing. ``--json FILE`` also writes the JSON there.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from benchmarks import wire

STAGES = {"wire": wire}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True)
    for name, mod in STAGES.items():
        p = sub.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0])
        p.add_argument("--quick", action="store_true", help="small and fast, for CI")
        p.add_argument("--json", metavar="FILE", help="also write the JSON here")
        mod.add_arguments(p)
    args = parser.parse_args(argv)
    mod = STAGES[args.stage]
    result: dict[str, Any] = mod.main(args)
    print(mod.table(result))
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
