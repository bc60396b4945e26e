"""Issue #6 acceptance measurement: pgd_at (or --recipe) on digits_cnn (torch and Keras) at eps = 0.1 L-inf.

Trains each framework's reference model with ``pgd_at`` and compares the ``standard``-preset scorecards on
300 test digits before and after (exact McNemar test on the paired outcomes). Targets: robust accuracy
+25 points or more, clean accuracy down at most 2 points, Keras within 3 points of torch.

    python -m benchmarks.adversarial_training                     # both frameworks, 20 epochs, cosine lr
    python -m benchmarks.adversarial_training --epochs 30 --frameworks tensorflow

Writes benchmarks/results/adversarial_training.json (and prints a table). Heavy (minutes): not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

RESULTS = Path(__file__).resolve().parent / "results"


def run(framework: str, args) -> dict:
    import aisec_lab as al

    train = al.load_dataset("digits", split="train")
    test = al.load_dataset("digits", split="test")
    target = al.zoo.target("digits_cnn", framework=framework)
    recipe = al.recipes.get(args.recipe, eps=args.eps, epochs=args.epochs, lr_schedule=args.lr_schedule,
                            patience=None, seed=args.seed)
    t0 = time.perf_counter()
    res = recipe.fit(target, train, test_data=test, eval_n_samples=args.n_samples, progress=False)
    wall = time.perf_counter() - t0
    train_s = sum(h["time_s"] for h in res.history)
    before, after = res.scorecard_before, res.scorecard_after
    row = {
        "framework": framework, "recipe": recipe.params(), "epochs_run": res.epochs_run, "best_epoch": res.best_epoch,
        "train_time_s": round(train_s, 1), "wall_time_s": round(wall, 1),
        "clean_before": before.clean_accuracy, "clean_after": after.clean_accuracy,
        "robust_before": before.robust_accuracy(args.eps), "robust_after": after.robust_accuracy(args.eps),
        "robust_after_ci": list(after.robust_accuracy_ci(args.eps)),
        "p_value": res.comparison.rows[1].p_value, "checks_after": after.status,
    }
    row["robust_gain"] = row["robust_after"] - row["robust_before"]
    row["clean_drop"] = row["clean_before"] - row["clean_after"]
    row["met"] = row["robust_gain"] >= 0.25 and row["clean_drop"] <= 0.02
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", nargs="+", default=["pytorch", "tensorflow"])
    p.add_argument("--recipe", default="pgd_at", choices=["pgd_at", "trades", "fast_at"])
    p.add_argument("--out", default="adversarial_training.json", help="file name under benchmarks/results/")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--lr-schedule", default="cosine", choices=["constant", "cosine"])
    p.add_argument("--n-samples", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rows = [run(fw, args) for fw in args.frameworks]
    print(f"{'framework':<11} {'epochs':>6} {'train s':>8} {'clean':>13} {'robust (standard)':>19} {'gain':>6} {'met':>4}")
    for r in rows:
        print(f"{r['framework']:<11} {r['epochs_run']:>6} {r['train_time_s']:>8} "
              f"{r['clean_before']:.3f}->{r['clean_after']:.3f} {r['robust_before']:>9.3f}->{r['robust_after']:.3f} "
              f"{r['robust_gain']:>+6.3f} {str(r['met']):>5}")
    if len(rows) == 2:
        gap = abs(rows[0]["robust_after"] - rows[1]["robust_after"])
        print(f"robust accuracy gap between frameworks: {gap:.3f} (target <= 0.03)")
    import numpy as np
    import aisec_lab as al

    RESULTS.mkdir(exist_ok=True)
    out = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                       "aisec_lab": al.__version__, "platform": platform.platform()},
           "command": "python -m benchmarks.adversarial_training " + " ".join(sys.argv[1:] if argv is None else argv),
           "rows": rows}
    (RESULTS / args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
