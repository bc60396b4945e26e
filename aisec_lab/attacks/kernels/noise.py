"""Random-noise baselines (uniform and Gaussian) as framework-free NumPy kernels.

Each trial draws one random perturbation per still-active sample on the surface of the eps-ball:

* uniform, ``linf``: U[-eps, eps] per feature, rescaled so that its max-abs equals eps;
* uniform, ``l2``:   a direction uniform on the sphere, scaled to L2 norm eps;
* gaussian, ``linf``: N(0, 1) per feature, rescaled so that its max-abs equals eps;
* gaussian, ``l2``:  N(0, 1) per feature, normalised to L2 norm eps.

(For ``l2`` both are uniform on the sphere in distribution; the two functions use different random
streams.) The perturbed point is clipped to ``[clip_min, clip_max]``. One ``oracle.logits`` call per
trial over all samples not yet adversarial; per sample we keep the first adversarial trial, else the
trial with the best margin. Outputs satisfy the norm and box bounds exactly in float32.

Only NumPy and :mod:`aisec_lab.attacks.oracle` are used.
"""

from __future__ import annotations

import numpy as np

from aisec_lab.attacks.oracle import is_adversarial, loss_from_logits

__all__ = ["uniform_noise", "gaussian_noise"]


# ---- helpers (kept local: kernels import only numpy and the oracle module) -------------------

def _norm_name(norm) -> str:
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


def _validate(oracle, x, y, eps, y_target):
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (n, ...) with at least 2 dimensions, got {x.shape}")
    x = x.astype(np.float32, copy=False)
    n = x.shape[0]
    y = np.asarray(y).astype(np.int64, copy=False).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} labels for {n} samples")
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    k = int(getattr(oracle, "nb_classes", 0) or 0)
    if k and n and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got range [{y.min()}, {y.max()}]")
    if y_target is not None:
        y_target = np.asarray(y_target).astype(np.int64, copy=False).reshape(-1)
        if y_target.shape[0] != n:
            raise ValueError(f"y_target has {y_target.shape[0]} entries for {n} samples")
        if k and n and (y_target.min() < 0 or y_target.max() >= k):
            raise ValueError(f"y_target must lie in [0, {k}), got range [{y_target.min()}, {y_target.max()}]")
        same = np.flatnonzero(y_target == y)
        if same.size:
            raise ValueError(f"y_target equals the true label y for {same.size} sample(s) "
                             f"(first at index {same[0]}); a targeted attack needs y_target != y")
    return x, y, eps, y_target


def _bound(eps: float) -> float:
    return eps * (1.0 + 1e-6) + 1e-7


def _row_norms(d: np.ndarray, norm: str) -> np.ndarray:
    if d.shape[1] == 0:
        return np.zeros(len(d))
    return np.abs(d).max(axis=1) if norm == "linf" else np.sqrt((d * d).sum(axis=1))


def _project(x0: np.ndarray, cand: np.ndarray, norm: str, eps: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Rows of flat (m, d) arrays: project onto the eps-ball and box in float64, return float32 that
    satisfies the bound as float32 (re-checked; rounding violations are shrunk towards ``x0``)."""
    x0_32 = np.asarray(x0, dtype=np.float32)
    x0_64 = x0_32.astype(np.float64)
    d = np.asarray(cand, dtype=np.float64) - x0_64
    if norm == "linf":
        d = np.clip(d, -eps, eps)
    else:
        d = d * np.minimum(1.0, eps / np.maximum(_row_norms(d, "l2"), 1e-300))[:, None]
    out = np.clip(x0_64 + d, lo, hi).astype(np.float32)
    bound = _bound(eps)
    bad = _row_norms(out.astype(np.float64) - x0_64, norm) > bound
    for i in np.flatnonzero(bad):
        fixed = None
        for k in range(1, 24):
            trial = np.clip(x0_64[i] + d[i] * (1.0 - 2.0 ** (-24 + k)), lo[i], hi[i]).astype(np.float32)
            if _row_norms((trial.astype(np.float64) - x0_64[i])[None], norm)[0] <= bound:
                fixed = trial
                break
        out[i] = fixed if fixed is not None else np.clip(x0_32[i], lo[i], hi[i]).astype(np.float32)
    return out


def _draw(rng, kind: str, norm: str, m: int, d: int, eps: float) -> np.ndarray:
    if kind == "uniform" and norm == "linf":
        u = rng.uniform(-1.0, 1.0, size=(m, d))
    else:  # gaussian (both norms) and uniform-on-the-sphere for l2
        u = rng.standard_normal(size=(m, d))
    s = _row_norms(u, norm)
    return u * (eps / np.maximum(s, 1e-300))[:, None]


def _noise(kind, oracle, x, y, norm, eps, n_trials, seed, y_target):
    norm = _norm_name(norm)
    x, y, eps, y_target = _validate(oracle, x, y, eps, y_target)
    n_trials = int(n_trials)
    if n_trials < 0:
        raise ValueError(f"n_trials must be >= 0, got {n_trials}")
    n = x.shape[0]
    if n == 0 or eps == 0.0 or n_trials == 0:
        return x.copy()
    shape = tuple(x.shape[1:])
    flat = np.ascontiguousarray(x).reshape(n, -1)
    dim = flat.shape[1]
    lo = np.broadcast_to(np.asarray(oracle.clip_min, dtype=np.float32), x.shape).reshape(n, -1).astype(np.float64)
    hi = np.broadcast_to(np.asarray(oracle.clip_max, dtype=np.float32), x.shape).reshape(n, -1).astype(np.float64)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0 if kind == "uniform" else 1,)))

    best = flat.copy()
    best_loss = np.full(n, -np.inf)
    found = np.zeros(n, dtype=bool)
    for _ in range(n_trials):
        idx = np.flatnonzero(~found)
        if idx.size == 0:
            break
        xc = flat[idx]
        cand = _project(xc, xc.astype(np.float64) + _draw(rng, kind, norm, idx.size, dim, eps), norm, eps, lo[idx], hi[idx])
        z = oracle.logits(cand.reshape((idx.size,) + shape))
        yt = None if y_target is None else y_target[idx]
        lval = loss_from_logits(z, y[idx], loss="margin", y_target=yt).astype(np.float64)
        adv = is_adversarial(z, y[idx], yt)
        take = adv | (lval > best_loss[idx])
        best[idx[take]] = cand[take]
        best_loss[idx[take]] = lval[take]
        found[idx[adv]] = True
    return best.reshape(x.shape).astype(np.float32, copy=False)


def uniform_noise(oracle, x, y, *, norm, eps, n_trials=10, seed=0, y_target=None) -> np.ndarray:
    """Best of ``n_trials`` uniform-noise perturbations on the eps-sphere (per sample, batched)."""
    return _noise("uniform", oracle, x, y, norm, eps, n_trials, seed, y_target)


def gaussian_noise(oracle, x, y, *, norm, eps, n_trials=10, seed=0, y_target=None) -> np.ndarray:
    """Best of ``n_trials`` Gaussian-noise perturbations rescaled to the eps-sphere (per sample, batched)."""
    return _noise("gaussian", oracle, x, y, norm, eps, n_trials, seed, y_target)
