"""Every registered subcommand and each of its options is documented in docs/cli.md (the
sqlite-utils rule: a command nobody can read about does not exist)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from cemreplay.cli import build_parser

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## `cemreplay ([a-z-]+)`\s*$", text, flags=re.M)
    return {parts[k]: parts[k + 1] for k in range(1, len(parts), 2)}


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_and_option_is_documented(name):
    sections = _sections()
    assert name in sections, f"docs/cli.md has no '## `cemreplay {name}`' section"
    body = sections[name]
    sub = _subcommands()[name]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            longest = max(action.option_strings, key=len)
            assert f"`{longest}" in body or f"{longest} " in body, (
                f"docs/cli.md: `cemreplay {name}` does not document {longest}"
            )
        else:
            metavar = action.metavar or action.dest
            assert f"`{metavar}`" in body, (
                f"docs/cli.md: `cemreplay {name}` does not document {metavar}"
            )


def test_the_doc_has_no_section_for_a_command_that_does_not_exist():
    assert set(_sections()) <= set(_subcommands())
