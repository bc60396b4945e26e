"""The attack contract: one suite every registered attack must pass, built-in or plugin.

The suite is parametrized at collection time over ``aisec_lab.attacks.ATTACKS.names()`` (so an
attack registered by a plugin -- like ``contract_plugin_noise`` below -- is covered automatically)
x both frameworks x every norm the attack declares. Built-ins run with small hyperparameters from
``FAST``; unknown (plugin) attacks run with their defaults.

1. construction: defaults work, specs are frozen and keyword-only, ``params()`` is JSON, ``card()``
   carries the catalog fields;
2. ``run``: float32, input shape, finite, inside the clip box, inside the ε-ball (non-minimal attacks);
3. through ``al.evaluate``: robust accuracy at ε=0 equals clean accuracy, never exceeds it at ε>0,
   and every adversarial example the scorecard counts is a valid one;
4. capability mismatches are refused (gradients on a predictions-only target, unsupported norms),
   and score/decision attacks do run on a predictions-only target;
5. the native kernels are at least as strong as ART's implementations on the reference models.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.attacks.catalog import _numpy_global_seed
from aisec_lab.attacks import ATTACKS
from aisec_lab.attacks.spec import NORMS


# -- a user plugin: registered before collection, so the contract below covers it too ----------------
@al.register_attack("contract_plugin_noise", overwrite=True)
@dataclass(frozen=True, kw_only=True)
class ContractPluginNoise(al.AttackSpec):
    """Contract-suite plugin: one random sign perturbation of size ε, clipped to the valid input range."""

    name = "contract_plugin_noise"
    norms = ("linf", "l2")
    knowledge = "baseline"
    needs = "decisions"
    cost_rank = 0
    reference = "aisec-lab attack contract suite (test plugin)"

    scale: float = 1.0  # fraction of ε used

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        x = np.asarray(x, dtype=np.float32)
        sign = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=x.shape)
        d = int(np.prod(x.shape[1:]))
        step = self.scale * eps * {"linf": 1.0, "l2": 1.0 / np.sqrt(d), "l1": 1.0 / d}[norm]
        lo = np.asarray(target.clip_min, dtype=np.float64)
        hi = np.asarray(target.clip_max, dtype=np.float64)
        return np.clip(x.astype(np.float64) + step * sign, lo, hi).astype(np.float32)


PLUGIN = "contract_plugin_noise"
FRAMEWORKS = ("pytorch", "tensorflow")
#: small hyperparameters per built-in, to keep the suite fast; unknown (plugin) attacks run with defaults
FAST: dict[str, dict] = {
    "pgd": dict(max_iter=10),
    "apgd_ce": dict(max_iter=20),
    "apgd_dlr": dict(max_iter=20),
    "square": dict(max_iter=200),
    # initial_const=1.0: with 3 binary-search steps from the default 1e-3 C&W finds nothing on the digits,
    # which would leave the projection of its minimum-norm examples onto the ε-ball untested
    "cw_l2": dict(max_iter=10, binary_search_steps=3, initial_const=1.0),
    "deepfool": dict(max_iter=10),
    "hop_skip_jump": dict(max_iter=3, max_eval=100, init_eval=10),
    "boundary": dict(max_iter=20, num_trial=5, sample_size=5, init_size=20),
    "uniform_noise": dict(n_trials=5),
    "gaussian_noise": dict(n_trials=5),
}
#: the ε of each norm for the digits (8x8 in [0, 1])
EPS = {"linf": 0.1, "l2": 1.0, "l1": 4.0}
N_VICTIMS = 12

ATTACK_NAMES = ATTACKS.names()
CARD_KEYS = ("name", "norms", "knowledge", "needs", "defaults", "reference", "atlas_technique")


def _cls(name: str):
    return ATTACKS.get(name)


def _spec(name: str) -> al.AttackSpec:
    return al.attack(name, **FAST.get(name, {}))


def _cases(select=lambda cls: True, norms=lambda cls: cls.norms):
    return [pytest.param(name, norm, id=f"{name}-{norm}")
            for name in ATTACK_NAMES if select(_cls(name)) for norm in norms(_cls(name))]


RUN_CASES = _cases()
GRADIENT_CASES = _cases(lambda c: c.needs == "gradients")
BLACK_BOX_CASES = _cases(lambda c: c.needs in ("scores", "decisions"))
UNSUPPORTED_NORM_CASES = _cases(norms=lambda c: [n for n in NORMS if n not in c.norms])


def _size(x: np.ndarray, x_adv: np.ndarray, norm: str) -> np.ndarray:
    d = (np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(len(x), -1)
    return {"linf": np.abs(d).max(axis=1, initial=0.0), "l2": np.sqrt((d * d).sum(axis=1)),
            "l1": np.abs(d).sum(axis=1)}[norm]


def _bound(eps: float) -> float:
    return eps * (1 + 1e-6) + 1e-6


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _unregister_plugin_afterwards():
    """Leave the registry as found once this module's tests are done (the ``thorough`` preset reads it)."""
    yield
    if PLUGIN in ATTACKS:
        ATTACKS.unregister(PLUGIN)


