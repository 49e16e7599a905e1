"""The HTML report: charts (matplotlib, inlined as PNG) and tables in one offline file, plus the
same tables as CSV/JSON/Parquet and a replay per session to watch.

:func:`render` turns the tables into one HTML document with no script and no network request
(a Content-Security-Policy of ``default-src 'none'`` that admits only inline style and
``data:`` images). :func:`write_report` writes it and its companions, each file through a
temporary name renamed into place, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from cemreplay.errors import CemReplayError
from cemreplay.reports._facts import Facts

__all__ = ["FORMATS", "ReportError", "render", "write_atomic", "write_report", "write_tables"]

#: Table export formats.
FORMATS: Final = ("csv", "json", "parquet")
#: Rows of a table shown in the HTML (the exports hold every row).
MAX_ROWS: Final = 40
_INK: Final = "#1f2937"
_ACCENT: Final = "#c2410c"
_CALM: Final = "#2563eb"

Progress = Callable[[str, int, int], None]


class ReportError(CemReplayError):
    """The report cannot be written (a missing optional dependency, an unwritable path)."""


def write_atomic(path: Path, data: bytes | str | Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file in the same folder renamed into place: an
    interruption (Ctrl-C) leaves the old file or none, never half of the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        if callable(data):
            data(tmp_path)
        elif isinstance(data, str):
            tmp_path.write_text(data, encoding="utf-8")
        else:
            tmp_path.write_bytes(data)
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)  # as a plain open() would have made it
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_tables(
    tables: Mapping[str, pl.DataFrame], folder: Path, formats: Iterable[str] = FORMATS
) -> list[Path]:
    """Each table as ``folder/NAME.csv``, ``.json`` (an array of row objects) and/or
    ``.parquet``; returns the paths written."""
    fmts = list(formats)
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise ReportError(f"unknown table format(s) {bad}; hint: choose from {', '.join(FORMATS)}")
    out = []
    for name, df in tables.items():
        for fmt in fmts:
            p = folder / f"{name}.{fmt}"
            write_atomic(p, _writer(df, fmt))
            out.append(p)
    return out


def _writer(df: pl.DataFrame, fmt: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        if fmt == "csv":
            df.write_csv(path)
        elif fmt == "json":
            df.write_json(path)
        else:
            df.write_parquet(path)

    return write


# -- charts ---------------------------------------------------------------------------------


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise ReportError(
            "the HTML report draws its charts with matplotlib; "
            "hint: pip install 'cemreplay[report]'"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 100, "font.size": 9, "axes.spines.top": False,
            "axes.spines.right": False, "axes.edgecolor": "#9ca3af", "svg.fonttype": "none",
        }
    )  # fmt: skip
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=110, metadata={"Software": None})
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _err(df: pl.DataFrame, col: str) -> list[list[float]]:
    share = df[col].fill_null(0.0).to_list()
    lo = df[f"{col}_lo"].fill_null(0.0).to_list()
    hi = df[f"{col}_hi"].fill_null(0.0).to_list()
    return [[max(0.0, s - a) for s, a in zip(share, lo, strict=True)],
            [max(0.0, b - s) for s, b in zip(share, hi, strict=True)]]  # fmt: skip


def _hbar(title: str, labels: list[str], values: list[float], xlabel: str,
          err: list[list[float]] | None = None, colour: str = _ACCENT) -> str:  # fmt: skip
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 0.32 * max(len(labels), 3) + 0.9))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=colour, xerr=err, ecolor=_INK, capsize=2)
    ax.set_yticks(y, [lbl if len(lbl) <= 48 else lbl[:47] + "…" for lbl in labels])
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontweight="bold")
    return _png(fig)


def charts(tables: Mapping[str, pl.DataFrame]) -> dict[str, str]:
    """The report's charts as base64 PNGs, by name (only those with data)."""
    plt = _plt()
    out: dict[str, str] = {}
    page = tables["struggle_by_page"].filter(pl.col("sessions") >= 1).head(12)
    if page.height:
        out["struggle_by_page"] = _hbar(
            "Share of sessions with struggle, by page (95 % Wilson interval)",
            page["page"].to_list(), page["share"].fill_null(0).to_list(),
            "share of the page's sessions", _err(page, "share"),
        )  # fmt: skip
    el = tables["struggle_by_element"].head(12)
    if el.height:
        rows = el.select("page", "element", "top_kind").rows()
        labels = [f"{e}  [{k}] on {p}" for p, e, k in rows]
        out["struggle_by_element"] = _hbar(
            "Sessions affected, by element", labels, el["affected"].to_list(), "sessions",
        )  # fmt: skip
    f = tables["funnel_steps"]
    if f.height and int(f["entered"][0]):
        fig, ax = plt.subplots(figsize=(7.2, 2.8))
        ax.bar(f["name"].to_list(), f["entered"].to_list(), color=_CALM)
        for k, (n, c) in enumerate(f.select("entered", "conversion").rows()):
            if c is not None and k + 1 < f.height:
                ax.annotate(f"{c:.0%} go on", (k + 0.5, n), ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("sessions")
        ax.set_title("Funnel: sessions entering each step", loc="left", fontweight="bold")
        out["funnel"] = _png(fig)
    ff = tables["form_fields"].filter(pl.col("drop_offs") > 0).sort("drop_offs", descending=True)
    if ff.height:
        ff = ff.head(12)
        out["form_drop_offs"] = _hbar(
            "Where form abandoners left: drop-off field",
            [f"{a} · {b}" for a, b in ff.select("form", "field").rows()],
            ff["drop_offs"].to_list(), "abandoners whose last field it was",
        )  # fmt: skip
    ca = tables["cart_abandonment_by_country"]
    if ca.height:
        out["cart_abandonment"] = _hbar(
            "Cart abandonment rate by country (95 % Wilson interval)", ca["country"].to_list(),
            ca["abandon_rate"].fill_null(0).to_list(), "share of carts abandoned",
            _err(ca, "abandon_rate"), _CALM,
        )  # fmt: skip
    tr = tables["traffic_by_hour"]
    if tr.height and int(tr["sessions"].sum()):
        import numpy as np

        grid = np.zeros((7, 24))
        for wd, hr, n in tr.select("weekday", "hour", "sessions").rows():
            grid[int(wd) - 1, int(hr)] = n
        fig, ax = plt.subplots(figsize=(7.2, 2.6))
        im = ax.imshow(grid, aspect="auto", cmap="Blues")
        ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlabel("hour of day")
        fig.colorbar(im, ax=ax, label="sessions")
        ax.set_title("When visitors are on the site", loc="left", fontweight="bold")
        out["traffic"] = _png(fig)
    sh = tables["struggle_by_hour"]
    if sh.height and int(sh["sessions"].sum()):
        fig, ax = plt.subplots(figsize=(7.2, 2.6))
        hours = sh["hour"].to_list()
        lo, hi = sh["share_lo"].fill_null(0).to_list(), sh["share_hi"].fill_null(0).to_list()
        ax.fill_between(hours, lo, hi, color=_ACCENT, alpha=0.2)
        ax.plot(hours, sh["share"].fill_null(0).to_list(), color=_ACCENT, marker="o", ms=3)
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlabel("hour of day")
        ax.set_ylabel("share of sessions")
        ax.set_title("Sessions with struggle, by hour (95 % interval)", loc="left",
                     fontweight="bold")  # fmt: skip
        out["struggle_by_hour"] = _png(fig)
    cg = tables["clicks_to_goal"]
    if cg.height:
        goals = cg["goal"].unique(maintain_order=True).to_list()
        fig, axes = plt.subplots(1, len(goals), figsize=(7.2, 2.6), squeeze=False)
        budget = tables["goal_summary"]["max_clicks"]
        for ax, goal in zip(axes[0], goals, strict=True):
            g = cg.filter(pl.col("goal") == goal)
            ax.bar(g["clicks"].to_list(), g["share"].to_list(), color=_CALM)
            if budget.len():
                ax.axvline(float(budget[0]) + 0.5, color=_ACCENT, ls="--", lw=1)
            ax.set_title(f"clicks to {goal}", fontsize=9)
            ax.set_xlabel("clicks (last bar: that many or more)")
        axes[0][0].set_ylabel("share of sessions reaching it")
        out["clicks_to_goal"] = _png(fig)
    return out


# -- HTML ---------------------------------------------------------------------------------------

_CSS: Final = """
body{font:14px/1.45 system-ui,sans-serif;color:#1f2937;margin:0 auto;max-width:1180px;padding:16px}
h1{font-size:22px;margin:4px 0}h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #e5e7eb}
p.lead{color:#4b5563;margin:2px 0 12px}.kpi{display:flex;gap:12px;flex-wrap:wrap}
.kpi div{border:1px solid #e5e7eb;border-radius:6px;padding:8px 12px;min-width:130px}
.kpi b{display:block;font-size:20px}.wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:12px;margin:6px 0}th,td{padding:3px 7px;
border-bottom:1px solid #f3f4f6;text-align:left;white-space:nowrap}th{background:#f9fafb}
td.n{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}
.note{color:#6b7280;font-size:12px}a{color:#1d4ed8}
"""

_SECTIONS: Final = (
    ("Where visitors struggle", "struggle_by_page", ["struggle_by_page"],
     "Per page: sessions that viewed it, sessions with a finding on it, share with its 95 % "
     "Wilson interval, findings by kind, the change between the first and second half of the "
     "period, and sessions to watch."),
    ("What they struggle with", "struggle_by_element", ["struggle_by_element"],
     "Per element (a selector, or a form field) and page."),
    ("Sessions to watch first", None, ["worst_sessions"],
     "The highest struggle scores; each id opens its replay."),
    ("Forms", "form_drop_offs", ["forms", "form_fields", "validation_errors",
                                 "abandoners_vs_completers"],
     "Matomo / Zuko definitions (docs/reports.md). Validation errors show the masked shape of "
     "what was typed, never a value. Abandoners against completers: two-proportion z-test of "
     "the error rate and Mann-Whitney U of the time in the field."),
    ("Funnel and drop-offs", "funnel", ["funnel_steps", "funnel_drops"],
     "What preceded each drop-off: the last page, field and finding before leaving."),
    ("Cart abandonment by country", "cart_abandonment", ["cart_abandonment_by_country"], ""),
    ("When visitors come", "traffic", ["traffic_by_hour"],
     "Sessions per weekday and hour (UTC unless --tz): to staff support hours."),
    ("Struggle by hour", "struggle_by_hour", ["struggle_by_hour"], ""),
    ("Clicks to goal", "clicks_to_goal", ["goal_summary", "clicks_to_goal"],
     "Is three clicks enough? within_max_clicks is the share of sessions reaching the goal "
     "within the click budget."),
)  # fmt: skip

_ID_COLUMNS: Final = ("session_id", "watch")


def _cell(value: Any, col: str, link: Callable[[str], str | None]) -> str:
    if value is None:
        return "<td></td>"
    if col in _ID_COLUMNS and isinstance(value, str):
        parts = []
        for sid in value.split():
            href = link(sid)
            esc = html.escape(sid)
            parts.append(f'<a href="{html.escape(href, quote=True)}">{esc}</a>' if href else esc)
        return f"<td>{' '.join(parts)}</td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, float):
        if col.startswith("p_"):
            text = f"{value:.2g}"
        elif any(w in col for w in ("share", "rate", "conversion", "cumulative", "within")):
            text = f"{value:.1%}"
        else:
            text = f"{value:,.1f}"
        return f'<td class="n">{text}</td>'
    if isinstance(value, int):
        if col in ("first_ts", "t", "at"):
            ts = datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
            return f"<td>{ts}</td>"
        return f'<td class="n">{value:,}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table_html(df: pl.DataFrame, link: Callable[[str], str | None], name: str) -> str:
    """One table (its first :data:`MAX_ROWS` rows) as escaped HTML."""
    cols = [c for c in df.columns if not c.startswith("_")]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for row in df.head(MAX_ROWS).select(cols).rows():
        body.append(
            "<tr>" + "".join(_cell(v, c, link) for v, c in zip(row, cols, strict=True)) + "</tr>"
        )
    more = (
        f'<p class="note">First {MAX_ROWS} of {df.height} rows; every row is in the exported '
        f"table {html.escape(name)}.</p>"
        if df.height > MAX_ROWS
        else ""
    )
    return (
        f'<h3>{html.escape(name)}</h3><div class="wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def _shown(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """The table as the page shows it: traffic by hour as a weekday x hour grid."""
    if name == "traffic_by_hour" and df.height:
        grid = df.pivot(on="hour", index=["weekday", "day"], values="sessions")
        return grid.sort("weekday").drop("weekday")
    return df


def _kpis(facts: Facts, tables: Mapping[str, pl.DataFrame]) -> str:
    s = facts.sessions
    n = s.height
    struggling = facts.findings.select(pl.col("session_id").n_unique()).item() if n else 0
    steps = tables["funnel_steps"]
    carts = int(steps["entered"][0]) if steps.height else 0
    done = int(steps["entered"][-1]) if steps.height else 0
    items = [
        ("sessions", f"{n:,}"),
        ("visitors", f"{s['visitor_id'].n_unique():,}" if n else "0"),
        ("sessions with struggle", f"{struggling / n:.1%}" if n else "-"),
        ("findings", f"{facts.findings.height:,}"),
        ("carts abandoned", f"{(carts - done) / carts:.1%}" if carts else "-"),
    ]
    return '<div class="kpi">' + "".join(
        f"<div><b>{html.escape(v)}</b>{html.escape(k)}</div>" for k, v in items
    ) + "</div>"


def render(
    facts: Facts,
    tables: Mapping[str, pl.DataFrame],
    *,
    link: Callable[[str], str | None] = lambda _sid: None,
    title: str = "cemreplay report",
    images: Mapping[str, str] | None = None,
) -> str:
    """The report as one self-contained HTML document (no script, no network request).

    ``link(session_id)`` gives the href of a session's replay, or None for plain text;
    ``images`` are the charts (default: drawn now with :func:`charts`).
    """
    pics = dict(images) if images is not None else charts(tables)
    span = facts.span()
    when = ""
    if span is not None:
        a, b = (datetime.fromtimestamp(x / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M") for x in span)
        when = f"Sessions started {a} to {b} UTC."
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class=lead>{html.escape(when)} Generated "
        f"{datetime.now(tz=UTC).strftime('%Y-%m-%d %H:%M')} UTC.</p>",
        _kpis(facts, tables),
    ]
    for heading, chart, names, note in _SECTIONS:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            parts.append(f'<p class="note">{html.escape(note)}</p>')
        if chart and chart in pics:
            src = f"data:image/png;base64,{pics[chart]}"
            parts.append(f'<img alt="{html.escape(heading)}" src="{src}">')
        for name in names:
            if name in tables:
                parts.append(table_html(_shown(name, tables[name]), link, name))
    parts.append("</body></html>")
    return "\n".join(parts)


def _watch_ids(tables: Mapping[str, pl.DataFrame], limit: int) -> list[str]:
    """Session ids shown in the HTML, worst first, then those the tables name to watch."""
    ids: list[str] = []
    seen: set[str] = set()

    def add(values: Sequence[str | None]) -> None:
        for v in values:
            for sid in (v or "").split():
                if sid not in seen and len(ids) < limit:
                    seen.add(sid)
                    ids.append(sid)

    add(tables["worst_sessions"]["session_id"].to_list())
    for name in ("struggle_by_page", "struggle_by_element", "funnel_drops"):
        if name in tables and "watch" in tables[name].columns:
            add(tables[name]["watch"].head(MAX_ROWS).to_list())
    return ids


def write_report(
    store: Any,
    facts: Facts,
    tables: Mapping[str, pl.DataFrame],
    output: Path,
    *,
    replays: int = 50,
    replay_base: str | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the HTML report to ``output`` with its replays (``<output stem>_replays/ID.html``
    for up to ``replays`` sessions it names, linked relatively so the folder works offline),
    or links to ``replay_base + ID`` (e.g. the collector's ``http://host:8000/sessions/``)
    instead. Returns the paths written."""
    from cemreplay.replay import render_html

    written: list[Path] = []
    folder = output.parent / f"{output.stem}_replays"
    have: set[str] = set()
    if replay_base is None and replays > 0 and store is not None:
        ids = _watch_ids(tables, replays)
        scores = dict(facts.sessions.select("session_id", "score").iter_rows())
        for k, sid in enumerate(ids):
            v = store.session_view(sid)
            page = render_html(v.events, v.findings, session_id=sid, score=scores.get(sid))
            p = folder / f"{sid}.html"
            write_atomic(p, page)
            written.append(p)
            have.add(sid)
            if progress is not None:
                progress("replays", k + 1, len(ids))

    def link(sid: str) -> str | None:
        if replay_base is not None:
            return replay_base + sid
        return f"{folder.name}/{sid}.html" if sid in have else None

    if progress is not None:
        progress("charts", 0, 1)
    page = render(facts, tables, link=link)
    write_atomic(output, page)
    if progress is not None:
        progress("charts", 1, 1)
    written.append(output)
    return written
