"""Validity checks: the ways an evaluation can lie, tested on every run.

Each check has a fixed id, returns a :class:`~aisec_lab.scorecard.record.CheckResult` with status
``pass`` / ``warn`` / ``fail`` and its evidence, and is explained in the packaged
``aisec_lab/evaluation/checks.md``. Checks that compare attacks run their own small probes on the same
subset of initially-correct samples (``probe_samples``), independent of the cascade, so they can fire
even though the cascade never runs a weaker attack after a stronger one.

Users add checks with :func:`register_check` (or the ``aisec_lab.checks`` entry-point group).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..attacks import attack
from ..errors import AisecLabError
from ..registry import Registry
from ..scorecard.record import CheckResult
from .metrics import perturbation_norms


def attack_target(target):
    from .engine import attack_target as _attack_target

    return _attack_target(target)

log = logging.getLogger(__name__)

__all__ = ["CHECKS", "register_check", "run_checks", "CheckContext", "list_checks", "DOC"]

CHECKS: Registry = Registry("check", entry_point_group="aisec_lab.checks")
DOC = "aisec_lab/evaluation/checks.md"

# thresholds (fractions of probed samples)
_WARN, _FAIL = 0.01, 0.05


def register_check(check_id: str, *, overwrite: bool = False) -> Callable:
    """Decorator registering ``fn(ctx: CheckContext) -> CheckResult`` under ``check_id``."""

    def deco(fn: Callable) -> Callable:
        CHECKS.register(check_id, fn, overwrite=overwrite)
        return fn

    return deco


def list_checks() -> list[str]:
    return CHECKS.names()


@dataclass
class CheckContext:
    """What a check sees: the target, the evaluated samples and the cascade's records."""

    target: Any
    x: np.ndarray
    y: np.ndarray
    clean_logits: np.ndarray
    clean_correct: np.ndarray
    norm: str
    eps: list
    specs: list
    run: Any
    seed: int = 0
    batch_size: int = 128
    probe_samples: int = 100
    deadline: float | None = None
    _probe: dict = field(default_factory=dict)

    @property
    def headline_eps(self) -> float:
        """The middle positive ε of the sweep (probes run there)."""
        pos = [e for e in self.eps if e > 0]
        return pos[len(pos) // 2] if pos else 0.0

    def probe_index(self) -> np.ndarray:
        """Up to ``probe_samples`` initially-correct samples, drawn with the evaluation seed."""
        if "idx" not in self._probe:
            correct = np.flatnonzero(self.clean_correct)
            rng = np.random.default_rng(self.seed + 1)
            k = min(self.probe_samples, len(correct))
            self._probe["idx"] = np.sort(rng.choice(correct, size=k, replace=False)) if k else correct
        return self._probe["idx"]

    def broken(self, spec, eps: float, idx: np.ndarray | None = None) -> np.ndarray:
        """Per-sample success of ``spec`` at ``eps`` on the probe subset (memoised)."""
        idx = self.probe_index() if idx is None else idx
        key = (spec.label, repr(spec.params()), float(eps), idx.tobytes())
        if key not in self._probe:
            if len(idx) == 0 or eps == 0:
                self._probe[key] = np.zeros(len(idx), dtype=bool)
            else:
                out = []
                for s in range(0, len(idx), self.batch_size):
                    b = idx[s:s + self.batch_size]
                    adv = spec.run(attack_target(self.target), self.x[b], self.y[b], norm=self.norm, eps=eps,
                                   seed=self.seed)
                    out.append(self.target.oracle.logits(np.asarray(adv, np.float32)).argmax(1) != self.y[b])
                self._probe[key] = np.concatenate(out)
        return self._probe[key]


def _doc(check_id: str) -> str:
    return f"{DOC}#{check_id}"


def _result(check_id: str, status: str, summary: str, **evidence: Any) -> CheckResult:
    return CheckResult(id=check_id, status=status, summary=summary, evidence=evidence, doc=_doc(check_id))


def _grade(frac: float) -> str:
    return "fail" if frac > _FAIL else ("warn" if frac > _WARN else "pass")


def _not_applicable(check_id: str, reason: str) -> CheckResult:
    return _result(check_id, "pass", f"not applicable: {reason}", applicable=False, reason=reason)


def _whitebox(ctx: CheckContext):
    """The white-box reference of the probes (shared with `convergence`, so it runs once)."""
    return attack("apgd_ce", max_iter=100)


# -- model-level checks ----------------------------------------------------------------------------
@register_check("logits_output")
def logits_output(ctx: CheckContext) -> CheckResult:
    t = ctx.target
    z = ctx.clean_logits[: min(256, len(ctx.clean_logits))]
    rows_are_probs = bool(len(z)) and bool(np.all(z >= -1e-6) and np.all(z <= 1 + 1e-6)
                                          and np.allclose(z.sum(1), 1, atol=1e-3))
    ev = {"output_type": t.output_type, "logits_from_probabilities": t.logits_from_probabilities,
          "outputs_look_like_probabilities_on_data": rows_are_probs}
    if t.logits_from_probabilities:
        return _result("logits_output", "pass", "model returns probabilities; attacks use their logarithm (logits=False)", **ev)
    if t.output_type == "probabilities" or rows_are_probs:
        return _result("logits_output", "fail" if t.has_gradients else "warn",
                       "the model returns probabilities, not logits: gradient attacks see a saturated softmax and "
                       "under-report attack success; remove the final softmax or wrap with logits=False", **ev)
    return _result("logits_output", "pass", "the model returns logits", **ev)


@register_check("determinism")
def determinism(ctx: CheckContext) -> CheckResult:
    idx = ctx.probe_index()[:64]
    if len(idx) == 0:
        return _not_applicable("determinism", "no correctly classified sample to probe")
    xs = ctx.x[idx]
    outs = [ctx.target.oracle.logits(xs) for _ in range(3)]
    diff = max(float(np.abs(outs[i] - outs[0]).max()) for i in (1, 2))
    scale = float(np.abs(outs[0]).max()) or 1.0
    flips = int(sum((o.argmax(1) != outs[0].argmax(1)).sum() for o in outs[1:]))
    ev = {"max_abs_logit_difference": diff, "relative_difference": diff / scale, "label_flips": flips,
          "n_probed": int(len(idx)), "repeats": 3}
    d = getattr(ctx.target, "defense", None)
    if (flips or diff / scale > 1e-3) and d is not None and d.randomized:
        ev.update(randomized_defense=True, eot_samples=d.eot_samples, adaptive=d.adaptive)
        if d.adaptive and d.eot_samples > 1:
            return _result("determinism", "pass", f"outputs are random because the defense is randomised; the native "
                           f"attacks average {d.eot_samples} draws per gradient (EOT)", **ev)
        return _result("determinism", "fail", "the defense is randomised but the attacks did not use expectation over "
                       "transformation: evaluate with defend(..., adaptive=True, eot_samples>1)", **ev)
    if flips or diff / scale > 1e-3:
        return _result("determinism", "fail", "repeated forward passes on the same input differ: the model (or a "
                       "defense) is randomised, so single-draw attacks are unreliable; use expectation over "
                       "transformation (EOT)", **ev)
    if diff / scale > 1e-5:
        return _result("determinism", "warn", "repeated forward passes differ slightly (numerical noise?)", **ev)
    return _result("determinism", "pass", "repeated forward passes are identical", **ev)


@register_check("gradient_health")
def gradient_health(ctx: CheckContext) -> CheckResult:
    if not ctx.target.has_gradients:
        return _not_applicable("gradient_health", "the target gives no gradients (black-box)")
    idx = ctx.probe_index()
    if len(idx) == 0:
        return _not_applicable("gradient_health", "no correctly classified sample to probe")
    _, grad, _ = ctx.target.oracle.value_and_grad(ctx.x[idx], ctx.y[idx], loss="ce")
    g = grad.reshape(len(idx), -1).astype(np.float64)
    nonfinite = int((~np.isfinite(g)).any(axis=1).sum())
    g = np.where(np.isfinite(g), g, 0.0)
    norms = np.abs(g).max(axis=1)
    zero = int((norms == 0).sum())
    _, grad2, _ = ctx.target.oracle.value_and_grad(ctx.x[idx], ctx.y[idx], loss="margin")
    zero_margin = int((np.abs(grad2.reshape(len(idx), -1)).max(axis=1) == 0).sum())
    ev = {"n_probed": int(len(idx)), "nonfinite_samples": nonfinite, "zero_gradient_samples_ce": zero,
          "zero_gradient_samples_margin": zero_margin,
          "median_abs_max_gradient": float(np.median(norms)) if len(norms) else 0.0}
    frac = max(zero, zero_margin, nonfinite) / len(idx)
    if nonfinite:
        return _result("gradient_health", "fail", f"{nonfinite} of {len(idx)} samples have NaN/Inf input gradients", **ev)
    both_zero = min(zero, zero_margin)
    if both_zero / len(idx) > _FAIL:
        return _result("gradient_health", "fail", f"{both_zero} of {len(idx)} samples have exactly zero input gradients "
                       "(a non-differentiable step such as quantisation, or saturated outputs): gradient attacks are "
                       "blind there; use BPDA or black-box attacks", **ev)
    status = _grade(frac)
    summary = "input gradients are finite and non-zero" if status == "pass" else \
        f"some samples have zero input gradients ({zero} for cross-entropy, {zero_margin} for the margin loss)"
    return _result("gradient_health", status, summary, **ev)


# -- attack comparisons on probes -------------------------------------------------------------------
def _compare(ctx: CheckContext, check_id: str, strong, weak, what: str) -> CheckResult:
    """Per sample, the union of the ``strong`` attacks must break what ``weak`` breaks (on the probe)."""
    eps = ctx.headline_eps
    idx = ctx.probe_index()
    if len(idx) == 0 or eps == 0:
        return _not_applicable(check_id, "no correctly classified sample or no positive ε to probe")
    strong = list(strong) if isinstance(strong, (list, tuple)) else [strong]
    s = np.zeros(len(idx), dtype=bool)
    for spec in strong:
        s |= ctx.broken(spec, eps)
    w = ctx.broken(weak, eps)
    only_weak = int((w & ~s).sum())
    strong_label = " + ".join(spec.label for spec in strong)
    ev = {"eps": eps, "n_probed": int(len(idx)), "strong": strong_label, "weak": weak.label,
          "strong_success": int(s.sum()), "weak_success": int(w.sum()), "broken_only_by_weak": only_weak}
    # a couple of boundary samples differ between any two attacks: warn from 3 samples and > 1 %
    status = _grade(only_weak / len(idx)) if only_weak >= 3 else "pass"
    summary = (f"{strong_label} breaks every probed sample {weak.label} breaks" if only_weak == 0 else
               f"{weak.label} broke {only_weak} of {len(idx)} probed samples that {strong_label} did not"
               + (f": {what}" if status != "pass" else " (within the tolerance for samples on the boundary)"))
    if status == "fail" and _randomized(ctx):
        # each verification is one random draw of the defense: per-sample comparisons are noisy
        status = "warn"
        summary += "; the defense is randomised, so single-draw verification makes this comparison noisy"
        ev["randomized_defense"] = True
    return _result(check_id, status, summary, **ev)


def _randomized(ctx: CheckContext) -> bool:
    d = getattr(ctx.target, "defense", None)
    return d is not None and d.randomized


def _whitebox_set(ctx: CheckContext) -> list:
    """White-box references: APGD-CE (100 steps) and PGD-20 (both run by other probes anyway)."""
    return [_whitebox(ctx), attack("pgd", max_iter=20)]


@register_check("iterative_beats_single_step")
def iterative_beats_single_step(ctx: CheckContext) -> CheckResult:
    if not ctx.target.has_gradients or ctx.norm == "l1":
        return _not_applicable("iterative_beats_single_step", "needs gradients and an L∞/L2 threat model")
    return _compare(ctx, "iterative_beats_single_step", attack("pgd", max_iter=20), attack("fgsm"),
                    "a one-step attack beating an iterative one is a sign of gradient masking")


@register_check("whitebox_beats_blackbox")
def whitebox_beats_blackbox(ctx: CheckContext) -> CheckResult:
    if not ctx.target.has_gradients or ctx.norm == "l1":
        return _not_applicable("whitebox_beats_blackbox", "needs gradients and an L∞/L2 threat model")
    return _compare(ctx, "whitebox_beats_blackbox", _whitebox_set(ctx), attack("square", max_iter=500),
                    "a black-box attack beating a white-box one means the gradients mislead (gradient masking)")


@register_check("whitebox_beats_noise")
def whitebox_beats_noise(ctx: CheckContext) -> CheckResult:
    if not ctx.target.has_gradients or ctx.norm == "l1":
        return _not_applicable("whitebox_beats_noise", "needs gradients and an L∞/L2 threat model")
    return _compare(ctx, "whitebox_beats_noise", _whitebox_set(ctx), attack("uniform_noise", n_trials=20),
                    "random noise beating a gradient attack means the gradients are useless (masking, or a bug)")


@register_check("eps_monotonic")
def eps_monotonic(ctx: CheckContext) -> CheckResult:
    eps = [e for e in ctx.eps if e > 0]
    if len(eps) < 2:
        return _not_applicable("eps_monotonic", "fewer than two positive ε values")
    if ctx.norm == "l1":
        return _not_applicable("eps_monotonic", "probes run for L∞/L2 only")
    spec = attack("pgd", max_iter=20) if ctx.target.has_gradients else attack("square", max_iter=300)
    rates = [float(ctx.broken(spec, e).mean()) for e in eps]
    drops = [(eps[i], eps[i + 1], rates[i] - rates[i + 1]) for i in range(len(eps) - 1) if rates[i + 1] < rates[i]]
    worst = max((d for _, _, d in drops), default=0.0)
    ev = {"attack": spec.label, "eps": eps, "success_rate": rates, "n_probed": int(len(ctx.probe_index())),
          "drops": [{"from_eps": a, "to_eps": b, "drop": d} for a, b, d in drops]}
    status = "pass" if not drops else ("fail" if worst > _FAIL else "warn")
    summary = "attack success does not fall as ε grows" if not drops else \
        f"{spec.label}'s success fell by up to {worst:.1%} as ε grew (run independently at each ε)"
    return _result("eps_monotonic", status, summary, **ev)


@register_check("large_eps")
def large_eps(ctx: CheckContext) -> CheckResult:
    idx = ctx.probe_index()
    if len(idx) == 0:
        return _not_applicable("large_eps", "no correctly classified sample to probe")
    d = int(np.prod(ctx.target.input_shape))
    big = {"linf": 1.0, "l2": float(np.sqrt(d)), "l1": float(d)}[ctx.norm] * ctx.target.clip_range * 0.999
    if ctx.norm == "l1":
        return _not_applicable("large_eps", "probes run for L∞/L2 only")
    spec = attack("pgd", max_iter=50) if ctx.target.has_gradients else attack("square", max_iter=1000)
    broken = ctx.broken(spec, big)
    robust = 1.0 - float(broken.mean())
    ev = {"eps": big, "attack": spec.label, "n_probed": int(len(idx)), "robust_accuracy_on_probe": robust}
    status = "fail" if robust > 0.10 else ("warn" if robust > 0.01 else "pass")
    summary = "an (almost) unbounded attack drives accuracy to zero" if status == "pass" else \
        f"with ε covering the whole input range {robust:.0%} of probed samples still resist: the attack cannot move the model (masking or a bug)"
    return _result("large_eps", status, summary, **ev)


@register_check("convergence")
def convergence(ctx: CheckContext) -> CheckResult:
    eps = ctx.headline_eps
    idx = ctx.probe_index()
    if len(idx) == 0 or eps == 0 or ctx.norm == "l1":
        return _not_applicable("convergence", "no sample, no positive ε, or an L1 threat model")
    if ctx.target.has_gradients:
        base, double = attack("apgd_ce", max_iter=50), attack("apgd_ce", max_iter=100)
    else:
        base, double = attack("square", max_iter=500), attack("square", max_iter=1000)
    a, b = ctx.broken(base, eps), ctx.broken(double, eps)
    gain = float(b.mean() - a.mean())
    ev = {"eps": eps, "n_probed": int(len(idx)), "attack": base.name, "iterations": [base.max_iter, double.max_iter],
          "success_rate": [float(a.mean()), float(b.mean())], "gain": gain}
    status = "fail" if gain > 0.10 else ("warn" if gain > 0.02 else "pass")
    summary = "doubling the iterations does not raise attack success" if status == "pass" else \
        f"doubling the iterations raised success by {gain:.1%}: the attacks have not converged; raise max_iter"
    return _result("convergence", status, summary, **ev)


@register_check("adaptive_defense")
def adaptive_defense(ctx: CheckContext) -> CheckResult:
    d = getattr(ctx.target, "defense", None)
    if d is None:
        return _not_applicable("adaptive_defense", "no preprocessing defense was applied with al.defend")
    rec = d.record()
    ev = {"chain": [c["name"] for c in rec["chain"]], "adaptive": rec["adaptive"], "adaptation": rec["adaptation"],
          "eot_samples": rec["eot_samples"]}
    if not d.adaptive:
        return _result("adaptive_defense", "fail", "the defense was evaluated WITHOUT adaptive attacks (attacks "
                       "crafted on the undefended model): robust accuracy is an upper bound that BPDA/EOT attacks "
                       "usually break; use defend(..., adaptive=True)", **ev)
    return _result("adaptive_defense", "pass", "attacks were adapted to the defense: "
                   + (", ".join(rec["adaptation"]) or "end-to-end gradients through a differentiable defense"), **ev)


@register_check("perturbation_bounds")
def perturbation_bounds(ctx: CheckContext) -> CheckResult:
    run = ctx.run
    discarded = int(run.violations.sum())
    counted = run.first >= 0
    lo, hi = ctx.target.oracle.clip_min, ctx.target.oracle.clip_max
    bad_ball = bad_box = 0
    for ei, e in enumerate(ctx.eps):
        m = counted[ei]
        if not m.any():
            continue
        xa = run.x_adv[ei, m]
        linf, l2 = perturbation_norms(ctx.x[m], xa)
        d = (xa.astype(np.float64) - ctx.x[m].astype(np.float64)).reshape(int(m.sum()), -1)
        size = {"linf": linf, "l2": l2, "l1": np.abs(d).sum(axis=1)}[ctx.norm]
        bad_ball += int((size > e * (1 + 1e-6) + 1e-6).sum())
        bad_box += int((~np.all((xa >= lo - 1e-6) & (xa <= hi + 1e-6), axis=tuple(range(1, xa.ndim)))).sum())
    ev = {"out_of_bounds_outputs_discarded": discarded, "counted_outside_eps_ball": bad_ball,
          "counted_outside_clip_values": bad_box, "n_counted": int(counted.sum())}
    if bad_ball or bad_box or discarded:
        return _result("perturbation_bounds", "fail", "some attack outputs left the ε-ball or the clip box: an attack "
                       "is buggy and the run's numbers are not to be trusted", **ev)
    return _result("perturbation_bounds", "pass", "every adversarial example lies within ε and the clip values", **ev)


def run_checks(ctx: CheckContext) -> list[CheckResult]:
    """Run every registered check; a check that cannot run (error, time budget, Ctrl-C) becomes a ``warn``."""
    import time

    out = []
    stopped = None
    for check_id, fn in CHECKS.items():
        if stopped is None and ctx.deadline is not None and time.monotonic() > ctx.deadline:
            stopped = "the time budget was exhausted"
        if stopped is not None:
            out.append(_result(check_id, "warn", f"not run: {stopped}", applicable=True, run=False))
            continue
        try:
            res = fn(ctx)
        except KeyboardInterrupt:
            stopped = "interrupted (KeyboardInterrupt)"
            out.append(_result(check_id, "warn", f"not run: {stopped}", applicable=True, run=False))
            continue
        except Exception as exc:  # noqa: BLE001 - a failing (plugin) check must not discard a finished evaluation
            log.warning("check %s failed: %s: %s", check_id, type(exc).__name__, exc)
            res = _result(check_id, "warn", f"the check could not run: {type(exc).__name__}: {exc}",
                          error=f"{type(exc).__name__}: {exc}")
        if not isinstance(res, CheckResult):
            raise AisecLabError(f"check {check_id!r} returned {type(res).__name__}, not a CheckResult", got=res,
                                fix="return aisec_lab.scorecard.CheckResult(id=..., status=..., summary=...)")
        out.append(res)
    return out
