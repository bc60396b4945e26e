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

The private helpers (input checks, projection, best-point bookkeeping) are shared with :mod:`.apgd`.
"""

from __future__ import annotations

import numpy as np

from aisec_lab.attacks.oracle import LOSSES, is_adversarial, loss_from_logits

__all__ = ["fgsm", "pgd"]

NORMS = ("linf", "l2")
_REL_TOL = 1e-6
_ABS_TOL = 1e-7


# ----------------------------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------------------------

class _Problem:
    """Validated inputs of one attack call: x (float32), y / y_target (int64), bounds as float64 arrays."""

    def __init__(self, oracle, x, y, *, norm, eps, loss, y_target, need_gradients=True):
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
        eps = float(eps)
        if not np.isfinite(eps) or eps < 0:
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
        if need_gradients and not getattr(oracle, "has_gradients", False):
            raise ValueError("this attack needs gradients, but the oracle reports has_gradients=False")
        x = np.asarray(x)
        input_shape = tuple(oracle.input_shape)
        if x.ndim != len(input_shape) + 1 or tuple(x.shape[1:]) != input_shape:
            raise ValueError(f"x has shape {x.shape}; expected (n, *{input_shape})")
        n = x.shape[0]
        y = self._labels(y, "y", n, oracle.nb_classes)
        if y_target is not None:
            y_target = self._labels(y_target, "y_target", n, oracle.nb_classes)
            same = np.flatnonzero(y_target == y)
            if same.size:
                raise ValueError(f"y_target equals the true label y for {same.size} sample(s) (first at index "
                                 f"{same[0]}); a targeted attack needs y_target != y")
            if loss == "dlr" and oracle.nb_classes < 4:
                raise ValueError("the targeted DLR loss needs at least 4 classes")
        if loss == "dlr" and oracle.nb_classes < 3:
            raise ValueError("the DLR loss needs at least 3 classes")
        self.oracle = oracle
        self.norm = norm
        self.eps = eps
        self.loss = loss
        self.n = n
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.y = y
        self.y_target = y_target
        self._cmin = np.broadcast_to(np.asarray(oracle.clip_min, dtype=np.float64), self.x.shape)
        self._cmax = np.broadcast_to(np.asarray(oracle.clip_max, dtype=np.float64), self.x.shape)
        # Never force x itself out of the feasible set: where x lies outside the box, the box is widened to hold x.
        self._widen = bool(np.any(self.x < self._cmin) or np.any(self.x > self._cmax))

    @staticmethod
    def _labels(v, name, n, k):
        v = np.asarray(v)
        if v.shape != (n,):
            raise ValueError(f"{name} has shape {v.shape}; expected ({n},) to match x")
        if v.size and not np.issubdtype(v.dtype, np.integer):
            if not np.all(np.equal(np.mod(v, 1), 0)):
                raise ValueError(f"{name} must hold integer class labels")
        v = v.astype(np.int64)
        if v.size and (v.min() < 0 or v.max() >= k):
            raise ValueError(f"{name} holds labels outside [0, {k})")
        return v

    # -- per-row views ------------------------------------------------------------------------------------------
    def x64(self, idx):
        return self.x[idx].astype(np.float64)

    def bounds(self, idx, x64):
        lo, hi = self._cmin[idx], self._cmax[idx]
        if self._widen:
            lo, hi = np.minimum(lo, x64), np.maximum(hi, x64)
        return lo, hi

    def yt(self, idx):
        return None if self.y_target is None else self.y_target[idx]

    def value_and_grad(self, pts, idx):
        """One forward + backward pass on rows ``idx`` at points ``pts`` (float32)."""
        val, grad, z = self.oracle.value_and_grad(pts, self.y[idx], loss=self.loss, y_target=self.yt(idx))
        val = np.asarray(val, dtype=np.float64).reshape(len(idx))
        grad = np.asarray(grad, dtype=np.float64).reshape(pts.shape)
        z = np.asarray(z)
        return val, grad, z, is_adversarial(z, self.y[idx], self.yt(idx))

    def evaluate(self, pts, idx):
        """One forward pass on rows ``idx``: (loss, adversarial flags)."""
        z = np.asarray(self.oracle.logits(pts))
        val = loss_from_logits(z, self.y[idx], loss=self.loss, y_target=self.yt(idx)).astype(np.float64)
        return val, is_adversarial(z, self.y[idx], self.yt(idx))

    # -- geometry ----------------------------------------------------------------------------------------------
    def direction(self, grad):
        """Steepest-ascent unit direction for the norm: sign(g) (linf) or g / ||g||_2 (l2); zero where g is 0."""
        if self.norm == "linf":
            return np.sign(grad)
        nrm = _row_norms(grad, "l2")
        safe = np.where(nrm > 0, nrm, 1.0)
        return grad / safe.reshape((-1,) + (1,) * (grad.ndim - 1))

    def project(self, pts, idx, eps=None):
        """Project float64 points of rows ``idx`` onto the eps-ball around x and the box; returns float32 points
        that satisfy the bound exactly after the cast (checked in float64, repaired where rounding broke it)."""
        eps = self.eps if eps is None else eps
        x64 = self.x64(idx)
        lo, hi = self.bounds(idx, x64)
        delta = np.asarray(pts, dtype=np.float64) - x64
        delta = np.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0)
        if self.norm == "linf":
            delta = np.clip(delta, -eps, eps)
        else:
            nrm = _row_norms(delta, "l2")
            scale = np.where(nrm > eps, eps / np.where(nrm > 0, nrm, 1.0), 1.0)
            delta = delta * scale.reshape((-1,) + (1,) * (delta.ndim - 1))
        out64 = np.clip(x64 + delta, lo, hi)  # clipping toward a box that holds x never grows |delta|
        out = out64.astype(np.float32)
        return self._repair(out, out64, idx, eps, x64, lo, hi)

    def _repair(self, out, out64, idx, eps, x64, lo, hi):
        x32 = self.x[idx]
        bound = eps * (1 + _REL_TOL) + _ABS_TOL
        bad = self._violations(out, x64, lo, hi, bound)
        tries = 0
        while bad.any() and tries < 60:
            rows = np.flatnonzero(bad)
            if self.norm == "linf":
                # move each offending coordinate one float32 ulp towards x (x is feasible, so this converges)
                o = out[rows]
                d = np.abs(o.astype(np.float64) - x64[rows])
                off = (d > bound) | (o < lo[rows]) | (o > hi[rows])
                o[off] = np.nextafter(o[off], x32[rows][off])
                out[rows] = o
            else:
                d = out64[rows] - x64[rows]
                d *= 1.0 - 1e-7 * 2.0 ** tries
                out64[rows] = np.clip(x64[rows] + d, lo[rows], hi[rows])
                out[rows] = out64[rows].astype(np.float32)
            bad = self._violations(out, x64, lo, hi, bound)
            tries += 1
        if bad.any():  # last resort: x itself is always feasible
            out[bad] = x32[bad]
        return out

    def _violations(self, out, x64, lo, hi, bound):
        o = out.astype(np.float64)
        nrm = _row_norms(o - x64, self.norm)
        out_of_box = _flat((o < lo) | (o > hi)).any(axis=1)
        return (nrm > bound) | out_of_box | ~_flat(np.isfinite(o)).all(axis=1)

    def random_start(self, rng, idx):
        """A random point in the eps-ball (uniform; for l2 uniform in the ball), projected into the box.

        The noise is drawn for all ``n`` rows and then indexed, so the stream does not depend on ``idx``.
        """
        shape = self.x.shape
        d = int(np.prod(shape[1:]))
        if self.norm == "linf":
            noise = rng.uniform(-self.eps, self.eps, size=shape)
        else:
            g = rng.standard_normal(size=shape)
            g /= np.maximum(_row_norms(g, "l2"), 1e-12).reshape((-1,) + (1,) * (len(shape) - 1))
            r = rng.uniform(0.0, 1.0, size=shape[0]) ** (1.0 / max(d, 1))
            noise = g * (self.eps * r).reshape((-1,) + (1,) * (len(shape) - 1))
        return self.project(self.x64(idx) + noise[idx], idx)

    def finalize(self, out):
        """The final safety net: float64 check of every row, projection and repair of any row that fails."""
        out = np.asarray(out, dtype=np.float32).reshape(self.x.shape).copy()
        idx = np.arange(self.n)
        x64 = self.x64(idx)
        bad = self._violations(out, x64, *self.bounds(idx, x64), self.eps * (1 + _REL_TOL) + _ABS_TOL)
        if bad.any():
            rows = np.flatnonzero(bad)
            out[rows] = self.project(out[rows].astype(np.float64), idx[rows])
        return out


def _flat(a):
    a = np.asarray(a)
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64)))


def _row_norms(a, norm):
    flat = _flat(np.asarray(a, dtype=np.float64))
    if flat.shape[1] == 0:
        return np.zeros(len(flat))
    if norm == "linf":
        return np.abs(flat).max(axis=1)
    return np.sqrt(np.einsum("ij,ij->i", flat, flat))


class _Best:
    """Per-sample best point so far.

    ``first_adv=True`` (early stopping): the first adversarial point found is kept for good; until one is found,
    the highest-loss point. ``first_adv=False``: the highest-loss adversarial point, else the highest-loss point.
    Adversarial always beats non-adversarial.
    """

    def __init__(self, x, first_adv):
        self.x = x.copy()
        self.found = np.zeros(len(x), dtype=bool)
        self.loss = np.full(len(x), -np.inf)
        self.first_adv = first_adv

    def update(self, idx, pts, loss, adv):
        idx = np.asarray(idx)
        if idx.size == 0:
            return
        found = self.found[idx]
        better_loss = loss > self.loss[idx]
        if self.first_adv:
            take = (~found & adv) | (~found & ~adv & better_loss)
        else:
            take = (adv & ~found) | ((adv == found) & better_loss)
        rows = idx[take]
        self.x[rows] = pts[take]
        self.loss[rows] = loss[take]
        self.found[rows] |= adv[take]

    def clean_check(self, p):
        """One forward pass on ``x``: samples already adversarial there are found, with ``x`` as their point.

        The clean point competes only as an adversarial point, with loss -inf (so with ``first_adv=False`` any
        adversarial iterate replaces it): clean ``x`` is not a point the attack visited otherwise.
        """
        _, adv = p.evaluate(p.x, np.arange(p.n))
        self.found[adv] = True

    def todo(self):
        return np.flatnonzero(~self.found)


def _check_positive(name, value, *, allow_zero=False, integer=False):
    if integer:
        if isinstance(value, bool) or int(value) != value:
            raise ValueError(f"{name} must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------------------------
# FGSM
# ----------------------------------------------------------------------------------------------------------------

def fgsm(oracle, x, y, *, norm, eps, loss="ce", y_target=None) -> np.ndarray:
    """Fast Gradient (Sign) Method (Goodfellow et al. 2015): one step of size ``eps`` along the steepest-ascent
    direction of ``loss`` -- ``sign(grad)`` for ``linf``, ``grad / ||grad||_2`` for ``l2`` -- then projection
    into the box. One ``value_and_grad`` call on all rows; samples already adversarial at ``x`` are returned as ``x``.
    """
    p = _Problem(oracle, x, y, norm=norm, eps=eps, loss=loss, y_target=y_target)
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
    p = _Problem(oracle, x, y, norm=norm, eps=eps, loss=loss, y_target=y_target)
    eps_step = _check_positive("eps_step", eps_step, allow_zero=True)
    max_iter = _check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    num_random_init = _check_positive("num_random_init", num_random_init, allow_zero=True, integer=True)
    if p.n == 0 or p.eps == 0:
        return p.x.copy()
    rng = np.random.default_rng(seed)
    best = _Best(p.x, first_adv=early_stop)
    all_idx = np.arange(p.n)
    best.clean_check(p)

    for _ in range(max(num_random_init, 1)):
        rows = best.todo() if early_stop else all_idx
        if rows.size == 0:
            break
        if num_random_init > 0:
            cur = p.random_start(rng, rows)  # draws noise for all n rows: independent of `rows`
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
