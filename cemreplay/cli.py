"""The ``cemreplay`` command: one subcommand per public function, nothing more.

Each subcommand parses its arguments, calls one public function and turns a
``CemReplayError`` into exit code 2 with its message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cemreplay.errors import CemReplayError, ConfigError

if TYPE_CHECKING:
    from tqdm import tqdm

Handler = Callable[[argparse.Namespace], int]


def _demo(args: argparse.Namespace) -> int:
    from cemreplay.demo import run_demo

    return run_demo(sessions=args.sessions, seed=args.seed, out=sys.stdout, db=args.db)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="generate a synthetic shop's traffic and run the pipeline on it",
        description="Generate seeded synthetic traffic, send it as the snippet would to a real "
        "collector on 127.0.0.1, analyze the store it fills, and summarise what cemreplay "
        "finds, with the commands to look a session up.",
    )
    p.add_argument("--sessions", type=int, default=500, help="sessions to generate (default 500)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="store to create (default cemreplay-demo.db here, recreated on every run)",
    )
    p.set_defaults(handler=_demo)


# -- store, collector and lookup commands (docs/cli.md) ----------------------------------------


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _plain_table(rows: list[dict[str, object]], cols: Sequence[str]) -> str:
    """A plain-text table: a header, a rule, one line per row."""
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[k]) for row in cells]) for k, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _iso_ms(ms: object) -> object:
    from datetime import UTC, datetime

    if not isinstance(ms, int):
        return ms
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, metavar="PATH", help="the store (an SQLite file)")


def _add_webhook_secret(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--webhook-secret",
        metavar="SECRET",
        help="HMAC-SHA256 secret of the webhook signature (default $CEMREPLAY_WEBHOOK_SECRET)",
    )


def _serve(args: argparse.Namespace) -> int:
    import os

    from cemreplay.collector import new_token, serve

    given = args.token or os.environ.get("CEMREPLAY_TOKEN")
    live = None
    if args.live or args.webhook or args.live_rules:
        from cemreplay.live import LiveConfig, parse_rules

        live = LiveConfig(
            rules=parse_rules(args.live_rules or "default"),
            webhook=args.webhook,
            webhook_secret=args.webhook_secret or os.environ.get("CEMREPLAY_WEBHOOK_SECRET"),
            process=not args.live_in_collector,
        )
    serve(
        args.db,
        host=args.host,
        port=args.port,
        site_key=args.site_key,
        allow_origins=args.allow_origin,
        token=given or new_token(),
        log=_stderr,
        show_token=not given,
        live=live,
        dictionary_interval_s=args.dictionary_interval,
    )
    return 0


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the collector: receive batches, store them, serve session lookup",
        description="Run the collector (POST /v1/batch, GET /v1/snippet.js, /healthz) and the "
        "support reps' session lookup (/, /sessions/ID, /api/sessions/ID) over one store.",
    )
    _add_db(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--site-key", metavar="KEY", help="accept only batches with this site key")
    p.add_argument(
        "--allow-origin",
        metavar="ORIGIN",
        action="append",
        default=[],
        help="a browser origin allowed to send batches (repeatable; default any)",
    )
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="secret for the lookup pages (default $CEMREPLAY_TOKEN, else a random "
        "one printed at start)",
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="analyze changed sessions as batches arrive and emit live signals "
        "(GET /v1/live/ID for the snippet, the log; see docs/live.md)",
    )
    p.add_argument(
        "--webhook",
        metavar="URL",
        help="POST each live signal, signed, to this URL (implies --live)",
    )
    _add_webhook_secret(p)
    p.add_argument(
        "--live-rules",
        metavar="RULES",
        help="live rules, e.g. 'failed_submit>=2/same,rage_click->error_click<30s' "
        "(implies --live; default: those two)",
    )
    p.add_argument(
        "--live-in-collector",
        action="store_true",
        help="run live analysis on threads of the collector's process instead of a worker "
        "process (it then shares the GIL with ingest)",
    )
    p.add_argument(
        "--dictionary-interval",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="re-learn each site's string dictionary this often (default 3600; 0 off)",
    )
    p.set_defaults(handler=_serve)


def _sessions(args: argparse.Namespace) -> int:
    import json

    from cemreplay.store import open_store

    with open_store(args.db, create=False) as st:
        df = st.sessions(visitor=args.visitor, since=args.since, limit=args.limit)
    rows = df.to_dicts()
    if args.format == "json":
        print(json.dumps(rows, default=str))
        return 0
    cols = [
        "session_id",
        "visitor_id",
        "first_ts",
        "last_ts",
        "pages",
        "events",
        "device",
        "locale",
        "country",
        "campaign",
        "score",
    ]
    for r in rows:
        r["first_ts"], r["last_ts"] = _iso_ms(r["first_ts"]), _iso_ms(r["last_ts"])
    print(_plain_table(rows, cols))
    return 0


def _add_sessions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sessions",
        help="list sessions from the store's index, newest first",
        description="List sessions from the store's sessions index, newest first. Page "
        "counts, segments and scores appear once `cemreplay analyze` has run.",
    )
    _add_db(p)
    p.add_argument("--visitor", metavar="ID", help="only this visitor's sessions")
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="only sessions active since: ISO date/time (UTC), epoch ms, or a "
        "duration back from now such as 24h or 7d",
    )
    p.add_argument("--limit", type=int, default=100, help="most sessions listed (default 100)")
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format (default table)"
    )
    p.set_defaults(handler=_sessions)


def _color(mode: str) -> bool:
    import os

    if mode == "always":
        return True
    if mode == "never":
        return False
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


#: A lookup (``show``, ``replay``) of a session of at most this many events runs the kernels
#: as plain Python: starting numba's compiler and loading its cached kernels costs about
#: 0.8-0.9 s of CPU in a fresh process, more than the kernels' work on one session (about
#: 7 us per event interpreted).
LOOKUP_INTERPRETED_EVENTS = 50_000


def _small_session(db: str, session_id: str) -> bool:
    """True when the store ``db`` holds ``session_id`` with at most
    :data:`LOOKUP_INTERPRETED_EVENTS` events (read with sqlite3 alone: no polars, no numba);
    False when it does not, or ``db`` is not a readable store of this version."""
    import sqlite3
    from pathlib import Path

    path = Path(db)
    if not path.is_file():
        return False  # open_store says what is wrong
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            events, batches = con.execute(
                "SELECT COALESCE(SUM(n), 0), COUNT(*) FROM batches WHERE session_id = ?",
                (session_id,),
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error:  # not a store, or an older one: the store reports or migrates it
        return False
    return bool(batches) and events <= LOOKUP_INTERPRETED_EVENTS


def _interpret_small_lookup(db: str, session_id: str) -> bool:
    """For a one-session lookup in a fresh process: run this process's numba kernels as
    Python (``NUMBA_DISABLE_JIT=1``, set before numba is imported) when the session is small
    (:func:`_small_session`). Nothing changes when numba is already imported (the process did
    other work first) or ``NUMBA_DISABLE_JIT`` is set (``NUMBA_DISABLE_JIT=0`` keeps the
    compiler). True when it set it."""
    import os

    if "numba" in sys.modules or "NUMBA_DISABLE_JIT" in os.environ:
        return False
    if not _small_session(db, session_id):
        return False
    os.environ["NUMBA_DISABLE_JIT"] = "1"
    return True


def _show(args: argparse.Namespace) -> int:
    import json

    _interpret_small_lookup(args.db, args.session_id)
    from cemreplay.store import open_store
    from cemreplay.timeline import render_text, to_json

    with open_store(args.db, create=False) as st:
        v = st.session_view(args.session_id)
    score = v.info.get("score")
    if args.format == "json":
        print(json.dumps(to_json(v.events, v.findings, session_id=args.session_id, score=score)))
    else:
        print(
            render_text(
                v.events,
                v.findings,
                session_id=args.session_id,
                color=_color(args.color),
                score=score,
            )
        )
    return 0


def _add_show(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "show",
        help="show one session as a timeline with its findings",
        description="Show one session from the store as a timeline (text or JSON) with its "
        "findings: what a support rep needs when a visitor reads out a session id.",
    )
    p.add_argument("session_id", metavar="SESSION_ID", help="the session id")
    _add_db(p)
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text output (default auto: on a terminal, unless NO_COLOR)",
    )
    p.set_defaults(handler=_show)


_FINDING_FIELDS = (
    "session_id",
    "visitor_id",
    "page_view",
    "kind",
    "t",
    "page_url",
    "target",
    "field",
    "severity",
    "count",
    "duration_ms",
    "detail",
    "explanation",
)


def _findings(args: argparse.Namespace) -> int:
    import json

    from cemreplay.detectors import detect

    kinds = [k.strip() for arg in args.kind for k in arg.split(",") if k.strip()] or None
    if args.rrweb is not None:
        from cemreplay.wire import read_rrweb

        found = detect(read_rrweb(args.rrweb), kinds=kinds)
    else:
        from cemreplay.store import open_store

        with open_store(args.db, create=False) as st:
            found = st.findings(kind=kinds)
    rows = found.select([c for c in _FINDING_FIELDS if c in found.columns]).to_dicts()
    if args.format == "json":
        print(json.dumps(rows, default=str))
        return 0
    for r in rows:
        r["t"] = _iso_ms(r.get("t"))
    print(
        _plain_table(
            rows, ["session_id", "kind", "t", "page_url", "target", "field", "explanation"]
        )
    )
    return 0


def _add_findings(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "findings",
        help="list findings from the store, or detect them in an rrweb recording",
        description="List the findings `cemreplay analyze` stored, or run the detectors on an "
        "rrweb/PostHog recording without a store (--rrweb).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", metavar="PATH", help="the store (an SQLite file)")
    src.add_argument(
        "--rrweb",
        metavar="PATH",
        help="an rrweb JSON or PostHog JSONL recording (gzip allowed) instead",
    )
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        metavar="KIND",
        help="only findings of this kind (repeatable or comma-separated)",
    )
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format (default table)"
    )
    p.set_defaults(handler=_findings)


def _replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    _interpret_small_lookup(args.db, args.session_id)
    from cemreplay.replay import render_html
    from cemreplay.store import open_store

    with open_store(args.db, create=False) as st:
        v = st.session_view(args.session_id)
    html = render_html(v.events, v.findings, session_id=args.session_id)
    Path(args.output).write_text(html, encoding="utf-8")
    _stderr(f"wrote {args.output}")
    return 0


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="write one session's self-contained HTML replay",
        description="Write one session's replay as a single self-contained HTML file.",
    )
    p.add_argument("session_id", metavar="SESSION_ID", help="the session id")
    _add_db(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.html", help="file to write")
    p.set_defaults(handler=_replay)


def _watch(args: argparse.Namespace) -> int:
    import json
    import os

    from cemreplay.store import open_store, parse_since
    from cemreplay.watch import (
        Alert,
        FrameSource,
        WatchConfig,
        parse_duration,
        replay,
        watch,
    )
    from cemreplay.webhook import WebhookSender

    cfg = WatchConfig(
        window_ms=parse_duration(args.window),
        fast_window_ms=parse_duration(args.fast_window),
        step_ms=parse_duration(args.step),
        baseline_ms=parse_duration(args.baseline),
        ratio=args.ratio,
        min_affected=args.min_affected,
        alpha=args.alpha,
        clear_ratio=args.clear_ratio,
        clear_steps=args.clear_steps,
        min_baseline_sessions=args.min_baseline,
    )
    secret = args.webhook_secret or os.environ.get("CEMREPLAY_WEBHOOK_SECRET")
    sender = WebhookSender(args.webhook, secret).start() if args.webhook else None

    def emit(a: Alert) -> None:
        print(json.dumps(a.to_json()) if args.format == "json" else a.line(), flush=True)
        if sender is not None:
            sender.send(a.to_json())

    try:
        with open_store(args.db, create=False) as st:
            if not args.replay:
                _stderr(f"watching {args.db} every {cfg.step_ms / 1000:g} s (Ctrl-C stops)")
                for _ in watch(
                    st, cfg, on_alert=emit, analyze=not args.no_analyze, max_checks=args.checks
                ):
                    pass
                return 0
            if not args.no_analyze:
                st.analyze()
            span = st.time_range()
            if span is None:
                _stderr("nothing to replay: no analyzed page views in the store")
                return 0
            start = parse_since(args.since) or span[0]
            end = parse_since(args.until) or span[1] + cfg.window_ms
            replay(FrameSource(st.page_sessions()), start, end, cfg, on_alert=emit)
    finally:
        if sender is not None:
            sender.stop()
    return 0


def _add_watch(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "watch",
        help="alert when a page's struggle rate spikes over its baseline",
        description="Check every page's struggle rate in a sliding window against its "
        "trailing baseline and print (and POST) an alert when it spikes, one per page per "
        "incident, and when it clears. See docs/live.md.",
    )
    _add_db(p)
    p.add_argument("--webhook", metavar="URL", help="also POST each alert, signed, here")
    _add_webhook_secret(p)
    p.add_argument("--window", default="10m", help="sliding window (default 10m)")
    p.add_argument(
        "--fast-window", default="2m", help="shorter window also checked (default 2m; 0 off)"
    )
    p.add_argument("--step", default="1m", help="time between checks (default 1m)")
    p.add_argument("--baseline", default="7d", help="trailing baseline period (default 7d)")
    p.add_argument(
        "--ratio", type=float, default=2.0, help="odds ratio over the baseline (default 2)"
    )
    p.add_argument(
        "--min-affected",
        type=int,
        default=5,
        help="struggling sessions needed in the window (default 5)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=1e-3,
        help="false-alarm probability per check, all pages together (default 0.001)",
    )
    p.add_argument(
        "--clear-ratio", type=float, default=1.25, help="odds ratio that clears (default 1.25)"
    )
    p.add_argument(
        "--clear-steps", type=int, default=3, help="checks in a row under it (default 3)"
    )
    p.add_argument(
        "--min-baseline",
        type=int,
        default=30,
        help="baseline sessions a page needs before it can alert (default 30)",
    )
    p.add_argument(
        "--replay",
        action="store_true",
        help="run over the stored data on simulated time instead of the clock",
    )
    p.add_argument("--since", metavar="TIME", help="replay from (default: the first page view)")
    p.add_argument("--until", metavar="TIME", help="replay to (default: the last + window)")
    p.add_argument(
        "--no-analyze",
        action="store_true",
        help="do not analyze changed sessions before each check (a collector with --live does it)",
    )
    p.add_argument("--checks", type=int, metavar="N", help="stop after N checks (default never)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_watch)


_BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar:30}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}]"
)


def _bar(label: str, unit: str) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing one :class:`_Bar` stage named ``label``."""
    bar = _Bar(enabled=True, unit=unit)
    return lambda done, total: bar(label, done, total)


