"""Markdown tables of a benchmark record, for benchmarks/README.md: ``python -m benchmarks.report [latest.json]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .suite import RESULTS, fmt_met, fmt_ratio, fmt_target


def _r(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def markdown(record: dict) -> str:
    m = record["machine"]
    v = m["versions"]
    lines = [
        f"Suite `{record['suite']}`, run {record['started_utc']} in {record['wall_s'] / 60:.1f} min: "
        f"`{record['command']}`",
        "",
        f"Machine: {m['cores']} cores ({m.get('cpu') or 'unknown CPU'}), {m.get('memory_gb')} GB, {m['platform']}; "
        f"Python {v['python']}, torch {v.get('torch')}, tensorflow {v.get('tensorflow')}, keras {v.get('keras')}, "
        f"ART {v.get('art')}, torchattacks {v.get('torchattacks')}, numpy {v.get('numpy')}, aisec-lab {v['aisec_lab']}.",
        "",
        "| row | ratio | target | met | baseline |",
        "|---|---:|---:|:---:|---|",
    ]
    for r in record["rows"]:
        note = r["baseline"] if r["status"] == "ok" else r["details"].get("reason") or r["details"].get("error", "")
        lines.append(f"| {r['name']} | {fmt_ratio(r['ratio'])} | {fmt_target(r).replace('<=', '≤').replace('>=', '≥')} "
                     f"| {fmt_met(r)} | {note} |")
    p1 = [r for r in record["rows"] if r["id"].startswith("p1_") and r["status"] == "ok"]
    if p1:
        lines += ["", "P1 in detail (each contender's time over the best hand-written loop's; lower is faster):", "",
                  "| row | aisec-lab | aisec-lab same work | ART defaults | ART best batch | torchattacks "
                  "| aisec-lab auto setting | hand-written best |",
                  "|---|---:|---:|---:|---:|---:|---|---|"]
        for r in p1:
            d = r["details"]
            q = d["ratio_to_hand_written"]
            s = d["settings"]
            lines.append(f"| {r['name']} | {_r(q.get('aisec-lab'))} | {_r(q.get('aisec-lab same work'))} "
                         f"| {_r(q.get('ART defaults'))} | {_r(q.get('ART best batch'))} | {_r(q.get('torchattacks'))} "
                         f"| {s['aisec-lab (auto)']} | {s['hand-written (best)']} |")
    p2 = next((r for r in record["rows"] if r["id"] == "p2_standard_vs_autoattack" and r["status"] == "ok"), None)
    if p2:
        d = p2["details"]
        ra = d["robust_accuracy"]
        eps = [str(e) for e in d["eps"]]
        lines += ["", "P2 robust accuracy (300 digits, digits_cnn, L∞) and time:", "",
                  "| | " + " | ".join(f"ε={e}" for e in eps) + " | seconds |", "|---|" + "---:|" * (len(eps) + 1)]
        art = d["art_autoattack"]
        secs = {"aisec-lab": d["median_s"]["aisec-lab"], "torchattacks": d["median_s"]["torchattacks"],
                "ART": art.get("total_s")}
        for k in ra:
            cells = " | ".join("not run" if ra[k].get(e) is None else f"{ra[k][e]:.4f}" for e in eps)
            sec = secs.get(k)
            lines.append(f"| {k} | {cells} | {'-' if sec is None else f'{sec:.1f}'} |")
        if "ART" not in ra:
            lines.append(f"| ART | {art['status']} |" + " |" * len(eps))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    p.add_argument("path", nargs="?", type=Path, default=RESULTS / "latest.json")
    args = p.parse_args(argv)
    print(markdown(json.loads(args.path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
