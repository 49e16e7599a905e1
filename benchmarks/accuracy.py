"""Per-kind precision and recall of the detectors against synthetic ground truth.

    python benchmarks/accuracy.py [--sessions 100000] [--seed 7] [--tolerance-ms 2000]

A finding matches a truth row of the same session and kind when their times differ by at
most the tolerance. Precision: matched findings / findings; recall: matched truth rows /
truth rows. Planted negatives (``negative:<name>``, e.g. a working stepper clicked fast) must
draw no finding: any finding in that session within the tolerance of one is counted under
``on_negatives``. Prints JSON, then a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import polars as pl

from cemreplay.detectors import KINDS, detect
from cemreplay.synth import generate


def evaluate(findings: pl.DataFrame, truth: pl.DataFrame, tolerance_ms: int) -> dict[str, object]:
    truth = truth.with_columns(pl.col("session_id").cast(pl.String), pl.col("kind").cast(pl.String))
    pos = (
        truth.filter(~pl.col("kind").str.starts_with("negative:"))
        .select("session_id", "kind", pl.col("t").alias("t_truth"))
        .with_row_index("truth_id")
    )
    got = (
        findings.filter(pl.col("kind").is_in(list(KINDS)))
        .select("session_id", "kind", "t")
        .with_row_index("finding_id")
    )
    pairs = got.join(pos, on=["session_id", "kind"]).filter(
        (pl.col("t") - pl.col("t_truth")).abs() <= tolerance_ms
    )
    hit_f = pairs.select("finding_id", "kind").unique()
    hit_t = pairs.select("truth_id", "kind").unique()
    neg = truth.filter(pl.col("kind").str.starts_with("negative:")).select(
        "session_id", pl.col("kind").alias("negative"), pl.col("t").alias("t_neg")
    )
    on_neg = (
        got.join(neg, on="session_id")
        .filter((pl.col("t") - pl.col("t_neg")).abs() <= tolerance_ms)
        .filter(pl.col("kind").is_in(["rage_click", "dead_click", "error_click"]))
    )
    per_kind = {}
    for kind in KINDS:
        n_f = got.filter(pl.col("kind") == kind).height
        n_t = pos.filter(pl.col("kind") == kind).height
        m_f = hit_f.filter(pl.col("kind") == kind).height
        m_t = hit_t.filter(pl.col("kind") == kind).height
        per_kind[kind] = {
            "findings": n_f,
            "truth": n_t,
            "precision": round(m_f / n_f, 4) if n_f else None,
            "recall": round(m_t / n_t, 4) if n_t else None,
        }
    negatives = {
        name: {
            "planted": neg.filter(pl.col("negative") == name).height,
            "findings_near": on_neg.filter(pl.col("negative") == name).height,
        }
        for name in sorted(set(neg["negative"].to_list()))
    }
    return {"kinds": per_kind, "negatives": negatives}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--tolerance-ms", type=int, default=2_000)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    traffic = generate(sessions=args.sessions, seed=args.seed)
    t1 = time.perf_counter()
    findings = detect(traffic.events)
    t2 = time.perf_counter()
    report = evaluate(findings, traffic.truth, args.tolerance_ms)
    report["run"] = {
        "sessions": args.sessions,
        "seed": args.seed,
        "events": traffic.events.height,
        "tolerance_ms": args.tolerance_ms,
        "generate_s": round(t1 - t0, 2),
        "detect_s": round(t2 - t1, 2),
    }
    print(json.dumps(report, indent=2))
    print(f"\n{'kind':<18}{'truth':>8}{'found':>8}{'precision':>11}{'recall':>9}")
    kinds = report["kinds"]
    assert isinstance(kinds, dict)
    for kind, r in kinds.items():
        p = "-" if r["precision"] is None else f"{r['precision']:.3f}"
        rc = "-" if r["recall"] is None else f"{r['recall']:.3f}"
        print(f"{kind:<18}{r['truth']:>8}{r['findings']:>8}{p:>11}{rc:>9}")
    negs = report["negatives"]
    assert isinstance(negs, dict)
    for name, r in negs.items():
        print(f"{name:<26}planted {r['planted']:>6}  findings near {r['findings_near']:>4}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
