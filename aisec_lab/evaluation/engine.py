"""The cascade evaluation engine behind :func:`aisec_lab.evaluate`.

For each ε (ascending): the clean predictions are computed once; attacks run cheap -> expensive, each
only on the samples still standing; a sample broken at ε stays broken at every larger ε (its
adversarial example is reused, not recomputed). ``exhaustive=True`` also runs every attack on every
initially-correct sample for per-attack numbers. Every adversarial example is re-verified by the
engine (prediction, ε-ball, clip box) before it counts. Runs are resumable (``state_dir``) and
bounded (``time_budget_s``, Ctrl-C): a stopped run returns a scorecard marked incomplete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..attacks import resolve_attacks
from ..attacks.spec import AttackSpec, normalize_norm
from ..data.dataset import Dataset, from_arrays
from ..errors import AisecLabError, ConfigError
from ..scorecard.record import Scorecard
from .batching import choose_batch_size
from .metrics import CI_LEVEL, CI_METHOD, eps_display, perturbation_norms, proportion_ci, validate_eps
from .state import EvaluationState

log = logging.getLogger(__name__)

__all__ = ["evaluate"]

_BOUND_RTOL = 1e-6
_BOUND_ATOL = 1e-6


@dataclass
class _Run:
    """Mutable bookkeeping of one evaluation (everything the state file stores)."""

    n: int
    n_eps: int
    n_attacks: int
    shape: tuple
    first: np.ndarray = None  # (E, n) int: attack index that broke the sample first, -1 robust, -2 clean wrong
    by_attack: np.ndarray = None  # (A, E, n) bool
    linf: np.ndarray = None  # (E, n) norms of the counted adversarial example (NaN if none)
    l2: np.ndarray = None
    adv_pred: np.ndarray = None  # (E, n)
    x_adv: np.ndarray = None  # (E, n, *shape) float32 (clean x where none)
    violations: np.ndarray = None  # (A, E) int: out-of-bounds outputs discarded
    minimal_cache: dict = field(default_factory=dict)  # attack index -> (mask (n,), x_adv (n, *shape))
    done: set = field(default_factory=set)  # {(eps index, attack index)}
    cost: dict = field(default_factory=dict)  # attack label -> {"time_s", "queries", ...}
    step_cost: dict = field(default_factory=dict)  # "ei:ai" -> {"time_s", "queries", "samples_attacked"}

    def init(self, x: np.ndarray, clean_correct: np.ndarray, clean_pred: np.ndarray) -> None:
        E, A, n = self.n_eps, self.n_attacks, self.n
        self.first = np.full((E, n), -1, dtype=np.int64)
        self.first[:, ~clean_correct] = -2
        self.by_attack = np.zeros((A, E, n), dtype=bool)
        self.linf = np.full((E, n), np.nan)
        self.l2 = np.full((E, n), np.nan)
        self.adv_pred = np.tile(clean_pred, (E, 1))
        self.x_adv = np.repeat(x[None], E, axis=0).astype(np.float32)
        self.violations = np.zeros((A, E), dtype=np.int64)

    def inherit(self, ei: int) -> None:
        """A sample broken at ε_{ei-1} is broken at ε_ei by the same example."""
        if ei == 0:
            return
        prev = self.first[ei - 1] >= 0
        self.first[ei, prev] = self.first[ei - 1, prev]
        self.by_attack[:, ei] |= self.by_attack[:, ei - 1]
        for arr in (self.linf, self.l2, self.adv_pred):
            arr[ei, prev] = arr[ei - 1, prev]
        self.x_adv[ei, prev] = self.x_adv[ei - 1, prev]


class _Stop(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _as_dataset(data: Any, target: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return from_arrays(data[0], data[1], nb_classes=target.nb_classes, name="arrays")
    raise ConfigError("data must be a Dataset or an (x, y) pair", got=type(data).__name__,
                      fix="use al.load_dataset(...) or al.from_arrays(x, y)")


def _project(x: np.ndarray, x_adv: np.ndarray, norm: str, eps: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Project ``x_adv`` onto the ε-ball around ``x`` intersected with the clip box (for minimum-norm attacks)."""
    from ..attacks.kernels._common import project

    lo64 = np.broadcast_to(np.asarray(lo, dtype=np.float64), x.shape)
    hi64 = np.broadcast_to(np.asarray(hi, dtype=np.float64), x.shape)
    return project(x, x_adv, norm, eps, lo64, hi64)


