"""Every script in examples/ runs from start to finish on generated data and prints an answer
that matches what was planted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
#: The answer each example must print, as a regular expression (what the generator plants).
EXPECT = {
    "norwegian_spring_promo.py": r"filled (\d+) carts and abandoned (\d+) \(\d+%, 95 % CI",
    "support_call_field.py": r"The field is phone of form#shipping\.[\s\S]*Enter a valid US "
    r"phone number",
    "three_clicks.py": r"^No: \d+% .* reached /confirmation did it within 3 clicks",
    "rage_after_release.py": r"button\.(add-to-cart|size-option|load-more|filter-toggle) on ",
    "support_hours.py": r"80 % of the sessions start between \d\d:00 and \d\d:00 \(Europe/Oslo\)",
}


def test_every_example_has_an_expectation() -> None:
    assert {p.name for p in EXAMPLES} == set(EXPECT)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_answers(script: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--sessions", "3000"]
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    m = re.search(EXPECT[script.name], out, flags=re.M)
    assert m, out
    if script.name == "norwegian_spring_promo.py":
        carts, abandoned = int(m.group(1)), int(m.group(2))
        assert 0 < abandoned <= carts
