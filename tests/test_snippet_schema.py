"""The snippet's generated constants, its committed build and its size budget."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from cemreplay.schema import js_constants

SNIPPET = Path(__file__).resolve().parent.parent / "js-snippet"
DIST = SNIPPET / "dist" / "cemreplay.min.js"
#: What a page downloads: the built snippet, minified and gzipped (level 9), in bytes.
SIZE_BUDGET = 5 * 1024


def test_generated_constants_match_schema() -> None:
    committed = (SNIPPET / "src" / "schema.gen.js").read_text(encoding="utf-8")
    assert committed == js_constants(), (
        "js-snippet/src/schema.gen.js differs from cemreplay.schema; regenerate it with "
        "`python -m cemreplay.schema --js > js-snippet/src/schema.gen.js` and rebuild"
    )


def test_dist_within_size_budget() -> None:
    size = len(gzip.compress(DIST.read_bytes(), compresslevel=9))
    assert size <= SIZE_BUDGET, f"cemreplay.min.js is {size} bytes min+gzip, budget {SIZE_BUDGET}"


def test_dist_exposes_the_api_and_no_module_syntax() -> None:
    code = DIST.read_text(encoding="utf-8")
    assert code.startswith("(()=>{") and "cemreplay=" in code
    for name in (
        "init",
        "track",
        "formError",
        "flush",
        "sessionId",
        "visitorId",
        "optOut",
        "optIn",
    ):
        assert f"{name}:" in code, name
    assert "import " not in code and "export " not in code


@pytest.mark.skipif(
    not (SNIPPET / "node_modules" / "esbuild").is_dir() or shutil.which("node") is None,
    reason="js-snippet/node_modules missing: run `npm ci` in js-snippet",
)
def test_dist_is_a_fresh_build() -> None:
    result = subprocess.run(
        ["node", "scripts/build.mjs", "--check"],
        cwd=SNIPPET,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
