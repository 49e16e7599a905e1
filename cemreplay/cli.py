"""The ``cemreplay`` command: one subcommand per public function, nothing more.

Each subcommand parses its arguments, calls one public function and turns a
``CemReplayError`` into exit code 2 with its message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cemreplay.errors import CemReplayError

Handler = Callable[[argparse.Namespace], int]


def _demo(args: argparse.Namespace) -> int:
    from cemreplay.demo import run_demo

    return run_demo(sessions=args.sessions, seed=args.seed, out=sys.stdout)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="generate a synthetic shop's traffic and run the pipeline on it",
        description="Generate seeded synthetic traffic, encode it to wire batches as the snippet "
        "would, decode it, and summarise what cemreplay finds.",
    )
    p.add_argument(
        "--sessions", type=int, default=2_000, help="sessions to generate (default 2000)"
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.set_defaults(handler=_demo)


# Subcommand registrars, in the order `--help` lists them. Add yours here.
# cli-registrars:start
REGISTRARS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_demo,
]
# cli-registrars:end


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cemreplay",
        description="Session replay and struggle detection. See `cemreplay COMMAND --help`.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in REGISTRARS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CemReplayError as exc:
        print(f"cemreplay {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cemreplay {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
