"""Square Attack (score-based, black-box) as a framework-free NumPy kernel.

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box adversarial
attack via random search", ECCV 2020. Random search over localised square-shaped updates:

* ``linf``: vertical-stripe initialisation (each column gets ``+-eps``), then per iteration one
  random ``s x s`` window per sample is set to ``+-eps`` (one sign per channel), i.e. a square
  update of ``+-2 eps`` on top of the current point, projected back onto the eps-box.
* ``l2``: the paper's initialisation with a grid of "meta" pseudo-Gaussian squares of random sign,
  rescaled to norm ``eps``; each iteration moves the mass of a second window into a first one and
  adds a fresh meta square there, rescaled so that the total perturbation norm stays ``eps``.

The side ``s`` follows the paper's piecewise-constant schedule for ``p`` (fraction of the pixels
changed), defined for 10000 iterations and rescaled to ``max_iter``.

Batched: each iteration is ONE ``oracle.logits`` call over all samples that are still active (not
yet adversarial); an adversarial sample drops out and is never queried again. Per sample we return
the first adversarial point found, otherwise the point with the best loss over all restarts. Every
returned point (and every queried point) is in float32 and satisfies ``||x_adv - x||_p <= eps``
(up to ``eps * 1e-6 + 1e-7``) and ``clip_min <= x_adv <= clip_max`` exactly.

Only NumPy and :mod:`aisec_lab.attacks.oracle` are used (the shared helpers are in :mod:`._common`).
"""

from __future__ import annotations

import numpy as np

from aisec_lab.attacks.kernels._common import Best, Problem, check_positive, project

__all__ = ["square", "p_selection"]

_P_INIT_DEFAULT = {"linf": 0.8, "l2": 0.1}


# --------------------------------------------------------------------------------------------
# Square-attack specifics
# --------------------------------------------------------------------------------------------

def _as4d_shape(shape):
    """(n, C, H, W) view of channels-first data: (n,)->(n,1,1,1), (n,d)->(n,1,1,d), (n,C,L)->(n,C,1,L), >4D folds
    the tail."""
    n = shape[0]
    if len(shape) == 1:
        return (n, 1, 1, 1)
    if len(shape) == 2:
        return (n, 1, 1, shape[1])
    if len(shape) == 3:
        return (n, shape[1], 1, shape[2])
    if len(shape) == 4:
        return tuple(shape)
    return (n, shape[1], shape[2], int(np.prod(shape[3:])))


def p_selection(p_init: float, it: int, n_iters: int) -> float:
    """The paper's piecewise-constant schedule of p (defined for 10000 iterations, rescaled)."""
    it = int(it / max(n_iters, 1) * 10000)
    if 10 < it <= 50:
        return p_init / 2
    if 50 < it <= 200:
        return p_init / 4
    if 200 < it <= 500:
        return p_init / 8
    if 500 < it <= 1000:
        return p_init / 16
    if 1000 < it <= 2000:
        return p_init / 32
    if 2000 < it <= 4000:
        return p_init / 64
    if 4000 < it <= 6000:
        return p_init / 128
    if 6000 < it <= 8000:
        return p_init / 256
    if 8000 < it:
        return p_init / 512
    return p_init


def _window_linf(p: float, H: int, W: int) -> tuple[int, int]:
    if H > 1 and W > 1:  # images: square window, at least 1 and at most min(H, W) - 1 (as the reference)
        s = int(round(np.sqrt(p * H * W)))
        s = min(max(s, 1), min(H, W) - 1)
        return s, s
    L = max(H, W)  # 1-D data: a segment covering about p of the features
    s = min(max(int(round(p * L)), 1), max(L - 1, 1))
    return (1, s) if W >= H else (s, 1)


def _window_l2(p: float, H: int, W: int) -> tuple[int, int]:
    if H > 1 and W > 1:
        s = max(int(round(np.sqrt(p * H * W))), 3)
        if s % 2 == 0:
            s += 1
        s = max(min(s, min(H, W)), 1)
        return s, s
    L = max(H, W)
    s = max(int(round(p * L)), 3)
    if s % 2 == 0:
        s += 1
    s = max(min(s, L), 1)
    return (1, s) if W >= H else (s, 1)