def _targets_for(spec: AttackSpec, clean_logits: np.ndarray, y: np.ndarray, idx: np.ndarray,
                 rng: np.random.Generator) -> list[np.ndarray | None]:
    """Target classes for a targeted spec, one array per run (``top`` gives several)."""
    if not spec.targeted:
        return [None]
    k = clean_logits.shape[1]
    z = clean_logits[idx]
    yi = y[idx]
    mode = spec.target
    if isinstance(mode, str):
        if mode == "random":
            offs = rng.integers(1, k, size=len(idx))
            return [(yi + offs) % k]
        masked = np.where(np.arange(k)[None, :] == yi[:, None], -np.inf, z)
        if mode == "least_likely":
            masked = np.where(np.arange(k)[None, :] == yi[:, None], np.inf, z)
            return [masked.argmin(axis=1)]
        order = np.argsort(-masked, axis=1)  # "top": most likely wrong classes first
        return [order[:, j] for j in range(min(spec.n_target_classes, k - 1))]
    arr = np.asarray(mode, dtype=np.int64)
    if arr.shape != (len(clean_logits),):
        raise ConfigError(f"{spec.name}: target array must hold one class per evaluated sample",
                          got=f"shape {arr.shape} for {len(clean_logits)} samples",
                          fix="pass target=... with one label per sample of the evaluated data (after n_samples)")
    if arr.min() < 0 or arr.max() >= k:
        raise ConfigError(f"{spec.name}: target classes outside [0, {k})", got=(int(arr.min()), int(arr.max())),
                          fix="pass valid class labels")
    if np.any(arr[idx] == yi):
        raise ConfigError(f"{spec.name}: some target classes equal the true labels",
                          got=int(np.sum(arr[idx] == yi)), fix="targets must differ from the true labels")
    return [arr[idx]]


