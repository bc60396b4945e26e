"""The benchmark suite does not rot: bench-quick's smallest row runs end to end and writes a well-formed record.

Benchmarks are not tests (``make bench``); this runs one row of ``python -m benchmarks --quick`` with a single
timed repeat, in a subprocess as a user would, and checks the record's shape, not its figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = "p4_pgd_at_torch"  # the quickest row of bench-quick (one PGD-AT epoch on 512 digits, three ways)


@pytest.mark.pytorch
def test_bench_quick_smallest_row(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", ROW, "--repeats", "1",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert ROW in proc.stdout and "wrote" in proc.stdout  # the table is printed
    record = json.loads(out.read_text())
    assert record["suite"] == "quick"
    assert record["machine"]["cores"] >= 1 and record["machine"]["versions"]["aisec_lab"]
    (r,) = record["rows"]
    assert set(r) >= {"name", "ratio", "target", "met", "baseline", "details", "better", "status"}
    assert r["status"] == "ok", r["details"]
    assert r["better"] == "lower" and r["target"] == 1.15
    assert r["ratio"] > 0 and isinstance(r["met"], bool) and r["met"] == (r["ratio"] <= r["target"])
    d = r["details"]
    assert set(d["median_s"]) == {"aisec-lab", "hand-written", "aisec-lab fit()"}
    assert d["n_train"] == 512 and all(v > 0 for v in d["median_s"].values())
    # both sides really trained: a finite adversarial training loss
    assert all(0.0 < v < 10.0 for v in d["train_loss_last_epoch"].values())