def _analyze(args: argparse.Namespace) -> int:
    if args.parquet is not None:
        return _analyze_parquet(args)
    if args.scheduler is not None or args.local_workers is not None or args.out is not None:
        raise ConfigError(
            "--scheduler, --local-workers and --out go with --parquet DIR; "
            "hint: cemreplay analyze --parquet DIR --local-workers 2 --out results/"
        )
    from cemreplay.store import open_store

    with open_store(args.db, create=False) as st:
        baselines = None
        if not args.chunk_baselines and st.dirty_sessions():
            baselines = st.baselines(progress=_bar("baselines", "chunks"))
        r = st.analyze(progress=_bar("analyze", "visitors"), baselines=baselines)
    print(
        f"analyzed {r.sessions} sessions, {r.events} events: {r.findings} findings, "
        f"{r.quarantined} batches quarantined"
    )
    return 0


def _analyze_parquet(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from cemreplay.distributed import analyze_parquet, write_result

    if args.scheduler is not None and args.local_workers is not None:
        raise ConfigError("give --scheduler ADDRESS or --local-workers N, not both")
    out = Path(args.out) if args.out is not None else Path(args.parquet) / "results"
    t0 = time.monotonic()
    r = analyze_parquet(
        args.parquet,
        scheduler=args.scheduler,
        local_workers=args.local_workers if args.scheduler is None else None,
        progress=_bar("analyze", "tasks"),
    )
    write_result(r, out)
    tot = r.totals.row(0, named=True)
    print(
        f"analyzed {tot['partitions']} partitions, {tot['sessions']} sessions, "
        f"{tot['events']} events: {tot['findings']} findings in "
        f"{time.monotonic() - t0:.1f}s; results in {out}/"
    )
    return 0


def _add_analyze(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "analyze",
        help="decode changed sessions, run the detectors, update the index and findings",
        description="Decode every session changed since the last run, fill the sessions "
        "index (pages, segments, score) and replace those sessions' findings. With --parquet, "
        "analyse an export on a Dask cluster instead and write the results as Parquet.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", metavar="PATH", help="the store (an SQLite file)")
    src.add_argument(
        "--parquet",
        metavar="DIR",
        help="an export (cemreplay export) to analyse on Dask (pip install 'cemreplay[dask]')",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --parquet)",
    )
    p.add_argument(
        "--local-workers",
        type=int,
        metavar="N",
        help="start N local worker processes instead (with --parquet; default 2)",
    )
    p.add_argument(
        "--out", metavar="DIR", help="where the result Parquet files go (default DIR/results)"
    )
    p.add_argument(
        "--chunk-baselines",
        action="store_true",
        help="judge pages against the views in each chunk of visitors only (skips the pass over "
        "the whole store for its page baselines; findings then depend on the chunking)",
    )
    p.set_defaults(handler=_analyze)


