"""Compiling the kernels ahead of use: which runs are first runs, and the demo's first run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cemreplay import _warmup
from cemreplay._warmup import Compiled, kernels_cached


def test_a_cache_without_the_kernels_index_files_is_a_first_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_warmup, "DISABLED", False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert not kernels_cached()
    root = Path(_warmup.__file__).resolve().parent
    wire, detectors = root / "wire", root / "detectors"
    for where, stem in ((root, "_synth_kernel"), (wire, "_kernels")):
        [d] = _warmup._cache_dirs(where)
        d.mkdir(parents=True)
        (d / f"{stem}._kernel-1350.py311.nbi").write_bytes(b"")
    # the detectors' module has the same name as the decoder's, in another folder
    assert not kernels_cached()
    [d] = _warmup._cache_dirs(detectors)
    d.mkdir(parents=True)
    (d / "_kernels.page_of-12.py311.nbi").write_bytes(b"")
    assert kernels_cached()


def test_numba_keeps_the_cache_where_it_is_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache directory is numba's own choice: ask numba's locator."""
    if _warmup.DISABLED:
        pytest.skip("the kernels run as Python")
    from numba.core.caching import UserProvidedCacheLocator

    from cemreplay.detectors import _kernels  # (before numba's setting changes: its caches)

    src = Path(_kernels.__file__).resolve()
    with monkeypatch.context() as m:
        m.setattr("numba.config.CACHE_DIR", str(tmp_path))
        loc = UserProvidedCacheLocator(_kernels.page_of.py_func, str(src))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert Path(loc.get_cache_path()) == _warmup._cache_dirs(src.parent)[0]


def test_the_installed_kernels_are_cached_after_a_run() -> None:
    """This test run has compiled them (scripts/test compiles them first)."""
    if _warmup.DISABLED:
        pytest.skip("the kernels run as Python")
    assert kernels_cached()


def test_the_demo_compiles_the_kernels_first_on_a_first_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cemreplay.demo as demo

    calls: list[str] = []

    def compile_kernels() -> Compiled:
        calls.append("compile")
        return Compiled(0.0, 0.0)

    monkeypatch.setattr(demo, "kernels_cached", lambda: False)
    monkeypatch.setattr(demo, "compile_kernels", compile_kernels)
    out = io.StringIO()
    assert demo.run_demo(sessions=5, seed=2, out=out, db=tmp_path / "d.db") == 0
    text = out.getvalue()
    assert calls == ["compile"]
    assert "first run since install" in text
    assert text.index("compile the kernels") < text.index("generate traffic")