def _fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def evaluate(
    target: Any,
    data: Any,
    *,
    attacks: Any = "standard",
    norm: Any = "linf",
    eps: Any = (8 / 255,),
    n_samples: int | None = None,
    seed: int = 0,
    exhaustive: bool = False,
    checks: bool = True,
    state_dir: str | os.PathLike | None = None,
    time_budget_s: float | None = None,
    batch_size: int | str = "auto",
    progress: bool = True,
    probe_samples: int = 100,
    notebook_parameters: dict | None = None,
    detector: Any = None,
    sections: Any = None,
    train_data: Any = None,
    section_params: dict | None = None,
) -> Scorecard:
    """Attack ``target`` on ``data`` over an ε sweep; return a :class:`~aisec_lab.Scorecard`.

    Parameters
    ----------
    attacks:
        A preset name (``"quick"``, ``"standard"``, ``"thorough"``) or a list of attack names and/or
        specs (``al.attack("square", max_iter=2000)``).
    norm:
        ``"linf"``, ``"l2"`` or ``"l1"`` (ART's ``np.inf``, ``2``, ``1`` are accepted).
    eps:
        One ε or a list, in the model's input scale (not pixel units).
    n_samples:
        Evaluate a stratified sample of this size drawn with ``seed`` (``None``: all of ``data``).
    exhaustive:
        Also run every attack on every initially-correct sample, for per-attack robust accuracy.
    checks:
        Run the validity checks (on by default; a scorecard without them says so).
    state_dir:
        Folder for resumable state: saved after each attack and ε; re-running with the same
        arguments continues where it stopped.
    time_budget_s:
        Stop after this many seconds (checked between batches) and return a partial scorecard
        marked incomplete. Ctrl-C does the same.
    batch_size:
        Samples per attack call; ``"auto"`` times a few sizes on the target and keeps the fastest.
    detector:
        A trained adversarial-input detector (``al.defenses.train_detector``): the scorecard gets a
        ``detection`` section with its false-positive rate on the clean samples and its detection rate
        on this evaluation's adversarial examples per ε (the attacks do not know about the detector).

    sections:
        Further questions answered on the same target and samples: ``"certified"`` (randomized
        smoothing), ``"privacy"`` (membership inference; needs ``train_data``), ``"backdoor"``
        (poisoning scan of ``train_data``); see :mod:`aisec_lab.sections`. Read with ``sc.section(name)``.
    train_data:
        The data the model was trained on (a Dataset or ``(x, y)``), for the sections that need it.
    section_params:
        ``{section name: {parameter: value}}``, e.g. ``{"certified": {"sigma": 0.25}}``.

    A target built by :func:`aisec_lab.defend` is evaluated adaptively (BPDA / EOT) unless it was built
    with ``adaptive=False``; the scorecard's ``defense`` section records what was applied.
    """
    from ..defenses.detectors import Detector

    if detector is not None and not isinstance(detector, Detector):
        raise ConfigError("detector must be a trained Detector", got=type(detector).__name__,
                          fix="train one with al.defenses.train_detector(target, train_data, eps=...)")
    started = time.perf_counter()
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    norm = normalize_norm(norm)
    ds = _as_dataset(data, target)
    target.check_data(ds)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed must be a non-negative integer", got=seed, fix="e.g. seed=0")
    eps_list = validate_eps(eps, norm=norm, clip_range=target.clip_range, input_size=int(np.prod(target.input_shape)))
    from ..sections import normalize_sections

    section_pairs = normalize_sections(sections, section_params, train_data)
    train_ds = None
    if train_data is not None:
        train_ds = _as_dataset(train_data, target)
        target.check_data(train_ds, what="train_data")
    specs, preset, skipped = resolve_attacks(attacks, norm=norm, target=target)
    if n_samples is not None:
        ds = ds.stratified_sample(n_samples, seed=int(seed))
    if time_budget_s is not None and (isinstance(time_budget_s, bool) or not isinstance(time_budget_s, (int, float))
                                      or not time_budget_s > 0):
        raise ConfigError("time_budget_s must be a positive number of seconds", got=time_budget_s, fix="e.g. 600")
    oracle = target.oracle
    if batch_size == "auto":
        bs, threads = choose_batch_size(target, ds.n)
    elif isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool) and batch_size >= 1:
        bs, threads = int(batch_size), None
    else:
        raise ConfigError("batch_size must be 'auto' or a positive integer", got=batch_size, fix="e.g. batch_size=128")
    with oracle.threads(threads):
        sc = _evaluate(target, ds, specs, preset, skipped, norm, eps_list, bs=bs, threads=threads,
                         seed=int(seed), exhaustive=exhaustive, checks=checks, state_dir=state_dir,
                         time_budget_s=time_budget_s, progress=progress, probe_samples=probe_samples,
                         notebook_parameters=notebook_parameters, started=started, started_at=started_at)
    if detector is not None:
        sc.detection = detector.evaluate(sc)
    if section_pairs:
        from ..sections import SectionContext, run_sections

        ctx = SectionContext(target=target, data=ds, train_data=train_ds, seed=int(seed), norm=norm,
                             eps=list(eps_list), progress=progress)
        sc.sections, extra_checks = run_sections(section_pairs, ctx)
        sc.checks = list(sc.checks) + list(extra_checks)
    return sc


