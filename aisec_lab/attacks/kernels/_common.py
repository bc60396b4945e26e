"""Helpers shared by the NumPy attack kernels (:mod:`.gradient`, :mod:`.apgd`, :mod:`.square`, :mod:`.noise`).

Only NumPy and :mod:`aisec_lab.attacks.oracle` are used, like the kernels themselves.

* :func:`norm_name`, :func:`check_positive` and :class:`Problem` -- argument checks and the validated inputs of one
  attack call (``x`` float32, labels int64, the clip box in float64), with one-pass oracle helpers;
* :func:`flat`, :func:`row_norms`, :func:`bound` -- per-sample norms and the tolerance every kernel guarantees,
  ``||x_adv - x||_p <= eps * (1 + 1e-6) + 1e-7``;
* :func:`box`, :func:`project`, :func:`enforce` -- projection onto the eps-ball around ``x`` intersected with the
  clip box, computed in float64 and re-checked (and repaired where rounding broke it) after the cast to float32;
* :class:`Best` -- the per-sample "first adversarial point, else highest loss" bookkeeping.
"""

from __future__ import annotations

import numpy as np

from aisec_lab.attacks.oracle import LOSSES, is_adversarial, loss_from_logits

NORMS = ("linf", "l2")
REL_TOL = 1e-6
ABS_TOL = 1e-7


# ----------------------------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------------------------

def norm_name(norm) -> str:
    """``"linf"`` or ``"l2"`` for the accepted spellings (``"linf"``, ``"inf"``, ``"l_inf"``, ``np.inf``; ``"l2"``,
    ``"2"``, ``2``; strings case- and space-insensitive); ``ValueError`` otherwise."""
    if isinstance(norm, str):
        key = norm.strip().lower()
        if key in ("linf", "inf", "l_inf"):
            return "linf"
        if key in ("l2", "2"):
            return "l2"
    elif norm == np.inf:
        return "linf"
    elif norm == 2:
        return "l2"
    raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")


def check_positive(name, value, *, allow_zero=False, integer=False):
    """``value`` as an int (``integer=True``) or a finite float, checked to be > 0 (or >= 0 with ``allow_zero``)."""
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
# norms and the projection onto the eps-ball and the box
# ----------------------------------------------------------------------------------------------------------------

def bound(eps: float) -> float:
    """The largest per-sample norm a kernel may return: ``eps`` plus the guaranteed tolerance."""
    return eps * (1 + REL_TOL) + ABS_TOL


def flat(a) -> np.ndarray:
    """``(n, d)`` view (or copy) of an ``(n, ...)`` array, for any per-sample shape (``d`` may be 1 or 0)."""
    a = np.asarray(a)
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64)))


def row_norms(a, norm: str) -> np.ndarray:
    """Per-sample ``linf`` or ``l2`` norm of an ``(n, ...)`` array, in float64."""
    f = flat(np.asarray(a, dtype=np.float64))
    if f.shape[1] == 0:
        return np.zeros(len(f))
    if norm == "linf":
        return np.abs(f).max(axis=1)
    return np.sqrt((f * f).sum(axis=1))