def _export(args: argparse.Namespace) -> int:
    from cemreplay.export import export_batches, export_store

    if (args.db is None) == (not args.batches):
        raise ConfigError("give --db PATH or --batches PATH..., one of them")
    bar = _bar("export", "sessions")
    if args.db is not None:
        r = export_store(args.db, args.parquet, partitions=args.partitions, progress=bar)
    else:
        r = export_batches(args.batches, args.parquet, partitions=args.partitions, progress=bar)
    print(
        f"exported {r.sessions} sessions, {r.events} events into {r.partitions} partitions "
        f"({r.files} files) under {r.path}/"
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cemreplay.reports import ReportConfig, all_tables, from_store
    from cemreplay.reports.html import write_report, write_tables
    from cemreplay.store import open_store

    where: dict[str, str] = {}
    for item in args.where:
        key, sep, value = item.partition("=")
        if not sep or not value:
            from cemreplay.errors import ConfigError

            raise ConfigError(f"--where {item!r} is not KEY=VALUE; hint: --where country=NO")
        where[key.strip()] = value.strip()
    fmts = [f.strip() for arg in args.format for f in arg.split(",") if f.strip()] or [
        "csv", "json", "parquet"
    ]
    from cemreplay.reports.html import FORMATS, ReportError

    if bad := [f for f in fmts if f not in FORMATS]:  # before the long part, not after it
        raise ReportError(f"unknown table format(s) {bad}; hint: choose from {', '.join(FORMATS)}")
    bar = _Bar(enabled=not args.no_progress)
    out = Path(args.output)
    with open_store(args.db, create=False) as st:
        facts = from_store(
            st, config=ReportConfig(max_clicks=args.max_clicks),
            progress=lambda d, t: bar("sessions", d, t), workers=args.workers,
        )  # fmt: skip
        if where or args.since or args.until:
            facts = facts.where(since=args.since, until=args.until, **where)
        bar("tables", 0, 1)
        tables = all_tables(facts, tz=args.tz, worst=args.worst)
        bar("tables", 1, 1)
        if args.tables_dir:
            write_tables(tables, Path(args.tables_dir), fmts)
        write_report(
            st, facts, tables, out, replays=args.replays, replay_base=args.replay_base,
            progress=bar,
        )  # fmt: skip
    bar.close()
    print(
        f"wrote {out} ({facts.sessions.height} sessions, {facts.findings.height} findings)"
        + (f" and {len(tables)} tables in {args.tables_dir}" if args.tables_dir else "")
    )
    return 0


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="write the event table as Parquet partitioned by visitor bucket and day",
        description="Export a store's events (a chunk of visitors at a time) or decoded wire "
        "batches to Hive-style Parquet, visitor_bucket=K/day=YYYY-MM-DD/, a session never "
        "split, for `cemreplay analyze --parquet`.",
    )
    p.add_argument("--db", metavar="PATH", help="the store to export")
    p.add_argument(
        "--batches",
        nargs="+",
        metavar="PATH",
        help="wire batch files or directories (one batch per file, or a msgpack array)",
    )
    p.add_argument("--parquet", required=True, metavar="DIR", help="a new or empty directory")
    p.add_argument(
        "--partitions", type=int, default=16, metavar="N", help="visitor buckets (default 16)"
    )
    p.set_defaults(handler=_export)


