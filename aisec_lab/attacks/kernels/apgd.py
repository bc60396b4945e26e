"""Auto-PGD (APGD) in plain NumPy over an :class:`~aisec_lab.attacks.oracle.Oracle`.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks",
ICML 2020, Algorithm 1: a budget-aware step-size-free PGD with momentum.

* step size ``eta = 2 * eps`` initially; momentum ``alpha = 0.75`` (the first step has none)::

      z      = P(x_k + eta * d(grad_k))
      x_k+1  = P(x_k + alpha * (z - x_k) + (1 - alpha) * (x_k - x_k-1))

  with ``d`` = sign (``linf``) or ``g / ||g||_2`` (``l2``) and ``P`` the projection onto the eps-ball and the box;
* checkpoints ``w_j = ceil(p_j * max_iter)`` with ``p_0 = 0, p_1 = 0.22, p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06)``;
* at a checkpoint a sample's step size is halved, and it restarts from its best point (and that point's
  gradient), when (1) fewer than ``rho * (w_j - w_j-1)`` of the steps since the last checkpoint increased the
  loss, or (2) its step size was not halved at the last checkpoint and its best loss has not increased since;
* the start is ``x + eps * u / ||u||_inf``, ``u ~ U[-1, 1]`` (``linf``), or ``x + eps * g / ||g||_2``,
  ``g ~ N(0, I)`` (``l2``), projected into the box; ``n_restarts`` runs, the best point per sample kept.

Losses: ``"ce"``, ``"dlr"``, ``"margin"``, untargeted or targeted (``y_target``) as the oracle defines them.
Bounds, clean-adversarial samples, ``eps == 0`` and determinism: as in :mod:`.gradient`.
"""

from __future__ import annotations

import math

import numpy as np

from aisec_lab.attacks.kernels._common import Best, Problem, check_positive, row_norms

__all__ = ["apgd", "apgd_checkpoints"]

_ALPHA = 0.75


def apgd_checkpoints(max_iter: int) -> list[int]:
    """The iterations ``w_1 < w_2 < ...`` (1-based: "after that many steps") at which the step size is checked."""
    p = [0.0, 0.22]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - 0.03, 0.06)
        if nxt > 1.0:
            break
        p.append(nxt)
    # round before ceil so that e.g. 0.41 * 100 = 41.000000000000004 counts as 41, not 42
    w = sorted({math.ceil(round(q * max_iter, 9)) for q in p[1:]})
    return [v for v in w if 0 < v <= max_iter]


def apgd(oracle, x, y, *, norm, eps, max_iter=100, loss="ce", y_target=None, n_restarts=1, rho=0.75, seed=0,
         early_stop=True) -> np.ndarray:
    """APGD (Croce & Hein 2020) with ``loss`` in ``{"ce", "dlr", "margin"}``, ``norm`` in ``{"linf", "l2"}``.

    ``max_iter`` steps per restart, each one ``value_and_grad`` call on the rows still active (plus one at the
    start point). Per sample: the first adversarial point found (``early_stop=True``; the sample is then no longer
    updated nor forwarded, nor run in later restarts), else the highest-loss point over all restarts; with
    ``early_stop=False`` every row runs every step of every restart and the highest-loss adversarial point is kept.
    Samples adversarial on the clean input are returned unchanged (one ``oracle.logits`` pass on ``x``).
    """
    p = Problem(oracle, x, y, norm=norm, eps=eps, loss=loss, y_target=y_target)
    max_iter = check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    n_restarts = check_positive("n_restarts", n_restarts, integer=True)
    rho = check_positive("rho", rho)
    if rho > 1:
        raise ValueError(f"rho must be in (0, 1], got {rho!r}")
    if p.n == 0 or p.eps == 0:
        return p.x.copy()

    rng = np.random.default_rng(seed)
    best = Best(p.x, first_adv=early_stop)
    best.clean_check(p)

    checkpoints = apgd_checkpoints(max_iter)
    previous_checkpoint = dict(zip(checkpoints, [0] + checkpoints[:-1]))

    for rows in best.rounds(n_restarts, early_stop=early_stop):
        _run(p, rows, _start(p, rng, rows), best, max_iter=max_iter, rho=rho, early_stop=early_stop,
             previous_checkpoint=previous_checkpoint)
    return p.finalize(best.x)


def _start(p: Problem, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    """Random start on the eps-sphere (as in the reference implementation); noise drawn for all n rows."""
    bshape = (-1,) + (1,) * (p.x.ndim - 1)
    if p.norm == "linf":
        t = rng.uniform(-1.0, 1.0, size=p.x.shape)
        t /= np.maximum(row_norms(t, "linf"), 1e-12).reshape(bshape)
    else:
        t = rng.standard_normal(size=p.x.shape)
        t /= np.maximum(row_norms(t, "l2"), 1e-12).reshape(bshape)
    return p.project(p.x64(rows) + p.eps * t[rows], rows)


def _run(p: Problem, rows: np.ndarray, x0: np.ndarray, best: Best, *, max_iter: int, rho: float,
         early_stop: bool, previous_checkpoint: dict) -> None:
    """One APGD run on rows ``rows`` from ``x0`` (float32, one row per entry of ``rows``); updates ``best``."""
    m = rows.size
    bshape = (-1,) + (1,) * (p.x.ndim - 1)
    cur = x0.copy()
    prev = x0.copy()
    val, grad, _, adv = p.value_and_grad(cur, rows)
    best.update(rows, cur, val, adv)

    x_best, g_best, l_best = cur.copy(), grad.copy(), val.copy()
    l_cur = val.copy()
    eta = np.full(m, 2.0 * p.eps)
    n_up = np.zeros(m, dtype=np.int64)  # loss increases since the last checkpoint
    l_best_last = l_best.copy()
    halved_last = np.zeros(m, dtype=bool)

    act = np.flatnonzero(~adv) if early_stop else np.arange(m)
    for i in range(max_iter):
        if act.size == 0:
            break
        idx = rows[act]
        a = 1.0 if i == 0 else _ALPHA
        xk = cur[act].astype(np.float64)
        z = p.project(xk + eta[act].reshape(bshape) * p.direction(grad[act]), idx).astype(np.float64)
        xn = p.project(xk + a * (z - xk) + (1.0 - a) * (xk - prev[act]), idx)
        prev[act] = cur[act]
        cur[act] = xn

        val, g, _, adv = p.value_and_grad(xn, idx)
        best.update(idx, xn, val, adv)
        n_up[act] += val > l_cur[act]
        l_cur[act] = val
        grad[act] = g
        up = val > l_best[act]
        r = act[up]
        x_best[r], g_best[r], l_best[r] = xn[up], g[up], val[up]
        if early_stop:
            act = act[~adv]

        k = i + 1
        if k in previous_checkpoint and act.size:
            span = k - previous_checkpoint[k]
            few_increases = n_up[act] < rho * span
            stalled = ~halved_last[act] & (l_best_last[act] >= l_best[act])
            halve = few_increases | stalled
            halved_last[act] = halve
            l_best_last[act] = l_best[act]
            n_up[act] = 0
            r = act[halve]
            eta[r] /= 2.0
            cur[r] = x_best[r]
            grad[r] = g_best[r]
            l_cur[r] = l_best[r]