def _evaluate(target, ds, specs, preset, skipped, norm, eps_list, *, bs, threads, seed, exhaustive, checks,
              state_dir, time_budget_s, progress, probe_samples, notebook_parameters, started, started_at):
    x = np.ascontiguousarray(ds.x, dtype=np.float32)
    y = np.asarray(ds.y, dtype=np.int64)
    n = len(x)
    oracle = target.oracle

    clean_logits = np.concatenate([oracle.logits(x[i:i + bs]) for i in range(0, n, bs)]) if n else np.zeros((0, target.nb_classes))
    clean_pred = clean_logits.argmax(axis=1)
    clean_correct = clean_pred == y
    lo, hi = oracle.clip_min, oracle.clip_max

    threat_model = {
        "norm": norm,
        "eps": eps_list,
        "eps_display": [eps_display(e, target.clip_range) for e in eps_list],
        "preset": preset,
        "attacks": [{"name": s.name, "label": s.label, "params": s.params(), "knowledge": s.knowledge,
                     "needs": s.needs, "implementation": "art" if norm == "l1" else s.implementation,
                     "minimal_norm": s.minimal, "reference": s.reference,
                     "atlas_technique": s.atlas_technique} for s in specs],
        "targeted": any(s.targeted for s in specs),
        "knowledge": sorted({s.knowledge for s in specs}),
        "query_budget": {s.label: s.query_budget() for s in specs if s.knowledge == "black-box"},
        "exhaustive": bool(exhaustive),
        "seed": int(seed),
        "batch_size": bs,
    }
    for spec in specs:  # array targets are validated against the whole evaluated set before anything runs
        if spec.targeted and not isinstance(spec.target, str):
            _targets_for(spec, clean_logits, y, np.arange(n), np.random.default_rng(0))
    # the clean outputs identify a black-box model too (it has no weights hash); the batch size is part of the
    # configuration because random starts are drawn per batch
    outputs_sha = hashlib.sha256(np.round(clean_logits.astype(np.float64), 4).tobytes()).hexdigest()
    defense = target.defense.record() if target.defense is not None else None
    fingerprint = _fingerprint({"model": target.weights_sha256 or target.name, "outputs": outputs_sha,
                                "data": ds.sha256, "threat_model": threat_model, "defense": defense})
    run = _Run(n=n, n_eps=len(eps_list), n_attacks=len(specs), shape=tuple(target.input_shape))
    run.init(x, clean_correct, clean_pred)
    state = EvaluationState(state_dir, fingerprint) if state_dir is not None else None
    if state is not None and state.exists():
        state.load_into(run)
        log.info("resuming evaluation from %s: %d of %d steps done", state_dir, len(run.done),
                 len(eps_list) * len(specs))

    deadline = None if time_budget_s is None else time.monotonic() + float(time_budget_s)
    root_seq = np.random.SeedSequence(int(seed))
    seeds = root_seq.generate_state(len(eps_list) * len(specs) * 64 + 1)
    incomplete_reason = None
    complete_eps = [True] * len(eps_list)

    def check_time() -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise _Stop(f"time budget of {time_budget_s:g} s exhausted")

    bar = _progress(len(eps_list) * len(specs), progress)
    try:
        for ei, e in enumerate(eps_list):
            run.inherit(ei)
            for ai, spec in enumerate(specs):
                if (ei, ai) in run.done:
                    bar.update(1)
                    continue
                check_time()
                _run_step(spec, ai, ei, e, run, target, x, y, clean_logits, clean_correct, lo, hi, norm, bs,
                          exhaustive, int(seeds[(ei * len(specs) + ai) * 64]), check_time)
                run.done.add((ei, ai))
                if state is not None:
                    state.save(run)
                bar.update(1)
                bar.set_postfix_str(f"eps={e:g} robust={int((run.first[ei] == -1).sum())}/{n}")
    except _Stop as stop:
        incomplete_reason = stop.reason
    except KeyboardInterrupt:
        incomplete_reason = "interrupted (KeyboardInterrupt)"
    finally:
        bar.close()
    if incomplete_reason is not None:
        # The state file keeps the last completed step (saved above), so a resumed run redoes the interrupted
        # step whole and matches a fresh run; the partial step's results are only in this scorecard.
        log.warning("evaluation stopped early: %s; the scorecard is marked incomplete", incomplete_reason)
        for ei in range(len(eps_list)):
            complete_eps[ei] = all((ei, ai) in run.done for ai in range(len(specs)))
            if ei > 0:
                run.inherit(ei)  # samples broken at a smaller ε are broken here too, even if ε was not reached

    check_results = []
    if checks:
        from .checks import CheckContext, run_checks

        ctx = CheckContext(target=target, x=x, y=y, clean_logits=clean_logits, clean_correct=clean_correct,
                           norm=norm, eps=eps_list, specs=specs, run=run, seed=int(seed), batch_size=bs,
                           probe_samples=probe_samples, deadline=deadline)
        check_results = run_checks(ctx)

    return _build_scorecard(target, ds, threat_model, specs, run, clean_correct, clean_pred, y, eps_list,
                            complete_eps, check_results, checks, incomplete_reason, skipped, started, started_at,
                            notebook_parameters, bs, threads)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="evaluate", unit="step", disable=not enabled or None, leave=False)


