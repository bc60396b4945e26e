"""Compare two scorecards (paired test on per-sample outcomes) and gate one against thresholds.

:func:`compare` refuses scorecards evaluated on different data or under different threat models:
their numbers would not be comparable. For the clean accuracy and each ε it reports both
accuracies, the difference ``b - a`` and an exact McNemar test: among the samples on which the two
models disagree (one right, the other wrong), a two-sided binomial test of "either model is as likely
to be the one that is right" (``scipy.stats.binomtest(k, n_discordant, 0.5)``). The test needs the
per-sample arrays of both scorecards; without them only the differences are reported.

:func:`gate` turns thresholds into a yes/no with a one-line reason, for CI pipelines
(``aisec-lab gate``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .record import Scorecard

__all__ = ["compare", "Comparison", "ComparisonRow", "gate", "GateResult", "FAIL_ON"]

FAIL_ON = ("fail", "warn", "never")
_SEVERITY = {"pass": 0, "warn": 1, "fail": 2}
_EPS_TOL = 1e-9
_ALPHA = 0.05
TEST_NAME = "exact McNemar test (two-sided binomial test on the discordant pairs)"


def _as_scorecard(sc: Any, name: str) -> Scorecard:
    if isinstance(sc, Scorecard):
        return sc
    if isinstance(sc, (str, os.PathLike)):
        return Scorecard.load(sc)
    raise ConfigError(f"{name} must be a Scorecard or the path of a saved one", got=type(sc).__name__,
                      fix="pass the result of aisec_lab.evaluate or Scorecard.load(path)")


@dataclass(frozen=True)
class ComparisonRow:
    """One metric of a comparison: clean accuracy (``eps is None``) or robust accuracy at one ε."""

    metric: str  # "clean_accuracy" or "robust_accuracy"
    eps: float | None
    eps_display: str | None
    a: float
    b: float
    difference: float  # b - a
    n: int
    a_only: int | None = None  # samples A gets right and B gets wrong
    b_only: int | None = None  # samples B gets right and A gets wrong
    p_value: float | None = None  # exact McNemar, two-sided; None without per-sample data

    @property
    def n_discordant(self) -> int | None:
        return None if self.a_only is None else self.a_only + self.b_only

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "eps": self.eps, "eps_display": self.eps_display, "a": self.a, "b": self.b,
                "difference": self.difference, "n": self.n, "a_only": self.a_only, "b_only": self.b_only,
                "n_discordant": self.n_discordant, "p_value": self.p_value}


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`: differences ``b - a`` per metric with a paired test."""

    a: dict  # {"model", "weights_sha256", "framework"}
    b: dict
    data: dict  # {"name", "split", "n", "sha256"}
    norm: str
    rows: tuple  # ComparisonRow, clean first then ascending ε
    paired: bool  # whether per-sample outcomes were available for the McNemar test
    notes: tuple = ()
    test: str = TEST_NAME

    def row(self, eps: float | None = None) -> ComparisonRow:
        """The clean row (``eps=None``) or the robust row at ``eps``."""
        for r in self.rows:
            if (eps is None and r.eps is None) or (eps is not None and r.eps is not None
                                                   and abs(r.eps - float(eps)) <= _EPS_TOL):
                return r
        raise ConfigError(f"ε={eps} is not part of this comparison", got=eps,
                          fix="use one of: " + ", ".join(f"{r.eps:g}" for r in self.rows if r.eps is not None))

    def to_dict(self) -> dict[str, Any]:
        return {"a": dict(self.a), "b": dict(self.b), "data": dict(self.data), "norm": self.norm,
                "test": self.test if self.paired else None, "paired": self.paired,
                "rows": [r.to_dict() for r in self.rows], "notes": list(self.notes)}

    def summary(self) -> str:
        lines = [f"Comparison: A = {self.a['model']}  vs  B = {self.b['model']}",
                 f"  data {self.data['name']}/{self.data['split']} (n={self.data['n']}, sha256 "
                 f"{str(self.data['sha256'])[:12]}), norm {self.norm}",
                 f"  {'metric':<16} {'eps':<8} {'A':>7} {'B':>7} {'B-A':>8}  {'A only/B only':>13}  {'p':>7}"]
        for r in self.rows:
            name = "clean accuracy" if r.eps is None else "robust accuracy"
            eps = "-" if r.eps is None else str(r.eps_display)
            disc = "-" if r.a_only is None else f"{r.a_only}/{r.b_only}"
            p = "-" if r.p_value is None else f"{r.p_value:.3g}" + ("*" if r.p_value < _ALPHA else "")
            lines.append(f"  {name:<16} {eps:<8} {r.a:>7.4f} {r.b:>7.4f} {r.difference:>+8.4f}  {disc:>13}  {p:>7}")
        if self.paired:
            lines.append(f"  p: {self.test}; * p < {_ALPHA:g}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _mcnemar(ok_a: np.ndarray, ok_b: np.ndarray) -> tuple[int, int, float]:
    from scipy.stats import binomtest

    ok_a = np.asarray(ok_a, dtype=bool)
    ok_b = np.asarray(ok_b, dtype=bool)
    a_only = int(np.sum(ok_a & ~ok_b))
    b_only = int(np.sum(~ok_a & ok_b))
    n_disc = a_only + b_only
    p = 1.0 if n_disc == 0 else float(binomtest(b_only, n_disc, 0.5, alternative="two-sided").pvalue)
    return a_only, b_only, min(p, 1.0)


def _fmt_eps(values) -> str:
    return "[" + ", ".join(f"{float(e):g}" for e in values) + "]"


def _paired_outcomes(sc: Scorecard) -> bool:
    s = sc.samples or {}
    return "clean_correct" in s and "first_attack" in s


def compare(a: Scorecard | str | os.PathLike, b: Scorecard | str | os.PathLike) -> Comparison:
    """Compare scorecard ``b`` with ``a`` (differences are ``b - a``); both on the same data and threat model.

    Raises :class:`~aisec_lab.errors.ConfigError` naming what differs (data fingerprint or size, norm,
    ε list) with both values.
    """
    a = _as_scorecard(a, "a")
    b = _as_scorecard(b, "b")
    fix_data = "compare scorecards evaluated on the same samples (same data set, split, n_samples and seed)"
    da, db = a.data, b.data
    if da.get("sha256") != db.get("sha256") or da.get("n") != db.get("n"):
        def describe(d):
            return f"{d.get('name')}/{d.get('split')} n={d.get('n')} sha256 {str(d.get('sha256'))[:12]}"

        raise ConfigError("the two scorecards were evaluated on different data",
                          got=f"A: {describe(da)}; B: {describe(db)}", fix=fix_data)
    fix_tm = "compare evaluations run with the same norm and ε list (evaluate(..., norm=..., eps=[...]))"
    na, nb = a.threat_model.get("norm"), b.threat_model.get("norm")
    if na != nb:
        raise ConfigError("the two scorecards use different threat models: the norms differ",
                          got=f"A: {na}; B: {nb}", fix=fix_tm)
    ea, eb = a.eps, b.eps
    if len(ea) != len(eb) or any(abs(x - y) > _EPS_TOL for x, y in zip(ea, eb)):
        raise ConfigError("the two scorecards use different threat models: the ε lists differ",
                          got=f"A: {_fmt_eps(ea)}; B: {_fmt_eps(eb)}", fix=fix_tm)

    notes = []
    if a.attacks != b.attacks:
        notes.append(f"the attack lists differ (A: {', '.join(a.attacks)}; B: {', '.join(b.attacks)}): "
                     "robust accuracies are upper bounds against different attack sets")
    for label, sc in (("A", a), ("B", b)):
        if not sc.complete:
            notes.append(f"{label} is incomplete ({sc.incomplete_reason}): its robust accuracies are upper bounds")
    paired = _paired_outcomes(a) and _paired_outcomes(b)
    if paired:
        sa, sb = a.samples, b.samples
        if "y" in sa and "y" in sb and not np.array_equal(np.asarray(sa["y"]), np.asarray(sb["y"])):
            raise ConfigError("the per-sample labels of the two scorecards differ although their data fingerprints "
                              "match", got="different y arrays in the per-sample data",
                              fix="save both scorecards again with Scorecard.save(dir); the per-sample files are stale")
        for key in ("index_sha256",):
            if isinstance(sa.get(key), str) and isinstance(sb.get(key), str) and sa[key] != sb[key]:
                raise ConfigError("the per-sample data of the two scorecards index different samples",
                                  got=f"A: {sa[key][:12]}; B: {sb[key][:12]}", fix=fix_data)
    else:
        missing = [label for label, sc in (("A", a), ("B", b)) if not _paired_outcomes(sc)]
        notes.append(f"no per-sample outcomes for {' and '.join(missing)} (samples.npz not loaded): differences "
                     "only, no paired test (p_value None)")

    n = int(a.clean["n"])
    rows = []
    ca, cb = float(a.clean_accuracy), float(b.clean_accuracy)
    pair = _mcnemar(a.samples["clean_correct"], b.samples["clean_correct"]) if paired else (None, None, None)
    rows.append(ComparisonRow("clean_accuracy", None, None, ca, cb, cb - ca, n, *pair))
    for ei, (ra, rb) in enumerate(zip(a.results, b.results)):
        xa, xb = float(ra["robust_accuracy"]), float(rb["robust_accuracy"])
        if paired:
            pair = _mcnemar(np.asarray(a.samples["first_attack"])[ei] == -1,
                            np.asarray(b.samples["first_attack"])[ei] == -1)
        rows.append(ComparisonRow("robust_accuracy", float(ra["eps"]), ra.get("eps_display", f"{ra['eps']:g}"),
                                  xa, xb, xb - xa, n, *pair))

    def who(sc):
        return {"model": sc.model.get("name"), "framework": sc.model.get("framework"),
                "weights_sha256": sc.model.get("weights_sha256")}

    return Comparison(a=who(a), b=who(b),
                      data={k: da.get(k) for k in ("name", "split", "n", "sha256")},
                      norm=na, rows=tuple(rows), paired=paired, notes=tuple(notes))


# -- gate --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateResult:
    """``ok`` when every threshold is met (equality passes); ``reason`` is one line saying why."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


def _threshold(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must be a fraction in [0, 1]", got=value,
                          fix=f"e.g. {name}=0.4 for 40% (a fraction, not a percent)")
    return float(value)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def gate(sc: Scorecard | str | os.PathLike, *, eps: float | None = None, min_robust_accuracy: float | None = None,
         min_clean_accuracy: float | None = None, fail_on: str = "fail") -> GateResult:
    """Check ``sc`` against thresholds; equality passes.

    ``min_robust_accuracy`` applies at ``eps`` (which must have been evaluated), or at every
    evaluated ε when ``eps`` is None. ``fail_on`` sets the check severity that fails the gate:
    ``"fail"`` (checks that failed), ``"warn"`` (warnings too) or ``"never"``. An incomplete scorecard
    always fails. Raises :class:`~aisec_lab.errors.ConfigError` on a threshold outside [0, 1], an
    unknown ``fail_on`` or an ε that was not evaluated.
    """
    min_rob = _threshold("min_robust_accuracy", min_robust_accuracy)
    min_clean = _threshold("min_clean_accuracy", min_clean_accuracy)
    if fail_on not in FAIL_ON:
        raise ConfigError("fail_on must be 'fail', 'warn' or 'never'", got=fail_on,
                          fix="fail_on='fail' fails on failed checks, 'warn' on warnings too, 'never' ignores checks")
    sc = _as_scorecard(sc, "sc")
    results = [sc._result(eps)] if eps is not None else list(sc.results)
    tol = 1e-12  # k/n and a decimal threshold for the same fraction compare equal
    failures, met = [], []
    if not sc.complete:
        failures.append(f"scorecard is incomplete ({sc.incomplete_reason}); its robust accuracies are upper bounds")
    if min_clean is not None:
        acc = sc.clean_accuracy
        (met if acc >= min_clean - tol else failures).append(
            f"clean accuracy {_fmt(acc)} {'>=' if acc >= min_clean - tol else '<'} {_fmt(min_clean)}")
    if min_rob is not None:
        for r in results:
            acc = float(r["robust_accuracy"])
            ok = acc >= min_rob - tol
            (met if ok else failures).append(
                f"robust accuracy {_fmt(acc)} {'>=' if ok else '<'} {_fmt(min_rob)} at eps={r['eps_display']}")
    if fail_on != "never":
        level = _SEVERITY[fail_on]
        bad = [c for c in sc.checks if _SEVERITY.get(c.status, 2) >= level]
        if bad:
            failures.append(f"{len(bad)} check(s) at or above '{fail_on}': "
                            + ", ".join(f"{c.id} ({c.status})" for c in bad))
        else:
            met.append(f"no check at or above '{fail_on}'")
    if min_rob is None and min_clean is None:
        met.append("no accuracy threshold given")
    n = sc.clean.get("n")
    if failures:
        return GateResult(False, _one_line(f"FAIL: {'; '.join(failures)} (n={n})"))
    return GateResult(True, _one_line(f"PASS: {'; '.join(met)} (n={n})"))


def _one_line(text: str) -> str:
    return " ".join(text.split())