def _pseudo_gaussian_rect(a: int, b: int) -> np.ndarray:
    """Concentric rectangles with weights 1/(k+1)^2 (the paper's pseudo-Gaussian bump), unit L2 norm."""
    delta = np.zeros((a, b))
    if a == 0 or b == 0:
        return delta
    ch, cw = a // 2, b // 2
    for k in range(max(a // 2 + 1, b // 2 + 1)):
        delta[max(ch - k, 0):min(ch - k + 2 * k + 1, a), max(cw - k, 0):min(cw - k + 2 * k + 1, b)] += 1.0 / (k + 1) ** 2
    nrm = np.sqrt((delta ** 2).sum())
    return delta / nrm if nrm > 0 else delta


def _meta_pseudo_gaussian(a: int, b: int) -> np.ndarray:
    """Two pseudo-Gaussian bumps of opposite sign (split along the longer side; rows for squares)."""
    delta = np.zeros((a, b))
    if a >= b:
        delta[:a // 2] = _pseudo_gaussian_rect(a // 2, b)
        delta[a // 2:] = -_pseudo_gaussian_rect(a - a // 2, b)
    else:
        delta[:, :b // 2] = _pseudo_gaussian_rect(a, b // 2)
        delta[:, b // 2:] = -_pseudo_gaussian_rect(a, b - b // 2)
    nrm = np.sqrt((delta ** 2).sum())
    return delta / nrm if nrm > 0 else delta


def _window_mask(vh, vw, sh, sw, H, W):
    """(m, 1, H, W) boolean masks of the per-sample windows [vh, vh+sh) x [vw, vw+sw)."""
    rows = np.arange(H)[None, :]
    cols = np.arange(W)[None, :]
    mh = (rows >= vh[:, None]) & (rows < vh[:, None] + sh)
    mw = (cols >= vw[:, None]) & (cols < vw[:, None] + sw)
    return (mh[:, :, None] & mw[:, None, :])[:, None]


def _window_index(vh, vw, sh, sw, C):
    m = len(vh)
    i0 = np.arange(m)[:, None, None, None]
    i1 = np.arange(C)[None, :, None, None]
    i2 = (vh[:, None] + np.arange(sh)[None, :])[:, None, :, None]
    i3 = (vw[:, None] + np.arange(sw)[None, :])[:, None, None, :]
    return i0, i1, i2, i3


def _signs(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _l2_init(rng, m, C, H, W):
    sh, sw = max(H // 5, 1), max(W // 5, 1)
    sp_h, sp_w = max((H - 5 * sh) // 2, 0), max((W - 5 * sw) // 2, 0)
    delta = np.zeros((m, C, H, W))
    vh = sp_h
    for _ in range(H // sh):
        vw = sp_w
        for _ in range(W // sw):
            if vh + sh <= H and vw + sw <= W:
                eta = _meta_pseudo_gaussian(sh, sw)
                if sh == sw and rng.random() > 0.5:
                    eta = eta.T
                delta[:, :, vh:vh + sh, vw:vw + sw] += eta[None, None] * _signs(rng, (m, C, 1, 1))
            vw += sw
        vh += sh
    return delta


def _run(prob, rows, x4, lo4, hi4, max_iter, p_init, rng):
    """One run of the attack on the samples ``rows`` of ``prob`` (``x4``, ``lo4``, ``hi4``: their 4-D views); returns
    their (x_best float32 4-D, loss_best, adversarial)."""
    m, C, H, W = x4.shape
    x64 = x4.astype(np.float64)
    norm, eps, shape = prob.norm, prob.eps, prob.x.shape[1:]

    def query(xc32, r):
        return prob.evaluate(xc32.reshape((len(r),) + shape), rows[r])

    # ---- initialisation (one query) -------------------------------------------------------
    if norm == "linf":
        init = x64 + eps * _signs(rng, (m, C, 1, W))
    else:
        delta = _l2_init(rng, m, C, H, W)
        nrm = np.sqrt((delta ** 2).reshape(m, -1).sum(axis=1)).reshape(m, 1, 1, 1)
        init = x64 + delta / np.maximum(nrm, 1e-12) * eps
    x_init = project(x4, init, norm, eps, lo4, hi4)
    loss_init, adv_init = query(x_init, np.arange(m))
    best = Best(x_init, first_adv=True, loss=loss_init, found=adv_init)  # the current point of the random search

    if norm == "l2":
        eta_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    for it, idx in enumerate(best.rounds(max_iter)):
        k = idx.size
        xc, xc64, xb = x4[idx], x64[idx], best.x[idx]
        lo, hi = lo4[idx], hi4[idx]
        p = p_selection(p_init, it, max_iter)
        delta = xb.astype(np.float64) - xc64

        if norm == "linf":
            sh, sw = _window_linf(p, H, W)
            vh = rng.integers(0, H - sh + 1, size=k)
            vw = rng.integers(0, W - sw + 1, size=k)
            sg = eps * _signs(rng, (k, C, 1, 1))
            mask = _window_mask(vh, vw, sh, sw, H, W)
            new = np.where(mask, sg, delta)
            cand = np.clip(xc64 + new, lo, hi)
            # as the reference: never spend a query on an update that changes nothing; first flip the
            # window's signs, then redraw position and signs (bounded number of rounds)
            for r in range(8):
                same = np.all(np.abs(cand - xb).reshape(k, -1) < 1e-7, axis=1)
                if not same.any():
                    break
                j = np.flatnonzero(same)
                if r % 2 == 0:
                    sg[j] = -sg[j]
                else:
                    vh[j] = rng.integers(0, H - sh + 1, size=j.size)
                    vw[j] = rng.integers(0, W - sw + 1, size=j.size)
                    sg[j] = eps * _signs(rng, (j.size, C, 1, 1))
                    mask[j] = _window_mask(vh[j], vw[j], sh, sw, H, W)
                new[j] = np.where(mask[j], sg[j], delta[j])
                cand[j] = np.clip(xc64[j] + new[j], lo[j], hi[j])
        else:
            sh, sw = _window_l2(p, H, W)
            if (sh, sw) not in eta_cache:
                e = _meta_pseudo_gaussian(sh, sw)
                eta_cache[(sh, sw)] = (e, e.T if sh == sw else e)
            eta, eta_t = eta_cache[(sh, sw)]
            vh = rng.integers(0, H - sh + 1, size=k)
            vw = rng.integers(0, W - sw + 1, size=k)
            vh2 = rng.integers(0, H - sh + 1, size=k)
            vw2 = rng.integers(0, W - sw + 1, size=k)
            w1 = _window_index(vh, vw, sh, sw, C)
            w2 = _window_index(vh2, vw2, sh, sw, C)
            win1 = delta[w1]  # (k, C, sh, sw)
            norms_w1 = np.sqrt((win1 ** 2).sum(axis=(2, 3), keepdims=True))
            norms_img = np.sqrt((delta ** 2).reshape(k, -1).sum(axis=1)).reshape(k, 1, 1, 1)
            union = _window_mask(vh, vw, sh, sw, H, W) | _window_mask(vh2, vw2, sh, sw, H, W)
            norms_wins = np.sqrt(((delta * union) ** 2).sum(axis=(2, 3), keepdims=True))
            tr = (rng.random(k) > 0.5)[:, None, None, None]
            bump = np.where(tr, eta_t[None, None], eta[None, None]) * _signs(rng, (k, C, 1, 1))
            upd = bump + win1 / (1e-12 + norms_w1)
            upd_n = np.sqrt((upd ** 2).sum(axis=(2, 3), keepdims=True))
            budget = np.sqrt(np.maximum(eps ** 2 - norms_img ** 2, 0.0) / C + norms_wins ** 2)
            upd = upd / np.maximum(upd_n, 1e-12) * budget
            delta[w2] = 0.0
            delta[w1] = upd
            dn = np.sqrt((delta ** 2).reshape(k, -1).sum(axis=1)).reshape(k, 1, 1, 1)
            cand = np.clip(xc64 + delta / np.maximum(dn, 1e-12) * eps, lo, hi)

        cand32 = project(xc, cand, norm, eps, lo, hi)
        new_loss, new_adv = query(cand32, idx)
        best.update(idx, cand32, new_loss, new_adv)  # accepted: a higher loss, or adversarial (which ends the search)
    return best.x, best.loss, best.found


def square(oracle, x, y, *, norm, eps, max_iter=5000, p_init=None, loss="margin", y_target=None,
           n_restarts=1, seed=0) -> np.ndarray:
    """Square Attack (Linf or L2). Returns float32 ``x_adv`` with the shape of ``x``.

    ``max_iter`` iterations (one query per still-active sample each) follow one initial query, per
    restart; restarts only re-attack samples not yet adversarial. ``loss`` ("margin" default, "ce",
    "dlr") drives acceptance; a point that is adversarial (argmax != y, or == y_target) is always
    accepted and ends that sample's search. ``p_init`` defaults to 0.8 (linf) / 0.1 (l2).
    """
    p = Problem(oracle, x, y, norm=norm, eps=eps, loss=loss, y_target=y_target, need_gradients=False)
    max_iter = check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    n_restarts = check_positive("n_restarts", n_restarts, integer=True)
    p_init = _P_INIT_DEFAULT[p.norm] if p_init is None else float(p_init)
    if not 0.0 < p_init <= 1.0:
        raise ValueError(f"p_init must lie in (0, 1], got {p_init}")
    if p.n == 0 or p.eps == 0.0:
        return p.x.copy()

    shape4 = _as4d_shape(p.x.shape)
    x4 = p.x.reshape(shape4)
    lo4, hi4 = p.lo.reshape(shape4), p.hi.reshape(shape4)
    rng = np.random.default_rng(seed)

    best = Best(x4, first_adv=True)
    for todo in best.rounds(n_restarts):
        best.update(todo, *_run(p, todo, x4[todo], lo4[todo], hi4[todo], max_iter, p_init, rng))

    # final safety net: re-check the bound on the float32 output (a no-op for points built above)
    return p.finalize(best.x)