def _run_step(spec, ai, ei, e, run, target, x, y, clean_logits, clean_correct, lo, hi, norm, bs, exhaustive,
              step_seed, check_time):
    label = spec.label
    if exhaustive:
        candidates = clean_correct & ~run.by_attack[ai, ei]
    else:
        candidates = run.first[ei] == -1
    idx_all = np.flatnonzero(candidates)
    cost = run.cost.setdefault(label, {"time_s": 0.0, "queries": 0, "gradient_queries": 0, "samples_attacked": 0,
                                       "rss_mb": 0.0, "process_peak_rss_mb": 0.0})
    if len(idx_all) == 0 or e == 0:
        return
    oracle = target.oracle
    counters = _Counters(target)
    q0, g0 = counters.read()
    t0 = time.perf_counter()
    rng = np.random.default_rng(step_seed)
    sbs = spec.batch_size or bs
    try:
        for start in range(0, len(idx_all), sbs):
            check_time()
            idx = idx_all[start:start + sbs]
            remaining = idx
            for k, y_t in enumerate(_targets_for(spec, clean_logits, y, idx, rng)):
                if len(remaining) == 0:
                    break
                pos = np.searchsorted(idx, remaining)
                yt = None if y_t is None else y_t[pos]
                adv = _attack_batch(spec, (ai, k), run, target, x, y, remaining, norm, e, yt, step_seed + k, lo, hi)
                ok = _accept(run, ai, ei, e, remaining, x, y, adv, oracle, norm, lo, hi)
                remaining = remaining[~ok]
    finally:
        q1, g1 = counters.read()
        step = {"time_s": time.perf_counter() - t0, "queries": q1 - q0,
                "gradient_queries": g1 - g0, "samples_attacked": int(len(idx_all)),
                "broken": int(run.by_attack[ai, ei, idx_all].sum())}
        run.step_cost[f"{ei}:{ai}"] = step
        for key in ("time_s", "queries", "gradient_queries", "samples_attacked"):
            cost[key] += step[key]
        cost["rss_mb"] = max(cost["rss_mb"], _rss_mb())
        cost["process_peak_rss_mb"] = _peak_rss_mb()


class _Counters:
    """Query counters of the evaluated target and, for a non-adaptive defense, of the model attacks run on."""

    def __init__(self, target):
        atk = attack_target(target).oracle
        self.oracles = [target.oracle] if atk is target.oracle else [target.oracle, atk]

    def read(self) -> tuple[int, int]:
        return (sum(o.queries for o in self.oracles),
                sum(getattr(o, "gradient_queries", 0) for o in self.oracles))


def attack_target(target):
    """The target attacks are crafted on: ``target`` itself, or its undefended base for a non-adaptive defense."""
    return target if target.defense is None else target.defense.attack_target(target)


