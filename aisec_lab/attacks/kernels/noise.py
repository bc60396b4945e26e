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

Only NumPy and :mod:`aisec_lab.attacks.oracle` are used (the shared helpers are in :mod:`._common`).
"""

from __future__ import annotations

import numpy as np

from aisec_lab.attacks.kernels._common import Best, Problem, check_positive, row_norms

__all__ = ["uniform_noise", "gaussian_noise"]


def _draw(rng, kind: str, norm: str, m: int, d: int, eps: float) -> np.ndarray:
    if kind == "uniform" and norm == "linf":
        u = rng.uniform(-1.0, 1.0, size=(m, d))
    else:  # gaussian (both norms) and uniform-on-the-sphere for l2
        u = rng.standard_normal(size=(m, d))
    s = row_norms(u, norm)
    return u * (eps / np.maximum(s, 1e-300))[:, None]


def _noise(kind, oracle, x, y, norm, eps, n_trials, seed, y_target):
    p = Problem(oracle, x, y, norm=norm, eps=eps, loss="margin", y_target=y_target, need_gradients=False)
    n_trials = check_positive("n_trials", n_trials, allow_zero=True, integer=True)
    if p.n == 0 or p.eps == 0.0 or n_trials == 0:
        return p.x.copy()
    shape = p.x.shape[1:]
    dim = int(np.prod(shape, dtype=np.int64))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0 if kind == "uniform" else 1,)))

    best = Best(p.x, first_adv=True)
    for idx in best.rounds(n_trials):
        noise = _draw(rng, kind, p.norm, idx.size, dim, p.eps).reshape((idx.size,) + shape)
        cand = p.project(p.x64(idx) + noise, idx)
        val, adv = p.evaluate(cand, idx)
        best.update(idx, cand, val, adv)
    return best.x


def uniform_noise(oracle, x, y, *, norm, eps, n_trials=10, seed=0, y_target=None) -> np.ndarray:
    """Best of ``n_trials`` uniform-noise perturbations on the eps-sphere (per sample, batched)."""
    return _noise("uniform", oracle, x, y, norm, eps, n_trials, seed, y_target)


def gaussian_noise(oracle, x, y, *, norm, eps, n_trials=10, seed=0, y_target=None) -> np.ndarray:
    """Best of ``n_trials`` Gaussian-noise perturbations rescaled to the eps-sphere (per sample, batched)."""
    return _noise("gaussian", oracle, x, y, norm, eps, n_trials, seed, y_target)
