"""compare (paired McNemar test) and gate (thresholds -> exit code), on the small real scorecard fixture."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

import aisec_lab as al
from aisec_lab.cli import main
from aisec_lab.scorecard import CheckResult
from aisec_lab.scorecard.compare import Comparison, GateResult, compare, gate

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "scorecard_small.json"


@pytest.fixture(scope="module")
def base():
    return al.Scorecard.load(FIXTURE)


def _copy(sc: al.Scorecard, samples: bool = True) -> al.Scorecard:
    return al.Scorecard.from_dict(copy.deepcopy(sc.to_dict()),
                                  {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sc.samples.items()}
                                  if samples else None)


def _variant(sc: al.Scorecard, ei: int, lose: int, gain: int = 0) -> al.Scorecard:
    """A copy where, at ε index ``ei``, ``lose`` robust samples become broken and ``gain`` broken ones robust."""
    b = _copy(sc)
    first = b.samples["first_attack"]
    robust = np.flatnonzero(first[ei] == -1)
    broken = np.flatnonzero(first[ei] >= 0)
    first[ei, robust[:lose]] = 0
    first[ei, broken[:gain]] = -1
    r = b.results[ei]
    r["n_robust"] = int((first[ei] == -1).sum())
    r["robust_accuracy"] = r["n_robust"] / b.clean["n"]
    b.model["name"] = "variant"
    return b


def _write(tmp_path: Path, name: str, sc: al.Scorecard) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(sc.to_dict(), indent=2, sort_keys=True))
    if sc.samples:
        np.savez(tmp_path / f"{name}_samples.npz", **{k: np.asarray(v) for k, v in sc.samples.items()})
    return path


# -- compare -------------------------------------------------------------------------------------------
def test_compare_with_itself_has_no_differences(base):
    c = compare(base, _copy(base))
    assert isinstance(c, Comparison) and c.paired
    assert [r.eps for r in c.rows] == [None, 0.05, 0.1, 0.2]
    for r in c.rows:
        assert r.difference == 0 and r.a_only == 0 and r.b_only == 0 and r.p_value == 1.0
    with pytest.raises(Exception):  # frozen
        c.norm = "l2"


def test_compare_reports_difference_and_exact_mcnemar(base):
    b = _variant(base, ei=1, lose=6)
    c = compare(base, b)
    row = c.row(0.1)
    assert row.a == pytest.approx(35 / 60) and row.b == pytest.approx(29 / 60)
    assert row.difference == pytest.approx(-6 / 60)
    assert (row.a_only, row.b_only, row.n_discordant) == (6, 0, 6)
    assert row.p_value == pytest.approx(2 * 0.5 ** 6) == pytest.approx(binomtest(0, 6, 0.5).pvalue)
    assert c.row(None).p_value == 1.0 and c.row(0.05).difference == 0
    mixed = compare(base, _variant(base, ei=1, lose=5, gain=1)).row(0.1)
    assert (mixed.a_only, mixed.b_only) == (5, 1)
    assert mixed.p_value == pytest.approx(binomtest(1, 6, 0.5).pvalue) == pytest.approx(0.21875)
    reverse = compare(b, base).row(0.1)
    assert reverse.difference == pytest.approx(6 / 60) and reverse.p_value == row.p_value
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["rows"][2]["p_value"] == pytest.approx(0.03125) and d["a"]["model"] == "digits_cnn (pytorch)"
    text = c.summary()
    assert "A = digits_cnn (pytorch)" in text and "B = variant" in text and "-0.1000" in text and "0.0312*" in text


def test_compare_without_samples_reports_differences_only(base):
    c = compare(_copy(base, samples=False), _variant(base, ei=1, lose=6))
    assert not c.paired
    assert c.row(0.1).difference == pytest.approx(-0.1)
    assert all(r.p_value is None and r.a_only is None for r in c.rows)
    assert any("no per-sample outcomes for A" in n for n in c.notes)
    assert "no paired test" in c.summary()


def test_compare_refuses_different_data(base):
    other = _copy(base)
    other.data["sha256"] = "f" * 64
    with pytest.raises(al.ConfigError, match="different data") as info:
        compare(base, other)
    assert "A: digits/test n=60 sha256 d2a22e132503" in str(info.value) and "B: digits/test n=60 sha256 ffffff" in str(info.value)
    other = _copy(base)
    other.data["n"] = 59
    with pytest.raises(al.ConfigError, match="different data.*n=60.*n=59"):
        compare(base, other)


def test_compare_refuses_different_threat_models(base):
    other = _copy(base)
    other.threat_model["norm"] = "l2"
    with pytest.raises(al.ConfigError, match="norms differ; got A: linf; B: l2"):
        compare(base, other)
    other = _copy(base)
    other.threat_model["eps"] = [0.05, 0.1, 0.3]
    for r, e in zip(other.results, other.threat_model["eps"]):
        r["eps"] = e
    with pytest.raises(al.ConfigError, match=r"ε lists differ; got A: \[0.05, 0.1, 0.2\]; B: \[0.05, 0.1, 0.3\]"):
        compare(base, other)
    with pytest.raises(al.ConfigError, match="must be a Scorecard"):
        compare(base, 3)


def test_compare_notes_different_attacks_and_incomplete(base):
    other = _copy(base)
    other.complete, other.incomplete_reason = False, "time budget of 1 s exhausted"
    c = compare(base, other)
    assert any("B is incomplete" in n for n in c.notes)


# -- gate ------------------------------------------------------------------------------------------------
def test_gate_thresholds_and_equality(base):
    ok = gate(base, eps=0.1, min_robust_accuracy=0.4)
    assert isinstance(ok, GateResult) and ok.ok and bool(ok)
    assert ok.reason.startswith("PASS: robust accuracy 0.583333 >= 0.4 at eps=0.1") and "\n" not in ok.reason
    assert gate(base, eps=0.1, min_robust_accuracy=35 / 60).ok  # equality passes
    assert gate(base, eps=0.1, min_robust_accuracy=0.5833333333333334, min_clean_accuracy=1.0).ok
    low = gate(base, eps=0.1, min_robust_accuracy=0.6)
    assert not low.ok and low.reason == "FAIL: robust accuracy 0.583333 < 0.6 at eps=0.1 (n=60)"
    every = gate(base, min_robust_accuracy=0.5)  # no eps: every evaluated ε
    assert not every.ok and "at eps=0.2" in every.reason and "eps=0.1" not in every.reason
    assert gate(base, min_clean_accuracy=1.0).ok  # clean accuracy is exactly 1.0
    assert gate(base).ok  # no thresholds: checks and completeness only


@pytest.mark.parametrize("bad", [-0.1, 1.5, 40, math.nan, math.inf, True, "0.4"])
def test_gate_refuses_thresholds_outside_unit_interval(base, bad):
    with pytest.raises(al.ConfigError, match=r"must be a fraction in \[0, 1\]"):
        gate(base, eps=0.1, min_robust_accuracy=bad)
    with pytest.raises(al.ConfigError, match=r"min_clean_accuracy must be a fraction in \[0, 1\]"):
        gate(base, min_clean_accuracy=bad)


def test_gate_bad_eps_and_fail_on(base):
    with pytest.raises(al.ConfigError, match="ε=0.3 was not evaluated"):
        gate(base, eps=0.3, min_robust_accuracy=0.1)
    with pytest.raises(al.ConfigError, match="fail_on must be"):
        gate(base, fail_on="error")


def test_gate_checks_by_severity_and_incomplete(base):
    sc = _copy(base)
    sc.checks[0] = CheckResult(id="convergence", status="warn", summary="more iterations help")
    assert gate(sc, eps=0.1, min_robust_accuracy=0.4).ok  # fail_on="fail" by default
    warn = gate(sc, eps=0.1, min_robust_accuracy=0.4, fail_on="warn")
    assert not warn.ok and "convergence (warn)" in warn.reason
    sc.checks[1] = CheckResult(id="determinism", status="fail", summary="outputs change")
    failed = gate(sc, eps=0.1, min_robust_accuracy=0.4)
    assert not failed.ok and "determinism (fail)" in failed.reason and "convergence" not in failed.reason
    assert gate(sc, eps=0.1, min_robust_accuracy=0.4, fail_on="never").ok
    sc.complete, sc.incomplete_reason = False, "interrupted\n(KeyboardInterrupt)"
    inc = gate(sc, eps=0.1, min_robust_accuracy=0.4, fail_on="never")
    assert not inc.ok and "incomplete (interrupted (KeyboardInterrupt))" in inc.reason and "\n" not in inc.reason


# -- CLI -------------------------------------------------------------------------------------------------
def _gate(capsys, *args) -> tuple[int, list[str]]:
    rc = main(["gate", *map(str, args)])
    return rc, capsys.readouterr().out.splitlines()


def test_cli_gate_exit_codes_with_one_line(capsys, tmp_path):
    rc, out = _gate(capsys, FIXTURE, "--eps", "0.1", "--min-robust-accuracy", "0.4")
    assert rc == 0 and len(out) == 1 and out[0].startswith("PASS: robust accuracy 0.583333 >= 0.4")
    rc, out = _gate(capsys, FIXTURE, "--eps", "0.1", "--min-robust-accuracy", "0.5833333333333334")
    assert rc == 0 and len(out) == 1
    rc, out = _gate(capsys, FIXTURE, "--eps", "0.1", "--min-robust-accuracy", "0.6", "--min-clean-accuracy", "0.9")
    assert rc == 1 and out == ["FAIL: robust accuracy 0.583333 < 0.6 at eps=0.1 (n=60)"]
    rc, out = _gate(capsys, FIXTURE, "--eps", "0.1", "--min-robust-accuracy", "1.5")
    assert rc == 2 and len(out) == 1 and out[0].startswith("ERROR: min_robust_accuracy must be a fraction in [0, 1]")
    rc, out = _gate(capsys, FIXTURE, "--eps", "0.1", "--min-clean-accuracy", "-0.1")
    assert rc == 2 and len(out) == 1 and "min_clean_accuracy" in out[0]
    rc, out = _gate(capsys, FIXTURE, "--eps", "0.3", "--min-robust-accuracy", "0.4")
    assert rc == 2 and len(out) == 1 and "ε=0.3 was not evaluated" in out[0]
    truncated = tmp_path / "scorecard.json"
    truncated.write_text(FIXTURE.read_text()[:500])
    rc, out = _gate(capsys, truncated, "--eps", "0.1", "--min-robust-accuracy", "0.4")
    assert rc == 2 and len(out) == 1 and "not valid JSON" in out[0]
    rc, out = _gate(capsys, tmp_path / "nothing.json", "--min-robust-accuracy", "0.4")
    assert rc == 2 and len(out) == 1 and "no scorecard file found" in out[0]


def test_cli_gate_fail_on(capsys, tmp_path):
    sc = _copy(al.Scorecard.load(FIXTURE))
    sc.checks[0] = CheckResult(id="convergence", status="warn", summary="more iterations help")
    path = _write(tmp_path, "warned", sc)
    assert _gate(capsys, path, "--eps", "0.1", "--min-robust-accuracy", "0.4")[0] == 0
    rc, out = _gate(capsys, path, "--eps", "0.1", "--min-robust-accuracy", "0.4", "--fail-on", "warn")
    assert rc == 1 and len(out) == 1 and "convergence (warn)" in out[0]


def test_cli_compare(capsys, tmp_path, base):
    a = _write(tmp_path, "a", base)
    b = _write(tmp_path, "b", _variant(base, ei=1, lose=6))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "B = variant" in out and "McNemar" in out
    assert main(["compare", str(a), str(b), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["paired"] and d["rows"][2]["difference"] == pytest.approx(-0.1)
    other = _copy(base)
    other.threat_model["norm"] = "l2"
    c = _write(tmp_path, "c", other)
    assert main(["compare", str(a), str(c)]) == 2
    assert "norms differ" in capsys.readouterr().err