def _attack_batch(spec, cache_key, run, target, x, y, idx, norm, e, y_target, seed, lo, hi):
    target = attack_target(target)  # verification (_accept) always uses the evaluated target's own oracle
    if not spec.minimal:
        return spec.run(target, x[idx], y[idx], norm=norm, eps=e, y_target=y_target, seed=seed)
    # minimum-norm attacks: one run per sample and target rank (cached across ε), projected onto each ε-ball
    cache_key = f"{cache_key[0]}-{cache_key[1]}"
    if cache_key not in run.minimal_cache:
        run.minimal_cache[cache_key] = (np.zeros(run.n, dtype=bool), np.array(x, dtype=np.float32, copy=True))
    have, store = run.minimal_cache[cache_key]
    todo = idx[~have[idx]]
    if len(todo):
        store[todo] = spec.run(target, x[todo], y[todo], norm=norm, eps=e,
                               y_target=None if y_target is None else y_target[~have[idx]], seed=seed)
        have[todo] = True
    return _project(x[idx], store[idx], norm, e, lo, hi)


def _accept(run, ai, ei, e, idx, x, y, adv, oracle, norm, lo, hi) -> np.ndarray:
    """Verify and record adversarial examples; return the mask of accepted ones."""
    adv = np.asarray(adv, dtype=np.float32)
    if adv.shape != x[idx].shape:
        raise AisecLabError(f"attack returned adversarial examples of shape {adv.shape}", got=adv.shape,
                            fix=f"an attack must return an array shaped like its input {x[idx].shape}")
    linf, l2 = perturbation_norms(x[idx], adv)
    d = (adv.astype(np.float64) - x[idx].astype(np.float64)).reshape(len(idx), -1)
    size = {"linf": linf, "l2": l2, "l1": np.abs(d).sum(axis=1)}[norm]
    in_ball = size <= e * (1 + _BOUND_RTOL) + _BOUND_ATOL
    in_box = np.all((adv >= lo - _BOUND_ATOL) & (adv <= hi + _BOUND_ATOL), axis=tuple(range(1, adv.ndim)))
    valid = in_ball & in_box
    changed = size > 0
    pred = oracle.logits(adv).argmax(axis=1)
    oracle.queries -= len(adv)  # verification is bookkeeping, not the attack's cost
    fooled = pred != y[idx]
    run.violations[ai, ei] += int(np.sum(fooled & ~valid & changed))
    ok = fooled & valid
    acc = idx[ok]
    run.by_attack[ai, ei, acc] = True
    new = acc[run.first[ei, acc] == -1]
    if len(new):
        sel = np.isin(idx, new)
        run.first[ei, new] = ai
        run.linf[ei, new] = linf[sel]
        run.l2[ei, new] = l2[sel]
        run.adv_pred[ei, new] = pred[sel]
        run.x_adv[ei, new] = adv[sel]
    return ok