@dataclass
class Victim:
    target: al.Target
    x: np.ndarray  # N_VICTIMS correctly classified digits
    y: np.ndarray
    x_eval: np.ndarray  # the same plus up to two misclassified digits (clean accuracy < 1 when any exist)
    y_eval: np.ndarray
    blackbox: al.Target  # predictions-only view of the same model (wrap_predict)


@pytest.fixture(scope="session")
def _victims(zoo_targets, digits_test):
    cache: dict[str, Victim] = {}

    def get(framework: str) -> Victim:
        if framework not in cache:
            target = zoo_targets("digits_cnn", framework)
            x_all = np.asarray(digits_test.x, dtype=np.float32)
            y_all = np.asarray(digits_test.y, dtype=np.int64)
            correct = target.predict_labels(x_all) == y_all
            good = np.flatnonzero(correct)[:N_VICTIMS]
            bad = np.flatnonzero(~correct)[:2]
            assert len(good) == N_VICTIMS, f"digits_cnn ({framework}) classifies fewer than {N_VICTIMS} test digits"
            idx = np.concatenate([good, bad])
            blackbox = al.wrap_predict(lambda z, t=target: t.predict(z), input_shape=digits_test.input_shape,
                                       nb_classes=10, clip_values=(0.0, 1.0), name=f"digits_cnn-{framework}-predict")
            cache[framework] = Victim(target, x_all[good], y_all[good], x_all[idx], y_all[idx], blackbox)
        return cache[framework]

    return get


@pytest.fixture
def victim(_victims, framework) -> Victim:
    return _victims(framework)


def _assert_counted_examples_valid(sc, target, norm: str, eps: float) -> None:
    """Every adversarial example the scorecard counts at ``eps`` is in the ε-ball, in the box, and fools."""
    ei = [round(e, 12) for e in sc.eps].index(round(eps, 12))
    counted = np.asarray(sc.samples["first_attack"])[ei] >= 0
    x = np.asarray(sc.samples["x"], dtype=np.float32)[counted]
    x_adv = np.asarray(sc.samples["x_adv"])[ei][counted]
    y = np.asarray(sc.samples["y"])[counted]
    assert int(counted.sum()) == round((sc.clean_accuracy - sc.robust_accuracy(eps)) * len(sc.samples["y"]))
    if not counted.any():
        return
    size = _size(x, x_adv, norm)
    assert np.all(size <= _bound(eps)), f"counted examples outside the {norm} ball of {eps}: max {size.max()}"
    assert np.all(x_adv >= target.clip_min - 1e-6) and np.all(x_adv <= target.clip_max + 1e-6)
    assert np.all(target.predict_labels(x_adv) != y), "a counted adversarial example does not fool the model"


# -- 0. the suite covers what it claims ---------------------------------------------------------------------
def test_suite_covers_every_registered_attack_including_plugins():
    assert PLUGIN in ATTACK_NAMES
    assert set(FAST) <= set(ATTACK_NAMES), f"FAST names unknown attacks: {set(FAST) - set(ATTACK_NAMES)}"
    covered = {p.values[0] for p in RUN_CASES}
    assert covered == set(ATTACK_NAMES)


