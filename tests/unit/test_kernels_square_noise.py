"""Framework-free tests of the Square-attack and random-noise kernels on a NumPy linear oracle."""

from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.attacks.kernels.noise import gaussian_noise, uniform_noise
from aisec_lab.attacks.kernels.square import square
from tests.oracles import LinearOracle

N = 100


@pytest.fixture(scope="module")
def oracle():
    return LinearOracle.fit_digits(al.load_dataset("digits", "train"))


@pytest.fixture(scope="module")
def data():
    te = al.load_dataset("digits", "test")
    return np.asarray(te.x[:N], dtype=np.float32), np.asarray(te.y[:N], dtype=np.int64)


def _norms(xa, x, norm):
    d = (xa.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
    return np.abs(d).max(axis=1) if norm == "linf" else np.sqrt((d * d).sum(axis=1))


def _check_bounds(oracle, xa, x, norm, eps):
    assert xa.dtype == np.float32 and xa.shape == x.shape
    assert np.all(np.isfinite(xa))
    assert np.all(_norms(xa, x, norm) <= eps * (1 + 1e-6) + 1e-7)
    assert np.all(xa >= oracle.clip_min) and np.all(xa <= oracle.clip_max)


def _robust(oracle, xa, y):
    return oracle.logits(xa).argmax(axis=1) == y


class _Recorder:
    """Wraps an oracle and records the number of rows of each logits call."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[int] = []
        for name in ("nb_classes", "input_shape", "clip_min", "clip_max", "has_gradients"):
            setattr(self, name, getattr(inner, name))

    @property
    def queries(self):
        return self.inner.queries

    def logits(self, x):
        self.calls.append(len(x))
        return self.inner.logits(x)


KERNELS = [square, uniform_noise, gaussian_noise]
EPS = {"linf": [0.0, 0.01, 0.1, 0.3], "l2": [0.0, 0.1, 1.0, 3.0]}


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_bounds(oracle, data, kernel, norm):
    x, y = data
    x, y = x[:40], y[:40]
    for eps in EPS[norm]:
        kw = {"max_iter": 60} if kernel is square else {"n_trials": 5}
        q0 = oracle.queries
        xa = kernel(oracle, x, y, norm=norm, eps=eps, **kw)
        _check_bounds(oracle, xa, x, norm, eps)
        if eps == 0:
            assert np.array_equal(xa, x)
            assert oracle.queries == q0


@pytest.mark.parametrize("norm,eps", [("linf", 8.0), ("l2", 40.0), ("l2", 5.0), ("l2", 0.01), ("linf", 1e-4)])
def test_bounds_float32_rounding_on_0_255_scale(data, norm, eps):
    """Values ~255 make float32 rounding of x + delta comparable to the tolerance; bounds must still hold."""
    x, y = data
    x255 = (x[:30] * np.float32(255.0) + np.float32(0.37)).astype(np.float32)
    x255 = np.clip(x255, 0, 255).astype(np.float32)
    rng = np.random.default_rng(3)
    orc = LinearOracle(rng.normal(size=(10, 64)) / 255.0, np.zeros(10), (1, 8, 8), clip=(0.0, 255.0))
    yy = orc.logits(x255).argmax(1)
    for kernel in KERNELS:
        kw = {"max_iter": 30} if kernel is square else {"n_trials": 3}
        xa = kernel(orc, x255, yy, norm=norm, eps=eps, **kw)
        _check_bounds(orc, xa, x255, norm, eps)


@pytest.mark.parametrize("shape", [(20,), (3, 12), (3, 6, 6), (2, 5, 7), (1, 3, 3)])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_other_shapes_and_per_feature_clip(shape, norm):
    rng = np.random.default_rng(0)
    d = int(np.prod(shape))
    orc = LinearOracle(rng.normal(size=(5, d)), rng.normal(size=5), shape)
    orc.clip_min = np.full(shape, 0.1, dtype=np.float32)
    orc.clip_max = rng.uniform(0.6, 1.0, size=shape).astype(np.float32)
    x = rng.uniform(0.1, 0.6, size=(12,) + shape).astype(np.float32)
    y = orc.logits(x).argmax(1)
    eps = 0.2 if norm == "linf" else 1.0
    for kernel in KERNELS:
        kw = {"max_iter": 40} if kernel is square else {"n_trials": 4}
        xa = kernel(orc, x, y, norm=norm, eps=eps, **kw)
        _check_bounds(orc, xa, x, norm, eps)
    xa = square(orc, x, y, norm=norm, eps=eps, max_iter=200)
    assert (~_robust(orc, xa, y)).sum() >= 1  # the search does something on non-image data too


@pytest.mark.parametrize("norm,eps_list", [("linf", [0.02, 0.05, 0.1, 0.2]), ("l2", [0.25, 0.5, 1.0, 2.0])])
def test_square_success_rises_with_eps(oracle, data, norm, eps_list):
    x, y = data
    ra = [_robust(oracle, square(oracle, x, y, norm=norm, eps=e, max_iter=300), y).mean() for e in eps_list]
    assert all(b <= a + 0.02 for a, b in zip(ra, ra[1:])), ra
    assert ra[-1] <= ra[0] - 0.4, ra


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_square_success_rises_with_queries(oracle, data, norm, eps):
    x, y = data
    ra = [_robust(oracle, square(oracle, x, y, norm=norm, eps=eps, max_iter=it), y).mean() for it in (10, 100, 1000)]
    assert ra[1] <= ra[0] and ra[2] <= ra[1] + 0.01, ra
    assert ra[2] <= ra[0] - 0.2, ra


def test_square_beats_noise(oracle, data):
    x, y = data
    rob_sq = _robust(oracle, square(oracle, x, y, norm="linf", eps=0.1, max_iter=1000), y)
    for kernel in (uniform_noise, gaussian_noise):
        rob_nz = _robust(oracle, kernel(oracle, x, y, norm="linf", eps=0.1, n_trials=10), y)
        assert rob_sq.mean() <= rob_nz.mean() - 0.25, (rob_sq.mean(), rob_nz.mean())
        # per sample: what square leaves robust is (nearly) a subset of what noise leaves robust
        assert np.sum(rob_sq & ~rob_nz) <= 2


def test_square_l2_beats_noise(oracle, data):
    x, y = data
    rob_sq = _robust(oracle, square(oracle, x, y, norm="l2", eps=1.0, max_iter=300), y).mean()
    rob_nz = _robust(oracle, gaussian_noise(oracle, x, y, norm="l2", eps=1.0, n_trials=10), y).mean()
    assert rob_sq <= rob_nz - 0.4, (rob_sq, rob_nz)


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 3.0)])
def test_targeted_square(oracle, data, norm, eps):
    x, y = data
    yt = (y + 1) % 10
    xa = square(oracle, x, y, norm=norm, eps=eps, max_iter=500, y_target=yt)
    _check_bounds(oracle, xa, x, norm, eps)
    assert np.mean(oracle.logits(xa).argmax(1) == yt) >= 0.9
    xa_ce = square(oracle, x[:30], y[:30], norm=norm, eps=eps, max_iter=300, y_target=yt[:30], loss="ce")
    assert np.mean(oracle.logits(xa_ce).argmax(1) == yt[:30]) >= 0.8


def test_targeted_noise_counts_only_target_hits(oracle, data):
    x, y = data
    yt = (y + 3) % 10
    rec = _Recorder(oracle)
    xa = uniform_noise(rec, x, y, norm="linf", eps=0.3, n_trials=5, y_target=yt)
    _check_bounds(oracle, xa, x, "linf", 0.3)
    assert np.all(np.any(xa != x, axis=(1, 2, 3)))
    pred = oracle.logits(xa).argmax(1)
    # the samples that left the active set before the last trial reached their target
    assert np.sum(pred == yt) >= len(x) - rec.calls[-1]
    # untargeted success alone does not stop the search: more samples stay active than untargeted
    rec_u = _Recorder(oracle)
    uniform_noise(rec_u, x, y, norm="linf", eps=0.3, n_trials=5)
    assert sum(rec.calls) >= sum(rec_u.calls)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda f: f.__name__)
def test_y_target_validation(oracle, data, kernel):
    x, y = data
    yt = (y + 1) % 10
    yt[5] = y[5]
    with pytest.raises(ValueError, match="y_target"):
        kernel(oracle, x, y, norm="linf", eps=0.1, y_target=yt)
    with pytest.raises(ValueError, match="norm"):
        kernel(oracle, x, y, norm="l1", eps=0.1)
    with pytest.raises(ValueError, match="eps"):
        kernel(oracle, x, y, norm="l2", eps=-1.0)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_determinism(oracle, data, kernel, norm):
    x, y = data
    x, y = x[:40], y[:40]
    eps = 0.1 if norm == "linf" else 1.0
    kw = {"max_iter": 100} if kernel is square else {"n_trials": 5}
    a = kernel(oracle, x, y, norm=norm, eps=eps, seed=7, **kw)
    b = kernel(oracle, x, y, norm=norm, eps=eps, seed=7, **kw)
    c = kernel(oracle, x, y, norm=norm, eps=eps, seed=8, **kw)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("norm,easy,hard", [("linf", 0.3, 0.05), ("l2", 3.0, 0.5)])
def test_square_queries(oracle, data, norm, easy, hard):
    x, y = data
    n, max_iter = len(x), 200
    for eps, restarts in ((hard, 2), (easy, 1)):
        rec = _Recorder(oracle)
        q0 = oracle.queries
        square(rec, x, y, norm=norm, eps=eps, max_iter=max_iter, n_restarts=restarts)
        used = oracle.queries - q0
        assert used == sum(rec.calls)
        assert used <= (max_iter + 1) * restarts * n
        assert len(rec.calls) <= (max_iter + 1) * restarts
        # within a restart the active set only shrinks (adversarial samples are not queried again)
        first = rec.calls[: max_iter + 1]
        assert all(b <= a for a, b in zip(first, first[1:]))
    # easy eps: almost everything breaks early, so the total is far below the maximum
    assert used <= 0.1 * (max_iter + 1) * n


@pytest.mark.parametrize("kernel", [uniform_noise, gaussian_noise], ids=lambda f: f.__name__)
def test_noise_queries_and_first_adversarial_kept(oracle, data, kernel):
    x, y = data
    rec = _Recorder(oracle)
    q0 = oracle.queries
    xa = kernel(rec, x, y, norm="l2", eps=2.0, n_trials=10)
    assert len(rec.calls) <= 10 and rec.calls[0] == len(x)
    assert all(b <= a for a, b in zip(rec.calls, rec.calls[1:]))
    assert oracle.queries - q0 == sum(rec.calls) <= 10 * len(x)
    # samples that dropped out of the active set before the last trial were returned adversarial
    broken = ~_robust(oracle, xa, y)
    assert broken.sum() >= len(x) - rec.calls[-1]
    assert broken.sum() >= 1