def _build_scorecard(target, ds, threat_model, specs, run, clean_correct, clean_pred, y, eps_list, complete_eps,
                     check_results, checks_ran, incomplete_reason, skipped, started, started_at, notebook_parameters,
                     bs, threads) -> Scorecard:
    n = len(y)
    n_correct = int(clean_correct.sum())
    clean = {"accuracy": n_correct / n if n else 0.0, "ci": list(proportion_ci(n_correct, n)), "n_correct": n_correct,
             "n": n, "ci_method": CI_METHOD, "ci_level": CI_LEVEL}
    results = []
    for ei, e in enumerate(eps_list):
        robust = run.first[ei] == -1
        n_rob = int(robust.sum())
        attacks = {}
        for ai, spec in enumerate(specs):
            broken_first = run.first[ei] == ai
            mine = run.by_attack[ai, ei]
            step = run.step_cost.get(f"{ei}:{ai}", {})
            entry = {
                "broken_first": int(broken_first.sum()),
                "time_s": float(step.get("time_s", 0.0)),
                "queries": int(step.get("queries", 0)),
                "samples_attacked": int(step.get("samples_attacked", 0)),
                # exhaustive: its own success among initially-correct samples; cascade: among the samples it ran on
                "success_rate": (float(mine.sum() / n_correct) if n_correct else 0.0) if threat_model["exhaustive"]
                else (step.get("broken", 0) / step["samples_attacked"] if step.get("samples_attacked") else 0.0),
                "ran": (ei, ai) in run.done,
                "out_of_bounds_discarded": int(run.violations[ai, ei]),
            }
            if threat_model["exhaustive"]:
                k = int((clean_correct & ~mine).sum())
                entry["robust_accuracy"] = k / n if n else 0.0
                entry["robust_accuracy_ci"] = list(proportion_ci(k, n))
            first_linf = run.linf[ei, broken_first]
            first_l2 = run.l2[ei, broken_first]
            entry["linf_median"] = float(np.median(first_linf)) if len(first_linf) else None
            entry["l2_median"] = float(np.median(first_l2)) if len(first_l2) else None
            entry["linf_max"] = float(np.max(first_linf)) if len(first_linf) else None
            entry["l2_max"] = float(np.max(first_l2)) if len(first_l2) else None
            attacks[spec.label] = entry
        broken = run.first[ei] >= 0
        results.append({
            "eps": float(e),
            "eps_display": threat_model["eps_display"][ei],
            "robust_accuracy": n_rob / n if n else 0.0,
            "robust_accuracy_ci": list(proportion_ci(n_rob, n)),
            "n_robust": n_rob,
            "attack_success_rate": float(broken.sum() / n_correct) if n_correct else 0.0,
            "complete": bool(complete_eps[ei]),
            "linf_median": float(np.nanmedian(run.linf[ei, broken])) if broken.any() else None,
            "l2_median": float(np.nanmedian(run.l2[ei, broken])) if broken.any() else None,
            "attacks": attacks,
        })
    per_class = {}
    for c in range(target.nb_classes):
        m = y == c
        if not m.any():
            continue
        per_class[str(c)] = {"n": int(m.sum()), "clean_accuracy": float(clean_correct[m].mean()),
                             "robust_accuracy": {f"{e:g}": float((run.first[ei][m] == -1).mean())
                                                 for ei, e in enumerate(eps_list)}}
    cost = {"wall_time_s": time.perf_counter() - started, "batch_size": bs, "cpu_threads": threads,
            "attacks": {k: dict(v) for k, v in run.cost.items()},
            "queries_total": int(sum(v["queries"] for v in run.cost.values())),
            "process_peak_rss_mb": _peak_rss_mb()}
    if not checks_ran:
        skipped = list(skipped) + [{"attack": "validity checks", "reason": "checks=False was passed"}]
    samples = {"index_sha256": ds.sha256, "y": y, "clean_pred": clean_pred, "clean_correct": clean_correct,
               "first_attack": run.first, "broken_by_attack": run.by_attack, "linf": run.linf, "l2": run.l2,
               "adv_pred": run.adv_pred, "x": ds.x, "x_adv": run.x_adv}
    return Scorecard(
        model=target.info(), data=ds.info(), threat_model=threat_model, clean=clean, results=results,
        checks=check_results, cost=cost, provenance=_provenance(target, started_at, threat_model["seed"],
                                                                notebook_parameters),
        per_class=per_class, samples=samples, complete=incomplete_reason is None, incomplete_reason=incomplete_reason,
        skipped_attacks=skipped, defense=target.defense.record() if target.defense is not None else None,
    )


def _rss_mb() -> float:
    """Resident memory now, in MiB (Linux /proc; the process peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    """Peak resident memory of the process so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024


def _provenance(target, started_at: str, seed: int, notebook_parameters: dict | None) -> dict:
    from importlib import metadata

    versions = {"aisec-lab": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for dist, key in (("adversarial-robustness-toolbox", "art"), ("torch", "torch"), ("tensorflow-cpu", "tensorflow"),
                      ("tensorflow", "tensorflow"), ("keras", "keras"), ("scipy", "scipy")):
        if key in versions:
            continue
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {"versions": versions, "git_commit": _git_commit(), "seed": seed, "started_at": started_at,
            "platform": platform.platform(), "framework": target.framework,
            "notebook_parameters": notebook_parameters}


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