# -- 1. construction --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_spec_is_a_frozen_keyword_only_record(name):
    cls = _cls(name)
    spec = cls()
    assert isinstance(spec, al.AttackSpec)
    assert spec.name == name
    assert dataclasses.is_dataclass(spec)
    assert set(spec.norms) <= set(NORMS) and spec.norms
    assert spec.needs in ("gradients", "scores", "decisions")
    assert spec.knowledge in ("white-box", "black-box", "baseline")

    fields = [f.name for f in dataclasses.fields(spec)]
    assert fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(spec, fields[0], getattr(spec, fields[0]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.targeted = True
    with pytest.raises(TypeError):
        cls(False)

    params = spec.params()
    assert json.loads(json.dumps(params)) == params
    assert set(params) == set(fields)
    fast = _spec(name)
    assert json.loads(json.dumps(fast.params())) == fast.params()
    for key, value in FAST.get(name, {}).items():
        assert fast.params()[key] == value

    card = cls.card()
    for key in CARD_KEYS:
        assert key in card, f"card of {name!r} lacks {key!r}"
    assert card["name"] == name
    assert list(card["norms"]) == list(cls.norms)
    assert card["needs"] == cls.needs and card["knowledge"] == cls.knowledge
    assert set(card["defaults"]) == set(fields)
    assert isinstance(card["reference"], str) and card["reference"]
    assert isinstance(card["atlas_technique"], str) and card["atlas_technique"].startswith("AML.T")
    json.dumps(card, default=str)
    assert al.describe_attack(name) == card


# -- 2. output of run ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,norm", RUN_CASES)
def test_run_output_is_a_valid_adversarial_batch(name, norm, victim):
    spec = _spec(name)
    spec.check(victim.target, norm)
    eps = EPS[norm]
    x = victim.x.copy()
    x_adv = spec.run(victim.target, x, victim.y, norm=norm, eps=eps, seed=0)

    assert isinstance(x_adv, np.ndarray)
    assert x_adv.dtype == np.float32
    assert x_adv.shape == x.shape
    assert np.all(np.isfinite(x_adv))
    assert np.array_equal(x, victim.x), "run modified its input in place"
    lo, hi = victim.target.clip_min, victim.target.clip_max
    assert np.all(x_adv >= lo) and np.all(x_adv <= hi), f"outside clip box: [{x_adv.min()}, {x_adv.max()}]"
    if not spec.minimal:
        size = _size(x, x_adv, norm)
        assert np.all(size <= _bound(eps)), f"{name} left the {norm} ball of {eps}: max {size.max()}"


# -- 3. through evaluate ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,norm", RUN_CASES)
def test_evaluate_scorecard_is_consistent(name, norm, victim):
    spec = _spec(name)
    eps = EPS[norm]
    sc = al.evaluate(victim.target, (victim.x_eval, victim.y_eval), attacks=[spec], norm=norm, eps=[0.0, eps],
                     exhaustive=True, seed=0, checks=False, progress=False)
    n_correct = int((victim.target.predict_labels(victim.x_eval) == victim.y_eval).sum())
    assert sc.clean_accuracy == pytest.approx(n_correct / len(victim.y_eval))
    assert sc.robust_accuracy(0.0) == pytest.approx(sc.clean_accuracy)
    assert sc.robust_accuracy(eps) <= sc.clean_accuracy
    assert sc.robust_accuracy(eps, attack=spec.label) == pytest.approx(sc.robust_accuracy(eps))
    assert np.all(np.asarray(sc.samples["first_attack"])[0] < 0), "something counted as broken at eps=0"
    _assert_counted_examples_valid(sc, victim.target, norm, eps)


# -- 4. capability mismatch ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,norm", GRADIENT_CASES)
def test_gradient_attack_refused_on_predictions_only_target(name, norm, victim):
    spec = _spec(name)
    assert victim.blackbox.has_gradients is False
    with pytest.raises(al.IncompatibleModelError, match="gradients"):
        spec.check(victim.blackbox, norm)
    with pytest.raises(al.IncompatibleModelError, match="gradients"):
        al.evaluate(victim.blackbox, (victim.x_eval, victim.y_eval), attacks=[spec], norm=norm, eps=[EPS[norm]],
                    checks=False, progress=False)


@pytest.mark.parametrize("name,norm", UNSUPPORTED_NORM_CASES)
def test_unsupported_norm_refused(name, norm, victim):
    spec = _spec(name)
    names_norm = rf"\b{re.escape(norm)}\b"
    with pytest.raises(al.ConfigError, match=names_norm):
        spec.check(victim.target, norm)
    with pytest.raises(al.ConfigError, match=names_norm):
        al.evaluate(victim.target, (victim.x_eval, victim.y_eval), attacks=[spec], norm=norm, eps=[EPS[norm]],
                    checks=False, progress=False)


@pytest.mark.parametrize("framework", ["pytorch"])  # the predictions-only path is framework-agnostic
@pytest.mark.parametrize("name,norm", BLACK_BOX_CASES)
def test_score_and_decision_attacks_run_on_predictions_only_target(name, norm, victim):
    spec = _spec(name)
    bb = victim.blackbox
    spec.check(bb, norm)
    eps = EPS[norm]
    sc = al.evaluate(bb, (victim.x_eval, victim.y_eval), attacks=[spec], norm=norm, eps=[0.0, eps], seed=0,
                     checks=False, progress=False)
    assert sc.clean_accuracy == pytest.approx(float(np.mean(bb.predict_labels(victim.x_eval) == victim.y_eval)))
    assert sc.robust_accuracy(0.0) == pytest.approx(sc.clean_accuracy)
    assert sc.robust_accuracy(eps) <= sc.clean_accuracy
    assert sc.cost["attacks"][spec.label]["samples_attacked"] > 0
    _assert_counted_examples_valid(sc, bb, norm, eps)


# -- 5. native kernels vs ART ----------------------------------------------------------------------------------
STRENGTH_EPS = 0.1
STRENGTH_SAMPLES = 100
STRENGTH_TOLERANCE = 2


def _art_fgsm(est, eps):
    from art.attacks.evasion import FastGradientMethod

    return FastGradientMethod(est, norm=np.inf, eps=eps, eps_step=eps, batch_size=128)


def _art_pgd(est, eps):
    from art.attacks.evasion import ProjectedGradientDescent

    return ProjectedGradientDescent(est, norm=np.inf, eps=eps, eps_step=2.5 * eps / 20, max_iter=20,
                                    num_random_init=1, batch_size=128, verbose=False)


def _art_apgd_ce(est, eps):
    from art.attacks.evasion import AutoProjectedGradientDescent

    return AutoProjectedGradientDescent(est, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=50, nb_random_init=1,
                                        loss_type="cross_entropy", batch_size=128, verbose=False)


def _art_square(est, eps):
    from art.attacks.evasion import SquareAttack

    return SquareAttack(est, norm=np.inf, eps=eps, max_iter=300, nb_restarts=1, batch_size=128, verbose=False)


#: native spec vs the ART attack it must match or beat
STRENGTH = {
    "fgsm": (dict(), _art_fgsm),
    "pgd": (dict(max_iter=20, num_random_init=1), _art_pgd),
    "apgd_ce": (dict(max_iter=50, n_restarts=1), _art_apgd_ce),
    "square": (dict(max_iter=300, n_restarts=1), _art_square),
}
STRENGTH_CASES = [pytest.param(name, fw, id=f"{name}-{fw}") for name in STRENGTH for fw in FRAMEWORKS
                  if not (name == "square" and fw != "pytorch")]  # ART's Square is slow: pytorch only


@pytest.fixture(scope="module")
def strength_data(digits_test):
    ds = digits_test.stratified_sample(STRENGTH_SAMPLES, seed=0)
    return np.asarray(ds.x, dtype=np.float32), np.asarray(ds.y, dtype=np.int64)


@pytest.mark.parametrize("name,framework", STRENGTH_CASES)
def test_native_attack_at_least_as_strong_as_art(name, framework, zoo_targets, strength_data, record_property):
    target = zoo_targets("digits_cnn", framework)
    x, y = strength_data
    params, make_art = STRENGTH[name]
    native = al.attack(name, **params)
    x_native = native.run(target, x, y, norm="linf", eps=STRENGTH_EPS, seed=0)
    with _numpy_global_seed(0):
        x_art = np.asarray(make_art(target.estimator, STRENGTH_EPS).generate(x=x, y=np.eye(10)[y]), dtype=np.float32)
    for adv in (x_native, x_art):
        assert np.all(_size(x, adv, "linf") <= _bound(STRENGTH_EPS))
    clean = int(np.sum(target.predict(x).argmax(axis=1) == y))
    robust_native = int(np.sum(target.predict(x_native).argmax(axis=1) == y))
    robust_art = int(np.sum(target.predict(x_art).argmax(axis=1) == y))
    record_property("clean", clean)
    record_property("robust_native", robust_native)
    record_property("robust_art", robust_art)
    print(f"\n[strength] {name} {framework}: clean {clean}/{len(y)}, robust native {robust_native}, "
          f"robust ART {robust_art}")
    assert robust_native <= robust_art + STRENGTH_TOLERANCE, (
        f"native {name} leaves {robust_native}/{len(y)} robust, ART {robust_art}/{len(y)}")
