"""Framework-free tests of the gradient kernels (FGSM, PGD, APGD) on a NumPy softmax-regression oracle.

The linear model also has an *exact* L-inf robust accuracy (each class margin is linear in the perturbation, so
its minimum over the eps-box intersected with [0, 1] is closed form): no attack may beat it (a bound or oracle bug
would), and a good attack gets close to it.
"""

from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.attacks.kernels.apgd import apgd, apgd_checkpoints
from aisec_lab.attacks.kernels.gradient import fgsm, pgd
from tests.oracles import LinearOracle

N = 150


@pytest.fixture(scope="module")
def model():
    return LinearOracle.fit_digits(al.load_dataset("digits", split="train"))


@pytest.fixture(scope="module")
def data():
    ds = al.load_dataset("digits", split="test")
    return np.asarray(ds.x[:N], dtype=np.float32), np.asarray(ds.y[:N], dtype=np.int64)


def _norms(a, x, norm):
    d = (a.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
    return np.abs(d).max(axis=1) if norm == "linf" else np.sqrt((d ** 2).sum(axis=1))


def _assert_valid(oracle, a, x, norm, eps):
    assert a.dtype == np.float32 and a.shape == x.shape
    assert np.all(_norms(a, x, norm) <= eps * (1 + 1e-6) + 1e-7)
    assert np.all(a >= oracle.clip_min) and np.all(a <= oracle.clip_max)


def _acc(oracle, a, y):
    return float((oracle.logits(a).argmax(1) == y).mean())


def _exact_linf_robust_accuracy(oracle, x, y, eps):
    x = x.reshape(len(x), -1).astype(np.float64)
    z = x @ oracle.W.T + oracle.b
    lo, hi = np.maximum(-eps, 0.0 - x), np.minimum(eps, 1.0 - x)
    c = oracle.W[y][:, None, :] - oracle.W[None, :, :]  # (n, K, d): margin z_y - z_j has gradient c
    worst = (z[np.arange(len(y)), y][:, None] - z) + np.where(c > 0, c * lo[:, None], c * hi[:, None]).sum(-1)
    worst[np.arange(len(y)), y] = np.inf
    return float(((worst > 0).all(axis=1) & (z.argmax(1) == y)).mean())


def _second_class(oracle, x, y):
    z = oracle.logits(x).astype(np.float64)
    z[np.arange(len(y)), y] = -np.inf
    return z.argmax(1)


KERNELS = {
    "fgsm": lambda o, x, y, norm, eps, **kw: fgsm(o, x, y, norm=norm, eps=eps, **kw),
    "pgd": lambda o, x, y, norm, eps, **kw: pgd(o, x, y, norm=norm, eps=eps, eps_step=eps / 4, max_iter=10, **kw),
    "apgd-ce": lambda o, x, y, norm, eps, **kw: apgd(o, x, y, norm=norm, eps=eps, max_iter=10, **kw),
    "apgd-dlr": lambda o, x, y, norm, eps, **kw: apgd(o, x, y, norm=norm, eps=eps, max_iter=10, loss="dlr", **kw),
    "apgd-margin": lambda o, x, y, norm, eps, **kw: apgd(o, x, y, norm=norm, eps=eps, max_iter=10, loss="margin",
                                                         **kw),
}
EPSILONS = {"linf": [0.0, 0.03, 0.1, 0.3], "l2": [0.0, 0.3, 1.0, 3.0]}


# ---------------------------------------------------------------------------------------------------------------
# bounds, eps = 0, monotonicity
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_bounds_hold_and_success_rises_with_eps(model, data, kernel, norm):
    x, y = data
    clean = _acc(model, x, y)
    accs = []
    for eps in EPSILONS[norm]:
        a = KERNELS[kernel](model, x, y, norm, eps)
        _assert_valid(model, a, x, norm, eps)
        if eps == 0:
            assert np.array_equal(a, x)
        accs.append(_acc(model, a, y))
        # targeted variant: same guarantees
        if kernel != "fgsm" or eps <= 0.1:
            t = KERNELS[kernel](model, x, y, norm, eps, y_target=_second_class(model, x, y))
            _assert_valid(model, t, x, norm, eps)
    assert accs[0] == clean
    assert all(b <= a + 1e-9 for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < clean - 0.3, accs


def test_bounds_survive_float32_rounding_at_large_scale(model, data):
    """Inputs in [1000, 1255]: float32 ulps (~6e-5) dwarf the tolerance unless the final check repairs them."""
    x, y = data
    scale, shift = 255.0, 1000.0
    big = LinearOracle(model.W / scale, model.b - (model.W / scale).sum(1) * shift, model.input_shape,
                       clip=(shift, shift + scale))
    xb = (x.astype(np.float64) * scale + shift).astype(np.float32)
    for norm, eps in [("linf", 8.0 / 3), ("linf", 25.5), ("l2", 0.3 * scale / 7), ("l2", 0.7 * scale)]:
        for kernel in ("fgsm", "pgd", "apgd-ce", "apgd-dlr"):
            a = KERNELS[kernel](big, xb, y, norm, eps)
            _assert_valid(big, a, xb, norm, eps)


def test_input_outside_the_box_is_never_pushed_further_out(model, data):
    x, y = data
    x = x.copy()
    x[:, 0, 0, 0] = -0.25  # below clip_min = 0
    for kernel in ("fgsm", "pgd", "apgd-ce"):
        a = KERNELS[kernel](model, x, y, "linf", 0.1)
        assert np.all(_norms(a, x, "linf") <= 0.1 * (1 + 1e-6) + 1e-7)
        assert np.all(a[:, 0, 0, 0] >= -0.25) and np.all(a[:, 0, 0, 0] <= 0.0 + 1e-7 + 0.1)
        assert np.all(a[:, :, 1:] >= 0) and np.all(a <= 1)


def test_clean_misclassified_samples_are_returned_unchanged(model, data):
    x, y = data
    wrong = model.logits(x).argmax(1) != y
    assert wrong.any()
    for kernel in ("fgsm", "pgd", "apgd-dlr"):
        a = KERNELS[kernel](model, x, y, "linf", 0.1)
        assert np.array_equal(a[wrong], x[wrong])


# ---------------------------------------------------------------------------------------------------------------
# strength
# ---------------------------------------------------------------------------------------------------------------

def test_pgd_dominates_fgsm_per_sample(model, data):
    x, y = data
    a_f = fgsm(model, x, y, norm="linf", eps=0.1)
    a_p = pgd(model, x, y, norm="linf", eps=0.1, eps_step=0.025, max_iter=20)
    s_f = model.logits(a_f).argmax(1) != y
    s_p = model.logits(a_p).argmax(1) != y
    assert not np.any(s_f & ~s_p)
    assert _acc(model, a_p, y) <= _acc(model, a_f, y)


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_apgd_at_least_as_strong_as_pgd_and_never_beats_the_exact_bound(model, data, eps):
    x, y = data
    exact = _exact_linf_robust_accuracy(model, x, y, eps)
    r_pgd = _acc(model, pgd(model, x, y, norm="linf", eps=eps, eps_step=eps / 4, max_iter=20), y)
    r_apgd = _acc(model, apgd(model, x, y, norm="linf", eps=eps, max_iter=20), y)
    r_dlr = _acc(model, apgd(model, x, y, norm="linf", eps=eps, max_iter=20, loss="dlr"), y)
    assert r_apgd <= r_pgd
    for r in (r_pgd, r_apgd, r_dlr):
        assert r >= exact - 1e-9  # no attack can beat the exact robust accuracy of a linear model
    assert min(r_apgd, r_dlr) <= exact + 0.03  # ... and APGD gets close to it


def test_targeted_apgd_dlr_reaches_the_target(model, data):
    x, y = data
    target = (y + 1 + np.random.default_rng(1).integers(0, 9, len(y))) % 10
    a = apgd(model, x, y, norm="linf", eps=0.3, max_iter=50, loss="dlr", y_target=target)
    _assert_valid(model, a, x, "linf", 0.3)
    assert np.mean(model.logits(a).argmax(1) == target) >= 0.8


def test_targeted_pgd_and_fgsm_move_towards_the_target(model, data):
    x, y = data
    target = _second_class(model, x, y)
    for attack in (lambda **kw: fgsm(model, x, y, norm="l2", eps=1.0, **kw),
                   lambda **kw: pgd(model, x, y, norm="l2", eps=1.0, eps_step=0.25, max_iter=10, **kw)):
        hit = np.mean(model.logits(attack(loss="margin", y_target=target)).argmax(1) == target)
        assert hit >= 0.6


def test_apgd_restarts_do_not_hurt(model, data):
    x, y = data
    one = _acc(model, apgd(model, x, y, norm="l2", eps=0.5, max_iter=10, loss="dlr"), y)
    three = _acc(model, apgd(model, x, y, norm="l2", eps=0.5, max_iter=10, loss="dlr", n_restarts=3), y)
    assert three <= one


def test_apgd_checkpoints():
    assert apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert apgd_checkpoints(10) == [3, 5, 6, 7, 8, 9, 10]
    assert apgd_checkpoints(0) == []


# ---------------------------------------------------------------------------------------------------------------
# determinism, early stopping, cost
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_deterministic_given_seed(model, data, norm):
    x, y = data
    eps = 0.1 if norm == "linf" else 0.5
    for run in (lambda s: pgd(model, x, y, norm=norm, eps=eps, eps_step=eps / 4, max_iter=5, seed=s),
                lambda s: apgd(model, x, y, norm=norm, eps=eps, max_iter=5, seed=s)):
        a, b, c = run(3), run(3), run(4)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)
    # no random start: the seed does not matter
    a = pgd(model, x, y, norm=norm, eps=eps, eps_step=eps / 4, max_iter=5, num_random_init=0, seed=1)
    b = pgd(model, x, y, norm=norm, eps=eps, eps_step=eps / 4, max_iter=5, num_random_init=0, seed=2)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("kernel", ["pgd", "apgd"])
def test_early_stop_forwards_fewer_rows_and_finds_the_same_adversarials(model, data, kernel):
    x, y = data
    if kernel == "pgd":
        def run(**kw):
            return pgd(model, x, y, norm="linf", eps=0.1, eps_step=0.01, max_iter=30, num_random_init=2, **kw)
        full_cost = N + 2 * (30 + 1) * N
    else:
        def run(**kw):
            return apgd(model, x, y, norm="linf", eps=0.1, max_iter=30, n_restarts=2, **kw)
        full_cost = N + 2 * (30 + 1) * N
    model.queries = 0
    fast = run(early_stop=True)
    q_fast = model.queries
    model.queries = 0
    slow = run(early_stop=False)
    q_slow = model.queries
    assert q_slow == full_cost
    assert q_fast < 0.8 * q_slow
    _assert_valid(model, slow, x, "linf", 0.1)
    s_fast = model.logits(fast).argmax(1) != y
    s_slow = model.logits(slow).argmax(1) != y
    assert np.array_equal(s_fast, s_slow)


class _Recorder:
    """Wraps an oracle and records the rows of every call: ("vag" | "logits", n_rows, n_adversarial)."""

    def __init__(self, oracle):
        self.o = oracle
        self.nb_classes, self.input_shape = oracle.nb_classes, oracle.input_shape
        self.clip_min, self.clip_max, self.has_gradients = oracle.clip_min, oracle.clip_max, True
        self.calls = []

    @property
    def queries(self):
        return self.o.queries

    def logits(self, x):
        self.calls.append(("logits", len(x), None))
        return self.o.logits(x)

    def value_and_grad(self, x, y, *, loss="ce", y_target=None):
        v, g, z = self.o.value_and_grad(x, y, loss=loss, y_target=y_target)
        adv = (z.argmax(1) == y_target) if y_target is not None else (z.argmax(1) != y)
        self.calls.append(("vag", len(x), int(adv.sum())))
        return v, g, z


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("kernel", ["pgd", "apgd"])
def test_early_stop_never_forwards_a_sample_once_adversarial(model, data, kernel, targeted):
    x, y = data
    rec = _Recorder(model)
    target = _second_class(model, x, y) if targeted else None
    if kernel == "pgd":
        pgd(rec, x, y, norm="l2", eps=0.5, eps_step=0.1, max_iter=15, y_target=target)
    else:
        apgd(rec, x, y, norm="l2", eps=0.5, max_iter=15, loss="dlr", y_target=target)
    kinds = [c[0] for c in rec.calls]
    assert kinds[0] == "logits" and rec.calls[0][1] == N  # the clean check
    vags = [c for c in rec.calls if c[0] == "vag"]
    assert len(vags) == (15 if kernel == "pgd" else 16)
    for (_, rows, adv), (_, nxt, _) in zip(vags, rec.calls[kinds.index("vag") + 1:]):
        assert nxt == rows - adv  # exactly the rows found adversarial are dropped, every step
    assert vags[-1][1] < vags[0][1]


class _BowlOracle:
    """loss = -||x - c||^2 (maximum at c, inside the ball), never adversarial: APGD must home in on c, which needs
    its step-size halving and restarts from the best point (a fixed step of 2 * eps just oscillates)."""

    nb_classes, input_shape, has_gradients = 10, (1, 8, 8), True

    def __init__(self, c):
        self.c = c.astype(np.float64)
        self.clip_min = np.zeros(self.input_shape, np.float32)
        self.clip_max = np.ones(self.input_shape, np.float32)
        self.queries = 0

    def logits(self, x):
        self.queries += len(x)
        z = np.zeros((len(x), 10), np.float32)
        z[:, 0] = 1.0  # always class 0, the true class below
        return z

    def value_and_grad(self, x, y, *, loss="ce", y_target=None):
        d = x.astype(np.float64) - self.c[: len(x)] if len(x) == len(self.c) else None
        assert d is not None
        return -(d ** 2).reshape(len(x), -1).sum(1), (-2 * d).astype(np.float32), self.logits(x)


def test_apgd_step_size_schedule_converges_inside_the_ball(data):
    x, _ = data
    x = np.clip(x[:20], 0.25, 0.75).astype(np.float32)
    rng = np.random.default_rng(0)
    eps = 0.2
    c = x + rng.uniform(-eps / 2, eps / 2, size=x.shape)
    oracle = _BowlOracle(c)
    a = apgd(oracle, x, np.zeros(len(x), np.int64), norm="linf", eps=eps, max_iter=100)
    _assert_valid(oracle, a, x, "linf", eps)
    assert np.abs(a - c).max() < eps / 20


def test_fgsm_and_eps_zero_costs(model, data):
    x, y = data
    model.queries, model.gradient_calls = 0, 0
    fgsm(model, x, y, norm="linf", eps=0.1)
    assert (model.queries, model.gradient_calls) == (N, 1)
    model.queries = 0
    for kernel in KERNELS.values():
        kernel(model, x, y, "l2", 0.0)
    assert model.queries == 0


# ---------------------------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------------------------

def test_argument_errors(model, data):
    x, y = data
    with pytest.raises(ValueError, match="y_target equals the true label"):
        apgd(model, x, y, norm="linf", eps=0.1, loss="dlr", y_target=y)
    with pytest.raises(ValueError, match="y_target equals the true label"):
        pgd(model, x, y, norm="linf", eps=0.1, eps_step=0.01, max_iter=2, y_target=y.copy())
    with pytest.raises(ValueError, match="y_target equals the true label"):
        fgsm(model, x, y, norm="linf", eps=0.1, y_target=np.where(np.arange(N) == 5, y, (y + 1) % 10))
    with pytest.raises(ValueError, match="shape"):
        fgsm(model, x, y[:-1], norm="linf", eps=0.1)
    with pytest.raises(ValueError, match="shape"):
        fgsm(model, x, y, norm="linf", eps=0.1, y_target=((y + 1) % 10)[:-1])
    with pytest.raises(ValueError, match="shape"):
        fgsm(model, x.reshape(N, -1), y, norm="linf", eps=0.1)
    with pytest.raises(ValueError, match="norm"):
        fgsm(model, x, y, norm="l1", eps=0.1)
    with pytest.raises(ValueError, match="loss"):
        apgd(model, x, y, norm="l2", eps=0.1, loss="hinge")
    with pytest.raises(ValueError, match="eps"):
        pgd(model, x, y, norm="l2", eps=-1.0, eps_step=0.1, max_iter=2)
    with pytest.raises(ValueError, match="labels outside"):
        fgsm(model, x, np.full(N, 10), norm="linf", eps=0.1)
