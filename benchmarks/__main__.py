"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only ROW ...] [--device cpu|cuda] [--out PATH]``.

Prints one line per row as it finishes and the whole table at the end, and writes the record as JSON
(``benchmarks/results/latest.json``; ``latest-quick.json`` with ``--quick``). Exit code 0 whether targets are
met or missed (a benchmark reports, it does not gate); 1 only when a row itself crashed; 2 for bad arguments.
See benchmarks/README.md for what each row measures.
"""

from __future__ import annotations

import os

# before anything imports tensorflow or torch (see DESIGN.md, "Facts about the stack")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import fnmatch  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from . import suite  # noqa: E402

GROUPS = ("attack_step", "scorecard", "notebook", "training", "scale")


def _load_rows() -> None:
    import importlib

    for g in GROUPS:
        importlib.import_module(f"{__package__}.{g}")


def _select(patterns: list[str] | None) -> list[suite.Row]:
    rows = list(suite.ROWS.values())
    if not patterns:
        return rows
    chosen = [r for r in rows if any(fnmatch.fnmatch(r.id, p) or r.id.startswith(p) for p in patterns)]
    if not chosen:
        raise SystemExit(f"no row matches {patterns}; rows: {', '.join(suite.ROWS)}")
    return chosen


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the smaller suite (`make bench-quick`, a few minutes)")
    p.add_argument("--only", nargs="+", metavar="ROW", help="row ids or prefixes/globs to run (see --list)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: also run the attack-step and scorecard rows on the GPU (when torch sees one)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per contender (default 5; 3 with --quick)")
    p.add_argument("--long-repeats", type=int, default=1,
                   help="timed repeats of the contenders that take minutes per call (default 1)")
    p.add_argument("--art-all-eps", action="store_true",
                   help="P2: run ART's AutoAttack at every eps, not only 0.1 (adds about 25 minutes here)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON record (default benchmarks/results/latest.json, latest-quick.json with --quick)")
    p.add_argument("--list", action="store_true", help="list the rows and exit")
    args = p.parse_args(argv)
    _load_rows()
    if args.list:
        for r in suite.ROWS.values():
            print(f"{r.id:<28} {r.name}  (target {'<=' if r.better == 'lower' else '>='} {r.target:g})")
        return 0
    if (args.repeats is not None and args.repeats < 1) or args.long_repeats < 1:
        p.error("--repeats and --long-repeats must be >= 1")
    rows = _select(args.only)
    out = args.out or suite.RESULTS / ("latest-quick.json" if args.quick else "latest.json")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    ctx = suite.Context(quick=args.quick, device="cpu", repeats=args.repeats or (3 if args.quick else 5),
                        long_repeats=args.long_repeats, art_all_eps=args.art_all_eps)
    cuda = False
    if args.device == "cuda":
        cuda = _cuda_available()
        if not cuda:
            print("--device cuda: torch sees no CUDA device; running on the CPU only", flush=True)

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    print(f"aisec-lab benchmarks ({'quick' if args.quick else 'full'}): {len(rows)} rows, "
          f"{ctx.repeats} timed repeats per contender after a warm-up ({ctx.long_repeats} for minutes-long ones)", flush=True)
    results, cuda_results = [], []
    for r in rows:
        print(f"- {r.id}: {r.name} ...", flush=True)
        res = suite.run_row(r, ctx)
        results.append(res)
        print(f"  {suite.fmt_ratio(res['ratio'])} (target {suite.fmt_target(res)}): {suite.fmt_met(res)}"
              f"  [{res['details'].get('row_wall_s')} s]"
              + (f"  {res['details'].get('reason') or res['details'].get('error')}" if res["status"] != "ok" else ""),
              flush=True)
        if cuda and r.cuda:
            res_cuda = suite.run_row(r, dataclasses.replace(ctx, device="cuda"))
            cuda_results.append(res_cuda)
            print(f"  cuda: {suite.fmt_ratio(res_cuda['ratio'])} ({suite.fmt_met(res_cuda)})", flush=True)

    record = {
        "format_version": suite.FORMAT_VERSION,
        "suite": "quick" if args.quick else "full",
        "command": suite.command_line(),
        "started_utc": started,
        "wall_s": round(time.perf_counter() - t0, 1),
        "machine": suite.machine(),
        "ratio_convention": "every ratio is aisec-lab's figure over the baseline's, measured in the same process "
                            "(median of the timed repeats after a warm-up); each row's 'better' says which side of "
                            "'target' meets it",
        "rows": results,
    }
    if cuda_results:
        record["cuda_rows"] = cuda_results  # absolute GPU figures, kept apart from the CPU rows
    path = suite.write(out, record)
    print()
    print(suite.table(results))
    if cuda_results:
        print("\nCUDA rows (absolute seconds in details.median_s):")
        print(suite.table(cuda_results))
    met = sum(1 for r in results if r["met"])
    missed = sum(1 for r in results if r["status"] == "ok" and not r["met"])
    other = len(results) - met - missed
    print(f"\n{met} met, {missed} missed, {other} skipped/failed; {record['wall_s']:.0f} s; wrote {path}")
    return 1 if any(r["status"] == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