class _Bar:
    """A tqdm progress bar per stage on stderr (nothing when disabled); a stage's bar closes
    when ``done`` reaches ``total``."""

    def __init__(self, enabled: bool, unit: str = ""):
        self.enabled = enabled
        self.unit = unit
        self.bars: dict[str, tqdm[Any]] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            if total <= 0:  # nothing to do: no empty bar
                return
            bar = tqdm(
                total=total, desc=stage, unit=self.unit, file=sys.stderr, bar_format=_BAR_FORMAT
            )
            self.bars[stage] = bar
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            del self.bars[stage]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="write the HTML report (charts and tables) and export its tables",
        description="Write one self-contained HTML report of where, why and for whom visitors "
        "struggle (struggle by page and element, forms and fields, funnel drop-offs, traffic "
        "by hour, clicks to goal), with a replay per session to watch, and optionally the "
        "same tables as CSV/JSON/Parquet. Run `cemreplay analyze` first.",
    )
    _add_db(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE.html", help="report to write")
    p.add_argument(
        "--tables-dir", metavar="DIR", help="also write every table into DIR (see --format)"
    )
    p.add_argument(
        "--format",
        action="append",
        default=[],
        metavar="FMT",
        help="table formats for --tables-dir: csv, json, parquet (repeatable or "
        "comma-separated; default all three)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only sessions with this segment value: country, campaign, device or locale "
        "(repeatable, all must hold)",
    )
    p.add_argument("--since", metavar="WHEN", help="only sessions started at or after (UTC)")
    p.add_argument("--until", metavar="WHEN", help="only sessions started before (UTC)")
    p.add_argument(
        "--tz", default="UTC", help="time zone of the by-hour tables (default UTC)"
    )
    p.add_argument(
        "--max-clicks", type=int, default=3, help="click budget of clicks-to-goal (default 3)"
    )
    p.add_argument(
        "--worst", type=int, default=20, help="sessions in the worst-sessions table (default 20)"
    )
    p.add_argument(
        "--replays",
        type=int,
        default=50,
        help="write the replays of up to this many sessions the report names, beside it in "
        "FILE_replays/ (default 50; 0 for none)",
    )
    p.add_argument(
        "--replay-base",
        metavar="URL",
        help="link sessions to URL + session id (e.g. the collector's "
        "http://127.0.0.1:8000/sessions/) instead of writing replays",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes reading and decoding chunks of visitors at once (default 1)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=_report)


def _dictionary(args: argparse.Namespace) -> int:
    from cemreplay.store import open_store

    with open_store(args.db, create=False) as st:
        if args.learn:
            before = st.latest_dictionary(args.site)
            bar = _Bar(enabled=not args.no_progress, unit="sessions")
            try:
                d = st.learn_dictionary(
                    args.site,
                    sessions=args.sessions,
                    min_visitors=args.min_visitors,
                    progress=lambda done, total: bar("decode", done, total),
                )
            finally:
                bar.close()
            if d is None:
                print(
                    f"site {args.site}: no dictionary (no string was sent by "
                    f"{args.min_visitors} or more distinct visitors)"
                )
                return 0
            print("learned a new dictionary" if d != before else "unchanged: the latest")
        else:
            d = st.latest_dictionary(args.site)
            if d is None:
                print(
                    f"site {args.site}: no dictionary; hint: cemreplay dictionary --db "
                    f"{args.db} --site {args.site} --learn"
                )
                return 0
    size = sum(len(x.encode("utf-8")) for x in d.strings)
    print(
        f"site {d.site_key}: dictionary {d.id}, {len(d.strings):,} entries, {size:,} bytes of "
        f"strings, {len(d.to_json()):,} bytes as served"
    )
    return 0


def _add_dictionary(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dictionary",
        help="show (or learn) a site's string dictionary (wire version 3)",
        description="Print the id, entry count and size of the site's latest string "
        "dictionary; with --learn, learn it first from the site's newest sessions (stored "
        "only when its strings changed). See docs/collector.md.",
    )
    _add_db(p)
    p.add_argument("--site", required=True, metavar="KEY", help="the site key")
    p.add_argument(
        "--learn", action="store_true", help="learn the dictionary from the stored sessions first"
    )
    p.add_argument(
        "--min-visitors",
        type=int,
        default=20,
        metavar="N",
        help="distinct visitors a string needs to go in (default 20; privacy: keep it high)",
    )
    p.add_argument(
        "--sessions",
        type=int,
        default=20_000,
        metavar="N",
        help="newest sessions to learn from (default 20000)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=_dictionary)


# Subcommand registrars, in the order `--help` lists them. Add yours here.
# cli-registrars:start
REGISTRARS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_demo,
    _add_serve,
    _add_sessions,
    _add_show,
    _add_findings,
    _add_replay,
    _add_analyze,
    _add_export,
    _add_watch,
    _add_report,
    _add_dictionary,
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
