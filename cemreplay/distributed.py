"""The same analysis on a Dask cluster: partitions of an export analysed in parallel.

``pip install cemreplay[dask]``. :func:`analyze_parquet` runs over the partitions that
:mod:`cemreplay.export` wrote (a snippet session is never split between them), grouped into
tasks of about a million events, each group read and analysed once, in two phases:

1. per group, sessions (:func:`cemreplay.journeys.sessions`) and every finding but the kinds
   that need all the data (:func:`cemreplay.detectors.detect_split`: the group's table then
   goes, a few percent of its rows kept on its worker), and the partial page baselines,
   merged by a tree reduction on the workers (:meth:`~cemreplay.detectors.Baselines.merge`,
   ``split_every`` at a time) into the baselines of all the data;
2. per group, the remaining kinds with the merged baselines over the kept rows
   (``Split.finish``) and scores (:func:`cemreplay.score.score`), plus partial report tables
   (per page: page views, sessions, findings by kind; totals), which are merged by a second
   tree reduction.

Findings, sessions and scores are gathered and sorted as the single-machine functions sort
theirs: the result equals running them on the whole table, row for row. Every task is a
function of its inputs only, so a worker lost mid-run costs only its tasks and tables, which
the scheduler computes again elsewhere from their files (``retries`` covers tasks that
raise). See ``docs/scale-out.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from cemreplay.detectors import KINDS, UNKNOWN, Baselines, Config, Split, detect, detect_split
from cemreplay.detectors._base import prepare
from cemreplay.errors import ConfigError
from cemreplay.export import partitions, read_partition
from cemreplay.journeys import SessionRules, sessions
from cemreplay.schema import EventKind
from cemreplay.score import ScoreWeights, score

__all__ = [
    "PAGE_COLUMNS",
    "Result",
    "analyze_parquet",
    "local_client",
    "merge_reports",
    "page_report",
    "tasks",
    "write_result",
]

#: Finding kinds counted per page, in detector order.
REPORT_KINDS: Final = (*KINDS, UNKNOWN)
#: Columns of the page report after ``page_url``.
PAGE_COLUMNS: Final = ("page_views", "sessions", "struggling_sessions", "findings", *REPORT_KINDS)

Reader = Callable[[Path], pl.DataFrame]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class Result:
    """What :func:`analyze_parquet` gives back.

    Attributes
    ----------
    findings : pl.DataFrame
        As :func:`cemreplay.detectors.detect` returns them for the whole data.
    sessions : pl.DataFrame
        As :func:`cemreplay.journeys.sessions` returns them.
    scores : pl.DataFrame
        As :func:`cemreplay.score.score` returns them (per session).
    page_report : pl.DataFrame
        Per page URL: ``page_views``, ``sessions`` visiting it, ``struggling_sessions`` (with
        a finding on it), ``findings`` and one count column per finding kind; most findings
        first.
    totals : pl.DataFrame
        One row: partitions, events, sessions (after the rules' splits), snippet sessions,
        findings, one column per kind, and the tasks the partitions were grouped into.
    """

    findings: pl.DataFrame
    sessions: pl.DataFrame
    scores: pl.DataFrame
    page_report: pl.DataFrame
    totals: pl.DataFrame


# ----------------------------------------------------------------------------- report tables


def page_report(events: pl.DataFrame, findings: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The page report and totals of one event table and its findings (partials: merge the
    partitions' with :func:`merge_reports`; exact because no session spans two partitions).

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> from cemreplay.detectors import detect
    >>> pages, totals = page_report(ev.empty(), detect(ev.empty()))
    >>> pages.height, totals["events"].item()
    (0, 0)
    """
    views = (
        events.filter(pl.col("kind") == int(EventKind.PAGE_VIEW))
        .select(pl.col("target").cast(pl.String).alias("page_url"), "session_id")
        .group_by("page_url")
        .agg(
            page_views=pl.len().cast(pl.Int64),
            sessions=pl.col("session_id").n_unique().cast(pl.Int64),
        )
    )
    on_page = findings.group_by("page_url").agg(
        struggling_sessions=pl.col("session_id").n_unique().cast(pl.Int64),
        findings=pl.len().cast(pl.Int64),
        **{k: (pl.col("kind") == k).sum().cast(pl.Int64) for k in REPORT_KINDS},
    )
    pages = views.join(on_page, on="page_url", how="full", coalesce=True, nulls_equal=True)
    pages = pages.select("page_url", *(pl.col(c).fill_null(0) for c in PAGE_COLUMNS))
    by_kind = {k: (findings["kind"] == k).sum() for k in REPORT_KINDS}
    totals = pl.DataFrame(
        {
            "partitions": [1],
            "events": [events.height],
            "sessions": [0],
            "snippet_sessions": [events["session_id"].n_unique()],
            "findings": [findings.height],
            **{k: [v] for k, v in by_kind.items()},
        }
    ).cast(pl.Int64)
    return _sorted_pages(pages), totals


def _sorted_pages(pages: pl.DataFrame) -> pl.DataFrame:
    return pages.sort(
        ["findings", "page_views", "page_url"], descending=[True, True, False], nulls_last=True
    )


def merge_reports(
    parts: Sequence[tuple[pl.DataFrame, pl.DataFrame]],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Combine partial (page report, totals) pairs: counts add up, per page URL."""
    pages = (
        pl.concat([p for p, _ in parts])
        .group_by("page_url")
        .agg(pl.col(c).sum() for c in PAGE_COLUMNS)
    )
    totals = pl.concat([t for _, t in parts]).sum()
    return _sorted_pages(pages), totals


# ----------------------------------------------------------------------------- tasks


def _read(group: tuple[Path, ...], reader: Reader) -> pl.DataFrame:
    return pl.concat([reader(d) for d in group])


def _bytes(dirs: Sequence[Path]) -> int:
    return sum(f.stat().st_size for d in dirs for f in d.glob("*.parquet"))


def tasks(dirs: Sequence[Path], task_bytes: int) -> list[tuple[Path, ...]]:
    """Partition directories grouped into tasks: consecutive ones (by bucket, then day)
    until their Parquet files reach ``task_bytes``. A group still holds whole sessions."""
    out: list[tuple[Path, ...]] = []
    group: list[Path] = []
    size = 0
    for d in dirs:
        group.append(d)
        size += _bytes([d])
        if size >= task_bytes:
            out.append(tuple(group))
            group, size = [], 0
    if group:
        out.append(tuple(group))
    return out


def _merge_baselines(*parts: Baselines) -> Baselines:
    return Baselines.merge(parts)


def _merge_reports(*parts: tuple[pl.DataFrame, pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    return merge_reports(parts)


@dataclass(frozen=True)
class _Job:
    config: Config
    rules: SessionRules | None
    weights: ScoreWeights | None


def _first(group: tuple[Path, ...], reader: Reader, job: _Job) -> dict[str, Any]:
    """Phase 1 of a group: its sessions and its detection split (the table is not kept)."""
    events = _read(group, reader)
    return {
        "sessions": sessions(events, job.rules),
        "split": detect_split(prepare(events), job.config),
        "events": events.height,
    }


def _baselines(first: dict[str, Any]) -> Baselines:
    out: Baselines = first["split"].baselines
    return out


def _analyze(first: dict[str, Any], merged: Baselines, job: _Job) -> dict[str, Any]:
    split: Split = first["split"]
    found = split.finish(merged)
    # the kept rows hold every page view and a row of every session: the report's counts
    pages, totals = page_report(split.rest, found)
    totals = totals.with_columns(
        events=pl.lit(first["events"], dtype=pl.Int64),
        sessions=pl.lit(first["sessions"].height, dtype=pl.Int64),
    )
    return {
        "findings": found,
        "sessions": first["sessions"],
        "scores": score(found, job.weights),
        "report": (pages, totals),
    }


def _pick(out: dict[str, Any], name: str) -> Any:
    return out[name]


# ----------------------------------------------------------------------------- the driver


@contextlib.contextmanager
def local_client(n_workers: int = 2) -> Iterator[Any]:
    """A ``distributed.Client`` of a local cluster of ``n_workers`` single-threaded worker
    processes listening on 127.0.0.1 (no dashboard); closed on exit."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ConfigError(f"local_workers must be a positive int, got {n_workers!r}")
    from distributed import Client, LocalCluster

    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,  # type: ignore[no-untyped-call]
    ):
        yield c


@contextlib.contextmanager
def _connect(client: Any, scheduler: str | None, local_workers: int | None) -> Iterator[Any]:
    given = [x is not None for x in (client, scheduler, local_workers)]
    if sum(given) > 1:
        raise ConfigError(
            "give at most one of client=, scheduler= and local_workers=; "
            "hint: scheduler='tcp://host:8786' for a running cluster"
        )
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ConfigError(
            "cemreplay.distributed needs Dask; hint: pip install 'cemreplay[dask]'"
        ) from exc
    if client is not None:
        yield client
    elif scheduler is not None:
        with distributed.Client(scheduler) as c:  # type: ignore[no-untyped-call]
            yield c
    else:
        with local_client(2 if local_workers is None else local_workers) as c:
            yield c


def _tree(
    client: Any, fn: Callable[..., Any], items: list[Any], split_every: int, retries: int
) -> Any:
    """Reduce futures ``items`` to one with ``fn(*group)``, ``split_every`` at a time."""
    while len(items) > 1:
        items = [
            client.submit(fn, *items[k : k + split_every], retries=retries, pure=False)
            for k in range(0, len(items), split_every)
        ]
    return items[0]


def analyze_parquet(
    path: str | Path,
    client: Any = None,
    *,
    scheduler: str | None = None,
    local_workers: int | None = None,
    config: Config | None = None,
    rules: SessionRules | None = None,
    weights: ScoreWeights | None = None,
    retries: int = 3,
    split_every: int = 8,
    task_bytes: int = 8 << 20,
    reader: Reader = read_partition,
    progress: Progress | None = None,
) -> Result:
    """Analyse an export (:mod:`cemreplay.export`) on a Dask cluster.

    Parameters
    ----------
    path : str or Path
        The export directory; every worker must be able to read it (a shared file system,
        or a path the ``reader`` understands).
    client : distributed.Client, optional
        A connected client. Otherwise ``scheduler`` (an address such as
        ``tcp://10.0.0.5:8786``) or ``local_workers`` (start a local cluster of that many
        single-threaded worker processes on 127.0.0.1; the default, with 2).
    config, rules, weights :
        As for :func:`~cemreplay.detectors.detect`, :func:`~cemreplay.journeys.sessions`
        and :func:`~cemreplay.score.score`.
    retries : int
        Times a task that raised is run again (a lost worker's tasks are always rerun).
    split_every : int
        Fan-in of the tree reductions.
    task_bytes : int
        Partitions are grouped into tasks of about this much Parquet (default 8 MiB, about
        a million events), or less so that every worker gets at least two tasks: each task
        has a fixed cost of about 0.1 s, so tiny tasks waste the cluster. 1 makes one task
        per partition.
    reader : callable
        Partition directory -> event table (default :func:`cemreplay.export.read_partition`).
    progress : callable, optional
        ``progress(done, total)`` as tasks finish (three per task: read, baselines, analysis).

    Examples
    --------
    >>> from cemreplay.distributed import analyze_parquet  # doctest: +SKIP
    >>> r = analyze_parquet("export/", local_workers=2)  # doctest: +SKIP
    >>> r.page_report.head()  # doctest: +SKIP

    Returns
    -------
    Result
    """
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ConfigError(f"split_every must be an int >= 2, got {split_every!r}")
    if isinstance(task_bytes, bool) or not isinstance(task_bytes, int) or task_bytes < 1:
        raise ConfigError(f"task_bytes must be a positive int, got {task_bytes!r}")
    dirs = partitions(path)
    job = _Job(Config.of(config), rules, weights)
    if not dirs:
        empty = _empty_events()
        return _result([], *page_report(empty, detect(empty)), 0, 0)
    with _connect(client, scheduler, local_workers) as c:
        from distributed import as_completed

        # At least two tasks per worker, so that no worker waits on one big task.
        workers = max(1, len(c.scheduler_info().get("workers", {})))
        parts = tasks(dirs, min(task_bytes, max(1, _bytes(dirs) // (2 * workers))))
        futures: list[Any] = []
        try:
            # Each group is read and analysed once; what phase 2 needs of it (a few percent
            # of its rows) stays on its worker (and is made again from its files if that
            # worker is lost).
            firsts = [c.submit(_first, p, reader, job, retries=retries, pure=False) for p in parts]
            phase1 = [c.submit(_baselines, f, retries=retries, pure=False) for f in firsts]
            merged = _tree(c, _merge_baselines, phase1, split_every, retries)
            phase2 = [
                c.submit(_analyze, f, merged, job, retries=retries, pure=False) for f in firsts
            ]
            reports = [c.submit(_pick, f, "report", pure=False) for f in phase2]
            report = _tree(c, _merge_reports, reports, split_every, retries)
            futures = [*firsts, *phase1, *phase2]
            if progress is not None:
                progress(0, len(futures))
                for done, _ in enumerate(as_completed(futures), 1):  # type: ignore[no-untyped-call]
                    progress(done, len(futures))
            outs = c.gather(phase2)
            pages, totals = c.gather(report)
        except BaseException:
            c.cancel(futures)
            raise
    return _result(outs, pages, totals, len(dirs), len(parts))


def _empty_events() -> pl.DataFrame:
    import cemreplay.events as ev

    return ev.empty()


def _result(
    outs: list[dict[str, Any]], pages: pl.DataFrame, totals: pl.DataFrame, n: int, n_tasks: int
) -> Result:
    empty = _empty_events()
    found = [o["findings"] for o in outs] or [detect(empty)]
    tables = [o["sessions"] for o in outs] or [sessions(empty)]
    scored = [o["scores"] for o in outs] or [score(detect(empty))]
    keys = ["session_id", "visitor_id"]
    return Result(
        findings=pl.concat(found).sort(
            "session_id", "t", "kind", "page_view", "target", maintain_order=True
        ),
        sessions=pl.concat(tables).sort("visitor_id", "start", "split_session_id"),
        scores=pl.concat(scored).sort(
            ["score", *keys], descending=[True, False, False], maintain_order=True
        ),
        page_report=pages,
        totals=totals.with_columns(
            partitions=pl.lit(n, dtype=pl.Int64), tasks=pl.lit(n_tasks, dtype=pl.Int64)
        ),
    )


def write_result(result: Result, out: str | Path) -> list[Path]:
    """Write a :class:`Result` as Parquet files in ``out`` (created): ``findings``,
    ``sessions``, ``scores``, ``page_report`` and ``totals``, each ``NAME.parquet``."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("findings", "sessions", "scores", "page_report", "totals"):
        f = d / f"{name}.parquet"
        getattr(result, name).write_parquet(f)
        written.append(f)
    return written
