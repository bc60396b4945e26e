"""Gradient-based white-box kernels: FGSM and PGD, in plain NumPy over an :class:`~aisec_lab.attacks.oracle.Oracle`.

Every kernel is a pure function ``(oracle, x, y, **hyperparameters) -> x_adv``. The only thing it asks of the
model is ``oracle.value_and_grad`` (one forward + backward pass per call) and ``oracle.logits`` (one forward
pass); each call forwards only the rows still being attacked.

Guarantees of every kernel here and in :mod:`.apgd`:

* ``x_adv`` is float32 with the shape of ``x``;
* per sample, ``||x_adv - x||_p <= eps * (1 + 1e-6) + 1e-7`` (``p`` = inf or 2), checked in float64 after the cast
  to float32, and ``clip_min <= x_adv <= clip_max`` (wherever ``x`` itself lies in that box; a coordinate of ``x``
  outside the box is never pushed further out, so ``x`` is always a feasible answer);
* ``eps == 0`` returns ``x`` unchanged (and forwards nothing);
* a sample that is already adversarial on the clean input (untargeted: predicted label != ``y``; targeted:
  predicted label == ``y_target``) is returned unchanged;
* results are deterministic given ``seed``.

The helpers (input checks, projection, best-point bookkeeping) live in :mod:`._common`, shared with :mod:`.apgd`,
:mod:`.square` and :mod:`.noise`.
"""

from __future__ import annotations

import numpy as np

from aisec_lab.attacks.kernels._common import Best, Problem, check_positive, row_norms

__all__ = ["fgsm", "pgd"]


# ----------------------------------------------------------------------------------------------------------------
# FGSM
# ----------------------------------------------------------------------------------------------------------------

def fgsm(oracle, x, y, *, norm, eps, loss="ce", y_target=None) -> np.ndarray:
    """Fast Gradient (Sign) Method (Goodfellow et al. 2015): one step of size ``eps`` along the steepest-ascent
    direction of ``loss`` -- ``sign(grad)`` for ``linf``, ``grad / ||grad||_2`` for ``l2`` -- then projection
    into the box. One ``value_and_grad`` call on all rows; samples already adversarial at ``x`` are returned as ``x``.
    """
    p = Problem(oracle, x, y, norm=norm, eps=eps, loss=loss, y_target=y_target)
    if p.n == 0 or p.eps == 0:
        return p.x.copy()
    idx = np.arange(p.n)
    _, grad, _, adv0 = p.value_and_grad(p.x, idx)
    out = p.project(p.x64(idx) + p.eps * p.direction(grad), idx)
    out[adv0] = p.x[adv0]
    return p.finalize(out)


# ----------------------------------------------------------------------------------------------------------------
# PGD
# ----------------------------------------------------------------------------------------------------------------

def pgd(oracle, x, y, *, norm, eps, eps_step, max_iter, num_random_init=1, loss="ce", y_target=None, seed=0,
        early_stop=True) -> np.ndarray:
    """Projected Gradient Descent (Madry et al. 2018).

    ``num_random_init`` random starts (uniform in the eps-ball; 0 = a single run from ``x`` itself), each of
    ``max_iter`` steps ``x <- P(x + eps_step * d)`` with ``d = sign(grad)`` (``linf``) or ``grad / ||grad||_2``
    (``l2``) and ``P`` the projection onto the eps-ball and the box ``[clip_min, clip_max]``.

    Every point visited (the start, each iterate and the last one) is checked; per sample the first adversarial
    point found is kept (``early_stop=True``; such a sample is then no longer updated nor forwarded, nor run
    in later restarts), else the highest-loss point over all restarts. With ``early_stop=False`` every row runs
    every step of every restart and the highest-loss adversarial point is kept. The set of samples that end up
    adversarial is the same either way (the noise does not depend on which rows are active).

    Cost: one ``oracle.logits`` pass on ``x``, then per restart ``max_iter`` ``value_and_grad`` calls and one
    ``logits`` call, each on the rows still active only.
    """
    p = Problem(oracle, x, y, norm=norm, eps=eps, loss=loss, y_target=y_target)
    eps_step = check_positive("eps_step", eps_step, allow_zero=True)
    max_iter = check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    num_random_init = check_positive("num_random_init", num_random_init, allow_zero=True, integer=True)
    if p.n == 0 or p.eps == 0:
        return p.x.copy()
    rng = np.random.default_rng(seed)
    best = Best(p.x, first_adv=early_stop)
    best.clean_check(p)

    for rows in best.rounds(max(num_random_init, 1), early_stop=early_stop):
        if num_random_init > 0:
            cur = _random_start(p, rng, rows)  # draws noise for all n rows: independent of `rows`
        else:
            cur = p.x[rows].copy()
        act = np.arange(rows.size)  # positions into `rows` still being updated
        for _ in range(max_iter):
            idx = rows[act]
            val, grad, _, adv = p.value_and_grad(cur[act], idx)
            best.update(idx, cur[act], val, adv)
            if early_stop:
                keep = ~adv
                act, grad = act[keep], grad[keep]
                idx = rows[act]
                if act.size == 0:
                    break
            step = cur[act].astype(np.float64) + eps_step * p.direction(grad)
            cur[act] = p.project(step, idx)
        if act.size:
            idx = rows[act]
            val, adv = p.evaluate(cur[act], idx)
            best.update(idx, cur[act], val, adv)
    return p.finalize(best.x)


def _random_start(p: Problem, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
    """A random point in the eps-ball (uniform; for l2 uniform in the ball), projected into the box.

    The noise is drawn for all ``n`` rows and then indexed, so the stream does not depend on ``idx``.
    """
    shape = p.x.shape
    d = int(np.prod(shape[1:]))
    bshape = (-1,) + (1,) * (len(shape) - 1)
    if p.norm == "linf":
        noise = rng.uniform(-p.eps, p.eps, size=shape)
    else:
        g = rng.standard_normal(size=shape)
        g /= np.maximum(row_norms(g, "l2"), 1e-12).reshape(bshape)
        r = rng.uniform(0.0, 1.0, size=shape[0]) ** (1.0 / max(d, 1))
        noise = g * (p.eps * r).reshape(bshape)
    return p.project(p.x64(idx) + noise[idx], idx)