def _per_row(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((-1,) + (1,) * (ndim - 1))


def box(oracle, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: the oracle's clip box as float64 arrays of ``x``'s shape (read-only broadcasts where possible).

    Where ``x`` itself lies outside the box the box is widened to hold it, so that ``x`` is always a feasible answer
    and no coordinate of ``x`` is ever pushed further out.
    """
    lo = np.broadcast_to(np.asarray(oracle.clip_min, dtype=np.float64), x.shape)
    hi = np.broadcast_to(np.asarray(oracle.clip_max, dtype=np.float64), x.shape)
    if np.any(x < lo) or np.any(x > hi):
        lo, hi = np.minimum(lo, x), np.maximum(hi, x)
    return lo, hi


def project(x0, pts, norm: str, eps: float, lo, hi) -> np.ndarray:
    """Project ``pts`` onto the eps-ball around ``x0`` (float32 rows) and the box ``[lo, hi]`` (which holds ``x0``).

    Computed in float64; the float32 result is re-checked in float64 and repaired where rounding broke the norm bound
    or the box (see :func:`_repair`). Non-finite coordinates of ``pts`` are replaced by those of ``x0``. Any shape
    ``(m, ...)`` works: only the row norms look across a sample's features.
    """
    x0 = np.asarray(x0, dtype=np.float32)
    x64 = x0.astype(np.float64)
    delta = np.asarray(pts, dtype=np.float64) - x64
    delta = np.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0)
    if norm == "linf":
        delta = np.clip(delta, -eps, eps)
    else:
        nrm = row_norms(delta, "l2")
        scale = np.where(nrm > eps, eps / np.where(nrm > 0, nrm, 1.0), 1.0)
        delta = delta * _per_row(scale, delta.ndim)
    out64 = np.clip(x64 + delta, lo, hi)  # clipping toward a box that holds x0 never grows |delta|
    return _repair(out64.astype(np.float32), out64, x0, norm, eps, lo, hi)


def _repair(out, out64, x0, norm, eps, lo, hi):
    """Fix the (rare) rows of ``out`` (float32; ``out64`` its float64 source) that rounding pushed out of the ball or
    the box: ``linf`` moves each offending coordinate one float32 ulp towards ``x0`` per round, ``l2`` shrinks the
    perturbation a little more each round; a row still failing after 60 rounds falls back to ``x0`` itself."""
    x64 = x0.astype(np.float64)
    lim = bound(eps)
    bad = _violations(out, x64, norm, lo, hi, lim)
    tries = 0
    while bad.any() and tries < 60:
        rows = np.flatnonzero(bad)
        if norm == "linf":  # x0 is feasible, so this converges
            o = out[rows]
            d = np.abs(o.astype(np.float64) - x64[rows])
            off = (d > lim) | (o < lo[rows]) | (o > hi[rows])
            o[off] = np.nextafter(o[off], x0[rows][off])
            out[rows] = o
        else:
            d = out64[rows] - x64[rows]
            d *= 1.0 - 1e-7 * 2.0 ** tries
            out64[rows] = np.clip(x64[rows] + d, lo[rows], hi[rows])
            out[rows] = out64[rows].astype(np.float32)
        bad = _violations(out, x64, norm, lo, hi, lim)
        tries += 1
    if bad.any():  # last resort: x0 itself is always feasible
        out[bad] = x0[bad]
    return out


def _violations(out, x64, norm, lo, hi, lim):
    """Rows of float32 ``out`` whose float64 value breaks the norm bound ``lim``, the box, or is not finite."""
    o = out.astype(np.float64)
    out_of_box = flat((o < lo) | (o > hi)).any(axis=1)
    return (row_norms(o - x64, norm) > lim) | out_of_box | ~flat(np.isfinite(o)).all(axis=1)


def enforce(x0, out, norm: str, eps: float, lo, hi) -> np.ndarray:
    """The final safety net: a float32 copy of ``out`` (reshaped like ``x0``) in which every row that fails the
    float64 check is projected again (a no-op for points built with :func:`project`)."""
    out = np.asarray(out, dtype=np.float32).reshape(x0.shape).copy()
    bad = _violations(out, x0.astype(np.float64), norm, lo, hi, bound(eps))
    if bad.any():
        rows = np.flatnonzero(bad)
        out[rows] = project(x0[rows], out[rows], norm, eps, lo[rows], hi[rows])
    return out


# ----------------------------------------------------------------------------------------------------------------
# validated inputs of one attack call
# ----------------------------------------------------------------------------------------------------------------

class Problem:
    """Validated inputs of one attack call: ``x`` (float32), ``y`` / ``y_target`` (int64), ``norm`` (``"linf"`` or
    ``"l2"``), ``eps``, ``loss``, and the clip box ``lo`` / ``hi`` (float64, see :func:`box`).

    Checks: ``norm`` (see :func:`norm_name`), ``loss`` in :data:`~aisec_lab.attacks.oracle.LOSSES`, ``eps`` finite
    and >= 0, ``oracle.has_gradients`` (when ``need_gradients``), ``x`` of shape ``(n, *oracle.input_shape)``,
    labels of shape ``(n,)`` with integer values in ``[0, nb_classes)``, ``y_target != y`` everywhere, and enough
    classes for the DLR loss.
    """

    def __init__(self, oracle, x, y, *, norm, eps, loss, y_target, need_gradients=True):
        norm = norm_name(norm)
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
        self.lo, self.hi = box(oracle, self.x)

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

    # -- per-row views and oracle calls ------------------------------------------------------------------------
    def x64(self, idx):
        return self.x[idx].astype(np.float64)

    def yt(self, idx):
        return None if self.y_target is None else self.y_target[idx]

    def value_and_grad(self, pts, idx):
        """One forward + backward pass on rows ``idx`` at points ``pts`` (float32): (loss, grad, logits, adv)."""
        val, grad, z = self.oracle.value_and_grad(pts, self.y[idx], loss=self.loss, y_target=self.yt(idx))
        val = np.asarray(val, dtype=np.float64).reshape(len(idx))
        grad = np.asarray(grad, dtype=np.float64).reshape(pts.shape)
        z = np.asarray(z)
        return val, grad, z, is_adversarial(z, self.y[idx], self.yt(idx))

    def evaluate(self, pts, idx):
        """One forward pass on rows ``idx`` at points ``pts`` (float32, shaped like ``x[idx]``): (loss, adv)."""
        z = np.asarray(self.oracle.logits(pts))
        val = loss_from_logits(z, self.y[idx], loss=self.loss, y_target=self.yt(idx)).astype(np.float64)
        return val, is_adversarial(z, self.y[idx], self.yt(idx))

    # -- geometry ----------------------------------------------------------------------------------------------
    def direction(self, grad):
        """Steepest-ascent unit direction for the norm: sign(g) (linf) or g / ||g||_2 (l2); zero where g is 0."""
        if self.norm == "linf":
            return np.sign(grad)
        nrm = row_norms(grad, "l2")
        return grad / _per_row(np.where(nrm > 0, nrm, 1.0), grad.ndim)

    def project(self, pts, idx):
        """:func:`project` of float64 points of rows ``idx`` onto their eps-ball and box; float32 result."""
        return project(self.x[idx], pts, self.norm, self.eps, self.lo[idx], self.hi[idx])

    def finalize(self, out):
        """:func:`enforce` on a full result: float32 of ``x``'s shape, every row checked (and repaired)."""
        return enforce(self.x, out, self.norm, self.eps, self.lo, self.hi)


# ----------------------------------------------------------------------------------------------------------------
# best point so far
# ----------------------------------------------------------------------------------------------------------------

class Best:
    """Per-sample best point so far.

    ``first_adv=True`` (early stopping): the first adversarial point found is kept for good; until one is found,
    the highest-loss point. ``first_adv=False``: the highest-loss adversarial point, else the highest-loss point.
    Adversarial always beats non-adversarial. ``loss`` / ``found`` start at -inf / False unless given.
    """

    def __init__(self, x, first_adv, *, loss=None, found=None):
        self.x = x.copy()
        self.found = np.zeros(len(x), dtype=bool) if found is None else np.array(found, dtype=bool)
        self.loss = np.full(len(x), -np.inf) if loss is None else np.array(loss, dtype=np.float64)
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

    def clean_check(self, p: Problem):
        """One forward pass on ``x``: samples already adversarial there are found, with ``x`` as their point.

        The clean point competes only as an adversarial point, with loss -inf (so with ``first_adv=False`` any
        adversarial iterate replaces it): clean ``x`` is not a point the attack visited otherwise.
        """
        _, adv = p.evaluate(p.x, np.arange(p.n))
        self.found[adv] = True

    def todo(self):
        return np.flatnonzero(~self.found)

    def rounds(self, count, *, early_stop=True):
        """The rows to run in each of up to ``count`` rounds (restarts, trials): those not yet adversarial
        (``early_stop``) or all rows; stops early once every row is adversarial (``early_stop`` only)."""
        every = np.arange(len(self.x))
        for _ in range(count):
            rows = self.todo() if early_stop else every
            if rows.size == 0:
                return
            yield rows
