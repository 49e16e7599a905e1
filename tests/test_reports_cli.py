"""`cemreplay report`: the HTML report, its replays and table exports from a store; errors;
an interrupted run leaves no half-written file; the report's page in headless chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cemreplay import reports, synth, wire
from cemreplay.cli import main
from cemreplay.reports import html as report_html
from cemreplay.store import open_store
from tests.browser_support import MARKS, launch


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("report") / "s.db"
    with open_store(db) as st:
        st.put_batches(wire.encode(synth.generate(800, seed=9).events), scrub=False)
        st.analyze()
    return db


@pytest.fixture(scope="module")
def written(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    code = main(
        ["report", "--db", str(store), "-o", str(out / "r.html"), "--tables-dir",
         str(out / "t"), "--format", "csv,parquet", "--format", "json", "--replays", "5",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    return out


def test_report_writes_html_replays_and_tables(written: Path, store: Path) -> None:
    page = (written / "r.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') >= 6
    links = re.findall(r'href="(r_replays/([0-9A-Z]+)\.html)"', page)
    assert len({sid for _, sid in links}) == 5
    for href, _ in links:
        assert (written / href).exists()
    with open_store(store, create=False) as st:
        facts = reports.from_store(st)
    worst = reports.worst_sessions(facts, 20)
    assert links[0][1] == worst["session_id"][0]  # the worst session is linked first
    for name in ("struggle_by_page", "forms", "funnel_drops", "traffic_by_hour"):
        pq = pl.read_parquet(written / "t" / f"{name}.parquet")
        csv = pl.read_csv(written / "t" / f"{name}.csv")
        js = pl.read_json(written / "t" / f"{name}.json")
        assert pq.height == csv.height == js.height > 0
    assert pl.read_parquet(written / "t" / "forms.parquet").equals(reports.forms(facts))
    assert not list(written.rglob("*.tmp"))


def test_report_filters_and_replay_base(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "no.html"
    code = main(
        ["report", "--db", str(store), "-o", str(out), "--where", "country=NO", "--replay-base",
         "http://127.0.0.1:8000/sessions/", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    page = out.read_text(encoding="utf-8")
    assert 'href="http://127.0.0.1:8000/sessions/' in page
    assert not (tmp_path / "no_replays").exists()


def test_report_errors(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(tmp_path / "none.db"), "-o", str(tmp_path / "x.html")]) == 2
    assert "no store at" in capsys.readouterr().err
    fresh = tmp_path / "fresh.db"
    with open_store(fresh) as st:
        st.put_batches(wire.encode(synth.generate(5, seed=1).events), scrub=False)
    assert main(["report", "--db", str(fresh), "-o", str(tmp_path / "x.html")]) == 2
    assert "not analyzed" in capsys.readouterr().err
    assert main(["report", "--db", str(store), "-o", str(tmp_path / "x.html"), "--where",
                 "colour=red", "--no-progress"]) == 2  # fmt: skip
    assert "cannot filter on 'colour'" in capsys.readouterr().err
    assert main(["report", "--db", str(store), "-o", str(tmp_path / "x.html"), "--tables-dir",
                 str(tmp_path / "t"), "--format", "xml", "--no-progress"]) == 2  # fmt: skip
    assert "unknown table format(s) ['xml']" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
    assert not (tmp_path / "x.html").exists()


def test_interrupted_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "r.html"

    def interrupted(path: Path) -> None:
        path.write_text("half", encoding="utf-8")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        report_html.write_atomic(target, interrupted)
    assert list(tmp_path.iterdir()) == []
    target.write_text("old", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        report_html.write_atomic(target, interrupted)
    assert target.read_text(encoding="utf-8") == "old"  # the old report stays whole
    assert list(tmp_path.iterdir()) == [target]


def test_table_html_escapes_data() -> None:
    df = pl.DataFrame({"element": ["<img src=x onerror=alert(1)>"], "watch": ["A<B"]})
    out = report_html.table_html(df, lambda sid: None, "t")
    assert "<img" not in out and "&lt;img" in out and "A&lt;B" in out


# -- in the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as b:
        yield b


def _browser_test(fn: Any) -> Any:
    for mark in MARKS:  # browser mark and the skips when chromium or playwright is missing
        fn = mark(fn)
    return fn


@_browser_test
def test_report_renders_offline_in_chromium(
    browser: Any, written: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    requests: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
               else (requests.append(r.request.url), r.abort()))  # fmt: skip
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:"))
            else requests.append(r.url))  # fmt: skip
    page.goto((written / "r.html").as_uri())
    sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.naturalWidth, e.complete])")
    assert len(sizes) >= 6 and all(w > 100 and ok for w, ok in sizes)
    assert page.locator("h1").inner_text() == "cemreplay report"
    assert page.locator("table").count() >= 10
    shot = tmp_path_factory.mktemp("shot") / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    # a worst session's link opens its replay (a file beside the report)
    page.locator("a[href^='r_replays/']").first.click()
    page.wait_for_selector("#findings li")
    assert requests == []
    page.close()


def test_ctrl_c_exits_130_and_leaves_no_partial_file(store: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "r.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cemreplay.cli", "report", "--db", str(store), "-o", str(out),
         "--tables-dir", str(tmp_path / "t"), "--replays", "200"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = ""
    while "sessions" not in seen and time.monotonic() < deadline:  # the first progress bar
        seen += proc.stderr.read(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    if out.exists():  # it finished writing before the signal: then it is whole
        assert out.read_text(encoding="utf-8").rstrip().endswith("</html>")
